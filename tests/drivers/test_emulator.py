"""The servo emulator against the vendors' own SDKs (scservo_sdk, dynamixel_sdk) and raw bytes.

If these pass, the robotui drivers (built on the same SDKs) see exactly what a real bus would show them.
"""

from __future__ import annotations

import os
import random
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dynamixel_sdk as dxl
import pytest
import scservo_sdk as scs
import serial
from dynamixel_sdk.protocol2_packet_handler import Protocol2PacketHandler

from drivers.emulator import EmulatedBus, Faults, default_port_dir
from drivers.emulator.dynamixel_protocol import (
    DynamixelFramer,
    crc16,
    stuff,
    unstuff,
)
from drivers.emulator.dynamixel_protocol import (
    instruction_packet as dxl_instruction,
)
from drivers.emulator.faults import EmulatorStats, FaultInjector
from drivers.emulator.feetech_protocol import FeetechFramer, checksum
from drivers.emulator.feetech_protocol import instruction_packet as feetech_instruction
from drivers.motors import tables
from drivers.motors.dynamixel import DynamixelPortHandler
from drivers.motors.feetech import FeetechPortHandler

STS = tables.STS_SMS_SERIES_CONTROL_TABLE
SCS_TABLE = tables.SCS_SERIES_CONTROL_TABLE
X = tables.X_SERIES_CONTROL_TABLE


class FakeClock:
    """Deterministic time for motion tests: the servos integrate motion against this."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def wait_until(predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


def read_exactly(port: serial.Serial, count: int, timeout: float = 1.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while len(data) < count and time.monotonic() < deadline:
        data += port.read(count - len(data))
    return data


def sign_magnitude(value: int, bit: int) -> int:
    return (1 << bit) | -value if value < 0 else value


@pytest.fixture(autouse=True)
def _patient_sdk_timeouts(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Longer SDK reply windows (~100 ms instead of ~34 ms) so a busy CI machine cannot fake a timeout;
    and scservo_sdk's process-global byte order back to little-endian after protocol-1 tests."""
    monkeypatch.setattr(scs.port_handler, "LATENCY_TIMER", 50)
    monkeypatch.setattr(dxl.port_handler, "LATENCY_TIMER", 50)
    yield
    scs.PacketHandler(0)


@pytest.fixture
def sts(so101_emulator: EmulatedBus) -> Iterator[tuple[scs.PortHandler, object]]:
    """scservo_sdk port + protocol-0 packet handler opened on the SO-101 emulator."""
    port = FeetechPortHandler(so101_emulator.port)
    assert port.openPort()
    yield port, scs.PacketHandler(0)
    port.closePort()


@pytest.fixture
def dxl_port(koch_emulator: EmulatedBus) -> Iterator[tuple[dxl.PortHandler, object]]:
    port = DynamixelPortHandler(koch_emulator.port)
    assert port.openPort()
    assert port.setBaudRate(1_000_000)
    yield port, dxl.PacketHandler(2.0)
    port.closePort()


# ============================================================================================ Feetech


def test_feetech_ping_reports_model_and_missing_id_times_out(sts) -> None:
    port, ph = sts
    for motor_id in range(1, 7):
        assert ph.ping(port, motor_id) == (777, scs.COMM_SUCCESS, 0)
    model, result, _ = ph.ping(port, 7)
    assert result == scs.COMM_RX_TIMEOUT and model == 0


def test_feetech_factory_defaults(so101_emulator: EmulatedBus, sts) -> None:
    port, ph = sts
    assert ph.read1ByteTxRx(port, 2, STS["Firmware_Major_Version"][0])[0] == tables.FEETECH_FIRMWARE[0]
    assert ph.read1ByteTxRx(port, 2, STS["Firmware_Minor_Version"][0])[0] == tables.FEETECH_FIRMWARE[1]
    assert ph.read2ByteTxRx(port, 2, STS["Max_Position_Limit"][0])[0] == 4095
    assert ph.read1ByteTxRx(port, 2, STS["P_Coefficient"][0])[0] == 32
    assert ph.read1ByteTxRx(port, 2, STS["Return_Delay_Time"][0])[0] == 250
    assert ph.read1ByteTxRx(port, 2, STS["Phase"][0])[0] & 0x10
    assert ph.read1ByteTxRx(port, 2, STS["Baud_Rate"][0])[0] == 0
    servo = so101_emulator.servo(2)
    assert (servo.torque_enabled, servo.locked, servo.present_position, servo.goal_actual) == (
        False,
        True,
        2048,
        None,
    )


