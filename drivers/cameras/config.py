"""Typed camera configs parsed from LeRobot's camera JSON, and the type → factory registry that builds cameras.

LeRobot once passed `--robot.cameras` JSON on as plain dicts and failed later with "'dict' object has no
attribute 'width'"; here every field is checked up front and a wrong one is named with the closest valid field.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivers.cameras.base import Camera
from drivers.cameras.rotation import ROTATIONS, normalize_rotation


class CameraConfigError(ValueError):
    """A camera config that cannot work; the message names the camera, the field and what is allowed."""


@dataclass(frozen=True)
class CameraConfig:
    type: str = "opencv"
    index_or_path: int | str | None = None  # opencv: device index or /dev path; video: the file
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    fourcc: str | None = None
    rotation: int = 0
    warmup_s: float = 1.0
    loop: bool = True  # video only
    backend: int = 0  # opencv only: cv2.CAP_* (0 = any)

    @property
    def path(self) -> Path:
        return Path(str(self.index_or_path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], name: str = "camera") -> CameraConfig:
        """One camera's JSON object (LeRobot's OpenCVCameraConfig fields, or ours); every problem is reported."""
        if not isinstance(data, Mapping):
            raise CameraConfigError(
                f'camera \'{name}\': expected an object like {{"type": "opencv", "index_or_path": 0}}, '
                f"got {type(data).__name__}"
            )
        return _Parser(name, data).parse()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form from_dict reads back (LeRobot's field names for opencv; unset fields left out)."""
        spec = CAMERA_TYPES.get(self.type)
        allowed = spec.fields if spec else COMMON_FIELDS
        out: dict[str, Any] = {"type": self.type}
        for key in (
            "index_or_path",
            "width",
            "height",
            "fps",
            "fourcc",
            "rotation",
            "warmup_s",
            "loop",
            "backend",
        ):
            value = getattr(self, key)
            if key in allowed and value is not None:
                out["path" if key == "index_or_path" and self.type == "video" else key] = value
        return out


CameraFactory = Callable[[str, CameraConfig], Camera]

COMMON_FIELDS = frozenset({"index_or_path", "width", "height", "fps", "rotation", "warmup_s"})


@dataclass(frozen=True)
class CameraType:
    factory: CameraFactory
    fields: frozenset[str] = field(default=COMMON_FIELDS)
    required: frozenset[str] = frozenset()


def _make_opencv(name: str, config: CameraConfig) -> Camera:
    from drivers.cameras.opencv import OpenCVCamera

    assert config.index_or_path is not None
    return OpenCVCamera(
        name,
        config.index_or_path,
        width=config.width,
        height=config.height,
        fps=config.fps,
        fourcc=config.fourcc,
        rotation=config.rotation,
        warmup_s=config.warmup_s,
        backend=config.backend,
    )


def _make_video(name: str, config: CameraConfig) -> Camera:
    from drivers.cameras.video_file import VideoFileCamera

    return VideoFileCamera(
        name,
        config.path,
        fps=config.fps,
        loop=config.loop,
        width=config.width,
        height=config.height,
        rotation=config.rotation,
    )


# The simulator (and any later source) adds its type with register_camera_type.
CAMERA_TYPES: dict[str, CameraType] = {
    "opencv": CameraType(
        _make_opencv, COMMON_FIELDS | {"fourcc", "backend", "color_mode"}, frozenset({"index_or_path"})
    ),
    "video": CameraType(_make_video, (COMMON_FIELDS - {"warmup_s"}) | {"loop"}, frozenset({"index_or_path"})),
}

# Types LeRobot has that robotui does not drive, with what to use instead.
_UNSUPPORTED_TYPES = {
    "intelrealsense": "robotui reads a RealSense's colour stream as an opencv camera (its /dev/videoN)",
    "realsense": "robotui reads a RealSense's colour stream as an opencv camera (its /dev/videoN)",
}


def register_camera_type(
    type_name: str,
    factory: CameraFactory,
    fields: frozenset[str] = COMMON_FIELDS,
    required: frozenset[str] = frozenset(),
) -> None:
    """Make `type_name` valid in configs; `fields` are the CameraConfig fields it accepts."""
    unknown = set(fields) - _CONFIG_FIELDS
    if unknown:
        raise ValueError(f"camera type {type_name!r}: {sorted(unknown)} are not CameraConfig fields")
    CAMERA_TYPES[type_name] = CameraType(factory, frozenset(fields), frozenset(required))


def make_camera(name: str, config: CameraConfig) -> Camera:
    spec = CAMERA_TYPES.get(config.type)
    if spec is None:
        raise CameraConfigError(
            f"camera '{name}': unknown type {config.type!r}; known: {', '.join(CAMERA_TYPES)}"
        )
    return spec.factory(name, config)


def parse_cameras(spec: str | Mapping[str, Any]) -> dict[str, CameraConfig]:
    """LeRobot's `--robot.cameras` value: `{"front": {"type": "opencv", ...}, ...}` as JSON text or a mapping."""
    if isinstance(spec, str):
        if not spec.strip():
            return {}
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as e:
            raise CameraConfigError(f"cameras: not valid JSON ({e.msg} at column {e.colno})") from e
    if not isinstance(spec, Mapping):
        raise CameraConfigError(
            'cameras: expected an object of name → config, like {"front": {"type": "opencv", "index_or_path": 0}}'
        )
    cameras = {}
    for name, data in spec.items():
        if not isinstance(name, str) or not name or any(c in name for c in " ./\\\t"):
            raise CameraConfigError(f"camera name {name!r}: use a short word like 'front' or 'wrist'")
        cameras[name] = CameraConfig.from_dict(data, name=name)
    return cameras


