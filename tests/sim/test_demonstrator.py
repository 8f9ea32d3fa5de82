"""The scripted demonstrator: IK, smooth trajectories, and pick-and-place success on seeded episodes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from drivers.sim.demonstrator import GRIP_CLOSED, Demonstrator, IKError, min_jerk, run_episode
from drivers.sim.scene import HOME_POSE, JOINT_NAMES
from drivers.sim.world import SimWorld

GRIP = JOINT_NAMES.index("gripper")


@pytest.fixture(scope="module")
def world() -> SimWorld:
    return SimWorld(0)


def test_min_jerk_profile() -> None:
    assert min_jerk(0.0) == 0.0 and min_jerk(1.0) == 1.0 and min_jerk(0.5) == pytest.approx(0.5)
    assert min_jerk(-1.0) == 0.0 and min_jerk(2.0) == 1.0


def test_ik_reaches_a_top_down_grasp(world: SimWorld) -> None:
    demo = Demonstrator(world)
    target = np.array([0.2, -0.05, 0.03])
    q = demo.solve(target, demo.jaw_yaw_for(0.4, target), np.array(HOME_POSE))
    world.set_joint_positions(q)
    assert world.grasp_point() == pytest.approx(target, abs=2e-3)
    fingers = world.data.site_xmat[world.model.site("grasp").id].reshape(3, 3)[:, 0]
    assert fingers == pytest.approx([0.0, 0.0, -1.0], abs=0.06)
    with pytest.raises(IKError):
        demo.solve(np.array([0.6, 0.0, 0.03]), 0.0, np.array(HOME_POSE))


def test_jaws_are_squared_to_the_cube_with_least_roll() -> None:
    pos = np.array([0.2, 0.0])
    natural = math.pi / 2
    for cube_yaw in (0.0, 0.3, -0.6, math.pi / 2 + 0.2):
        yaw = Demonstrator.jaw_yaw_for(cube_yaw, pos)
        assert abs(yaw - natural) <= math.pi / 4 + 1e-9
        assert math.sin(2 * (yaw - cube_yaw)) == pytest.approx(0.0, abs=1e-9)  # a multiple of 90°


def test_trajectory_is_smooth_and_ordered(world: SimWorld) -> None:
    world.reset(1)
    traj = Demonstrator(world).plan_for(world)
    times = np.arange(0.0, traj.duration, 1 / 150)
    q = np.array([traj(t) for t in times])
    assert q[0] == pytest.approx(world.joint_positions())
    assert np.max(np.abs(np.diff(q, axis=0))) < math.radians(3)  # no jumps at 150 Hz
    labels = [traj.label_at(t) for t in times]
    order = list(dict.fromkeys(labels))
    assert order == ["approach", "descend", "grasp", "lift", "carry", "lower", "release", "retreat", "home"]
    closed = [q[i, GRIP] for i, lab in enumerate(labels) if lab == "carry"]
    assert max(closed) == pytest.approx(GRIP_CLOSED)


def test_demonstrator_succeeds_on_seeded_episodes(world: SimWorld) -> None:
    demo = Demonstrator(world)
    results = [run_episode(world, demo, seed=seed) for seed in range(20)]
    assert sum(results) >= 16, f"{sum(results)}/20 successful: {results}"


def test_without_closing_the_gripper_nothing_is_carried(world: SimWorld) -> None:
    """Control for the success test: the cube really travels in the hand, it is not pushed or dragged."""
    world.reset(2)
    demo = Demonstrator(world)
    traj = demo.plan_for(world)
    start, _ = world.cube_pose()
    t, dt, top = 0.0, 4 * world.model.opt.timestep, 0.0
    while t < traj.duration + 0.5:
        q = traj(t)
        q[GRIP] = math.radians(45)
        world.set_targets(q)
        world.step(4)
        t += dt
        top = max(top, world.cube_pose()[0][2])
    assert top < 0.02
    assert not world.is_success()
    assert world.cube_pose()[0][:2] == pytest.approx(start[:2], abs=0.03)
