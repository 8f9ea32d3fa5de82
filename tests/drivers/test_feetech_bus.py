"""FeetechBus against the wire-level servo emulator (SO-101 arm: six STS3215 at 1 Mbps)."""

from __future__ import annotations

import errno
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial
from scservo_sdk import scservo_def

from drivers.emulator import EmulatedBus
from drivers.motors import (
    BusError,
    CommError,
    FeetechBus,
    HandshakeError,
    Motor,
    MotorBus,
    MotorCalibration,
    MultipleMotorsError,
    NoMotorFoundError,
    NormMode,
    NotCalibratedError,
    PortError,
)

NAMES = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]


def so101_motors(model: str = "sts3215") -> dict[str, Motor]:
    modes = [NormMode.DEGREES] * 5 + [NormMode.RANGE_0_100]
    return {name: Motor(i + 1, model, mode) for i, (name, mode) in enumerate(zip(NAMES, modes, strict=True))}


@pytest.fixture(autouse=True)
def _short_broadcast_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """The emulator answers a broadcast at once and no motor here has an id above 20: wait for 20 id slots
    (~80 ms at 1 Mbps, ample for a loaded emulator thread) instead of all 252 (~0.8 s per baud rate)."""
    monkeypatch.setattr(MotorBus, "broadcast_max_id", 20)


@pytest.fixture
def bus(so101_emulator: EmulatedBus) -> Iterator[FeetechBus]:
    b = FeetechBus(so101_emulator.port, so101_motors())
    b.connect()
    yield b
    b.disconnect(disable_torque=False)


def lone_motor(tmp_path: Path, model: str = "sts3215", motor_id: int = 1, baudrate: int = 1_000_000) -> EmulatedBus:
    return EmulatedBus("feetech", {motor_id: model}, baudrate=baudrate, name="lone", port_dir=tmp_path / "p")


# ------------------------------------------------------------------------------------------ handshake
def test_connect_handshake_ok(so101_emulator: EmulatedBus) -> None:
    b = FeetechBus(so101_emulator.port, so101_motors())
    assert not b.is_connected
    b.connect()
    assert b.is_connected
    assert b.stats.packets > 0 and b.stats.failures == 0
    b.disconnect()
    assert not b.is_connected


def test_handshake_names_missing_motor(so101_emulator: EmulatedBus) -> None:
    so101_emulator.remove_motor(5)
    b = FeetechBus(so101_emulator.port, so101_motors())
    with pytest.raises(HandshakeError) as info:
        b.connect()
    assert info.value.missing == ["wrist_roll"]
    assert info.value.wrong == {}
    msg = str(info.value)
    assert "'wrist_roll' (id 5" in msg and "no reply" in msg and so101_emulator.port in msg
    assert "steady red" in msg  # the LED checklist
    assert not b.is_connected  # a failed handshake leaves the port closed


def test_handshake_names_wrong_model(so101_emulator: EmulatedBus) -> None:
    so101_emulator.remove_motor(6)
    so101_emulator.add_motor(6, "sts3250")
    b = FeetechBus(so101_emulator.port, so101_motors())
    with pytest.raises(HandshakeError) as info:
        b.connect()
    assert info.value.wrong == {"gripper": ("sts3215", 2825)}
    assert info.value.missing == []
    assert "'gripper' (id 6)" in str(info.value) and "sts3250" in str(info.value)


def test_handshake_refuses_mixed_firmware(so101_emulator: EmulatedBus) -> None:
    # Firmware bytes are read-only on the wire, so set them as the factory would.
    so101_emulator.servo(3).write_register("Firmware_Minor_Version", 9)
    b = FeetechBus(so101_emulator.port, so101_motors())
    with pytest.raises(HandshakeError, match="different firmware") as info:
        b.connect()
    assert "'elbow_flex' 3.9" in str(info.value) and "'gripper' 3.10" in str(info.value)


def test_connect_without_handshake_and_twice(so101_emulator: EmulatedBus) -> None:
    so101_emulator.remove_motor(2)
    b = FeetechBus(so101_emulator.port, so101_motors())
    b.connect(handshake=False)
    with pytest.raises(BusError, match="already connected"):
        b.connect()
    b.disconnect(disable_torque=False)


