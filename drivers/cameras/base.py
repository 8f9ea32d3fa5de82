"""The camera interface: one reader thread per camera keeps the newest frame, so the control loop never waits.

Every source (OpenCV device, video file, MuJoCo render) implements `_open`, `_grab` and `_close`; this base
class owns the thread, the newest-frame slot, fps measurement and stale-frame accounting.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np


class CameraError(RuntimeError):
    """The camera cannot be opened or cannot deliver the asked mode; the message says what to change."""


class StaleFrameError(CameraError):
    """No frame newer than the allowed age: the camera stalled or was unplugged."""


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # HxWx3 uint8 RGB
    timestamp: float  # time.perf_counter() when it was captured
    index: int  # 0, 1, 2... per camera since connect


@dataclass
class CameraStats:
    frames: int = 0
    errors: int = 0
    stale_reads: int = 0  # read_latest() calls that found no fresh frame
    fps: float = 0.0  # measured over the last second of captures
    _times: deque[float] = field(default_factory=lambda: deque(maxlen=64), repr=False)


class Camera:
    """Base class. Subclasses set width/height/fps in __init__ and implement _open/_grab/_close."""

    max_consecutive_errors = 10

    def __init__(self, name: str, width: int, height: int, fps: float) -> None:
        self.name = name
        self.width = width
        self.height = height
        self.fps = fps
        self.stats = CameraStats()
        self._latest: Frame | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # --- subclass hooks
    def _open(self) -> None:
        """Open the device; raise CameraError with an actionable message if it cannot deliver the mode."""
        raise NotImplementedError

    def _grab(self) -> np.ndarray | None:
        """Block until the next frame (HxWx3 uint8 RGB); None counts as a read error."""
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    # --- lifecycle
    @property
    def is_connected(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def connect(self) -> None:
        if self.is_connected:
            return
        self._stop.clear()
        self._error = None
        self._latest = None  # indices restart at 0: an old frame would make async_read wait for a stale index
        self._open()
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.name}", daemon=True)
        self._thread.start()

    def disconnect(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        self._close()

    def __enter__(self) -> Camera:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    def _run(self) -> None:
        consecutive = 0
        index = 0
        while not self._stop.is_set():
            try:
                image = self._grab()
            except Exception as e:  # a source that raises is treated like a failed read
                image = None
                self._error = e
            if image is None:
                consecutive += 1
                self.stats.errors += 1
                if consecutive > self.max_consecutive_errors:
                    if self._error is None:
                        self._error = CameraError(
                            f"camera '{self.name}' stopped delivering frames ({consecutive} failed reads): "
                            "check the cable, or whether another program opened it"
                        )
                    with self._cond:
                        self._cond.notify_all()
                    return
                time.sleep(0.005)
                continue
            consecutive = 0
            self._error = None  # a glitch that recovered must not be reported as the cause of a later failure
            now = time.perf_counter()
            frame = Frame(image=image, timestamp=now, index=index)
            index += 1
            st = self.stats
            st.frames += 1
            st._times.append(now)
            if len(st._times) >= 2:
                span = st._times[-1] - st._times[0]
                st.fps = (len(st._times) - 1) / span if span > 0 else 0.0
            with self._cond:
                self._latest = frame
                self._cond.notify_all()

    # --- reading
    def latest(self) -> Frame | None:
        """The newest frame or None, never blocking."""
        return self._latest

    def read_latest(self, max_age_ms: float = 500.0) -> np.ndarray:
        """The newest image; raises StaleFrameError if it is older than `max_age_ms` (or the reader died)."""
        frame = self._latest
        if self._error is not None and not self.is_connected:
            raise StaleFrameError(str(self._error)) from self._error
        if frame is None or (time.perf_counter() - frame.timestamp) * 1000.0 > max_age_ms:
            self.stats.stale_reads += 1
            age = "no frame yet" if frame is None else f"newest is {(time.perf_counter() - frame.timestamp) * 1000:.0f} ms old"
            raise StaleFrameError(f"camera '{self.name}': {age} (allowed {max_age_ms:.0f} ms)")
        return frame.image

    def async_read(self, timeout_ms: float = 1000.0) -> np.ndarray:
        """Wait for a frame newer than the current one."""
        with self._cond:
            before = self._latest.index if self._latest else -1
            ok = self._cond.wait_for(
                lambda: (self._latest is not None and self._latest.index > before) or not self.is_connected,
                timeout=timeout_ms / 1000.0,
            )
            if not ok or self._latest is None or self._latest.index <= before:
                if self._error is not None:
                    raise StaleFrameError(str(self._error)) from self._error
                raise StaleFrameError(f"camera '{self.name}': no new frame within {timeout_ms:.0f} ms")
            return self._latest.image
