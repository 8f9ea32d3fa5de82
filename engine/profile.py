"""Robot profiles: which arms, ports, ids, cameras and rates a user works with, kept in one TOML file.

The file lives in the user config dir (`$XDG_CONFIG_HOME/robotui/profiles.toml`), holds several named
profiles and which one is active, and is written atomically so a crash never leaves half a file. Values
follow LeRobot's names (`so101_follower`, `index_or_path`, `max_relative_target`) so a user can copy them
to a `lerobot-*` command line. CLI flags override the active profile for one run, never the file.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import platformdirs

FILE_NAME = "profiles.toml"
DEFAULT_TELEOP_FPS = 60
DEFAULT_RECORD_FPS = 30


class ProfileError(ValueError):
    """A profile that cannot be used; the message names the file, line or field and what to change."""

    def __init__(
        self, message: str, *, field: str | None = None, path: Path | None = None, line: int | None = None
    ) -> None:
        self.field = field
        self.path = path
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}, line {line}: " if line is not None else f"{path}: "
        super().__init__(where + message)


KEYBOARD = "keyboard"
"""Teleop type for keyboard jogging: no port, nothing to calibrate."""


def robot_types() -> tuple[str, ...]:
    """Follower types, from the drivers' registry (imported lazily: headless commands load profiles too)."""
    from drivers.robots.registry import ROBOT_TYPES

    return tuple(ROBOT_TYPES)


def teleop_types() -> tuple[str, ...]:
    from drivers.robots.registry import TELEOPERATOR_TYPES

    return (*TELEOPERATOR_TYPES, KEYBOARD)


_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class ArmConfig:
    """One arm (or the keyboard) as LeRobot's `--robot.type/--robot.port/--robot.id` name it."""

    type: str
    port: str = ""
    id: str = ""

    @property
    def has_bus(self) -> bool:
        """False for the keyboard: no port to find and nothing to calibrate."""
        return self.type != KEYBOARD

    @property
    def calibration_key(self) -> tuple[str, str] | None:
        """(kind, LeRobot class name) naming the calibration folder, e.g. ("robots", "so_follower");
        None for the keyboard or an unknown type."""
        from drivers.robots.registry import ROBOT_TYPES, TELEOPERATOR_TYPES

        if self.type in ROBOT_TYPES:
            return "robots", ROBOT_TYPES[self.type][0].name
        if self.type in TELEOPERATOR_TYPES:
            return "teleoperators", TELEOPERATOR_TYPES[self.type][0].name
        return None


@dataclass(frozen=True)
class Profile:
    name: str
    robot: ArmConfig
    teleop: ArmConfig
    cameras: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Camera name -> LeRobot-style config dict (`{"type": "opencv", "index_or_path": 0, ...}`)."""
    teleop_fps: int = DEFAULT_TELEOP_FPS
    record_fps: int = DEFAULT_RECORD_FPS
    max_relative_target: float | dict[str, float] | None = None
    """Per-tick joint step cap in degrees (one number, or per motor); None leaves goals unclamped."""
    dataset_root: str | None = None
    """Where datasets go; None means LeRobot's default ($HF_LEROBOT_HOME)."""
    sim: bool = False
    """Run against the virtual SO-101 (emulated servos + MuJoCo) instead of hardware."""
    vqa_model: str | None = None
    """The vision-language model for /question: a local folder or a Hub id; None means the default."""

    def dataset_root_path(self) -> Path:
        if self.dataset_root:
            return Path(self.dataset_root).expanduser()
        env = os.environ
        if env.get("HF_LEROBOT_HOME"):
            return Path(env["HF_LEROBOT_HOME"]).expanduser()
        hf_home = Path(env.get("HF_HOME") or Path.home() / ".cache" / "huggingface").expanduser()
        return hf_home / "lerobot"


def default_profile(name: str = "default") -> Profile:
    """What a first run starts from: an SO-101 pair whose ports the Ports workflow fills in."""
    return Profile(
        name=name,
        robot=ArmConfig("so101_follower", "", "follower"),
        teleop=ArmConfig("so101_leader", "", "leader"),
    )


def sim_profile() -> Profile:
    """The profile `robotui --sim` opens: the virtual SO-101 pair with a front and a wrist camera.
    Ports stay empty because the servo emulator creates its pseudo-terminals at connect time."""
    camera = {"type": "sim", "width": 320, "height": 240, "fps": DEFAULT_RECORD_FPS}
    return Profile(
        name="sim",
        robot=ArmConfig("so101_follower", "", "sim_follower"),
        teleop=ArmConfig("so101_leader", "", "sim_leader"),
        cameras={"front": dict(camera), "wrist": dict(camera)},
        sim=True,
    )


