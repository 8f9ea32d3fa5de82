"""The calibration procedure end to end on the servo emulator: the "user" moves the emulated shafts with
`set_actual` between steps, exactly as hands would move a limp arm."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.calibration import CalibrationFileError, calibration_to_json, load_calibration, save_calibration
from drivers.emulator import EmulatedBus
from drivers.motors.bus import MotorCalibration
from drivers.robots import safety
from drivers.robots.koch import KochFollower, KochFollowerConfig, KochLeader, KochLeaderConfig
from drivers.robots.so import SOFollower, SOFollowerConfig, SOLeader, SOLeaderConfig
from engine.calibration import CalibrationError, CalibrationProcedure, Step

SO_NAMES = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
# Where the "user" left each shaft before calibrating (physical ticks), far from a neat 2047.
START = {1: 1000.0, 2: 3000.0, 3: 2100.0, 4: 700.0, 5: 3500.0, 6: 2600.0}
KOCH_MODELS = {1: "xl430-w250", 2: "xl430-w250", 3: "xl330-m288", 4: "xl330-m288", 5: "xl330-m288", 6: "xl330-m288"}


@pytest.fixture(autouse=True)
def _release_everything() -> Iterator[None]:
    yield
    safety.release_all("test teardown")
    safety.uninstall_signal_handlers()


@pytest.fixture
def so_emu(tmp_path: Path) -> Iterator[EmulatedBus]:
    with EmulatedBus("feetech", dict.fromkeys(range(1, 7), "sts3215"), motion="external", name="so-cal",
                     port_dir=tmp_path / "ports", initial_positions=START) as emu:
        yield emu


def _sweep(emu: EmulatedBus, proc: CalibrationProcedure, spans: dict[int, tuple[float, float]]) -> None:
    """Move each joint to the low end, sample, to the high end, sample, back to the start, sample."""
    for corner in (0, 1):
        emu.set_actual({i: span[corner] for i, span in spans.items()})
        proc.sample()
    emu.set_actual({i: START[i] for i in spans})
    proc.sample()


def test_so_follower_calibration_end_to_end(so_emu: EmulatedBus) -> None:
    robot = SOFollower(SOFollowerConfig(port=so_emu.port, id="cal"))
    proc = CalibrationProcedure(robot)
    assert proc.existing_calibration() is None

    proc.start()
    assert proc.step is Step.STARTED
    for i in range(1, 7):
        servo = so_emu.servo(i)
        assert not servo.torque_enabled
        assert servo.read_register("Operating_Mode") == 0
        assert servo.read_register("Homing_Offset") == 0
        assert (servo.read_register("Min_Position_Limit"), servo.read_register("Max_Position_Limit")) == (0, 4095)
        assert servo.read_register("Phase") & 0x10 == 0  # positions wrap into 0..4095

    offsets = proc.set_middle()
    # Feetech: present = actual - offset, and the middle pose must read 2047.
    assert offsets == {name: int(START[i + 1]) - 2047 for i, name in enumerate(SO_NAMES)}
    for i in range(1, 7):
        assert so_emu.servo(i).present_position == pytest.approx(2047, abs=1)

    spans = {i: (START[i] - 500 - 20 * i, START[i] + 600 + 10 * i) for i in range(1, 7)}
    _sweep(so_emu, proc, spans)
    rows = {r.motor: r for r in proc.rows()}
    assert rows["elbow_flex"].min == 2047 - 560 and rows["elbow_flex"].max == 2047 + 630
    assert rows["elbow_flex"].pos == 2047 and rows["wrist_roll"].full_turn and not rows["gripper"].full_turn

    cal = proc.finish()
    assert proc.step is Step.FINISHED and robot.is_calibrated
    for i, name in enumerate(SO_NAMES, start=1):
        expected = (0, 4095) if name == "wrist_roll" else (2047 - 500 - 20 * i, 2047 + 600 + 10 * i)
        assert (cal[name].range_min, cal[name].range_max) == expected, name
        assert cal[name] == MotorCalibration(i, 0, offsets[name], *expected)
        servo = so_emu.servo(i)  # the motors' EEPROM holds exactly the calibration
        assert servo.read_register("Homing_Offset") == cal[name].homing_offset
        assert servo.read_register("Min_Position_Limit") == cal[name].range_min
        assert servo.read_register("Max_Position_Limit") == cal[name].range_max

    path = proc.save()
    assert path == robot.calibration_fpath and path.parent.name == "so_follower" and path.name == "cal.json"
    assert load_calibration(path, robot.motors) == cal
    assert path.read_text() == calibration_to_json(cal)
    assert list(load_calibration(path)) == SO_NAMES
    # The bus is still open from calibrating: connect() finishes bringing the follower up (configure, torque).
    assert robot.is_connected and not so_emu.servo(1).torque_enabled
    robot.connect()
    assert robot.is_calibrated and all(so_emu.servo(i).torque_enabled for i in range(1, 7))
    assert so_emu.servo(1).read_register("P_Coefficient") == 16
    # Written unlocked: a power cycle keeps it.
    robot.disconnect()
    so_emu.power_cycle()
    assert so_emu.servo(3).read_register("Homing_Offset") == cal["elbow_flex"].homing_offset

    # A fresh robot uses the file without rewriting anything, and reads the range ends as expected.
    again = SOFollower(SOFollowerConfig(port=so_emu.port, id="cal", use_degrees=False))
    with again:
        assert again.is_calibrated
        so_emu.set_actual({3: spans[3][1]})
        assert again.get_observation()["elbow_flex.pos"] == pytest.approx(100.0)


def test_joint_at_the_end_of_its_turn_cannot_be_homed(so_emu: EmulatedBus) -> None:
    robot = SOFollower(SOFollowerConfig(port=so_emu.port, id="end"))
    with CalibrationProcedure(robot) as proc:
        proc.start()
        so_emu.set_actual({3: 4095.0})  # offset would be 2048: more than the 11-bit register holds
        with pytest.raises(CalibrationError) as info:
            proc.set_middle()
        message = str(info.value)
        assert "'elbow_flex'" in message and "4095" in message and "nearer the middle" in message
        assert proc.step is Step.STARTED
        so_emu.set_actual({3: 3000.0})
        offsets = proc.set_middle()  # after moving it, it works
        assert offsets["elbow_flex"] == 3000 - 2047
    assert not robot.is_connected  # the procedure opened the bus, and closed it


def test_joint_that_never_moved_is_named(so_emu: EmulatedBus) -> None:
    robot = SOFollower(SOFollowerConfig(port=so_emu.port, id="lazy"))
    proc = CalibrationProcedure(robot)
    proc.start()
    proc.set_middle()
    spans = {i: (START[i] - 400, START[i] + 400) for i in (1, 2, 4, 6)}  # elbow_flex forgotten; wrist_roll free
    _sweep(so_emu, proc, spans)
    so_emu.set_actual({3: START[3] + 5})  # a nudge is not a range
    proc.sample()
    with pytest.raises(CalibrationError) as info:
        proc.finish()
    assert "elbow_flex (5 ticks)" in str(info.value)
    assert "wrist_roll" not in str(info.value) and "shoulder_pan" not in str(info.value)
    assert proc.step is Step.HOMED and not robot.is_calibrated
    _sweep(so_emu, proc, {3: (START[3] - 300, START[3] + 300)})
    cal = proc.finish()
    assert cal["elbow_flex"].range_max - cal["elbow_flex"].range_min == 600
    proc.close()


def test_steps_must_come_in_order(so_emu: EmulatedBus) -> None:
    proc = CalibrationProcedure(SOFollower(SOFollowerConfig(port=so_emu.port, id="order")))
    for call in (proc.set_middle, proc.sample, proc.finish, proc.save):
        with pytest.raises(CalibrationError, match="out of order"):
            call()
    proc.start()
    with pytest.raises(CalibrationError, match="out of order"):
        proc.finish()
    proc.close()


def test_existing_calibration_use_it_or_recalibrate(so_emu: EmulatedBus, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_LEROBOT_CALIBRATION", str(tmp_path / "cal"))
    cal = {n: MotorCalibration(i, 0, 100 - 20 * i, 900 + i, 3100 - i) for i, n in enumerate(SO_NAMES, start=1)}
    legacy = save_calibration(tmp_path / "cal" / "teleoperators" / "so101_leader" / "lead.json", cal)
    leader = SOLeader(SOLeaderConfig(port=so_emu.port, id="lead"))
    proc = CalibrationProcedure(leader)
    existing = proc.existing_calibration()
    assert existing is not None and existing.path == legacy and existing.legacy_name
    assert existing.calibration == cal and existing.error is None

    assert proc.use_existing() is True  # the motors held nothing: the file was written to them
    assert proc.step is Step.SAVED and leader.is_calibrated
    assert all(so_emu.servo(c.id).read_register("Homing_Offset") == c.homing_offset for c in cal.values())
    # Re-saved under the current name, where LeRobot now looks.
    assert proc.saved_path == tmp_path / "cal" / "teleoperators" / "so_leader" / "lead.json"
    assert load_calibration(proc.saved_path) == cal
    proc.close()

    second = CalibrationProcedure(leader)
    assert second.use_existing() is False  # already on the motors: nothing written
    assert second.existing_calibration() is not None and leader.is_calibrated  # looking changes nothing
    second.close()
    assert not leader.is_connected

    proc.saved_path.write_text("{ not json")
    broken = CalibrationProcedure(SOLeader(SOLeaderConfig(port=so_emu.port, id="lead")))
    existing = broken.existing_calibration()
    assert existing is not None and existing.calibration is None
    assert isinstance(existing.error, CalibrationFileError)
    with pytest.raises(CalibrationFileError, match="robotui calibrate"):
        broken.use_existing()
    broken.start()  # recalibrating over a damaged file is allowed
    broken.close()

    with pytest.raises(CalibrationError, match="no calibration file"):
        CalibrationProcedure(SOLeader(SOLeaderConfig(port=so_emu.port, id="nobody"))).use_existing()


def test_run_non_interactive_while_something_moves_the_joints(so_emu: EmulatedBus) -> None:
    robot = SOFollower(SOFollowerConfig(port=so_emu.port, id="auto"))
    stop = threading.Event()

    def wiggle() -> None:  # stands in for the sim's scripted sweep
        phase = 0
        while not stop.is_set():
            offset = 300.0 if phase % 2 else -300.0
            so_emu.set_actual({i: START[i] + offset for i in range(1, 7)})
            phase += 1
            time.sleep(0.01)

    mover = threading.Thread(target=wiggle)
    samples: list[int] = []
    mover.start()
    try:
        path = CalibrationProcedure(robot).run_non_interactive(1.5, sample_hz=50, on_sample=lambda rows: samples.append(len(rows)))
    finally:
        stop.set()
        mover.join(timeout=2)
    assert len(samples) >= 2 and set(samples) == {6}
    cal = load_calibration(path, robot.motors)
    for name, c in cal.items():
        servo = so_emu.servo(c.id)
        assert servo.read_register("Min_Position_Limit") == c.range_min
        assert servo.read_register("Max_Position_Limit") == c.range_max
        if name != "wrist_roll":
            assert c.range_max - c.range_min >= 300  # saw at least one swing
    robot.disconnect()
    with pytest.raises(ValueError):
        CalibrationProcedure(robot).run_non_interactive(-1)


# ---------------------------------------------------------------------------------------------- Koch
def test_koch_follower_calibration(tmp_path: Path) -> None:
    with EmulatedBus("dynamixel", KOCH_MODELS, motion="external", name="koch-cal", port_dir=tmp_path,
                     initial_positions=START) as emu:
        robot = KochFollower(KochFollowerConfig(port=emu.port, id="k"))
        proc = CalibrationProcedure(robot)
        proc.start()
        assert all(emu.servo(i).read_register("Operating_Mode") == 4 for i in range(1, 7))
        offsets = proc.set_middle()
        # Dynamixel: present = actual + offset.
        assert offsets["elbow_flex"] == 2047 - int(START[3])
        assert all(emu.servo(i).present_position == pytest.approx(2047, abs=1) for i in range(1, 7))
        _sweep(emu, proc, {i: (START[i] - 250, START[i] + 350) for i in range(1, 7)})
        cal = proc.finish()
        for name in ("shoulder_pan", "wrist_roll"):  # full-turn joints
            assert (cal[name].range_min, cal[name].range_max) == (0, 4095)
        assert (cal["elbow_flex"].range_min, cal["elbow_flex"].range_max) == (2047 - 250, 2047 + 350)
        for c in cal.values():
            servo = emu.servo(c.id)
            assert servo.read_register("Homing_Offset") == c.homing_offset
            assert (servo.read_register("Min_Position_Limit"), servo.read_register("Max_Position_Limit")) == (
                c.range_min, c.range_max)
        proc.save()
        proc.close()
        reread = KochFollower(KochFollowerConfig(port=emu.port, id="k"))
        with reread:
            assert reread.is_calibrated
            assert emu.servo(6).read_register("Operating_Mode") == 5  # configure() after calibration


def test_koch_leader_elbow_is_reversed(tmp_path: Path) -> None:
    with EmulatedBus("dynamixel", dict.fromkeys(range(1, 7), "xl330-m077"), motion="external", name="koch-lead",
                     port_dir=tmp_path, initial_positions=START) as emu:
        leader = KochLeader(KochLeaderConfig(port=emu.port, id="kl"))
        proc = CalibrationProcedure(leader)
        proc.start()
        assert emu.servo(3).read_register("Drive_Mode") & 1 == 1
        assert emu.servo(4).read_register("Drive_Mode") & 1 == 0
        proc.set_middle()
        assert emu.servo(3).present_position == pytest.approx(2047, abs=1)
        emu.set_actual({3: START[3] + 200})  # reversed: the shaft going up reads going down
        rows = {r.motor: r for r in proc.sample()}
        assert rows["elbow_flex"].pos == 2047 - 200
        _sweep(emu, proc, {i: (START[i] - 300, START[i] + 300) for i in range(1, 7)})
        cal = proc.finish()
        assert cal["elbow_flex"].drive_mode == 1
        assert all(c.drive_mode == 0 for n, c in cal.items() if n != "elbow_flex")
        path = proc.save()
        assert load_calibration(path)["elbow_flex"].drive_mode == 1
        proc.close()
