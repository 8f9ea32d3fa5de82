"""SimCamera: MuJoCo frames on the camera's own thread, behind the common Camera interface."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest

from drivers.cameras.base import CameraError
from drivers.sim.camera import SimCamera
from drivers.sim.scene import HOME_POSE
from drivers.sim.world import SimWorld

W, H = 160, 120


@pytest.fixture
def world() -> SimWorld:
    return SimWorld(0)


@pytest.fixture
def cameras(world: SimWorld) -> Iterator[dict[str, SimCamera]]:
    cams = {name: SimCamera(world, name, W, H, fps=30) for name in ("front", "wrist")}
    for cam in cams.values():
        cam.connect()
    yield cams
    for cam in cams.values():
        cam.disconnect()


def fresh(cam: SimCamera) -> np.ndarray:
    """A frame rendered entirely after this call started (the one in flight may predate a state change)."""
    cam.async_read(timeout_ms=5000)
    return cam.async_read(timeout_ms=5000)


def test_both_cameras_deliver_distinct_non_constant_frames(cameras: dict[str, SimCamera]) -> None:
    front, wrist = fresh(cameras["front"]), fresh(cameras["wrist"])
    for img in (front, wrist):
        assert img.shape == (H, W, 3) and img.dtype == np.uint8
        assert img.std() > 10  # a scene, not a blank buffer
    assert np.abs(front.astype(int) - wrist.astype(int)).mean() > 10
    assert cameras["front"].read_latest(max_age_ms=5000).shape == (H, W, 3)
    assert cameras["front"].stats.frames >= 2 and cameras["front"].stats.errors == 0


def test_frames_follow_the_arm(world: SimWorld, cameras: dict[str, SimCamera]) -> None:
    before = {n: fresh(c).astype(int) for n, c in cameras.items()}
    pose = np.array(HOME_POSE)
    pose[0] += math.radians(50)  # pan: the arm swings in the front view and the wrist view sweeps the table
    world.set_joint_positions(pose)
    after = {n: fresh(c).astype(int) for n, c in cameras.items()}
    for name in cameras:
        assert np.abs(after[name] - before[name]).mean() > 3, name
    world.set_joint_positions(HOME_POSE)
    again = fresh(cameras["front"]).astype(int)
    assert np.abs(again - before["front"]).mean() < 0.5  # same state, same picture


def test_camera_can_reconnect_with_a_new_gl_context(world: SimWorld) -> None:
    cam = SimCamera(world, "front", W, H, fps=60)
    for _ in range(2):
        cam.connect()
        assert fresh(cam).shape == (H, W, 3)
        cam.disconnect()
        assert not cam.is_connected


def test_bad_camera_settings_are_refused(world: SimWorld) -> None:
    with pytest.raises(CameraError, match="does not exist"):
        SimCamera(world, "top").connect()
    with pytest.raises(CameraError, match="offscreen buffer"):
        SimCamera(world, "front", 4096, 3072).connect()