# --------------------------------------------------------------------------------------------- validation


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise ProfileError(
            f"{name} must be a whole number of frames per second (1-1000), got {value!r}", field=name
        )
    return value


def _positive_number(value: object, name: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ProfileError(f"{name} must be a positive number of degrees, got {value!r}", field=name)
    return float(value)


def _check_arm(arm: ArmConfig, role: str, types: tuple[str, ...]) -> None:
    if arm.type not in types:
        raise ProfileError(
            f"{role}.type {arm.type!r} is not known — choose one of {', '.join(types)}", field=f"{role}.type"
        )
    if arm.has_bus and not _ID_PATTERN.match(arm.id):
        raise ProfileError(
            f"{role}.id {arm.id!r} must be a non-empty name of letters, digits, '_', '-' or '.' "
            "(it names the calibration file)",
            field=f"{role}.id",
        )


def _check_cameras(cameras: Mapping[str, object]) -> None:
    """Camera dicts are checked by the camera drivers' own parser (one source of truth for the fields).
    `sim` cameras belong to the simulator, which registers its type only when it is loaded."""
    from drivers.cameras.config import CAMERA_TYPES, CameraConfigError, parse_cameras

    checked: dict[str, object] = {}
    for name, config in cameras.items():
        if isinstance(config, Mapping) and config.get("type") == "sim" and "sim" not in CAMERA_TYPES:
            for key in ("width", "height", "fps"):
                value = config.get(key, 1)
                if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                    raise ProfileError(
                        f"camera '{name}': {key} must be a positive number, got {value!r}",
                        field=f"cameras.{name}.{key}",
                    )
        else:
            checked[name] = config
    try:
        parse_cameras(checked)
    except CameraConfigError as e:
        raise ProfileError(str(e), field="cameras") from e


def _number_or_per_motor(value: object) -> Any:
    """`max_relative_target` as LeRobot takes it: ints become floats, a per-motor table stays a dict."""
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): _number_or_per_motor(v) for k, v in value.items()}
    return value


def validate(profile: Profile) -> Profile:
    """Raise ProfileError (with `.field`) for the first thing wrong; return the profile unchanged."""
    if not profile.name.strip():
        raise ProfileError("the profile needs a name", field="name")
    # Scalars first, then the sub-tables: errors come in the order the file reads.
    _positive_int(profile.teleop_fps, "teleop_fps")
    _positive_int(profile.record_fps, "record_fps")
    mrt = profile.max_relative_target
    if isinstance(mrt, Mapping):
        for motor, cap in mrt.items():
            _positive_number(cap, f"max_relative_target.{motor}")
    elif mrt is not None:
        _positive_number(mrt, "max_relative_target")
    _check_arm(profile.robot, "robot", robot_types())
    _check_arm(profile.teleop, "teleop", teleop_types())
    _check_cameras(profile.cameras)
    return profile


# ------------------------------------------------------------------------------------ dict <-> Profile


def _arm_from(data: object, role: str) -> ArmConfig:
    if not isinstance(data, Mapping):
        raise ProfileError(f"{role} must be a table with type, port and id", field=f"{role}.type")
    unknown = sorted(set(data) - {"type", "port", "id"})
    if unknown:
        raise ProfileError(
            f"{role}: unknown key(s) {', '.join(unknown)} (expected type, port, id)",
            field=f"{role}.{unknown[0]}",
        )
    for key in ("type", "port", "id"):
        if key in data and not isinstance(data[key], str):
            raise ProfileError(f"{role}.{key} must be a string, got {data[key]!r}", field=f"{role}.{key}")
    if "type" not in data:
        example = "so101_follower" if role == "robot" else "so101_leader"
        raise ProfileError(
            f'the {role} table needs a type (and port, id), e.g. type = "{example}"', field=f"{role}.type"
        )
    return ArmConfig(data["type"], data.get("port", ""), data.get("id", ""))


_PROFILE_KEYS = {
    "robot",
    "teleop",
    "cameras",
    "teleop_fps",
    "record_fps",
    "max_relative_target",
    "dataset_root",
    "sim",
    "vqa_model",
}


