"""The virtual hand: what stands in for a person moving the limp virtual arms during calibration."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from drivers.sim.scene import JOINT_NAMES, JOINTS
from drivers.sim.virtual_robot import ArmRole, VirtualSO101, middle_pose, sweep_pose, sweep_waypoints
from drivers.sim.world import SimWorld
from tests.sim.conftest import wait_until

LIFT = JOINT_NAMES.index("shoulder_lift")


@pytest.fixture
def fresh(port_dir: Path) -> Iterator[VirtualSO101]:
    """Factory-fresh virtual arms: torque off, nothing calibrated, as before a first calibration."""
    sim = VirtualSO101(seed=0, port_dir=port_dir, calibrated=False)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()
        assert wait_until(lambda: not any(t.name == "sim-hand" for t in threading.enumerate()), timeout=2.0)


def shaft_angles(sim: VirtualSO101, role: ArmRole) -> np.ndarray:
    """Joint angles as the emulated encoders see them (what the driver reads), not the world's own state."""
    bus = sim.bus(role)
    with bus.lock:
        physical = [bus.servo(j.motor_id).actual for j in JOINTS]
    return sim.ticks(role).angles(physical)


def test_sweep_path_keeps_the_gripper_off_the_table_and_the_cube() -> None:
    world = SimWorld(0)
    table, cube = world.model.geom("table").id, world.model.geom("cube").id
    waypoints = sweep_waypoints()
    for u in np.linspace(0.0, 1.0, 301):
        world.set_joint_positions(sweep_pose(waypoints, u))
        touching = [
            set(c.geom) for c in world.data.contact[: world.data.ncon] if {table, cube} & set(c.geom)
        ]
        assert all(pair == {table, cube} for pair in touching), f"arm touches the table or cube at u={u:.3f}"
        assert world.grasp_point()[2] > 0.03


def test_sweep_path_reaches_most_of_every_range_and_ends_in_the_middle() -> None:
    waypoints = sweep_waypoints(0.8)
    path = np.array([sweep_pose(waypoints, u) for u in np.linspace(0.0, 1.0, 201)])
    for i, spec in enumerate(JOINTS):
        half = (spec.upper - spec.lower) / 2
        assert path[:, i].min() == pytest.approx(spec.mid - 0.8 * half), spec.name
        assert path[:, i].max() == pytest.approx(spec.mid + 0.8 * half), spec.name
    np.testing.assert_allclose(path[0], middle_pose())
    np.testing.assert_allclose(path[-1], middle_pose())
    with pytest.raises(ValueError, match="fraction"):
        sweep_waypoints(1.5)
    with pytest.raises(ValueError, match="dwell"):
        sweep_pose(waypoints, 0.5, dwell=1.0)


def kick_lift(sim: VirtualSO101, speed: float = 4.0) -> None:
    """Knock the shoulder: give the joint a sudden velocity in the physics."""

    def kick(world: SimWorld) -> None:
        world.data.qvel[world.dadr[LIFT]] = speed

    sim.runner.call(kick)


def lift_deg(sim: VirtualSO101) -> float:
    return math.degrees(shaft_angles(sim, "follower")[LIFT])


def test_hand_holds_a_limp_follower_joint_where_it_put_it(fresh: VirtualSO101) -> None:
    lift = 40.0
    fresh.move_joints("follower", {"shoulder_lift": lift, "elbow_flex": -30.0})
    assert fresh.follower_hand.holding
    assert wait_until(lambda: abs(lift_deg(fresh) - lift) < 1.0)
    kick_lift(fresh)  # held: the hand puts it straight back
    assert wait_until(lambda: abs(lift_deg(fresh) - lift) < 1.0)
    assert not wait_until(lambda: abs(lift_deg(fresh) - lift) > 2.0, timeout=0.3)
    fresh.release("follower")
    assert not fresh.follower_hand.holding
    kick_lift(fresh)  # let go: the knock moves it and nothing brings it back
    assert wait_until(lambda: abs(lift_deg(fresh) - lift) > 3.0)
    assert not wait_until(lambda: abs(lift_deg(fresh) - lift) < 1.0, timeout=0.3)


def test_hand_leaves_torqued_follower_joints_to_their_motor(fresh: VirtualSO101) -> None:
    servo = fresh.follower_bus.servo(JOINTS[LIFT].motor_id)
    with fresh.follower_bus.lock:
        servo.write_register("Goal_Position", servo.read_register("Present_Position"))
        servo.write_register("Torque_Enable", 1)
    assert wait_until(lambda: fresh.runner.call(lambda w: bool(w.torque[LIFT])))
    before = math.degrees(shaft_angles(fresh, "follower")[LIFT])
    fresh.move_joints("follower", {"shoulder_lift": before + 40.0})
    assert not wait_until(
        lambda: abs(math.degrees(shaft_angles(fresh, "follower")[LIFT]) - before) > 5.0, timeout=0.5
    )
    fresh.release("follower")


def test_hand_moves_the_leader_shafts(fresh: VirtualSO101) -> None:
    after = fresh.move_joints("leader", {"elbow_flex": 30.0, "gripper": 500.0})
    assert after["elbow_flex"] == pytest.approx(30.0, abs=0.1)
    assert after["gripper"] == pytest.approx(100.0, abs=0.1)  # clipped to the joint's range
    angles = shaft_angles(fresh, "leader")
    assert math.degrees(angles[JOINT_NAMES.index("elbow_flex")]) == pytest.approx(30.0, abs=0.1)
    middle = fresh.move_to_middle("leader")
    assert middle == pytest.approx(dict(zip(JOINT_NAMES, np.degrees(middle_pose()), strict=True)), abs=0.1)
    with pytest.raises(ValueError, match=r"'elbow'.*joints: shoulder_pan"):
        fresh.move_joints("leader", {"elbow": 10.0})


@pytest.mark.parametrize("role", ["follower", "leader"])
def test_sweep_takes_every_joint_through_most_of_its_range(fresh: VirtualSO101, role: ArmRole) -> None:
    seen: list[np.ndarray] = []
    stop = threading.Event()

    def watch() -> None:  # what a range recorder does: read the encoders while the hand sweeps
        while not stop.is_set():
            seen.append(shaft_angles(fresh, role))
            stop.wait(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        assert fresh.sweep_joints(role, 1.5) is True
    finally:
        stop.set()
        watcher.join(timeout=2.0)
    samples = np.array(seen)
    for i, spec in enumerate(JOINTS):
        travel = samples[:, i].max() - samples[:, i].min()
        assert travel > 0.6 * (spec.upper - spec.lower), spec.name
    # Ends at the middle, and (follower) keeps holding it.
    np.testing.assert_allclose(shaft_angles(fresh, role), middle_pose(), atol=math.radians(2.0))
    fresh.release(role)


def test_a_sweep_stops_when_asked(fresh: VirtualSO101) -> None:
    stop = threading.Event()
    timer = threading.Timer(0.2, stop.set)
    timer.start()
    try:
        assert fresh.sweep_joints("leader", 30.0, stop) is False
    finally:
        timer.cancel()
    with pytest.raises(ValueError, match="positive"):
        fresh.sweep_joints("leader", 0.0)

