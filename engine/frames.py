"""Camera frames for a control loop that records: one image per camera per tick, never waiting on a camera.

The loop and the cameras run on independent clocks, so a tick may find no new frame (it reuses the previous
one: *stale*) or several (the older ones are never recorded: *dropped*). Both are counted for the operator. A
camera silent for longer than the timeout raises, so a dataset never fills with a frozen picture.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from drivers.cameras.base import Camera, StaleFrameError


@dataclass
class _Track:
    last_index: int = -1
    last_image: np.ndarray | None = None


class FrameGrabber:
    """Takes the newest frame of each camera on every call to `grab()`; keeps the stale/dropped counts."""

    def __init__(self, cameras: Mapping[str, Camera], stale_timeout_s: float = 2.0) -> None:
        self.cameras = dict(cameras)
        self.stale_timeout_s = stale_timeout_s
        self.stale = 0  # ticks that found no new frame and reused the previous one
        self.dropped = 0  # frames produced but never taken (the loop was slower than the camera)
        self._tracks = {name: _Track() for name in self.cameras}

    def grab(self) -> dict[str, np.ndarray]:
        """Camera name -> HWC uint8 image for this tick."""
        return {name: self._image(name, cam) for name, cam in self.cameras.items()}

    def _image(self, name: str, cam: Camera) -> np.ndarray:
        track = self._tracks[name]
        frame = cam.latest()
        if frame is not None and frame.index != track.last_index:
            if track.last_index >= 0 and frame.index > track.last_index + 1:
                self.dropped += frame.index - track.last_index - 1
            track.last_index = frame.index
            track.last_image = frame.image
            return frame.image
        if frame is None or track.last_image is None:
            cam.read_latest(max_age_ms=self.stale_timeout_s * 1000)  # raises with the camera's reason
            raise StaleFrameError(f"camera '{name}' has not delivered a frame yet")
        if (time.perf_counter() - frame.timestamp) > self.stale_timeout_s:
            raise StaleFrameError(
                f"camera '{name}' stopped delivering frames ({self.stale_timeout_s:g} s without one): "
                "check its cable; the episode in progress was not saved"
            )
        self.stale += 1
        return track.last_image