class _Parser:
    """Checks one camera's fields, collecting every problem so the user fixes them in one go."""

    def __init__(self, name: str, data: Mapping[str, Any]) -> None:
        self.name = name
        self.data = dict(data)
        self.errors: list[str] = []

    def parse(self) -> CameraConfig:
        kind = self.data.pop("type", None)
        if kind is None:
            raise CameraConfigError(
                f"camera '{self.name}': missing \"type\" (one of: {', '.join(CAMERA_TYPES)})"
            )
        if kind in _UNSUPPORTED_TYPES:
            raise CameraConfigError(
                f"camera '{self.name}': type {kind!r} is not supported; {_UNSUPPORTED_TYPES[kind]}"
            )
        spec = CAMERA_TYPES.get(kind)
        if spec is None:
            raise CameraConfigError(
                f"camera '{self.name}': unknown type {kind!r}{self._suggest(str(kind), CAMERA_TYPES)}; "
                f"known: {', '.join(CAMERA_TYPES)}"
            )
        if "path" in self.data and "index_or_path" not in self.data:
            self.data["index_or_path"] = self.data.pop("path")
        values: dict[str, Any] = {"type": kind}
        for key, raw in self.data.items():
            if key not in spec.fields:
                self._unknown(key, kind, spec.fields)
                continue
            parsed = self._field(key, raw)
            if parsed is not _INVALID and key != "color_mode":
                values[key] = parsed
        if kind == "video" and isinstance(values.get("index_or_path"), int):
            self.errors.append("path: expected the video file's path")
        for key in spec.required:
            if values.get(key) is None and not any(e.startswith(f"{key}:") for e in self.errors):
                label = "path" if key == "index_or_path" and kind == "video" else key
                self.errors.append(f"{label}: required for type {kind!r}")
        if self.errors:
            raise CameraConfigError(f"camera '{self.name}': " + "; ".join(self.errors))
        return CameraConfig(**values)

    @staticmethod
    def _suggest(key: str, choices: object) -> str:
        close = difflib.get_close_matches(key, list(choices), n=1)  # type: ignore[call-overload]
        return f" (did you mean {close[0]!r}?)" if close else ""

    def _unknown(self, key: str, kind: str, allowed: frozenset[str]) -> None:
        everything = set().union(*(t.fields for t in CAMERA_TYPES.values()))
        if key in everything:
            self.errors.append(f"{key}: does not apply to type {kind!r}")
        else:
            self.errors.append(f"{key}: unknown field{self._suggest(key, sorted(allowed))}")

    def _field(self, key: str, raw: Any) -> Any:
        check = getattr(self, f"_check_{key}")
        try:
            return check(raw)
        except ValueError as e:
            self.errors.append(f"{key}: {e}")
            return _INVALID

    @staticmethod
    def _check_index_or_path(raw: Any) -> int | str:
        if isinstance(raw, bool):
            raise ValueError(f"expected a device index or a path, got {raw!r}")
        if isinstance(raw, int):
            if raw < 0:
                raise ValueError(f"a device index is 0 or more, got {raw}")
            return raw
        if isinstance(raw, str) and raw.strip():
            text = raw.strip()
            return int(text) if text.isdigit() else text  # "0" from a command line means the index
        raise ValueError(f"expected a device index or a path, got {raw!r}")

    @staticmethod
    def _positive_int(raw: Any) -> int | None:
        if raw is None:
            return None
        if isinstance(raw, bool) or not isinstance(raw, int | float) or raw != int(raw) or raw <= 0:
            raise ValueError(f"expected a positive whole number of pixels, got {raw!r}")
        return int(raw)

    _check_width = _positive_int
    _check_height = _positive_int

    @staticmethod
    def _check_fps(raw: Any) -> float | None:
        if raw is None:
            return None
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw) or raw <= 0:
            raise ValueError(f"expected a positive number of frames per second, got {raw!r}")
        return float(raw)

    @staticmethod
    def _check_fourcc(raw: Any) -> str | None:
        if raw is None:
            return None
        if not isinstance(raw, str) or len(raw) != 4:
            raise ValueError(f"expected 4 characters like 'MJPG' or 'YUYV', got {raw!r}")
        return raw

    @staticmethod
    def _check_rotation(raw: Any) -> int:
        try:
            return normalize_rotation(raw)
        except ValueError:
            raise ValueError(
                f"expected one of {', '.join(map(str, ROTATIONS))} degrees, got {raw!r}"
            ) from None

    @staticmethod
    def _check_warmup_s(raw: Any) -> float:
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw) or raw < 0:
            raise ValueError(f"expected seconds (0 or more), got {raw!r}")
        return float(raw)

    @staticmethod
    def _check_loop(raw: Any) -> bool:
        if not isinstance(raw, bool):
            raise ValueError(f"expected true or false, got {raw!r}")
        return raw

    @staticmethod
    def _check_backend(raw: Any) -> int:
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
            raise ValueError(f"expected an OpenCV backend number (0 = any, 200 = V4L2), got {raw!r}")
        return raw

    @staticmethod
    def _check_color_mode(raw: Any) -> str:
        if raw != "rgb":
            raise ValueError(f"robotui cameras always deliver RGB; expected 'rgb', got {raw!r}")
        return raw


_INVALID = object()
_CONFIG_FIELDS = frozenset(CameraConfig.__dataclass_fields__) - {"type"} | {"color_mode"}
