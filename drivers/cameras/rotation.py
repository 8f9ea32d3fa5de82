"""Frame rotation shared by every camera source, with LeRobot's convention (90 = clockwise, -90 = counter-clockwise).

Mounts put cameras sideways; rotating in the reader thread means datasets and previews see the upright image.
"""

from __future__ import annotations

import numpy as np

ROTATIONS = (0, 90, 180, -90)


def normalize_rotation(rotation: int) -> int:
    """Accept 0/90/180/-90 (and 270 as an alias of -90); anything else is a config mistake worth stopping on."""
    if isinstance(rotation, bool) or not isinstance(rotation, int):
        raise ValueError(f"rotation must be one of {ROTATIONS}, got {rotation!r}")
    if rotation == 270:
        return -90
    if rotation not in ROTATIONS:
        raise ValueError(f"rotation must be one of {ROTATIONS}, got {rotation}")
    return rotation


def rotate(image: np.ndarray, rotation: int) -> np.ndarray:
    """Rotate an HxWxC image; the result is C-contiguous so encoders and previews can take it as is."""
    if rotation == 0:
        return image
    if rotation == 90:
        return np.ascontiguousarray(np.rot90(image, k=-1))
    if rotation == 180:
        return np.ascontiguousarray(image[::-1, ::-1])
    if rotation == -90:
        return np.ascontiguousarray(np.rot90(image, k=1))
    raise ValueError(f"rotation must be one of {ROTATIONS}, got {rotation}")


def rotated_size(width: int, height: int, rotation: int) -> tuple[int, int]:
    """The (width, height) a frame has after `rotate`: quarter turns swap the two."""
    return (height, width) if rotation in (90, -90) else (width, height)