def test_unknown_model_and_duplicate_ids_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown Feetech model"):
        FeetechBus("/dev/null", {"a": Motor(1, "xl430-w250", NormMode.DEGREES)})
    with pytest.raises(ValueError, match="share id 1"):
        FeetechBus("/dev/null", {"a": Motor(1, "sts3215", NormMode.DEGREES), "b": Motor(1, "sts3215", NormMode.DEGREES)})
    with pytest.raises(ValueError, match="mix protocol"):
        FeetechBus("/dev/null", {"a": Motor(1, "sts3215", NormMode.DEGREES), "b": Motor(2, "scs0009", NormMode.DEGREES)})


# ------------------------------------------------------------------------------------- read / write
def test_read_write_raw(bus: FeetechBus, so101_emulator: EmulatedBus) -> None:
    so101_emulator.set_actual({2: 2100.0})
    assert bus.read("Present_Position", "shoulder_lift", normalize=False) == 2100
    bus.write("Goal_Position", "shoulder_lift", 3000, normalize=False)
    assert so101_emulator.servo(2).read_register("Goal_Position") == 3000
    assert bus.read("Goal_Position", "shoulder_lift", normalize=False) == 3000
    bus.write("Return_Delay_Time", "gripper", 7)
    assert so101_emulator.servo(6).read_register("Return_Delay_Time") == 7


def test_read_write_normalized(bus: FeetechBus, so101_emulator: EmulatedBus) -> None:
    bus.calibration = {
        "shoulder_pan": MotorCalibration(1, 0, 0, 1000, 3000),
        "gripper": MotorCalibration(6, 0, 0, 1000, 3000),
    }
    so101_emulator.set_actual({1: 3023.0, 6: 2500.0})
    assert bus.read("Present_Position", "shoulder_pan") == pytest.approx(1023 * 360 / 4095)
    assert bus.read("Present_Position", "gripper") == pytest.approx(75.0)
    bus.write("Goal_Position", "gripper", 25.0)
    assert so101_emulator.servo(6).read_register("Goal_Position") == 1500
    bus.calibration["gripper"] = MotorCalibration(6, 1, 0, 1000, 3000)  # drive mode applies on Feetech
    assert bus.read("Present_Position", "gripper") == pytest.approx(25.0)
    with pytest.raises(NotCalibratedError, match="'elbow_flex'"):
        bus.read("Present_Position", "elbow_flex")
    assert bus.read("Present_Position", "elbow_flex", normalize=False) == 2048


def test_sync_read_and_sync_write(bus: FeetechBus, so101_emulator: EmulatedBus) -> None:
    so101_emulator.set_actual({i: 1000.0 + 100 * i for i in range(1, 7)})
    assert bus.sync_read("Present_Position", normalize=False) == {n: 1100 + 100 * i for i, n in enumerate(NAMES)}
    assert bus.sync_read("Present_Position", ["gripper", "shoulder_pan"], normalize=False) == {
        "gripper": 1600, "shoulder_pan": 1100}
    goals = {n: 500 + 10 * i for i, n in enumerate(NAMES)}
    bus.sync_write("Goal_Position", goals, normalize=False)
    # The emulator answers requests in order, so a read after the (reply-less) sync write sees it.
    assert bus.sync_read("Goal_Position", normalize=False) == goals
    bus.sync_write("Acceleration", 17)  # a scalar goes to every motor
    assert set(bus.sync_read("Acceleration").values()) == {17}
    assert all(so101_emulator.servo(i).read_register("Acceleration") == 17 for i in range(1, 7))


def test_sync_read_write_normalized(bus: FeetechBus, so101_emulator: EmulatedBus) -> None:
    bus.calibration = {n: MotorCalibration(i + 1, 0, 0, 1047, 3047) for i, n in enumerate(NAMES)}
    so101_emulator.set_actual(dict.fromkeys(range(1, 7), 2047.0))
    values = bus.sync_read("Present_Position")
    assert values["gripper"] == pytest.approx(50.0)
    assert values["shoulder_pan"] == pytest.approx(0.0)
    bus.sync_write("Goal_Position", {"shoulder_pan": 90.0, "gripper": 100.0})
    assert bus.read("Goal_Position", "shoulder_pan", normalize=False) == int(90 * 4095 / 360 + 2047)
    assert bus.read("Goal_Position", "gripper", normalize=False) == 3047


