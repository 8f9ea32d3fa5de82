"""The MuJoCo world on its own: resets, servos, torque-off compliance, grasp contact and success."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivers.sim.scene import CUBE_HALF, HOME_POSE, JOINT_NAMES, JOINTS, SPAWN_X, SPAWN_Y, ZONE_CENTER
from drivers.sim.world import SimWorld

LIFT = JOINT_NAMES.index("shoulder_lift")


@pytest.fixture(scope="module")
def world() -> SimWorld:
    return SimWorld(0)


def test_scene_has_lerobot_joints_actuators_and_cameras(world: SimWorld) -> None:
    m = world.model
    assert m.nu == 6
    assert [m.actuator(i).name for i in range(m.nu)] == list(JOINT_NAMES)
    assert {m.camera(i).name for i in range(m.ncam)} == {"front", "wrist"}
    for j in JOINTS:
        lo, hi = m.joint(j.name).range
        assert (lo, hi) == pytest.approx((j.lower, j.upper))
    assert math.degrees(JOINTS[4].upper) >= 160 and math.degrees(JOINTS[5].upper) >= 90


def test_reset_is_seeded_and_spawns_the_cube_on_the_table(world: SimWorld) -> None:
    poses = []
    for seed in (3, 3, 4):
        world.reset(seed)
        pos, yaw = world.cube_pose()
        poses.append((*pos, yaw))
        assert SPAWN_X[0] <= pos[0] <= SPAWN_X[1] and SPAWN_Y[0] <= pos[1] <= SPAWN_Y[1]
        assert world.joint_positions() == pytest.approx(HOME_POSE)
    assert poses[0] == pytest.approx(poses[1]) and poses[0] != pytest.approx(poses[2])
    world.step(300)
    assert world.cube_pose()[0][2] == pytest.approx(CUBE_HALF, abs=1e-3)  # settles, does not sink or jump


def test_position_servos_track_their_targets(world: SimWorld) -> None:
    world.reset(0)
    target = np.array(HOME_POSE)
    target[0] += 0.5
    target[2] += 0.3
    world.set_targets(target)
    world.step(900)  # 1.5 s
    assert world.joint_positions() == pytest.approx(target, abs=math.radians(1.0))


def test_torque_off_leaves_a_joint_to_gravity(world: SimWorld) -> None:
    world.reset(0)
    pose = np.array(HOME_POSE)
    pose[LIFT] = math.radians(40)  # leaning forward: gravity pulls it further down
    world.set_joint_positions(pose)
    world.set_targets(pose)
    world.step(300)
    held = world.joint_positions()[LIFT]
    assert held == pytest.approx(pose[LIFT], abs=math.radians(2))
    off = np.ones(6, dtype=bool)
    off[LIFT] = False
    world.set_torque(off)
    world.step(300)
    assert world.joint_positions()[LIFT] > held + math.radians(5)
    world.set_torque(np.ones(6, dtype=bool))


def test_success_needs_the_cube_in_the_zone_on_the_table_and_released(world: SimWorld) -> None:
    world.reset(0)
    assert not world.is_success()  # spawned outside the zone
    world.place_cube(ZONE_CENTER[0], ZONE_CENTER[1], 0.3)
    world.step(60)
    assert world.cube_in_zone() and not world.gripper_touches_cube()
    assert world.is_success()
    # The same cube lifted above the zone is not placed.
    q = world.model.joint("cube").qposadr[0]
    world.data.qpos[q + 2] = 0.08
    world.set_joint_positions(world.joint_positions())
    assert not world.cube_in_zone() and not world.is_success()


def test_snapshot_is_a_copy_published_by_step(world: SimWorld) -> None:
    world.reset(0)
    qpos, t0 = world.snapshot()
    qpos[:] = 0.0  # a reader scribbling on its copy must not touch the world
    assert world.snapshot()[0][world.qadr] == pytest.approx(HOME_POSE)
    world.step(5)
    assert world.snapshot()[1] > t0
