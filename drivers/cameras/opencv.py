"""USB cameras through OpenCV, with LeRobot's OpenCVCamera behaviour (mode checks, RGB, rotation) and discovery.

A camera that silently ignores the asked size/fps records a dataset that does not match its features, so the
asked mode is read back after `set` and a mismatch is an error naming both modes.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from drivers.cameras.base import Camera, CameraError, StaleFrameError
from drivers.cameras.rotation import normalize_rotation, rotate, rotated_size
from drivers.cameras.video_file import FramePacer

log = logging.getLogger(__name__)

VIDEO_DEV_DIR = Path(
    "/dev"
)  # where Linux puts videoN nodes; a module constant so tests can point it elsewhere
MAX_OPENCV_INDEX = 16  # indices probed where there is no /dev to list (macOS, Windows)


def decode_fourcc(value: float) -> str:
    """CAP_PROP_FOURCC packs four chars little-endian into a double; '' when the backend does not say."""
    code = int(value)
    if code <= 0:
        return ""
    text = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4)).rstrip("\x00")
    return text if text.isprintable() else ""


@dataclass(frozen=True)
class CameraMode:
    width: int
    height: int
    fps: float
    fourcc: str = ""

    def __str__(self) -> str:
        fps = f"{self.fps:g} fps" if self.fps > 0 else "? fps"
        return f"{self.width}x{self.height} @ {fps}" + (f" {self.fourcc}" if self.fourcc else "")


@dataclass(frozen=True)
class CameraInfo:
    """One camera `find_cameras` could open, with the mode it starts in."""

    name: str
    id: int | str
    backend: str
    mode: CameraMode
    type: str = "OpenCV"

    def as_dict(self) -> dict[str, object]:
        """LeRobot's find-cameras shape, so scripts written for it can read ours."""
        return {
            "name": self.name,
            "type": self.type,
            "id": self.id,
            "backend_api": self.backend,
            "default_stream_profile": {
                "format": self.mode.fourcc,
                "fourcc": self.mode.fourcc,
                "width": self.mode.width,
                "height": self.mode.height,
                "fps": self.mode.fps,
            },
        }


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """OpenCV prints a V4L2/FFmpeg warning for every index it cannot open; probing should not spam the terminal."""
    logging_api = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging_api is None:
        yield
        return
    before = logging_api.getLogLevel()
    logging_api.setLogLevel(logging_api.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        logging_api.setLogLevel(before)


def _read_mode(cap: cv2.VideoCapture) -> CameraMode:
    return CameraMode(
        width=round(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=round(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        fps=float(cap.get(cv2.CAP_PROP_FPS)),
        fourcc=decode_fourcc(cap.get(cv2.CAP_PROP_FOURCC)),
    )


def _natural_key(path: Path) -> tuple[str, int]:
    match = re.search(r"(\d+)$", path.name)
    return (path.name[: match.start()] if match else path.name, int(match.group(1)) if match else -1)


def default_targets(dev_dir: Path | None = None, max_index: int = MAX_OPENCV_INDEX) -> list[int | str]:
    """/dev/videoN paths on Linux (video2 before video10), plain indices elsewhere."""
    if sys.platform.startswith("linux"):
        root = VIDEO_DEV_DIR if dev_dir is None else dev_dir
        return [str(p) for p in sorted(root.glob("video*"), key=_natural_key)]
    return list(range(max_index))


def probe_camera(target: int | str, backend: int = cv2.CAP_ANY) -> CameraInfo | None:
    """Open `target` once and report its default mode; None if OpenCV cannot open it."""
    with _quiet_opencv():
        cap = cv2.VideoCapture(target, backend)
    try:
        if not cap.isOpened():
            return None
        return CameraInfo(
            name=f"OpenCV Camera @ {target}", id=target, backend=cap.getBackendName(), mode=_read_mode(cap)
        )
    finally:
        cap.release()


def find_cameras(
    targets: Iterable[int | str] | None = None, dev_dir: Path | None = None, max_index: int = MAX_OPENCV_INDEX
) -> list[CameraInfo]:
    """Every camera OpenCV can open, in device order. Metadata-only /dev/video nodes do not open and are skipped."""
    cv2.setNumThreads(1)
    found = []
    for target in default_targets(dev_dir, max_index) if targets is None else targets:
        info = probe_camera(target)
        if info is not None:
            found.append(info)
    return found


class OpenCVCamera(Camera):
    """A V4L2/AVFoundation/DirectShow camera, or a video file path standing in for one (paced at its fps).

    width/height/fps are the capture mode (None = the device's default); `self.width/height` are the delivered
    frame size, which quarter-turn rotations swap.
    """

    def __init__(
        self,
        name: str,
        index_or_path: int | str | Path,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        fourcc: str | None = None,
        rotation: int = 0,
        warmup_s: float = 1.0,
        backend: int = cv2.CAP_ANY,
    ) -> None:
        rotation = normalize_rotation(rotation)
        if fourcc is not None and len(fourcc) != 4:
            raise ValueError(f"camera '{name}': fourcc must be 4 characters like 'MJPG', got {fourcc!r}")
        out_w, out_h = rotated_size(width or 0, height or 0, rotation)
        super().__init__(name, out_w, out_h, fps or 0.0)
        self.index_or_path: int | str = (
            str(index_or_path) if isinstance(index_or_path, Path) else index_or_path
        )
        self.capture_width = width
        self.capture_height = height
        self.capture_fps = fps
        self.fourcc = fourcc
        self.rotation = rotation
        self.warmup_s = warmup_s
        self.backend = backend
        self.mode: CameraMode | None = None  # what the device actually runs at, known after connect
        self._cap: cv2.VideoCapture | None = None
        self._pacer: FramePacer | None = None

    def __repr__(self) -> str:
        return f"OpenCVCamera({self.name!r}, {self.index_or_path!r})"

    @property
    def _is_file(self) -> bool:
        return isinstance(self.index_or_path, str) and Path(self.index_or_path).is_file()

    # --- lifecycle
    def connect(self) -> None:
        """Open, start the reader and let auto-exposure settle for `warmup_s`; fail if no frame ever arrives."""
        if self.is_connected:
            return
        super().connect()
        try:
            if self.warmup_s > 0:
                time.sleep(self.warmup_s)
            if self.latest() is None:
                try:
                    self.async_read(timeout_ms=2000.0)
                except StaleFrameError as e:
                    raise CameraError(f"camera '{self.name}' opened but delivered no frame: {e}") from e
        except BaseException:
            self.disconnect()
            raise

    def _open(self) -> None:
        self._close()  # a reader that died leaves its capture open; reconnecting must not leak it
        cv2.setNumThreads(1)
        with _quiet_opencv():
            cap = cv2.VideoCapture(self.index_or_path, self.backend)
        if not cap.isOpened():
            cap.release()
            raise CameraError(
                f"camera '{self.name}': cannot open {self.index_or_path!r}. Check that it is plugged in, that no "
                "other program uses it and that you may read it (Linux: the 'video' group); "
                "`robotui find-cameras` lists the cameras that open"
            )
        try:
            self._apply_mode(cap)
        except BaseException:
            cap.release()
            raise
        self._cap = cap
        self._pacer = FramePacer(self.fps) if self._is_file else None

    def _apply_mode(self, cap: cv2.VideoCapture) -> None:
        if self.fourcc:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*self.fourcc))
        if self.capture_width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.capture_width)
        if self.capture_height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.capture_height)
        if self.capture_fps:
            cap.set(cv2.CAP_PROP_FPS, self.capture_fps)
        actual = _read_mode(cap)
        wrong = []
        if self.fourcc and actual.fourcc.upper() != self.fourcc.upper():
            wrong.append("format")
        if self.capture_width and actual.width != self.capture_width:
            wrong.append("width")
        if self.capture_height and actual.height != self.capture_height:
            wrong.append("height")
        # fps 0 means the backend cannot tell; the measured rate in `stats.fps` is the truth then
        if (
            self.capture_fps
            and actual.fps > 0
            and not math.isclose(actual.fps, self.capture_fps, rel_tol=0.01)
        ):
            wrong.append("fps")
        if wrong:
            asked = CameraMode(
                self.capture_width or actual.width,
                self.capture_height or actual.height,
                self.capture_fps or actual.fps,
                self.fourcc or actual.fourcc,
            )
            raise CameraError(
                f"camera '{self.name}' ({self.index_or_path}) does not run at the asked mode ({', '.join(wrong)}): "
                f"asked {asked}, got {actual}. Use a mode the camera supports (`robotui find-cameras` shows its "
                "default; on Linux `v4l2-ctl --list-formats-ext` lists them all)"
            )
        if self.capture_fps and actual.fps <= 0:
            log.warning(
                "camera '%s' cannot report its fps; trusting the asked %g", self.name, self.capture_fps
            )
        self.mode = actual
        self.capture_width = actual.width
        self.capture_height = actual.height
        self.width, self.height = rotated_size(actual.width, actual.height, self.rotation)
        self.fps = float(self.capture_fps or actual.fps)

    def _grab(self) -> np.ndarray | None:
        cap = self._cap
        if cap is None:
            return None
        if self._pacer is not None:
            self._pacer.wait(self._stop)
        ok, bgr = cap.read()
        if not ok or bgr is None:
            # a file at its end never recovers: stop pacing so the reader gives up promptly
            self._pacer = None
            return None
        h, w = bgr.shape[:2]
        if (w, h) != (self.capture_width, self.capture_height):
            raise CameraError(
                f"camera '{self.name}' delivered {w}x{h} frames, configured {self.capture_width}x{self.capture_height}"
            )
        return rotate(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self.rotation)

    def _close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