def test_sign_magnitude_on_the_wire(bus: FeetechBus, so101_emulator: EmulatedBus) -> None:
    bus.write("Homing_Offset", "shoulder_pan", -1470, normalize=False)
    _, wire = so101_emulator.servo(1).read_bytes(31, 2)
    assert int.from_bytes(wire, "little") == 0x800 | 1470
    assert bus.read("Homing_Offset", "shoulder_pan", normalize=False) == -1470
    # Present = Actual - Offset; the factory Phase reports unwrapped (negative) positions.
    bus.write("Homing_Offset", "elbow_flex", 1000, normalize=False)
    so101_emulator.set_actual({3: 500.0})
    assert bus.read("Present_Position", "elbow_flex", normalize=False) == -500
    with pytest.raises(ValueError, match="Homing_Offset of 'elbow_flex'"):
        bus.write("Homing_Offset", "elbow_flex", 2048, normalize=False)


def test_torque_enable_disable_and_lock(bus: FeetechBus, so101_emulator: EmulatedBus) -> None:
    bus.enable_torque()
    assert all(s.torque_enabled and s.locked for s in so101_emulator.servos.values())
    bus.disable_torque(["gripper"])
    assert not so101_emulator.servo(6).torque_enabled and not so101_emulator.servo(6).locked
    assert so101_emulator.servo(5).torque_enabled
    with bus.torque_disabled(["wrist_roll"]):
        assert not so101_emulator.servo(5).torque_enabled
    assert so101_emulator.servo(5).torque_enabled
    bus.disconnect()  # disables torque by default
    assert not any(s.torque_enabled for s in so101_emulator.servos.values())


def test_configure_motors(bus: FeetechBus, so101_emulator: EmulatedBus) -> None:
    servo = so101_emulator.servo(2)
    assert servo.read_register("Phase") & 0x10  # the STS3215 factory value
    servo.write_register("Phase", 0x1C)
    bus.disable_torque()
    bus.configure_motors()
    assert servo.read_register("Phase") == 0x0C
    for s in so101_emulator.servos.values():
        assert s.read_register("Return_Delay_Time") == 0
        assert s.read_register("Acceleration") == 254
        assert s.read_register("Maximum_Acceleration") == 254


def test_concurrent_callers_share_the_bus(bus: FeetechBus) -> None:
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            for _ in range(40):
                assert bus.sync_read("Present_Position", normalize=False)["gripper"] == 2048
                bus.write("Goal_Time", "gripper", 0)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert bus.stats.retries == 0 and bus.stats.failures == 0


# ------------------------------------------------------------------------------------ faults, ports
def test_retries_recover_from_dropped_and_corrupt_replies(bus: FeetechBus, so101_emulator: EmulatedBus) -> None:
    so101_emulator.faults.seed = 7
    so101_emulator.faults.drop_rate = 0.3
    so101_emulator.faults.corrupt_rate = 0.3
    for _ in range(15):
        assert bus.read("Present_Position", "wrist_flex", normalize=False, num_retry=20) == 2048
    so101_emulator.faults.drop_rate = so101_emulator.faults.corrupt_rate = 0.05  # six replies must all pass
    for _ in range(3):
        assert len(bus.sync_read("Present_Position", normalize=False, num_retry=20)) == 6
    assert bus.stats.retries > 0
    assert bus.stats.timeouts > 0 and bus.stats.corrupt > 0
    assert bus.stats.failures == 0


def test_without_retries_a_lost_reply_is_a_clear_comm_error(bus: FeetechBus, so101_emulator: EmulatedBus) -> None:
    so101_emulator.faults.drop_rate = 1.0
    with pytest.raises(CommError) as info:
        bus.read("Present_Position", "wrist_flex")
    msg = str(info.value)
    assert "No reply" in msg and "'wrist_flex' (id 4)" in msg and bus.port in msg
    assert "3-pin cables" in msg and "power supply" in msg and "find-port" in msg
    assert bus.stats.failures == 1
    so101_emulator.faults.drop_rate = 0.0
    so101_emulator.faults.corrupt_rate = 1.0
    with pytest.raises(CommError, match="corrupt") as info:
        bus.read("Present_Position", "wrist_flex", num_retry=2)
    assert "3 attempts" in str(info.value)
    assert bus.stats.corrupt == 3 and bus.stats.failures == 2