def test_feetech_write_then_read_roundtrip(so101_emulator: EmulatedBus, sts) -> None:
    port, ph = sts
    assert ph.write1ByteTxRx(port, 3, STS["P_Coefficient"][0], 16) == (scs.COMM_SUCCESS, 0)
    assert ph.write2ByteTxRx(port, 3, STS["Max_Torque_Limit"][0], 777) == (scs.COMM_SUCCESS, 0)
    assert ph.read1ByteTxRx(port, 3, STS["P_Coefficient"][0]) == (16, scs.COMM_SUCCESS, 0)
    assert ph.read2ByteTxRx(port, 3, STS["Max_Torque_Limit"][0]) == (777, scs.COMM_SUCCESS, 0)
    assert so101_emulator.servo(3).read_register("P_Coefficient") == 16
    assert so101_emulator.servo(4).read_register("P_Coefficient") == 32  # only the addressed motor
    # Read-only bytes ignore wire writes, but factory setup (write_register) can set them.
    assert ph.write2ByteTxRx(port, 3, STS["Model_Number"][0], 1) == (scs.COMM_SUCCESS, 0)
    assert ph.read2ByteTxRx(port, 3, STS["Model_Number"][0])[0] == 777
    so101_emulator.servo(3).write_register("Firmware_Minor_Version", 9)
    assert ph.read1ByteTxRx(port, 3, STS["Firmware_Minor_Version"][0])[0] == 9


def test_feetech_reg_write_waits_for_action(so101_emulator: EmulatedBus, sts) -> None:
    port, ph = sts
    address = STS["Acceleration"][0]
    for motor_id in (1, 2):
        assert ph.regWriteTxRx(port, motor_id, address, 1, [100 + motor_id]) == (scs.COMM_SUCCESS, 0)
    assert ph.read1ByteTxRx(port, 1, address)[0] == 0
    assert ph.action(port, scs.BROADCAST_ID) == scs.COMM_SUCCESS
    assert wait_until(lambda: so101_emulator.servo(2).read_register("Acceleration") == 102)
    assert ph.read1ByteTxRx(port, 1, address)[0] == 101


def test_feetech_sync_read_returns_each_motor(so101_emulator: EmulatedBus, sts) -> None:
    port, ph = sts
    so101_emulator.set_actual({i: 1000.0 + 100 * i for i in range(1, 7)})
    address, size = STS["Present_Position"]
    group = scs.GroupSyncRead(port, ph, address, size)
    for motor_id in range(1, 7):
        group.addParam(motor_id)
    assert group.txRxPacket() == scs.COMM_SUCCESS
    assert [group.getData(i, address, size) for i in range(1, 7)] == [1000 + 100 * i for i in range(1, 7)]


def test_feetech_sync_read_fails_when_one_motor_is_missing(so101_emulator: EmulatedBus, sts) -> None:
    port, ph = sts
    group = scs.GroupSyncRead(port, ph, *STS["Present_Position"])
    for motor_id in (1, 2, 9):
        group.addParam(motor_id)
    assert group.txRxPacket() == scs.COMM_RX_TIMEOUT


def test_feetech_sync_write_sets_goals_without_reply(so101_emulator: EmulatedBus, sts) -> None:
    port, ph = sts
    address, size = STS["Goal_Position"]
    group = scs.GroupSyncWrite(port, ph, address, size)
    for motor_id in range(1, 7):
        value = 2000 + motor_id
        group.addParam(motor_id, [scs.SCS_LOBYTE(value), scs.SCS_HIBYTE(value)])
    replies_before = so101_emulator.stats.replies
    assert group.txPacket() == scs.COMM_SUCCESS
    assert wait_until(lambda: so101_emulator.servo(6).read_register("Goal_Position") == 2006)
    assert [so101_emulator.servo(i).read_register("Goal_Position") for i in range(1, 7)] == [
        2000 + i for i in range(1, 7)
    ]
    assert so101_emulator.stats.replies == replies_before


def test_feetech_broadcast_ping_answers_every_motor_in_id_order(so101_emulator: EmulatedBus) -> None:
    with serial.Serial(so101_emulator.port, 1_000_000, timeout=0.05) as port:
        port.write(feetech_instruction(0xFE, 0x01))
        data = read_exactly(port, 36)
    packets = [data[i : i + 6] for i in range(0, len(data), 6)]
    assert [p[2] for p in packets] == [1, 2, 3, 4, 5, 6]
    for packet in packets:
        assert packet[:2] == b"\xff\xff" and packet[3:5] == b"\x02\x00"
        assert packet[5] == checksum(packet[2:5])


def test_feetech_bad_checksum_is_ignored_and_garbage_resyncs(so101_emulator: EmulatedBus) -> None:
    ping_1 = feetech_instruction(1, 0x01)
    bad = bytearray(feetech_instruction(2, 0x01))
    bad[-1] ^= 0x55
    garbage = bytes([0x00, 0xFF, 0x13, 0xFF, 0xFF, 0xFF, 0x07])  # includes a false header
    with serial.Serial(so101_emulator.port, 1_000_000, timeout=0.05) as port:
        port.write(garbage + bytes(bad) + ping_1)
        reply = read_exactly(port, 6)
        assert reply == bytes([0xFF, 0xFF, 1, 2, 0, checksum(bytes([1, 2, 0]))])
        time.sleep(0.05)
        assert port.read(64) == b""  # nothing for id 2: its checksum was wrong
    assert so101_emulator.stats.bad_packets >= 1