def profile_from_dict(name: str, data: Mapping[str, Any]) -> Profile:
    """Build and validate a profile from its TOML table."""
    unknown = sorted(set(data) - _PROFILE_KEYS)
    if unknown:
        raise ProfileError(
            f"unknown key(s) {', '.join(unknown)} (expected {', '.join(sorted(_PROFILE_KEYS))})",
            field=unknown[0],
        )
    cameras = data.get("cameras", {})
    if not isinstance(cameras, Mapping):
        raise ProfileError("cameras must be a table of name -> camera table", field="cameras")
    mrt = _number_or_per_motor(data.get("max_relative_target"))
    dataset_root = data.get("dataset_root")
    if dataset_root is not None and not isinstance(dataset_root, str):
        raise ProfileError(f"dataset_root must be a path string, got {dataset_root!r}", field="dataset_root")
    vqa_model = data.get("vqa_model")
    if vqa_model is not None and not isinstance(vqa_model, str):
        raise ProfileError(f"vqa_model must be a folder or Hub id string, got {vqa_model!r}", field="vqa_model")
    sim = data.get("sim", False)
    if not isinstance(sim, bool):
        raise ProfileError(f"sim must be true or false, got {sim!r}", field="sim")
    for key in ("teleop_fps", "record_fps"):
        if key in data:
            _positive_int(data[key], key)
    profile = Profile(
        name=name,
        robot=_arm_from(data.get("robot", {}), "robot"),
        teleop=_arm_from(data.get("teleop", {}), "teleop"),
        cameras={str(k): dict(v) if isinstance(v, Mapping) else v for k, v in cameras.items()},
        teleop_fps=data.get("teleop_fps", DEFAULT_TELEOP_FPS),
        record_fps=data.get("record_fps", DEFAULT_RECORD_FPS),
        max_relative_target=mrt,
        dataset_root=dataset_root or None,
        sim=sim,
        vqa_model=vqa_model or None,
    )
    return validate(profile)


def profile_to_dict(profile: Profile) -> dict[str, Any]:
    """The TOML table of a profile (None values are left out: TOML has no null)."""
    data: dict[str, Any] = {
        "teleop_fps": profile.teleop_fps,
        "record_fps": profile.record_fps,
        "sim": profile.sim,
    }
    if profile.max_relative_target is not None:
        data["max_relative_target"] = profile.max_relative_target
    if profile.dataset_root:
        data["dataset_root"] = profile.dataset_root
    if profile.vqa_model:
        data["vqa_model"] = profile.vqa_model
    data["robot"] = {"type": profile.robot.type, "port": profile.robot.port, "id": profile.robot.id}
    data["teleop"] = {"type": profile.teleop.type, "port": profile.teleop.port, "id": profile.teleop.id}
    if profile.cameras:
        data["cameras"] = {name: dict(config) for name, config in profile.cameras.items()}
    return data


# -------------------------------------------------------------------------------------------- TOML writer

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f"}


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _toml_string(key)


def _toml_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} to TOML")


def dump_toml(data: Mapping[str, Any], header: str = "") -> str:
    """Nested dicts become [dotted.tables]; everything else is written inline. Enough for profiles,
    without adding a TOML-writing dependency."""
    lines: list[str] = [f"# {line}".rstrip() for line in header.splitlines()]

    def emit(table: Mapping[str, Any], path: tuple[str, ...]) -> None:
        scalars = [(k, v) for k, v in table.items() if not isinstance(v, Mapping)]
        tables = [(k, v) for k, v in table.items() if isinstance(v, Mapping)]
        if path and (scalars or not tables):
            if lines:
                lines.append("")
            lines.append("[" + ".".join(_toml_key(p) for p in path) + "]")
        for key, value in scalars:
            lines.append(f"{_toml_key(str(key))} = {_toml_value(value)}")
        for key, value in tables:
            emit(value, (*path, str(key)))

    emit(data, ())
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------------------------- the file


def profiles_path() -> Path:
    """`$XDG_CONFIG_HOME/robotui/profiles.toml` (platformdirs' config dir where XDG is not set)."""
    xdg = os.environ.get("XDG_CONFIG_HOME")
    folder = (
        Path(xdg).expanduser() / "robotui"
        if xdg
        else Path(platformdirs.user_config_dir("robotui", appauthor=False))
    )
    return folder / FILE_NAME


_LINE_IN_MESSAGE = re.compile(r"\(at line (\d+), column (\d+)\)")


