"""Every camera's latest frame for a question: the model must see all views at one moment."""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np

from drivers.cameras.base import Camera, CameraError, StaleFrameError


def latest_frames(
    cameras: Mapping[str, Camera], *, max_age_s: float = 1.0, timeout_s: float = 5.0
) -> dict[str, np.ndarray]:
    """Camera name -> its newest HxWx3 RGB frame, no older than `max_age_s`; waits up to `timeout_s` for
    cameras that have not delivered one yet (just connected). Raises CameraError naming the silent camera."""
    deadline = time.monotonic() + timeout_s
    frames: dict[str, np.ndarray] = {}
    while True:
        for name, cam in cameras.items():
            if name in frames:
                continue
            try:
                frames[name] = cam.read_latest(max_age_ms=max_age_s * 1000)
            except StaleFrameError as e:
                if time.monotonic() >= deadline:
                    raise CameraError(f"camera '{name}' gave no frame to ask about within {timeout_s:g} s: {e}") from e
        if len(frames) == len(cameras):
            return {name: frames[name] for name in cameras}
        time.sleep(0.02)