def test_dead_motor_is_named(bus: FeetechBus, so101_emulator: EmulatedBus) -> None:
    so101_emulator.faults.dead_ids = {3}
    with pytest.raises(CommError) as info:
        bus.sync_read("Present_Position", normalize=False, num_retry=1)
    assert "'elbow_flex' (id 3)" in str(info.value) and "'gripper'" not in str(info.value)
    assert bus.ping("elbow_flex") is None
    assert bus.ping("gripper") == 777
    assert bus.read("Present_Position", "gripper", normalize=False) == 2048


def test_unplug_raises_port_error_and_replug_reconnects(bus: FeetechBus, so101_emulator: EmulatedBus) -> None:
    so101_emulator.unplug()
    with pytest.raises(PortError) as info:
        bus.sync_read("Present_Position", normalize=False, num_retry=3)
    assert info.value.reason == "vanished" and bus.port in str(info.value)
    assert not bus.is_connected
    bus.disconnect()  # shutdown paths never raise on a lost port
    so101_emulator.replug()
    bus.connect()
    assert bus.read("Present_Position", "gripper", normalize=False) == 2048


def test_disconnect_after_unplug_does_not_raise(bus: FeetechBus, so101_emulator: EmulatedBus) -> None:
    bus.enable_torque()
    so101_emulator.unplug()
    bus.disconnect()
    assert not bus.is_connected


def test_open_errors_say_what_to_do(tmp_path: Path, so101_emulator: EmulatedBus) -> None:
    with pytest.raises(PortError, match="find-port") as info:
        FeetechBus(str(tmp_path / "ttyACM9"), so101_motors()).connect()
    assert info.value.reason == "missing"
    first = FeetechBus(so101_emulator.port, so101_motors())
    first.connect()
    with pytest.raises(PortError, match="busy") as info:
        FeetechBus(so101_emulator.port, so101_motors()).connect()
    assert info.value.reason == "busy"
    first.disconnect()
    # Permission problems cannot be provoked as root, so check the classification of the OS error itself.
    denied = FeetechBus(so101_emulator.port, so101_motors())._open_error(
        serial.SerialException(errno.EACCES, "could not open port: [Errno 13] Permission denied"))
    assert denied.reason == "permission" and "dialout" in str(denied)


def test_status_error_bits_are_decoded(so101_emulator: EmulatedBus) -> None:
    text = FeetechBus(so101_emulator.port, so101_motors())._describe_error(0x21)
    assert "input voltage" in text and "12 V" in text and "overload" in text


def test_operations_need_a_connection(so101_emulator: EmulatedBus) -> None:
    b = FeetechBus(so101_emulator.port, so101_motors())
    with pytest.raises(BusError, match="not connected"):
        b.read("Present_Position", "gripper")
    b.disconnect()  # a no-op, not an error


# ------------------------------------------------------------------------------ discovery and setup
def test_broadcast_ping_and_scan_port(tmp_path: Path) -> None:
    with EmulatedBus("feetech", {1: "sts3215", 2: "sts3250"}, baudrate=57_600, name="scan",
                     port_dir=tmp_path / "p") as emu:
        assert FeetechBus.scan_port(emu.port, baudrates=[1_000_000, 57_600]) == {57_600: [1, 2]}
        b = FeetechBus(emu.port, {}, baudrate=57_600)
        b.connect(handshake=False)
        assert b.broadcast_ping() == {1: 777, 2: 2825}
        b.set_baudrate(1_000_000)
        assert b.broadcast_ping() == {}
        b.disconnect(disable_torque=False)