def _line_of(text: str, table: tuple[str, ...], key: str | None) -> int | None:
    """Best-effort line number of `key` under the `[table]` header, for schema errors tomllib cannot place."""
    header = re.compile(
        r"^\s*\[\s*"
        + r"\s*\.\s*".join(rf'(?:{re.escape(p)}|"{re.escape(p)}")' for p in table)
        + r"\s*\]\s*(#.*)?$"
    )
    inside = not table  # top-level keys come before the first header
    header_line = None
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(r"^\s*\[", line):
            if inside:
                break
            inside = bool(header.match(line))
            if inside:
                header_line = number
                if key is None:
                    return number
            continue
        if inside and key is not None and re.match(rf'^\s*(?:{re.escape(key)}|"{re.escape(key)}")\s*=', line):
            return number
    return header_line


@dataclass
class ProfileStore:
    """Every profile in the file and which one is active."""

    profiles: dict[str, Profile]
    active: str
    path: Path

    @property
    def active_profile(self) -> Profile:
        return self.profiles[self.active]

    def put(self, profile: Profile, *, activate: bool = True) -> None:
        validate(profile)
        self.profiles[profile.name] = profile
        if activate:
            self.active = profile.name

    def save(self) -> None:
        save_profiles(self)


def load_profiles(path: Path | None = None) -> ProfileStore:
    """Read the profile file. A missing file gives one default profile (nothing is written until the user
    saves); a broken one raises ProfileError naming the file, the line and what is wrong."""
    path = path or profiles_path()
    if not path.exists():
        profile = default_profile()
        return ProfileStore({profile.name: profile}, profile.name, path)
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        message = str(e)
        found = _LINE_IN_MESSAGE.search(message)
        line = int(found.group(1)) if found else None
        reason = _LINE_IN_MESSAGE.sub(lambda m: f"(column {m.group(2)})", message)
        raise ProfileError(f"invalid TOML: {reason}", path=path, line=line) from e
    tables = data.get("profiles", {})
    if not isinstance(tables, dict) or not tables:
        raise ProfileError(
            "no [profiles.<name>] table — add one or delete the file to start over", path=path, line=None
        )
    profiles: dict[str, Profile] = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ProfileError(
                f"profiles.{name} must be a table", path=path, line=_line_of(text, ("profiles",), name)
            )
        try:
            profiles[name] = profile_from_dict(name, table)
        except ProfileError as e:
            section, _, key = (e.field or "").rpartition(".")
            table_path = ("profiles", name, *(section.split(".") if section else ()))
            raise ProfileError(
                f"profile '{name}': {e}",
                field=e.field,
                path=path,
                line=_line_of(text, table_path, key or None),
            ) from e
    active = data.get("active", next(iter(profiles)))
    if active not in profiles:
        raise ProfileError(
            f"active = {active!r} but there is no [profiles.{active}] (have: {', '.join(profiles)})",
            path=path,
            line=_line_of(text, (), "active"),
        )
    return ProfileStore(profiles, active, path)


HEADER = """robotui robot profiles. `robotui` opens the active one; command-line flags override it for one run.
Edit here or with `e` on the home screen. Types and camera keys follow LeRobot's names."""


def save_profiles(store: ProfileStore) -> None:
    """Write the whole file atomically (temp file in the same folder, fsync, rename)."""
    if store.active not in store.profiles:
        raise ProfileError(f"active profile {store.active!r} is not in the store")
    data: dict[str, Any] = {
        "active": store.active,
        "profiles": {name: profile_to_dict(p) for name, p in store.profiles.items()},
    }
    text = dump_toml(data, HEADER)
    store.path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{store.path.name}.", suffix=".tmp", dir=store.path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, store.path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ------------------------------------------------------------------------------------------ overrides


