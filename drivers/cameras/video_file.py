"""A camera that plays a video file through PyAV at the file's frame rate: the hardware-free source for tests
and demos, behaving like a device (frames arrive over time, not all at once).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import av
import numpy as np

from drivers.cameras.base import Camera, CameraError
from drivers.cameras.rotation import normalize_rotation, rotate, rotated_size


class FramePacer:
    """Waits for absolute deadlines one period apart, so a file source does not drift or burst.

    When the reader falls more than a period behind it resynchronises instead of catching up in a burst.
    """

    def __init__(self, fps: float) -> None:
        self.period = 1.0 / fps if fps > 0 else 0.0
        self._next: float | None = None

    def wait(self, stop: threading.Event) -> None:
        """Sleep until the next deadline, returning early if `stop` is set."""
        if self.period <= 0:
            return
        now = time.perf_counter()
        if self._next is None:
            self._next = now
        delay = self._next - now
        if delay > 0:
            stop.wait(delay)
        self._next = max(self._next + self.period, time.perf_counter() - self.period)


class VideoFileCamera(Camera):
    """Decodes `path` in the reader thread. fps=None plays at the file's rate; width/height resize (giving only one
    keeps the aspect ratio); loop=False ends the stream like an unplugged camera (reads then raise StaleFrameError).
    """

    def __init__(
        self,
        name: str,
        path: str | Path,
        fps: float | None = None,
        loop: bool = True,
        width: int | None = None,
        height: int | None = None,
        rotation: int = 0,
    ) -> None:
        self.rotation = normalize_rotation(rotation)
        out_w, out_h = rotated_size(width or 0, height or 0, self.rotation)
        super().__init__(name, out_w, out_h, fps or 0.0)
        self.path = Path(path)
        self.loop = loop
        self._asked_fps = fps
        self._asked_size = (width, height)
        self._size: tuple[int, int] = (0, 0)  # decoded (pre-rotation) size, known after open
        self._container: av.container.InputContainer | None = None
        self._frames: object = None  # the decode iterator
        self._pacer = FramePacer(0.0)
        self._ended = False

    def __repr__(self) -> str:
        return f"VideoFileCamera({self.name!r}, {str(self.path)!r})"

    def _open_container(self) -> None:
        try:
            container = av.open(str(self.path))
        except (OSError, av.FFmpegError) as e:
            raise CameraError(f"camera '{self.name}': cannot open video file {self.path}: {e}") from e
        if not container.streams.video:
            container.close()
            raise CameraError(f"camera '{self.name}': {self.path} has no video stream")
        self._container = container
        self._frames = container.decode(container.streams.video[0])

    def _open(self) -> None:
        self._close()  # a reader that died leaves its container open; reconnecting must not leak it
        self._open_container()
        assert self._container is not None
        stream = self._container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(self._asked_fps or (rate or 0))
        if fps <= 0:
            self._close()
            raise CameraError(f"camera '{self.name}': {self.path} does not say its frame rate; pass fps=")
        src_w, src_h = stream.codec_context.width, stream.codec_context.height
        want_w, want_h = self._asked_size
        if want_w and not want_h:
            want_h = max(2, round(want_w * src_h / src_w / 2) * 2)
        elif want_h and not want_w:
            want_w = max(2, round(want_h * src_w / src_h / 2) * 2)
        self._size = (want_w or src_w, want_h or src_h)
        self.width, self.height = rotated_size(*self._size, self.rotation)
        self.fps = fps
        self._pacer = FramePacer(fps)
        self._ended = False

    def _next_frame(self) -> av.VideoFrame | None:
        return next(self._frames, None)  # type: ignore[call-overload]

    def _grab(self) -> np.ndarray | None:
        if self._container is None:
            return None
        if self._ended:  # fail fast so the reader dies promptly, like a camera that was unplugged
            raise CameraError(f"camera '{self.name}': video file {self.path} ended (loop is off)")
        self._pacer.wait(self._stop)
        frame = self._next_frame()
        if frame is None:
            if not self.loop:
                self._ended = True
                raise CameraError(f"camera '{self.name}': video file {self.path} ended (loop is off)")
            # Reopening is simpler and more reliable across containers than seeking a flushed decoder.
            self._container.close()
            self._open_container()
            frame = self._next_frame()
            if frame is None:
                raise CameraError(f"camera '{self.name}': {self.path} has no decodable frames")
        width, height = self._size
        if (frame.width, frame.height) == (width, height):
            image = frame.to_ndarray(format="rgb24")
        else:
            image = frame.to_ndarray(format="rgb24", width=width, height=height)
        return rotate(image, self.rotation)

    def _close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
            self._frames = None