def test_feetech_false_header_hiding_a_packet_expires() -> None:
    """A false header with a long length swallows a real packet until it expires, then the packet is found."""
    framer = FeetechFramer()
    real = feetech_instruction(4, 0x02, bytes([56, 2]))
    assert framer.feed(b"\xff\xff\x05\x40" + real) == []
    assert framer.pending
    packets = []
    for _ in range(8):
        packets += framer.expire()
    assert [(p.motor_id, p.instruction, p.params, p.valid) for p in packets] == [(4, 2, bytes([56, 2]), True)]


def test_feetech_framer_handles_split_and_random_bytes() -> None:
    framer = FeetechFramer()
    packet = feetech_instruction(3, 0x03, bytes([42, 0x10, 0x08]))
    assert framer.feed(packet[:3]) == []
    assert [p.params for p in framer.feed(packet[3:])] == [bytes([42, 0x10, 0x08])]
    rng = random.Random(7)
    for _ in range(200):
        framer.feed(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))))
        framer.expire()
    framer.reset()
    assert [p.motor_id for p in framer.feed(packet)] == [3]


def test_feetech_lock_decides_eeprom_persistence(so101_emulator: EmulatedBus, sts) -> None:
    port, ph = sts
    address = STS["Max_Position_Limit"][0]
    lock = STS["Lock"][0]
    # Lock = 1 (power-on state): the write takes effect now but is lost on power cycle.
    assert so101_emulator.servo(1).locked
    assert ph.write2ByteTxRx(port, 1, address, 3000) == (scs.COMM_SUCCESS, 0)
    assert ph.read2ByteTxRx(port, 1, address)[0] == 3000
    so101_emulator.power_cycle()
    assert ph.read2ByteTxRx(port, 1, address)[0] == 4095
    # Lock = 0: persisted.
    assert ph.write1ByteTxRx(port, 1, lock, 0) == (scs.COMM_SUCCESS, 0)
    assert ph.write2ByteTxRx(port, 1, address, 3000) == (scs.COMM_SUCCESS, 0)
    so101_emulator.power_cycle()
    assert ph.read2ByteTxRx(port, 1, address)[0] == 3000
    assert so101_emulator.servo(1).locked  # Lock itself is RAM and comes back as 1


def test_power_cycle_resets_ram(so101_emulator: EmulatedBus, sts) -> None:
    port, ph = sts
    assert ph.write1ByteTxRx(port, 5, STS["Torque_Enable"][0], 1) == (scs.COMM_SUCCESS, 0)
    assert ph.write1ByteTxRx(port, 5, STS["Acceleration"][0], 254) == (scs.COMM_SUCCESS, 0)
    so101_emulator.power_cycle()
    servo = so101_emulator.servo(5)
    assert not servo.torque_enabled and servo.goal_actual is None
    assert servo.read_register("Acceleration") == 0


def test_feetech_homing_offset_is_subtracted(so101_emulator: EmulatedBus, sts) -> None:
    port, ph = sts
    offset_address = STS["Homing_Offset"][0]
    position_address = STS["Present_Position"][0]
    assert ph.write1ByteTxRx(port, 1, STS["Lock"][0], 0) == (scs.COMM_SUCCESS, 0)
    assert ph.write2ByteTxRx(port, 1, offset_address, sign_magnitude(-1470, 11)) == (scs.COMM_SUCCESS, 0)
    assert ph.read2ByteTxRx(port, 1, offset_address)[0] == 0x800 | 1470
    so101_emulator.set_actual({1: 577.0})
    assert ph.read2ByteTxRx(port, 1, position_address)[0] == 2047  # 577 - (-1470)
    servo = so101_emulator.servo(1)
    assert servo.read_register("Homing_Offset") == -1470 and servo.present_position == 2047
    # Goals live in the same homed frame.
    assert ph.write1ByteTxRx(port, 1, STS["Torque_Enable"][0], 1) == (scs.COMM_SUCCESS, 0)
    assert servo.goal_actual == 577.0  # torque-on holds the current position
    assert ph.write2ByteTxRx(port, 1, STS["Goal_Position"][0], 2100) == (scs.COMM_SUCCESS, 0)
    assert servo.goal_actual == 630.0


