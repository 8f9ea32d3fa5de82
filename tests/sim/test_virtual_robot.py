"""The real Feetech driver and robot classes against the virtual SO-101's emulated buses."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.calibration import load_calibration
from drivers.cameras.config import CameraConfigError, make_camera, parse_cameras
from drivers.motors.feetech import FeetechBus
from drivers.ports import list_ports
from drivers.robots.so import SOFollower, SOFollowerConfig, SOLeader, SOLeaderConfig, so_motors
from drivers.sim.camera import SimCamera
from drivers.sim.scene import JOINT_NAMES
from drivers.sim.virtual_robot import FOLLOWER_ID, LEADER_ID, VirtualSO101
from tests.sim.conftest import wait_until

LIFT = JOINT_NAMES.index("shoulder_lift")


@pytest.fixture
def follower(virtual: VirtualSO101) -> Iterator[FeetechBus]:
    bus = FeetechBus(virtual.follower_port, so_motors(), calibration=virtual.calibration("follower"))
    bus.connect()
    yield bus
    bus.disconnect()


def world_normalized(virtual: VirtualSO101) -> dict[str, float]:
    angles = virtual.runner.call(lambda w: list(w.joint_positions()))
    return dict(zip(JOINT_NAMES, virtual.follower_ticks.normalized(angles), strict=True))


def test_follower_is_calibrated_and_reads_the_physics(virtual: VirtualSO101, follower: FeetechBus) -> None:
    assert follower.is_calibrated
    present = follower.sync_read("Present_Position")
    expected = world_normalized(virtual)
    for name in JOINT_NAMES:
        assert present[name] == pytest.approx(expected[name], abs=0.3), name


def test_goal_moves_the_sim_joint_and_reads_back(virtual: VirtualSO101, follower: FeetechBus) -> None:
    follower.enable_torque()
    goal = {"shoulder_pan": 30.0, "elbow_flex": 45.0, "wrist_roll": -60.0, "gripper": 60.0}
    follower.sync_write("Goal_Position", goal)

    def arrived() -> bool:
        present = follower.sync_read("Present_Position")
        return all(abs(present[m] - v) < 1.5 for m, v in goal.items())

    assert wait_until(arrived, timeout=10.0), follower.sync_read("Present_Position")
    world = world_normalized(virtual)
    for m, v in goal.items():
        assert world[m] == pytest.approx(v, abs=1.5)


def test_torque_off_makes_the_follower_compliant(virtual: VirtualSO101, follower: FeetechBus) -> None:
    follower.enable_torque()
    # Leaning forward with the forearm raised, so the gripper is well clear of the table.
    follower.sync_write("Goal_Position", {"shoulder_lift": 30.0, "elbow_flex": -40.0})
    assert wait_until(
        lambda: abs(follower.read("Present_Position", "shoulder_lift") - 30.0) < 2.0, timeout=10.0
    )
    follower.disable_torque(["shoulder_lift"])
    # With no motor force the arm sags under its own weight.
    assert wait_until(lambda: follower.read("Present_Position", "shoulder_lift") > 45.0, timeout=10.0)
    assert virtual.runner.call(lambda w: bool(w.torque[LIFT])) is False
    follower.enable_torque(["shoulder_lift"])  # holds where it is now, no jump back
    held = follower.read("Present_Position", "shoulder_lift")
    assert wait_until(lambda: virtual.runner.call(lambda w: bool(w.torque[LIFT])), timeout=5.0)
    assert follower.read("Goal_Position", "shoulder_lift") == pytest.approx(held, abs=1.0)


def test_leader_follows_jogs_and_scripted_positions(virtual: VirtualSO101) -> None:
    bus = FeetechBus(virtual.leader_port, so_motors(), calibration=virtual.calibration("leader"))
    bus.connect()
    try:
        assert bus.is_calibrated
        before = bus.sync_read("Present_Position")
        new = virtual.jog("elbow_flex", 20.0)
        assert new == pytest.approx(math.degrees(virtual.leader.positions()[2]))
        after = bus.sync_read("Present_Position")
        assert after["elbow_flex"] - before["elbow_flex"] == pytest.approx(20.0, abs=0.2)
        virtual.leader.set_positions([0.5, 0.0, 0.0, 0.0, 1.0, math.radians(80)])
        got = bus.sync_read("Present_Position")
        assert got["shoulder_pan"] == pytest.approx(math.degrees(0.5), abs=0.2)
        assert got["wrist_roll"] == pytest.approx(math.degrees(1.0), abs=0.2)
        assert got["gripper"] == pytest.approx(80.0, abs=0.3)
    finally:
        bus.disconnect()


def test_robot_classes_connect_with_the_written_calibration(virtual: VirtualSO101) -> None:
    paths = virtual.write_calibration_files()
    assert load_calibration(paths["follower"], so_motors()) == virtual.calibration("follower")
    follower = SOFollower(SOFollowerConfig(port=virtual.follower_port, id=FOLLOWER_ID))
    leader = SOLeader(SOLeaderConfig(port=virtual.leader_port, id=LEADER_ID))
    assert follower.calibration_source == paths["follower"] and leader.calibration_source == paths["leader"]
    follower.connect(calibrate=True)
    leader.connect(calibrate=True)
    try:
        assert follower.is_calibrated and leader.is_calibrated
        assert not follower.apply_calibration()  # the EEPROM already holds it: nothing to write
        assert follower.read_positions()["wrist_flex"] == pytest.approx(90.0, abs=1.0)
        assert leader.read_positions()["gripper"] == pytest.approx(10.0, abs=0.5)
    finally:
        leader.disconnect()
        follower.disconnect()


def test_factory_fresh_arm_gets_calibrated_by_the_robot(port_dir: Path, tmp_path: Path) -> None:
    with VirtualSO101(port_dir=port_dir, calibrated=False) as sim:
        cal = sim.calibration("follower")
        raw = FeetechBus(sim.follower_port, so_motors(), calibration=cal)
        raw.connect()
        try:
            assert not raw.is_calibrated
            present = raw.sync_read("Present_Position", normalize=False)
            # Uncalibrated ticks are the mounting's, not the homed frame's.
            assert any(abs(present[m] - (cal[m].range_min + cal[m].range_max) / 2) > 100 for m in JOINT_NAMES)
        finally:
            raw.disconnect()
        sim.write_calibration_files(tmp_path / "cal")
        robot = SOFollower(
            SOFollowerConfig(
                port=sim.follower_port, id=FOLLOWER_ID, calibration_dir=tmp_path / "cal/robots/so_follower"
            )
        )
        robot.connect(calibrate=True)
        try:
            assert robot.is_calibrated
            assert robot.read_positions()["shoulder_lift"] == pytest.approx(-20.0, abs=1.0)
        finally:
            robot.disconnect()


def test_unplug_and_replug_are_seen_by_the_port_lister(virtual: VirtualSO101, port_dir: Path) -> None:
    def listed() -> set[str]:
        return {p.path for p in list_ports([port_dir], include_emulator=False)}

    assert {virtual.follower_port, virtual.leader_port} <= listed()
    virtual.unplug("follower")
    assert virtual.follower_port not in listed() and virtual.leader_port in listed()
    virtual.replug("follower")
    assert virtual.follower_port in listed()
    bus = FeetechBus(virtual.follower_port, so_motors(), calibration=virtual.calibration("follower"))
    bus.connect()  # the replugged arm answers again, calibration intact
    try:
        assert bus.is_calibrated
    finally:
        bus.disconnect()
    virtual.unplug("leader")
    assert virtual.leader_port not in listed()
    virtual.replug("leader")


def test_stop_ends_every_thread_and_removes_the_ports(port_dir: Path) -> None:
    sim = VirtualSO101(port_dir=port_dir)
    before = set(threading.enumerate())
    sim.start()
    sim.cameras["front"].connect()
    sim.start_demo()
    assert wait_until(lambda: sim.cameras["front"].latest() is not None, timeout=10.0)
    assert sim.runner.stats.steps > 0
    sim.stop()
    assert set(threading.enumerate()) <= before
    assert not Path(sim.follower_port).exists() and not Path(sim.leader_port).exists()
    sim.stop()  # idempotent


def test_follower_robot_observes_through_sim_cameras(virtual: VirtualSO101) -> None:
    virtual.write_calibration_files()
    robot = SOFollower(
        SOFollowerConfig(port=virtual.follower_port, id=FOLLOWER_ID, cameras=dict(virtual.cameras))
    )
    robot.connect(calibrate=True)
    try:
        obs = robot.get_observation()
        assert obs["front"].shape == (240, 320, 3) and obs["wrist"].shape == (240, 320, 3)
        assert obs["front"].std() > 10
        assert obs["gripper.pos"] == pytest.approx(10.0, abs=0.5)
    finally:
        robot.disconnect()
    assert not virtual.cameras["front"].is_connected


def test_sim_camera_config_type_needs_the_running_virtual_robot(port_dir: Path) -> None:
    specs = parse_cameras({"top": {"type": "sim", "index_or_path": "front", "width": 160, "height": 120}})
    with pytest.raises(CameraConfigError, match="--sim"):
        make_camera("top", specs["top"])
    with VirtualSO101(port_dir=port_dir) as sim:
        cam = make_camera("top", specs["top"])
        assert isinstance(cam, SimCamera) and cam.camera == "front" and cam.world is sim.world
        cam.connect()
        try:
            assert cam.read_latest().shape == (120, 160, 3)
        finally:
            cam.disconnect()


def test_leader_torque_on_takes_over_from_the_hand(virtual: VirtualSO101) -> None:
    """DAgger handover: with torque on, the leader moves itself to goals and the scripted hand lets go."""
    bus = FeetechBus(virtual.leader_port, so_motors(), calibration=virtual.calibration("leader"))
    bus.connect()
    try:
        bus.enable_torque(["shoulder_pan"])
        bus.write("Goal_Position", "shoulder_pan", 25.0)
        assert wait_until(lambda: abs(bus.read("Present_Position", "shoulder_pan") - 25.0) < 0.5, timeout=5.0)
        virtual.leader.set_positions([0.0, 0.0, 0.0, 0.0, 0.0, 0.0])  # ignored for the torqued joint
        got = bus.sync_read("Present_Position")
        assert got["shoulder_pan"] == pytest.approx(25.0, abs=0.5)
        assert got["elbow_flex"] == pytest.approx(0.0, abs=0.2)
    finally:
        bus.disconnect()