def test_setup_factory_motor_at_default_baud(tmp_path: Path) -> None:
    with lone_motor(tmp_path) as emu:
        b = FeetechBus(emu.port, so101_motors())
        assert b.setup_motor("wrist_flex") == (1_000_000, 1)
        assert list(emu.servos) == [4]
        emu.power_cycle()  # written with Lock = 0, so it survives
        assert list(emu.servos) == [4] and emu.servo(4).baudrate == 1_000_000
        assert b.ping("wrist_flex") == 777
        b.disconnect(disable_torque=False)  # the other five are absent


def test_setup_motor_found_at_another_baud(tmp_path: Path) -> None:
    with lone_motor(tmp_path, baudrate=57_600, motor_id=9) as emu:
        b = FeetechBus(emu.port, so101_motors())
        assert b.setup_motor("gripper") == (57_600, 9)
        assert b.baudrate == 1_000_000
        emu.power_cycle()
        assert emu.servo(6).baudrate == 1_000_000
        assert b.ping(6) == 777
        b.disconnect(disable_torque=False)  # the other five are absent


def test_setup_motor_with_known_address(tmp_path: Path) -> None:
    with lone_motor(tmp_path, motor_id=3) as emu:
        b = FeetechBus(emu.port, so101_motors())
        assert b.setup_motor("shoulder_pan", initial_baudrate=1_000_000, initial_id=3) == (1_000_000, 3)
        assert list(emu.servos) == [1]
        b.disconnect(disable_torque=False)  # the other five are absent


def test_setup_motor_refuses_wrong_model_two_motors_and_none(tmp_path: Path) -> None:
    with lone_motor(tmp_path, model="sts3250") as emu:
        b = FeetechBus(emu.port, so101_motors())
        with pytest.raises(HandshakeError, match="'gripper' must be a sts3215"):
            b.setup_motor("gripper", initial_baudrate=1_000_000)
        emu.add_motor(2, "sts3215")
        with pytest.raises(MultipleMotorsError, match="More than one motor") as several:
            b.setup_motor("gripper", initial_baudrate=1_000_000)
        assert (several.value.ids, several.value.baudrate) == ([1, 2], 1_000_000)
        assert sorted(emu.servos) == [1, 2]  # nothing was written
        emu.remove_motor(1)
        emu.remove_motor(2)
        with pytest.raises(NoMotorFoundError, match="No motor answered") as none:
            b.setup_motor("gripper", initial_baudrate=1_000_000)
        assert none.value.baudrates == [1_000_000] and "exactly one motor" in str(none.value)
        b.disconnect(disable_torque=False)


def test_broadcast_ping_waits_for_late_replies(tmp_path: Path) -> None:
    # Real servos answer a broadcast in id-ordered time slots, so a high id's reply comes late after a quiet
    # line: the scan must not end at the first silence.
    with lone_motor(tmp_path, motor_id=17) as emu:
        emu.faults.latency_s = 0.02
        b = FeetechBus(emu.port, {})
        b.connect(handshake=False)
        assert b.broadcast_ping() == {17: 777}
        b.disconnect(disable_torque=False)


def test_broadcast_window_is_the_sdk_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(MotorBus, "broadcast_max_id", 252)  # the default, undoing this file's shortening
    b = FeetechBus("/dev/null", {}, baudrate=1_000_000)
    # scservo_sdk: 6-byte status packets for MAX_ID ids, plus 3 ms per id, plus 16 ms.
    assert b._broadcast_window_ms(6) == pytest.approx(6 * 252 * 0.01 + 3.0 * 252 + 16.0)


# ------------------------------------------------------------------------------------------ calibration
def test_half_turn_homing_centres_present_position(bus: FeetechBus, so101_emulator: EmulatedBus) -> None:
    actual = {1: 1000.0, 2: 3000.0, 3: 2047.0, 4: 100.0, 5: 4000.0, 6: 2600.0}
    so101_emulator.set_actual(actual)
    bus.disable_torque()
    offsets = bus.set_half_turn_homings()
    assert offsets == {NAMES[i - 1]: int(a) - 2047 for i, a in actual.items()}
    positions = bus.sync_read("Present_Position", normalize=False)
    assert all(abs(p - 2047) <= 1 for p in positions.values())
    assert so101_emulator.servo(1).read_register("Homing_Offset") == -1047