def test_feetech_phase_bit_decides_position_wrapping(so101_emulator: EmulatedBus, sts) -> None:
    port, ph = sts
    assert ph.write1ByteTxRx(port, 2, STS["Lock"][0], 0) == (scs.COMM_SUCCESS, 0)
    assert ph.write2ByteTxRx(port, 2, STS["Homing_Offset"][0], 100) == (scs.COMM_SUCCESS, 0)
    so101_emulator.set_actual({2: 50.0})
    raw = ph.read2ByteTxRx(port, 2, STS["Present_Position"][0])[0]
    assert raw == 0x8000 | 50  # factory Phase (bit 4 set): unwrapped, sign-magnitude -50
    phase = ph.read1ByteTxRx(port, 2, STS["Phase"][0])[0]
    assert ph.write1ByteTxRx(port, 2, STS["Phase"][0], phase & ~0x10) == (scs.COMM_SUCCESS, 0)
    assert ph.read2ByteTxRx(port, 2, STS["Present_Position"][0])[0] == 4046  # wrapped into [0, 4095]
    # The position loop runs in the wrapped frame: torque-on holds the shaft where it is, goals stay in its turn.
    servo = so101_emulator.servo(2)
    assert ph.write1ByteTxRx(port, 2, STS["Torque_Enable"][0], 1) == (scs.COMM_SUCCESS, 0)
    assert servo.goal_actual == 50.0
    assert ph.write2ByteTxRx(port, 2, STS["Goal_Position"][0], 4000) == (scs.COMM_SUCCESS, 0)
    assert servo.goal_actual == 4.0


def test_feetech_position_limits_clamp_goals(so101_emulator: EmulatedBus, sts) -> None:
    port, ph = sts
    servo = so101_emulator.servo(4)
    servo.write_register("Min_Position_Limit", 1000)
    servo.write_register("Max_Position_Limit", 3000)
    assert ph.write1ByteTxRx(port, 4, STS["Torque_Enable"][0], 1) == (scs.COMM_SUCCESS, 0)
    assert ph.write2ByteTxRx(port, 4, STS["Goal_Position"][0], 3500) == (scs.COMM_SUCCESS, 0)
    assert servo.goal_actual == 3000.0
    assert ph.write2ByteTxRx(port, 4, STS["Goal_Position"][0], 200) == (scs.COMM_SUCCESS, 0)
    assert servo.goal_actual == 1000.0
    assert servo.read_register("Goal_Position") == 200  # the register keeps what was written


def test_internal_motion_moves_at_max_speed_to_the_goal(tmp_path: Path) -> None:
    clock = FakeClock()
    bus = EmulatedBus("feetech", {1: "sts3215"}, max_speed=1000.0, port_dir=tmp_path, clock=clock)
    servo = bus.servo(1)
    servo.write_register("Torque_Enable", 1)
    servo.write_register("Goal_Position", 2548)
    clock.advance(0.2)
    assert servo.actual == pytest.approx(2248.0)
    assert servo.read_register("Moving") == 1
    assert servo.read_register("Present_Velocity") == 1000
    clock.advance(1.0)
    assert servo.actual == 2548.0 and servo.present_position == 2548
    assert servo.read_register("Moving") == 0
    assert servo.read_register("Present_Velocity") == 0
    servo.write_register("Goal_Position", 2448)
    clock.advance(0.05)
    assert servo.actual == pytest.approx(2498.0)
    assert servo.read_register("Present_Velocity") == -1000 and servo.present_position == 2498


def test_internal_motion_through_the_sdk(so101_emulator: EmulatedBus, sts) -> None:
    port, ph = sts
    assert ph.write1ByteTxRx(port, 6, STS["Torque_Enable"][0], 1) == (scs.COMM_SUCCESS, 0)
    assert ph.write2ByteTxRx(port, 6, STS["Goal_Position"][0], 2300) == (scs.COMM_SUCCESS, 0)
    assert wait_until(lambda: ph.read2ByteTxRx(port, 6, STS["Present_Position"][0])[0] == 2300)
    assert ph.read1ByteTxRx(port, 6, STS["Moving"][0])[0] == 0


def test_limp_arm_follows_set_actual_and_external_motion_never_moves(tmp_path: Path) -> None:
    clock = FakeClock()
    bus = EmulatedBus("feetech", {1: "sts3215"}, motion="external", port_dir=tmp_path, clock=clock)
    servo = bus.servo(1)
    bus.set_actual({1: 1234.0})
    assert servo.present_position == 1234 and servo.goal_actual is None
    servo.write_register("Torque_Enable", 1)
    servo.write_register("Goal_Position", 3000)
    clock.advance(5.0)
    assert servo.actual == 1234.0 and servo.goal_actual == 3000.0
    assert servo.read_register("Moving") == 1  # the sim has not got it there yet
    with bus.lock:
        bus.set_actual({1: servo.goal_actual})
    assert servo.read_register("Moving") == 0


def test_motor_at_another_baud_does_not_answer(so101_emulator: EmulatedBus, sts) -> None:
    port, ph = sts
    so101_emulator.add_motor(10, "sts3215", baudrate=500_000)
    assert ph.ping(port, 10)[1] == scs.COMM_RX_TIMEOUT
    assert port.setBaudRate(500_000)
    assert so101_emulator.client_baudrate == 500_000
    assert ph.ping(port, 10) == (777, scs.COMM_SUCCESS, 0)
    assert ph.ping(port, 1)[1] == scs.COMM_RX_TIMEOUT


