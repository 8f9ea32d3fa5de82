"""Teleop on emulated SO arms: the follower tracks the leader, jogging moves one joint, stop releases torque."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drivers.calibration import load_calibration
from drivers.emulator import EmulatedBus
from drivers.motors.bus import MotorCalibration
from drivers.robots.so import SOFollower, SOFollowerConfig, SOLeader, SOLeaderConfig, so_motors
from engine.teleop import JogSource, Teleop

REPO = Path(__file__).resolve().parents[2]
CAL = load_calibration(REPO / "tests" / "fixtures" / "calibration" / "so_follower_lerobot.json", so_motors())


def _mid(cal: dict[str, MotorCalibration]) -> dict[int, float]:
    return {c.id: (c.range_min + c.range_max) / 2 + c.homing_offset for c in cal.values()}


def _wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@pytest.fixture
def arms(tmp_path: Path) -> Iterator[tuple[SOFollower, SOLeader, EmulatedBus, EmulatedBus]]:
    ports = tmp_path / "ports"
    follower_emu = EmulatedBus("feetech", dict.fromkeys(range(1, 7), "sts3215"), motion="internal",
                               max_speed=20000.0, name="f", port_dir=ports, initial_positions=_mid(CAL))
    leader_emu = EmulatedBus("feetech", dict.fromkeys(range(1, 7), "sts3215"), motion="external",
                             name="l", port_dir=ports, initial_positions=_mid(CAL))
    with follower_emu, leader_emu:
        caldir = tmp_path / "cal"
        follower = SOFollower(SOFollowerConfig(type="so101_follower", port=follower_emu.port, id="f",
                                               calibration_dir=caldir))
        leader = SOLeader(SOLeaderConfig(type="so101_leader", port=leader_emu.port, id="l", calibration_dir=caldir))
        for arm in (follower, leader):
            arm.set_calibration(CAL, synced=False)
            arm.save_calibration()
            arm.connect()
        try:
            yield follower, leader, follower_emu, leader_emu
        finally:
            leader.disconnect()
            follower.disconnect()


def test_follower_tracks_leader(arms) -> None:
    follower, leader, follower_emu, leader_emu = arms
    teleop = Teleop(follower, leader, fps=60)
    assert not teleop.running  # starts idle
    teleop.start()
    try:
        # A person moves the leader's elbow by ~300 ticks (~26 degrees).
        elbow = CAL["elbow_flex"]
        with leader_emu.lock:
            leader_emu.set_actual({elbow.id: leader_emu.servo(elbow.id).actual + 300})
        target = leader.read_positions()["elbow_flex"]
        assert _wait_for(lambda: abs(follower.read_positions()["elbow_flex"] - target) < 1.0)
        snap = teleop.snapshot()
        row = next(r for r in snap.rows if r.name == "elbow_flex")
        assert row.leader == pytest.approx(target, abs=0.5)
        assert snap.loop is not None and snap.loop.ticks > 0
    finally:
        teleop.stop()
    assert all(follower_emu.servo(i).read_register("Torque_Enable") == 0 for i in range(1, 7))


def test_keyboard_jog_moves_only_the_selected_joint(arms) -> None:
    follower, _leader, _f, _l = arms
    jog = JogSource(list(follower.motors))
    teleop = Teleop(follower, None, fps=60, jog=jog)
    before = follower.read_positions()
    jog.jog(+1)  # ignored: teleop not started, nothing queued
    teleop.start()
    try:
        jog.select("wrist_flex")
        assert jog.change_step(+2) == 10.0
        jog.jog(+1)
        jog.jog(+1)
        assert _wait_for(lambda: follower.read_positions()["wrist_flex"] - before["wrist_flex"] > 19.0)
        after = follower.read_positions()
        others = [m for m in follower.motors if m != "wrist_flex"]
        assert all(abs(after[m] - before[m]) < 1.0 for m in others)
        assert teleop.snapshot().jog_joint == "wrist_flex"
    finally:
        teleop.stop()


def test_lost_leader_port_stops_teleop_and_releases_follower(arms) -> None:
    follower, leader, follower_emu, leader_emu = arms
    errors: list[BaseException] = []
    teleop = Teleop(follower, leader, fps=60, on_error=errors.append)
    teleop.start()
    leader_emu.unplug()
    assert _wait_for(lambda: not teleop.running)
    snap = teleop.snapshot()
    assert snap.error and errors
    assert all(follower_emu.servo(i).read_register("Torque_Enable") == 0 for i in range(1, 7))
    leader_emu.replug()


def test_jog_source_validates_joint_names() -> None:
    jog = JogSource(["a", "b"])
    with pytest.raises(ValueError, match="unknown joint 'c'"):
        jog.select("c")
    assert jog.select_next() == "b"
    assert jog.select_next() == "a"
