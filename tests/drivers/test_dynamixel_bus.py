"""DynamixelBus against the wire-level servo emulator (Koch arm: XL430-W250 ids 1-2, XL330-M288 ids 3-6)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.emulator import EmulatedBus
from drivers.motors import (
    BusError,
    CommError,
    DynamixelBus,
    HandshakeError,
    Motor,
    MotorBus,
    MotorCalibration,
    MotorError,
    MultipleMotorsError,
    NoMotorFoundError,
    NormMode,
    PortError,
)

NAMES = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
MODELS = ["xl430-w250"] * 2 + ["xl330-m288"] * 4


def koch_motors() -> dict[str, Motor]:
    modes = [NormMode.RANGE_M100_100] * 5 + [NormMode.RANGE_0_100]
    return {n: Motor(i + 1, MODELS[i], modes[i]) for i, n in enumerate(NAMES)}


@pytest.fixture(autouse=True)
def _short_broadcast_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """The emulator answers a broadcast at once and no motor here has an id above 20: wait for 20 id slots
    (~80 ms at 1 Mbps, ample for a loaded emulator thread) instead of all 252 (0.8-1.4 s per baud rate)."""
    monkeypatch.setattr(MotorBus, "broadcast_max_id", 20)


@pytest.fixture
def bus(koch_emulator: EmulatedBus) -> Iterator[DynamixelBus]:
    b = DynamixelBus(koch_emulator.port, koch_motors())
    b.connect()
    yield b
    b.disconnect(disable_torque=False)


# ------------------------------------------------------------------------------------------ handshake
def test_connect_handshake_ok(koch_emulator: EmulatedBus) -> None:
    b = DynamixelBus(koch_emulator.port, koch_motors())
    b.connect()
    assert b.is_connected and b.stats.failures == 0
    assert b.ping("shoulder_pan") == 1060 and b.ping("gripper") == 1200
    b.disconnect()
    assert not b.is_connected


def test_handshake_names_missing_and_wrong_motors(koch_emulator: EmulatedBus) -> None:
    koch_emulator.remove_motor(2)
    koch_emulator.remove_motor(3)
    koch_emulator.add_motor(3, "xl430-w250")
    b = DynamixelBus(koch_emulator.port, koch_motors())
    with pytest.raises(HandshakeError) as info:
        b.connect()
    assert info.value.missing == ["shoulder_lift"]
    assert info.value.wrong == {"elbow_flex": ("xl330-m288", 1060)}
    msg = str(info.value)
    assert "'shoulder_lift' (id 2" in msg and "'elbow_flex' (id 3)" in msg and "xl430-w250" in msg
    assert "blinks once" in msg  # the Dynamixel LED hint
    assert not b.is_connected


# ------------------------------------------------------------------------------------- read / write
def test_read_write_raw_and_normalized(bus: DynamixelBus, koch_emulator: EmulatedBus) -> None:
    koch_emulator.set_actual({2: 1500.0})
    assert bus.read("Present_Position", "shoulder_lift", normalize=False) == 1500
    bus.calibration = {"shoulder_lift": MotorCalibration(2, 1, 0, 1000, 3000)}
    # Dynamixel applies drive mode in the motor, so the bus must not negate (LeRobot apply_drive_mode=False).
    assert bus.read("Present_Position", "shoulder_lift") == pytest.approx(-50.0)
    bus.write("Goal_Position", "shoulder_lift", 50.0)
    assert koch_emulator.servo(2).read_register("Goal_Position") == 2500
    bus.write("Profile_Velocity", "gripper", 123456)
    assert bus.read("Profile_Velocity", "gripper") == 123456


def test_sync_read_and_sync_write(bus: DynamixelBus, koch_emulator: EmulatedBus) -> None:
    koch_emulator.set_actual({i: 500.0 * i for i in range(1, 7)})
    assert bus.sync_read("Present_Position", normalize=False) == {n: 500 * (i + 1) for i, n in enumerate(NAMES)}
    goals = {n: 1000 + i for i, n in enumerate(NAMES)}
    bus.sync_write("Goal_Position", goals, normalize=False)
    assert bus.sync_read("Goal_Position", normalize=False) == goals  # the read follows the reply-less write
    bus.calibration = {n: MotorCalibration(i + 1, 0, 0, 0, 4000) for i, n in enumerate(NAMES)}
    bus.sync_write("Goal_Position", {"gripper": 25.0, "shoulder_pan": -50.0})
    assert bus.sync_read("Goal_Position", ["gripper", "shoulder_pan"], normalize=False) == {
        "gripper": 1000, "shoulder_pan": 1000}


def test_twos_complement_on_the_wire(bus: DynamixelBus, koch_emulator: EmulatedBus) -> None:
    bus.write("Homing_Offset", "wrist_flex", -3000, normalize=False)
    _, wire = koch_emulator.servo(4).read_bytes(20, 4)
    assert int.from_bytes(wire, "little") == 2**32 - 3000
    assert bus.read("Homing_Offset", "wrist_flex", normalize=False) == -3000
    koch_emulator.set_actual({4: 100.0})  # Present = Actual + Homing_Offset
    assert bus.read("Present_Position", "wrist_flex", normalize=False) == -2900
    assert bus.sync_read("Present_Position", ["wrist_flex"], normalize=False) == {"wrist_flex": -2900}
    bus.write("Goal_Velocity", "wrist_flex", -50, normalize=False)
    assert bus.read("Goal_Velocity", "wrist_flex", normalize=False) == -50


def test_status_error_raises_motor_error(bus: DynamixelBus) -> None:
    bus.enable_torque(["wrist_roll"])
    with pytest.raises(MotorError) as info:  # EEPROM is locked while torque is on
        bus.write("Homing_Offset", "wrist_roll", 10, normalize=False)
    assert "'wrist_roll' (id 5)" in str(info.value) and "torque disabled" in str(info.value)
    assert bus.stats.motor_errors == 1
    bus.disable_torque(["wrist_roll"])
    bus.write("Homing_Offset", "wrist_roll", 10, normalize=False)


def test_torque_and_configure(bus: DynamixelBus, koch_emulator: EmulatedBus) -> None:
    bus.enable_torque()
    assert all(s.torque_enabled for s in koch_emulator.servos.values())
    bus.disable_torque()
    assert not any(s.torque_enabled for s in koch_emulator.servos.values())
    assert koch_emulator.servo(1).read_register("Return_Delay_Time") != 0
    bus.configure_motors()
    assert all(s.read_register("Return_Delay_Time") == 0 for s in koch_emulator.servos.values())


# ------------------------------------------------------------------------------------ faults, ports
def test_retries_under_faults(bus: DynamixelBus, koch_emulator: EmulatedBus) -> None:
    koch_emulator.faults.seed = 3
    koch_emulator.faults.drop_rate = 0.3
    koch_emulator.faults.corrupt_rate = 0.3
    for _ in range(10):
        assert bus.read("Present_Position", "gripper", normalize=False, num_retry=20) == 2048
    assert bus.stats.retries > 0 and bus.stats.timeouts > 0 and bus.stats.corrupt > 0
    assert bus.stats.failures == 0
    koch_emulator.faults.drop_rate, koch_emulator.faults.corrupt_rate = 1.0, 0.0
    with pytest.raises(CommError) as info:
        bus.read("Present_Position", "gripper")
    msg = str(info.value)
    assert "No reply" in msg and "'gripper' (id 6)" in msg and bus.port in msg and "power supply" in msg
    assert bus.stats.failures == 1


def test_dead_motor_is_named(bus: DynamixelBus, koch_emulator: EmulatedBus) -> None:
    koch_emulator.faults.dead_ids = {5}
    with pytest.raises(CommError, match=r"'wrist_roll' \(id 5\)"):
        bus.sync_read("Present_Position", normalize=False, num_retry=2)  # a busy box may delay a live reply too
    assert bus.ping("wrist_roll") is None
    assert bus.read("Present_Position", "wrist_flex", normalize=False) == 2048


def test_unplug_and_replug(bus: DynamixelBus, koch_emulator: EmulatedBus) -> None:
    koch_emulator.unplug()
    with pytest.raises(PortError) as info:
        bus.read("Present_Position", "gripper", num_retry=3)
    assert info.value.reason == "vanished"
    bus.disconnect()
    koch_emulator.replug()
    bus.connect()
    assert bus.read("Present_Position", "gripper", normalize=False) == 2048


# ------------------------------------------------------------------------------ discovery and setup
def test_scan_port_and_broadcast_ping(tmp_path: Path) -> None:
    with EmulatedBus("dynamixel", {1: "xl430-w250", 7: "xl330-m288"}, baudrate=57_600, name="scan",
                     port_dir=tmp_path / "p") as emu:
        assert DynamixelBus.scan_port(emu.port, baudrates=[1_000_000, 57_600]) == {57_600: [1, 7]}
        b = DynamixelBus(emu.port, {}, baudrate=57_600)
        b.connect(handshake=False)
        assert b.broadcast_ping() == {1: 1060, 7: 1200}
        b.disconnect(disable_torque=False)


def test_setup_factory_motor_found_at_57600(tmp_path: Path) -> None:
    with EmulatedBus("dynamixel", {1: "xl330-m288"}, baudrate=57_600, name="new", port_dir=tmp_path / "p") as emu:
        b = DynamixelBus(emu.port, koch_motors())
        assert b.setup_motor("wrist_flex") == (57_600, 1)
        assert list(emu.servos) == [4] and emu.servo(4).baudrate == 1_000_000
        emu.power_cycle()
        assert b.ping("wrist_flex") == 1200
        b.disconnect(disable_torque=False)  # the other five are absent


def test_setup_motor_at_default_baud_and_wrong_model(tmp_path: Path) -> None:
    with EmulatedBus("dynamixel", {1: "xl330-m288"}, name="new", port_dir=tmp_path / "p") as emu:
        b = DynamixelBus(emu.port, koch_motors())
        with pytest.raises(HandshakeError, match="'shoulder_pan' must be a xl430-w250"):
            b.setup_motor("shoulder_pan", initial_baudrate=1_000_000)
        assert b.setup_motor("gripper", initial_baudrate=1_000_000, initial_id=1) == (1_000_000, 1)
        assert list(emu.servos) == [6]
        emu.add_motor(1, "xl330-m288")
        with pytest.raises(MultipleMotorsError, match=r"More than one motor.*ids \[1, 6\]"):
            b.setup_motor("wrist_flex", initial_baudrate=1_000_000)
        emu.remove_motor(1)
        emu.remove_motor(6)
        with pytest.raises(NoMotorFoundError, match="No motor answered"):
            b.setup_motor("wrist_flex", initial_baudrate=1_000_000)
        b.disconnect(disable_torque=False)


def test_broadcast_ping_waits_for_late_replies(tmp_path: Path) -> None:
    # Dynamixels answer a broadcast in id-ordered time slots (a lone id 5 answers late), so the scan must
    # not end at the first quiet gap.
    with EmulatedBus("dynamixel", {17: "xl330-m288"}, name="late", port_dir=tmp_path / "p") as emu:
        emu.faults.latency_s = 0.02
        b = DynamixelBus(emu.port, {})
        b.connect(handshake=False)
        assert b.broadcast_ping() == {17: 1200}
        b.disconnect(disable_torque=False)


def test_broadcast_window_is_the_sdk_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(MotorBus, "broadcast_max_id", 252)  # the default, undoing this file's shortening
    b = DynamixelBus("/dev/null", {}, baudrate=57_600)
    # dynamixel_sdk broadcastPing: 14-byte status packets for MAX_ID ids, plus 3 ms per id, plus 16 ms.
    assert b._broadcast_window_ms(14) == pytest.approx(14 * 252 * 10_000 / 57_600 + 3.0 * 252 + 16.0)


# ------------------------------------------------------------------------------------------ calibration
def test_half_turn_homing(bus: DynamixelBus, koch_emulator: EmulatedBus) -> None:
    actual = {1: 100.0, 2: 4000.0, 3: 2047.0, 4: 3000.0, 5: 1024.0, 6: 4095.0}
    koch_emulator.set_actual(actual)
    bus.disable_torque()
    offsets = bus.set_half_turn_homings()
    assert offsets == {NAMES[i - 1]: 2047 - int(a) for i, a in actual.items()}
    assert all(abs(p - 2047) <= 1 for p in bus.sync_read("Present_Position", normalize=False).values())


def test_calibration_round_trip(bus: DynamixelBus, koch_emulator: EmulatedBus) -> None:
    cal = {
        n: MotorCalibration(id=i + 1, drive_mode=int(n == "gripper"), homing_offset=[-1024, 0, 2048, -3000, 7, 1][i],
                            range_min=500 + i, range_max=3500 - i)
        for i, n in enumerate(NAMES)
    }
    bus.disable_torque()
    bus.write("Drive_Mode", "gripper", 1)  # drive mode is the robot's to write, not write_calibration's
    assert not bus.is_calibrated
    bus.write_calibration(cal)
    assert bus.read_calibration() == cal
    assert bus.is_calibrated
    koch_emulator.servo(3).write_register("Min_Position_Limit", 0)
    assert not bus.is_calibrated
    bus.reset_calibration()
    assert bus.calibration == {}
    assert bus.read_calibration()["elbow_flex"] == MotorCalibration(3, 0, 0, 0, 4095)


def test_unknown_register_and_motor(bus: DynamixelBus) -> None:
    with pytest.raises(KeyError, match="Lock"):
        bus.read("Lock", "gripper")
    with pytest.raises(KeyError, match="elbow"):
        bus.read("Present_Position", "elbow")
    with pytest.raises(BusError, match="already connected"):
        bus.connect()