def test_baud_rate_write_takes_effect_after_the_reply(so101_emulator: EmulatedBus, sts) -> None:
    port, ph = sts
    code = tables.FEETECH_BAUDRATE_TABLE[250_000]
    assert ph.write1ByteTxRx(port, 2, STS["Baud_Rate"][0], code) == (scs.COMM_SUCCESS, 0)
    assert so101_emulator.servo(2).baudrate == 250_000
    assert ph.ping(port, 2)[1] == scs.COMM_RX_TIMEOUT
    assert port.setBaudRate(250_000)
    assert ph.ping(port, 2) == (777, scs.COMM_SUCCESS, 0)


def test_id_write_rekeys_the_motor(so101_emulator: EmulatedBus, sts) -> None:
    port, ph = sts
    servo = so101_emulator.servo(1)
    assert ph.write1ByteTxRx(port, 1, STS["ID"][0], 20) == (scs.COMM_SUCCESS, 0)
    assert so101_emulator.servo(20) is servo
    assert 1 not in so101_emulator.servos and set(so101_emulator.servos) == {2, 3, 4, 5, 6, 20}
    assert ph.ping(port, 20) == (777, scs.COMM_SUCCESS, 0)
    assert ph.ping(port, 1)[1] == scs.COMM_RX_TIMEOUT


def test_motor_setup_of_a_factory_fresh_motor(tmp_path: Path) -> None:
    """One motor at a time on the bus, as motor setup does: find it at its baud, give it an id and 1 Mbps."""
    with EmulatedBus("feetech", {}, baudrate=1_000_000, port_dir=tmp_path) as bus:
        bus.add_motor(1, "sts3215", baudrate=115_200)
        port = FeetechPortHandler(bus.port)
        ph = scs.PacketHandler(0)
        try:
            assert port.openPort()
            assert ph.ping(port, 1)[1] == scs.COMM_RX_TIMEOUT
            assert port.setBaudRate(115_200)
            assert ph.ping(port, 1)[0] == 777
            assert ph.write1ByteTxRx(port, 1, STS["Lock"][0], 0) == (scs.COMM_SUCCESS, 0)
            assert ph.write1ByteTxRx(port, 1, STS["ID"][0], 5) == (scs.COMM_SUCCESS, 0)
            assert ph.write1ByteTxRx(port, 5, STS["Baud_Rate"][0], 0) == (scs.COMM_SUCCESS, 0)
            bus.power_cycle()
            assert port.setBaudRate(1_000_000)
            assert ph.ping(port, 5)[0] == 777
        finally:
            port.closePort()
        assert bus.remove_motor(5).id == 5 and bus.servos == {}


# ============================================================================================= faults


def test_dropped_replies_time_out(so101_emulator: EmulatedBus, sts) -> None:
    port, ph = sts
    so101_emulator.faults.drop_rate = 1.0
    assert ph.read2ByteTxRx(port, 1, STS["Present_Position"][0])[1] == scs.COMM_RX_TIMEOUT
    assert so101_emulator.stats.dropped == 1
    so101_emulator.faults.drop_rate = 0.0
    assert ph.read2ByteTxRx(port, 1, STS["Present_Position"][0])[1] == scs.COMM_SUCCESS


def test_corrupted_replies_are_rejected_by_the_sdk(so101_emulator: EmulatedBus, sts) -> None:
    port, ph = sts
    so101_emulator.faults = Faults(corrupt_rate=1.0, seed=1)
    assert ph.read2ByteTxRx(port, 1, STS["Present_Position"][0])[1] == scs.COMM_RX_CORRUPT
    group = scs.GroupSyncRead(port, ph, *STS["Present_Position"])
    group.addParam(1)
    assert group.txRxPacket() == scs.COMM_RX_CORRUPT
    assert so101_emulator.stats.corrupted == 2


def test_dead_motor_neither_answers_nor_obeys(so101_emulator: EmulatedBus, sts) -> None:
    port, ph = sts
    so101_emulator.faults.dead_ids.add(3)
    assert ph.ping(port, 3)[1] == scs.COMM_RX_TIMEOUT
    assert ph.write1ByteTxRx(port, 3, STS["P_Coefficient"][0], 5)[0] == scs.COMM_RX_TIMEOUT
    assert so101_emulator.servo(3).read_register("P_Coefficient") == 32
    assert ph.ping(port, 4)[1] == scs.COMM_SUCCESS
    so101_emulator.faults.dead_ids.clear()
    assert ph.ping(port, 3)[1] == scs.COMM_SUCCESS


def test_latency_beyond_the_sdk_timeout_is_a_timeout(so101_emulator: EmulatedBus, sts) -> None:
    port, ph = sts
    so101_emulator.faults.latency_s = 1.5  # beyond the patched window (500 ms on a pseudo-terminal)
    assert ph.ping(port, 1)[1] == scs.COMM_RX_TIMEOUT


def test_seeded_faults_repeat() -> None:
    def pattern(seed: int) -> list[bool]:
        injector = FaultInjector(Faults(drop_rate=0.5, seed=seed))
        return [injector.apply(b"\xff\xff\x01\x02\x00\xfc", EmulatorStats()) is None for _ in range(64)]

    assert pattern(3) == pattern(3)
    assert pattern(3) != pattern(4)
    assert 10 < sum(pattern(3)) < 54