def _parse_number_or_json(text: str, name: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ProfileError(f"{name}: {text!r} is neither a number nor JSON ({e.msg})", field=name) from e


def apply_overrides(profile: Profile, args: object) -> Profile:
    """Apply CLI flags (argparse attributes that are present and not None) on top of a profile.

    Recognised attributes: robot_type, robot_port, robot_id, teleop_type, teleop_port, teleop_id,
    teleop_fps, record_fps, max_relative_target (number or JSON per motor), cameras (JSON object),
    dataset_root. The file is never changed."""

    def get(name: str) -> Any:
        return getattr(args, name, None)

    robot = ArmConfig(
        get("robot_type") or profile.robot.type,
        profile.robot.port if get("robot_port") is None else get("robot_port"),
        get("robot_id") or profile.robot.id,
    )
    teleop = ArmConfig(
        get("teleop_type") or profile.teleop.type,
        profile.teleop.port if get("teleop_port") is None else get("teleop_port"),
        get("teleop_id") or profile.teleop.id,
    )
    changes: dict[str, Any] = {"robot": robot, "teleop": teleop}
    for name in ("teleop_fps", "record_fps"):
        if get(name) is not None:
            changes[name] = get(name)
    mrt = get("max_relative_target")
    if isinstance(mrt, str):
        mrt = _parse_number_or_json(mrt, "max_relative_target")
    if mrt is not None:
        changes["max_relative_target"] = _number_or_per_motor(mrt)
    cameras = get("cameras")
    if isinstance(cameras, str):
        cameras = _parse_number_or_json(cameras, "cameras")
    if cameras is not None:
        if not isinstance(cameras, dict):
            raise ProfileError("cameras must be a JSON object of name -> camera config", field="cameras")
        changes["cameras"] = cameras
    if get("dataset_root") is not None:
        changes["dataset_root"] = str(get("dataset_root")) or None
    try:
        return validate(replace(profile, **changes))
    except ProfileError as e:
        raise ProfileError(f"command-line override: {e}", field=e.field) from e


# ------------------------------------------------------------------------------------------ edit form


@dataclass(frozen=True)
class FormField:
    """One editable field of the profile form; `choices` turns it into a drop-down."""

    key: str
    label: str
    help: str = ""
    choices: tuple[str, ...] = ()


def form_fields() -> tuple[FormField, ...]:
    """The fields of the edit-profile form, in order."""
    return (
        FormField("name", "Profile name"),
        FormField("robot.type", "Robot type", choices=robot_types()),
        FormField("robot.port", "Robot port", "e.g. /dev/ttyACM0 — the Ports workflow finds it"),
        FormField("robot.id", "Robot id", "names the calibration file"),
        FormField("teleop.type", "Teleop type", choices=teleop_types()),
        FormField("teleop.port", "Teleop port"),
        FormField("teleop.id", "Teleop id"),
        FormField("teleop_fps", "Teleop fps"),
        FormField("record_fps", "Record fps"),
        FormField(
            "max_relative_target",
            "Max relative target",
            "degrees per tick; a number, JSON per motor, or empty",
        ),
        FormField("dataset_root", "Dataset root", "empty = LeRobot default ($HF_LEROBOT_HOME)"),
        FormField("cameras", "Cameras (JSON)", 'e.g. {"front": {"type": "opencv", "index_or_path": 0}}'),
        FormField("vqa_model", "Scene-question model", "folder or Hub id; empty = SmolVLM2-500M-Video-Instruct"),
    )


def profile_to_form(profile: Profile) -> dict[str, str]:
    mrt = profile.max_relative_target
    return {
        "name": profile.name,
        "robot.type": profile.robot.type,
        "robot.port": profile.robot.port,
        "robot.id": profile.robot.id,
        "teleop.type": profile.teleop.type,
        "teleop.port": profile.teleop.port,
        "teleop.id": profile.teleop.id,
        "teleop_fps": str(profile.teleop_fps),
        "record_fps": str(profile.record_fps),
        "max_relative_target": "" if mrt is None else json.dumps(mrt),
        "dataset_root": profile.dataset_root or "",
        "cameras": json.dumps(profile.cameras) if profile.cameras else "",
        "vqa_model": profile.vqa_model or "",
    }


def profile_from_form(base: Profile, values: Mapping[str, str]) -> Profile:
    """The edited profile, validated; a bad field raises ProfileError whose `.field` is the form key."""

    def integer(key: str) -> int:
        text = values[key].strip()
        try:
            return int(text)
        except ValueError:
            raise ProfileError(f"{key} must be a whole number, got {text!r}", field=key) from None

    mrt_text = values["max_relative_target"].strip()
    cameras_text = values["cameras"].strip()
    cameras = _parse_number_or_json(cameras_text, "cameras") if cameras_text else {}
    if not isinstance(cameras, dict):
        raise ProfileError("cameras must be a JSON object of name -> camera config", field="cameras")
    profile = replace(
        base,
        name=values["name"].strip(),
        robot=ArmConfig(values["robot.type"], values["robot.port"].strip(), values["robot.id"].strip()),
        teleop=ArmConfig(values["teleop.type"], values["teleop.port"].strip(), values["teleop.id"].strip()),
        teleop_fps=integer("teleop_fps"),
        record_fps=integer("record_fps"),
        max_relative_target=_number_or_per_motor(_parse_number_or_json(mrt_text, "max_relative_target"))
        if mrt_text
        else None,
        dataset_root=values["dataset_root"].strip() or None,
        cameras=cameras,
        vqa_model=values.get("vqa_model", "").strip() or None,
    )
    return validate(profile)