def test_half_turn_homing_that_cannot_be_encoded_names_the_motor(bus: FeetechBus,
                                                                   so101_emulator: EmulatedBus) -> None:
    so101_emulator.set_actual({5: 4095.0})
    bus.disable_torque()
    with pytest.raises(BusError, match=r"'wrist_roll' \(id 5\).*2048.*11-bit"):
        bus.set_half_turn_homings()
    assert all(s.read_register("Homing_Offset") == 0 for s in so101_emulator.servos.values())


def test_calibration_write_read_round_trip(bus: FeetechBus, so101_emulator: EmulatedBus) -> None:
    cal = {
        name: MotorCalibration(id=i + 1, drive_mode=0, homing_offset=[-1470, 812, 0, -2047, 2047, 1407][i],
                               range_min=700 + i, range_max=3300 - i)
        for i, name in enumerate(NAMES)
    }
    assert not bus.is_calibrated
    bus.disable_torque()
    bus.write_calibration(cal)
    assert bus.calibration == cal
    assert bus.read_calibration() == cal
    assert bus.is_calibrated
    so101_emulator.power_cycle()
    assert bus.read_calibration() == cal
    so101_emulator.servo(2).write_register("Max_Position_Limit", 3000)
    assert not bus.is_calibrated
    bus.reset_calibration(["shoulder_lift"])
    assert "shoulder_lift" not in bus.calibration
    assert bus.read_calibration()["shoulder_lift"] == MotorCalibration(2, 0, 0, 0, 4095)


# --------------------------------------------------------------------------------- SCS0009, protocol 1
def test_scs0009_protocol_1_basics(tmp_path: Path, so101_emulator: EmulatedBus,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # Whatever another library last passed to `scs.PacketHandler(end)` must not matter to either bus.
    monkeypatch.setattr(scservo_def, "SCS_END", 1)
    motors = {"pan": Motor(1, "scs0009", NormMode.DEGREES), "tilt": Motor(2, "scs0009", NormMode.RANGE_0_100)}
    with EmulatedBus("feetech", {1: "scs0009", 2: "scs0009"}, name="scs", port_dir=tmp_path / "p") as emu:
        scs = FeetechBus(emu.port, motors)
        assert scs.protocol_version == 1
        scs.connect()
        sts = FeetechBus(so101_emulator.port, so101_motors())
        sts.connect()
        emu.set_actual({1: 700.0, 2: 3.0})
        so101_emulator.set_actual({1: 700.0})
        # Interleaved on one process: each bus keeps its own byte order (700 = 0x02BC).
        for _ in range(3):
            assert scs.sync_read("Present_Position", normalize=False) == {"pan": 700, "tilt": 3}
            assert sts.read("Present_Position", "shoulder_pan", normalize=False) == 700
        scs.write("Goal_Position", "tilt", 0x0102, normalize=False)
        _, wire = emu.servo(2).read_bytes(42, 2)
        assert wire == bytes([0x01, 0x02])  # big-endian on the wire
        scs.sync_write("Goal_Position", {"pan": 300, "tilt": 900}, normalize=False)
        assert scs.sync_read("Goal_Position", normalize=False) == {"pan": 300, "tilt": 900}
        scs.disable_torque()
        scs.write_calibration({"pan": MotorCalibration(1, 0, 0, 10, 1000), "tilt": MotorCalibration(2, 0, 0, 0, 1023)})
        assert scs.read_calibration()["pan"] == MotorCalibration(1, 0, 0, 10, 1000)
        assert scs.is_calibrated
        assert scs.read("Present_Position", "pan") == pytest.approx((700 - 505) * 360 / 1023)
        with pytest.raises(BusError, match="no Homing_Offset"):
            scs.set_half_turn_homings()
        scs.disconnect()
        sts.disconnect()


def test_scs0009_setup_motor_at_known_baud(tmp_path: Path) -> None:
    with lone_motor(tmp_path, model="scs0009", motor_id=1, baudrate=500_000) as emu:
        b = FeetechBus(emu.port, {"pan": Motor(3, "scs0009", NormMode.DEGREES)})
        assert b.setup_motor("pan", initial_baudrate=500_000) == (500_000, 1)  # found by pinging ids in turn
        assert emu.servo(3).baudrate == 1_000_000
        b.disconnect(disable_torque=False)  # the other five are absent