# ================================================================================== port lifecycle


def test_unplug_removes_the_device_and_replug_restores_it(so101_emulator: EmulatedBus) -> None:
    port = FeetechPortHandler(so101_emulator.port)
    ph = scs.PacketHandler(0)
    assert port.openPort()
    assert ph.ping(port, 1)[1] == scs.COMM_SUCCESS
    so101_emulator.servo(1).write_register("P_Coefficient", 12)
    so101_emulator.unplug()
    assert not so101_emulator.plugged and not os.path.lexists(so101_emulator.port)
    with pytest.raises((serial.SerialException, OSError, termios.error)):  # tcdrain fails first: EIO
        ph.ping(port, 1)
    port.ser.close()
    so101_emulator.replug()
    assert so101_emulator.plugged and os.path.islink(so101_emulator.port)
    port = FeetechPortHandler(so101_emulator.port)
    try:
        assert port.openPort()
        assert ph.read1ByteTxRx(port, 1, STS["P_Coefficient"][0]) == (12, scs.COMM_SUCCESS, 0)
    finally:
        port.closePort()


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_stop_leaves_nothing_behind(tmp_path: Path) -> None:
    fds_before, threads_before = _open_fds(), set(threading.enumerate())
    bus = EmulatedBus("dynamixel", {1: "xl430-w250"}, name="leak", port_dir=tmp_path / "p")
    bus.start()
    link = Path(bus.port)
    assert link.is_symlink() and os.readlink(link).startswith("/dev/pts/")
    bus.unplug()
    bus.replug()
    bus.stop()
    bus.stop()
    assert not os.path.lexists(link)
    assert set(threading.enumerate()) == threads_before
    assert _open_fds() - fds_before == set()


def test_default_port_dir_is_per_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert default_port_dir() == tmp_path / "robotui" / "ports"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert default_port_dir() == Path(f"/tmp/robotui-{os.getuid()}/ports")


def test_stale_symlink_is_replaced(tmp_path: Path) -> None:
    link = tmp_path / "ttyEMU-stale"
    link.symlink_to("/dev/pts/does-not-exist")
    with EmulatedBus("feetech", {1: "sts3215"}, name="stale", port_dir=tmp_path) as bus:
        assert bus.port == str(link) and os.path.exists(link)


# ====================================================================================== protocol 1


def test_scs0009_protocol1_big_endian_read_write(tmp_path: Path) -> None:
    with EmulatedBus("feetech", {1: "scs0009", 2: "scs0009"}, name="scs", port_dir=tmp_path) as bus:
        port = FeetechPortHandler(bus.port)
        ph = scs.PacketHandler(1)
        try:
            assert port.openPort()
            assert ph.ping(port, 1) == (1284, scs.COMM_SUCCESS, 0)
            assert ph.read2ByteTxRx(port, 2, SCS_TABLE["Present_Position"][0])[0] == 512
            assert ph.write2ByteTxRx(port, 2, SCS_TABLE["Max_Position_Limit"][0], 0x0312) == (
                scs.COMM_SUCCESS,
                0,
            )
            assert bus.servo(2).read_register("Max_Position_Limit") == 0x0312
            assert ph.read1ByteTxRx(port, 2, SCS_TABLE["Max_Position_Limit"][0])[0] == 0x03  # high byte first
            group = scs.GroupSyncRead(port, ph, *SCS_TABLE["Present_Position"])
            group.addParam(1)
            assert group.txRxPacket() == scs.COMM_RX_TIMEOUT  # SCS firmware has no SYNC_READ
            bus.set_actual({1: 300.0})
            assert ph.read2ByteTxRx(port, 1, SCS_TABLE["Present_Position"][0])[0] == 300
        finally:
            port.closePort()


# ========================================================================================= Dynamixel


def test_dynamixel_ping_and_broadcast_ping(koch_emulator: EmulatedBus, dxl_port) -> None:
    port, ph = dxl_port
    assert ph.ping(port, 1) == (1060, dxl.COMM_SUCCESS, 0)
    assert ph.ping(port, 4) == (1200, dxl.COMM_SUCCESS, 0)
    assert ph.ping(port, 9)[1] == dxl.COMM_RX_TIMEOUT
    found, result = ph.broadcastPing(port)
    assert result == dxl.COMM_SUCCESS
    assert found == {i: [1060 if i <= 2 else 1200, tables.DYNAMIXEL_FIRMWARE] for i in range(1, 7)}


def test_dynamixel_read_write_and_defaults(koch_emulator: EmulatedBus, dxl_port) -> None:
    port, ph = dxl_port
    assert ph.read1ByteTxRx(port, 3, X["Operating_Mode"][0]) == (3, dxl.COMM_SUCCESS, 0)
    assert ph.read4ByteTxRx(port, 3, X["Max_Position_Limit"][0]) == (4095, dxl.COMM_SUCCESS, 0)
    assert ph.read1ByteTxRx(port, 3, X["Firmware_Version"][0])[0] == tables.DYNAMIXEL_FIRMWARE
    assert ph.write2ByteTxRx(port, 3, X["Position_P_Gain"][0], 900) == (dxl.COMM_SUCCESS, 0)
    assert ph.read2ByteTxRx(port, 3, X["Position_P_Gain"][0]) == (900, dxl.COMM_SUCCESS, 0)
    assert ph.write2ByteTxRx(port, 3, X["Model_Number"][0], 1)[1] == 7  # read-only: access error


def test_dynamixel_sync_read_and_sync_write(koch_emulator: EmulatedBus, dxl_port) -> None:
    port, ph = dxl_port
    koch_emulator.set_actual({i: 1500.0 + 10 * i for i in range(1, 7)})
    address, size = X["Present_Position"]
    reader = dxl.GroupSyncRead(port, ph, address, size)
    for motor_id in range(1, 7):
        reader.addParam(motor_id)
    assert reader.txRxPacket() == dxl.COMM_SUCCESS
    assert [reader.getData(i, address, size) for i in range(1, 7)] == [1500 + 10 * i for i in range(1, 7)]

    address, size = X["Goal_Position"]
    writer = dxl.GroupSyncWrite(port, ph, address, size)
    for motor_id in range(1, 7):
        writer.addParam(motor_id, list((1800 + motor_id).to_bytes(4, "little")))
    assert writer.txPacket() == dxl.COMM_SUCCESS
    assert wait_until(lambda: koch_emulator.servo(6).read_register("Goal_Position") == 1806)
    assert [koch_emulator.servo(i).read_register("Goal_Position") for i in range(1, 7)] == [
        1800 + i for i in range(1, 7)
    ]


def test_dynamixel_byte_stuffing_both_ways(koch_emulator: EmulatedBus, dxl_port) -> None:
    port, ph = dxl_port
    value = 0x00FDFFFF  # little-endian bytes FF FF FD 00: stuffed in the write and in the read reply
    assert ph.write4ByteTxRx(port, 2, X["Profile_Acceleration"][0], value) == (dxl.COMM_SUCCESS, 0)
    assert koch_emulator.servo(2).read_register("Profile_Acceleration") == value
    assert ph.read4ByteTxRx(port, 2, X["Profile_Acceleration"][0]) == (value, dxl.COMM_SUCCESS, 0)


def test_dynamixel_crc_and_stuffing_match_the_sdk() -> None:
    sdk = Protocol2PacketHandler()
    rng = random.Random(11)
    for _ in range(50):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60)))
        assert crc16(data) == sdk.updateCRC(0, list(data), len(data))
    body = bytes([0x03, 0x10, 0x00, 0xFF, 0xFF, 0xFD, 0x00, 0xFF, 0xFF, 0xFD])
    stuffed = stuff(body)
    assert stuffed == bytes([0x03, 0x10, 0x00, 0xFF, 0xFF, 0xFD, 0xFD, 0x00, 0xFF, 0xFF, 0xFD, 0xFD])
    assert unstuff(stuffed) == body
    # The SDK's own stuffing of a whole packet agrees with ours.
    packet = [0xFF, 0xFF, 0xFD, 0x00, 0x01, len(body) + 2, 0x00, *body, 0, 0]
    sdk_packet = sdk.addStuffing(packet)
    assert bytes(sdk_packet[7:-2]) == stuffed


def test_dynamixel_framer_handles_split_false_header_and_random_bytes() -> None:
    framer = DynamixelFramer()
    packet = dxl_instruction(7, 0x03, bytes([116, 0, 0xFF, 0xFF, 0xFD, 0x00]))
    assert framer.feed(packet[:9]) == []
    [parsed] = framer.feed(packet[9:])
    assert (parsed.motor_id, parsed.instruction, parsed.params) == (
        7,
        3,
        bytes([116, 0, 0xFF, 0xFF, 0xFD, 0x00]),
    )
    assert framer.feed(b"\xff\xff\xfd\x00\x01\x00\x02" + packet) == []  # claims 512 bytes
    found = []
    for _ in range(12):
        found += framer.expire()
    assert [p.motor_id for p in found] == [7]
    rng = random.Random(9)
    for _ in range(200):
        framer.feed(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))))
        framer.expire()
    framer.reset()
    assert [p.motor_id for p in framer.feed(packet)] == [7]


def test_dynamixel_bad_crc_gets_crc_error_and_garbage_is_survived(koch_emulator: EmulatedBus) -> None:
    bad = bytearray(dxl_instruction(1, 0x01))
    bad[-1] ^= 0x0F
    with serial.Serial(koch_emulator.port, 1_000_000, timeout=0.05) as port:
        port.write(bytes(random.Random(5).randrange(256) for _ in range(300)))
        port.write(bytes(bad))
        reply = read_exactly(port, 11)
        assert reply[:4] == b"\xff\xff\xfd\x00" and reply[4] == 1 and reply[7:9] == bytes([0x55, 3])
        port.write(dxl_instruction(2, 0x01))
        reply = read_exactly(port, 14)
    assert reply[4] == 2 and reply[8] == 0 and int.from_bytes(reply[9:11], "little") == 1060


def test_dynamixel_eeprom_refused_while_torque_on(koch_emulator: EmulatedBus, dxl_port) -> None:
    port, ph = dxl_port
    offset = X["Homing_Offset"][0]
    assert ph.write1ByteTxRx(port, 1, X["Torque_Enable"][0], 1) == (dxl.COMM_SUCCESS, 0)
    assert ph.write4ByteTxRx(port, 1, offset, 100) == (dxl.COMM_SUCCESS, 7)
    assert koch_emulator.servo(1).read_register("Homing_Offset") == 0
    assert ph.write1ByteTxRx(port, 1, X["Torque_Enable"][0], 0) == (dxl.COMM_SUCCESS, 0)
    assert ph.write4ByteTxRx(port, 1, offset, 100) == (dxl.COMM_SUCCESS, 0)
    koch_emulator.power_cycle()
    assert ph.read4ByteTxRx(port, 1, offset)[0] == 100  # Dynamixel EEPROM always persists


def test_dynamixel_homing_offset_is_added(koch_emulator: EmulatedBus, dxl_port) -> None:
    port, ph = dxl_port
    offset = -300
    assert ph.write4ByteTxRx(port, 2, X["Homing_Offset"][0], offset & 0xFFFFFFFF) == (dxl.COMM_SUCCESS, 0)
    koch_emulator.set_actual({2: 1000.0})
    assert ph.read4ByteTxRx(port, 2, X["Present_Position"][0])[0] == 700
    koch_emulator.set_actual({2: 100.0})
    raw = ph.read4ByteTxRx(port, 2, X["Present_Position"][0])[0]
    assert raw == (-200) & 0xFFFFFFFF  # two's complement
    servo = koch_emulator.servo(2)
    assert servo.present_position == -200
    assert ph.write1ByteTxRx(port, 2, X["Torque_Enable"][0], 1) == (dxl.COMM_SUCCESS, 0)
    assert ph.write4ByteTxRx(port, 2, X["Goal_Position"][0], 500) == (dxl.COMM_SUCCESS, 0)
    assert servo.goal_actual == 800.0  # goal - offset
    assert ph.write4ByteTxRx(port, 2, X["Goal_Position"][0], 5000) == (dxl.COMM_SUCCESS, 0)
    assert servo.goal_actual == 4095.0 + 300  # clamped to Max_Position_Limit in the homed frame


def test_dynamixel_id_and_baud_writes(koch_emulator: EmulatedBus, dxl_port) -> None:
    port, ph = dxl_port
    assert ph.write1ByteTxRx(port, 6, X["ID"][0], 16) == (dxl.COMM_SUCCESS, 0)
    assert ph.ping(port, 16) == (1200, dxl.COMM_SUCCESS, 0)
    code = tables.DYNAMIXEL_BAUDRATE_TABLE[57_600]
    assert ph.write1ByteTxRx(port, 16, X["Baud_Rate"][0], code) == (dxl.COMM_SUCCESS, 0)
    assert ph.ping(port, 16)[1] == dxl.COMM_RX_TIMEOUT
    assert port.setBaudRate(57_600)
    assert ph.ping(port, 16) == (1200, dxl.COMM_SUCCESS, 0)
    assert set(koch_emulator.servos) == {1, 2, 3, 4, 5, 16}


def test_dynamixel_faults(koch_emulator: EmulatedBus, dxl_port) -> None:
    port, ph = dxl_port
    koch_emulator.faults.corrupt_rate = 1.0
    assert ph.read4ByteTxRx(port, 1, X["Present_Position"][0])[1] == dxl.COMM_RX_CORRUPT
    koch_emulator.faults.corrupt_rate = 0.0
    koch_emulator.faults.drop_rate = 1.0
    assert ph.ping(port, 1)[1] == dxl.COMM_RX_TIMEOUT
    assert (koch_emulator.stats.corrupted, koch_emulator.stats.dropped) == (1, 1)


def test_dynamixel_internal_motion_and_reboot(tmp_path: Path) -> None:
    clock = FakeClock()
    bus = EmulatedBus("dynamixel", {1: "xl330-m288"}, max_speed=2000.0, port_dir=tmp_path, clock=clock)
    servo = bus.servo(1)
    servo.write_register("Torque_Enable", 1)
    servo.write_register("Goal_Position", 3048)
    clock.advance(0.25)
    assert servo.actual == 2548.0 and servo.read_register("Moving") == 1
    clock.advance(1.0)
    assert servo.present_position == 3048 and servo.read_register("Moving") == 0
    bus.power_cycle()
    assert not servo.torque_enabled and servo.present_position == 3048
