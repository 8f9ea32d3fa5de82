"""Feetech bus (STS3215/STS3250/SM8512BL on protocol 0, SCS0009 on protocol 1) over `scservo_sdk`.

Uses the SDK only at the packet level (tx/rx, checksums, read/write/sync instructions). Every word is
packed and unpacked here, never through the SDK's `SCS_MAKEWORD`/`SCS_LOBYTE`: those read a process-global
byte order that `scs.PacketHandler(end)` overwrites, which would let an SCS (big-endian) bus corrupt an STS
(little-endian) bus living in the same process.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import scservo_sdk as scs
from scservo_sdk.protocol_packet_handler import protocol_packet_handler

from drivers.motors import encoding
from drivers.motors.bus import (
    SETUP_RETRIES,
    BusError,
    HandshakeError,
    Motor,
    MotorBus,
    MotorCalibration,
    PatientPortMixin,
    TxOutcome,
)
from drivers.motors.tables import (
    FEETECH_BAUDRATE_TABLE,
    FEETECH_BROADCAST_ID,
    FEETECH_DEFAULT_BAUDRATE,
    FEETECH_MAX_ID,
    FEETECH_MODEL_CONTROL_TABLE,
    FEETECH_MODEL_ENCODINGS,
    FEETECH_MODEL_NUMBERS,
    FEETECH_MODEL_PROTOCOL,
    FEETECH_MODEL_RESOLUTION,
    FEETECH_SCAN_BAUDRATES,
)

logger = logging.getLogger(__name__)

_INST_PING = 0x01
_STATUS_LEN = 6  # FF FF ID LEN ERR CHK: a ping's status packet
_PHASE_ANGLE_FEEDBACK_BIT = 0x10

# Status error byte bits (scservo_sdk's ERRBIT_*), with what to do about each.
_ERROR_BITS: dict[int, str] = {
    0x01: "input voltage out of range (check the power supply: 5 V/7.4 V and 12 V servo variants are not "
    "interchangeable)",
    0x02: "angle sensor fault",
    0x04: "overheating (let it cool; it is working too hard or is blocked)",
    0x08: "over-current (the joint is blocked or pushing too hard)",
    0x20: "overload (the joint is blocked or pushing too hard: free it, then power-cycle the arm)",
}


class FeetechPortHandler(PatientPortMixin, scs.PortHandler):
    """scservo_sdk PortHandler with the packet-timeout fix and the quiet, locked port (see the mixin)."""


class FeetechBus(MotorBus):
    brand = "Feetech"
    default_baudrate = FEETECH_DEFAULT_BAUDRATE
    available_baudrates = FEETECH_SCAN_BAUDRATES
    apply_drive_mode = True
    model_ctrl_table = FEETECH_MODEL_CONTROL_TABLE
    model_number_table = FEETECH_MODEL_NUMBERS
    model_resolution_table = FEETECH_MODEL_RESOLUTION
    model_baudrate_table: ClassVar[dict[str, dict[int, int]]] = dict.fromkeys(FEETECH_MODEL_NUMBERS, FEETECH_BAUDRATE_TABLE)
    torque_on_writes = (("Torque_Enable", 1), ("Lock", 1))
    torque_off_writes = (("Torque_Enable", 0), ("Lock", 0))
    comm_success = scs.COMM_SUCCESS
    comm_timeout = scs.COMM_RX_TIMEOUT
    comm_corrupt = scs.COMM_RX_CORRUPT

    def __init__(
        self,
        port: str,
        motors: dict[str, Motor],
        calibration: dict[str, MotorCalibration] | None = None,
        *,
        baudrate: int | None = None,
        protocol_version: int | None = None,
    ) -> None:
        protocols = {FEETECH_MODEL_PROTOCOL[m.model] for m in motors.values() if m.model in FEETECH_MODEL_PROTOCOL}
        if len(protocols) > 1:
            raise ValueError(f"one Feetech bus cannot mix protocol 0 (STS/SMS) and protocol 1 (SCS) motors: {motors}")
        if protocol_version is not None and protocols and protocols != {protocol_version}:
            raise ValueError(f"protocol_version={protocol_version} does not match the motors' protocol {protocols}")
        self.protocol_version: int = protocol_version if protocol_version is not None else (protocols.pop() if protocols else 0)
        super().__init__(port, motors, calibration, baudrate=baudrate)
        # Instantiated directly: `scs.PacketHandler(end)` would set the SDK's process-global byte order.
        self._ph = protocol_packet_handler()

    # ------------------------------------------------------------------------------------- wire hooks
    def _make_port_handler(self) -> Any:
        return FeetechPortHandler(self.port)

    def _big_endian_words(self) -> bool:
        return self.protocol_version == 1

    def _tx_ping(self, motor_id: int) -> TxOutcome:
        # A PING, then a READ of Model_Number (addr 3, 2 bytes), as the SDK's ping does.
        tx = [0] * 6
        tx[2], tx[3], tx[4] = motor_id, 2, _INST_PING
        _, comm, error = self._ph.txRxPacket(self._handler, tx)
        if comm != scs.COMM_SUCCESS:
            return TxOutcome(comm)
        read = self._tx_read(motor_id, 3, 2)
        if read.comm != scs.COMM_SUCCESS:
            return read
        data, error2 = read.value
        return TxOutcome(read.comm, (self._from_bytes(data), error | error2))

    def _tx_read(self, motor_id: int, addr: int, length: int) -> TxOutcome:
        data, comm, error = self._ph.readTxRx(self._handler, motor_id, addr, length)
        if comm == scs.COMM_SUCCESS and len(data) != length:
            comm = scs.COMM_RX_CORRUPT
        return TxOutcome(comm, (list(data), error))

    def _tx_write(self, motor_id: int, addr: int, data: list[int]) -> TxOutcome:
        comm, error = self._ph.writeTxRx(self._handler, motor_id, addr, len(data), data)
        return TxOutcome(comm, error)

    def _tx_sync_read(self, ids: list[int], addr: int, length: int) -> TxOutcome:
        comm = self._ph.syncReadTx(self._handler, addr, length, ids, len(ids))
        if comm != scs.COMM_SUCCESS:
            return TxOutcome(comm)
        replies: dict[int, tuple[int, list[int]]] = {}
        for motor_id in ids:  # each listed motor answers with its own status packet, in order
            data, comm, error = self._ph.readRx(self._handler, motor_id, length)
            if comm == scs.COMM_SUCCESS and len(data) != length:
                comm = scs.COMM_RX_CORRUPT
            if comm != scs.COMM_SUCCESS:
                return TxOutcome(comm, failed_id=motor_id)
            replies[motor_id] = (error, list(data))
        return TxOutcome(scs.COMM_SUCCESS, replies)

    def _sync_read_ids(self, ids: list[int], addr: int, length: int, data_name: str,
                       num_retry: int) -> dict[int, tuple[int, list[int]]]:
        if self.protocol_version == 0:
            return super()._sync_read_ids(ids, addr, length, data_name, num_retry)
        # Protocol 1 has no SYNC_READ: read the motors one by one.
        replies: dict[int, tuple[int, list[int]]] = {}
        for motor_id in ids:
            data, error = self._attempts(f"reading {data_name}", [motor_id],
                                         lambda i=motor_id: self._tx_read(i, addr, length), num_retry)
            replies[motor_id] = (error, data)
        return replies

    # -------------------------------------------------------------------------------------- discovery
    def _tx_broadcast_ping(self) -> TxOutcome:
        """value = {id: error byte} from every 6-byte status packet that arrives within the broadcast window."""
        tx = [0] * 6
        tx[2], tx[3], tx[4] = FEETECH_BROADCAST_ID, 2, _INST_PING
        comm = self._ph.txPacket(self._handler, tx)
        if comm != scs.COMM_SUCCESS:
            return TxOutcome(comm)
        rx = self._receive_broadcast(_STATUS_LEN)
        if not rx:
            return TxOutcome(scs.COMM_RX_TIMEOUT)
        found: dict[int, int] = {}
        i = 0
        while i + _STATUS_LEN <= len(rx):
            pkt = rx[i : i + _STATUS_LEN]
            if pkt[0] == 0xFF and pkt[1] == 0xFF and pkt[3] == 2 and pkt[2] < FEETECH_BROADCAST_ID \
                    and (~sum(pkt[2:5]) & 0xFF) == pkt[5]:
                found[pkt[2]] = pkt[4]
                i += _STATUS_LEN
            else:
                i += 1
        return TxOutcome(scs.COMM_SUCCESS if found else scs.COMM_RX_CORRUPT, found)

    def _broadcast_ping(self, num_retry: int) -> dict[int, int]:
        if self.protocol_version == 1:
            return self._ping_each_id(stop_at_first=False)
        responders = self._attempts("broadcast-pinging", [], self._tx_broadcast_ping, num_retry,
                                    must_succeed=False, retry_timeouts=False)
        if not responders:
            return {}
        models: dict[int, int] = {}
        for motor_id in sorted(responders):
            data, _ = self._attempts("reading Model_Number", [motor_id], lambda i=motor_id: self._tx_read(i, 3, 2),
                                     max(num_retry, 1))
            models[motor_id] = self._from_bytes(data)
        return models

    def _discover_single(self, num_retry: int) -> dict[int, int]:
        if self.protocol_version == 1:
            return self._ping_each_id(stop_at_first=True)
        return super()._discover_single(num_retry)

    def _ping_each_id(self, *, stop_at_first: bool) -> dict[int, int]:
        """Protocol 1 has no broadcast ping: ask every id in turn (slow: one timeout per absent id)."""
        found: dict[int, int] = {}
        for motor_id in range(FEETECH_MAX_ID + 1):
            model = self.ping(motor_id)
            if model is not None:
                found[motor_id] = model
                if stop_at_first:
                    break
        return found

    def _handshake(self) -> None:
        self._assert_motors_exist()
        self._assert_same_firmware()

    def _assert_same_firmware(self) -> None:
        """LeRobot refuses an arm whose motors run different firmware; so do we, naming them."""
        if not self.motors:
            return
        major = self.sync_read("Firmware_Major_Version", normalize=False, num_retry=SETUP_RETRIES)
        minor = self.sync_read("Firmware_Minor_Version", normalize=False, num_retry=SETUP_RETRIES)
        versions = {name: f"{major[name]}.{minor[name]}" for name in self.motors}
        if len(set(versions.values())) > 1:
            listing = ", ".join(f"'{n}' {v}" for n, v in versions.items())
            raise HandshakeError(
                f"Motors on {self.port} run different firmware versions ({listing}). Update them all to the same "
                "version with Feetech's FD software, then reconnect.",
                [],
                {},
            )

    # ------------------------------------------------------------------------------- register rules
    def _encode(self, model: str, data_name: str, value: int) -> int:
        sign_bit = FEETECH_MODEL_ENCODINGS[model].get(data_name)
        return encoding.encode_sign_magnitude(value, sign_bit) if sign_bit is not None else value

    def _decode(self, model: str, data_name: str, value: int) -> int:
        sign_bit = FEETECH_MODEL_ENCODINGS[model].get(data_name)
        return encoding.decode_sign_magnitude(value, sign_bit) if sign_bit is not None else value

    def _half_turn_offset(self, motor: str, raw_position: int) -> int:
        model = self.motors[motor].model
        offset = raw_position - int((self.model_resolution_table[model] - 1) / 2)
        sign_bit = FEETECH_MODEL_ENCODINGS[model]["Homing_Offset"]
        limit = (1 << sign_bit) - 1
        if abs(offset) > limit:
            raise BusError(
                f"Cannot home '{motor}' (id {self.motors[motor].id}) at its current position {raw_position}: the "
                f"offset {offset} does not fit the {sign_bit}-bit Homing_Offset register (|offset| <= {limit}). "
                "Move that joint a little away from the end of its turn and try again."
            )
        return offset

    def _describe_error(self, error: int) -> str:
        parts = [text for bit, text in _ERROR_BITS.items() if error & bit]
        unknown = error & ~sum(_ERROR_BITS)
        if unknown:
            parts.append(f"unknown flags 0x{unknown:02X}")
        return "; ".join(parts)

    def _checklist(self) -> list[str]:
        return [
            "power: the arm's power supply is plugged in and switched on (USB alone does not power the servos)",
            f"port: {self.port} is this arm's controller board (run `robotui find-port` if unsure)",
            "LEDs: all steady red from gripper to base = wiring OK; a dark motor, or the chain stopping at one = "
            "reseat the 3-pin cables there and check the controller board's power; blinking = overload or wrong "
            "power-supply voltage (5 V/7.4 V and 12 V servo variants are not interchangeable)",
            "ids and baud rate: a new or replaced motor answers at id 1 until its motor setup has been run",
        ]

    # ------------------------------------------------------------------------ configuration, calibration
    def configure_motors(self) -> None:
        """LeRobot's settings: fastest replies, full acceleration, and (sts3215) the 0..4095 angle mode.

        Writes EEPROM: call it with torque disabled (Lock = 0), as the robots do."""
        with self._lock:
            for name, m in self.motors.items():
                self.write("Return_Delay_Time", name, 0, num_retry=SETUP_RETRIES)
                if self.protocol_version == 0:
                    self.write("Maximum_Acceleration", name, 254, num_retry=SETUP_RETRIES)
                self.write("Acceleration", name, 254, num_retry=SETUP_RETRIES)
                if m.model == "sts3215":
                    phase = int(self.read("Phase", name, normalize=False, num_retry=SETUP_RETRIES))
                    if phase & _PHASE_ANGLE_FEEDBACK_BIT:
                        self.write("Phase", name, phase & ~_PHASE_ANGLE_FEEDBACK_BIT, num_retry=SETUP_RETRIES)

    def read_calibration(self) -> dict[str, MotorCalibration]:
        with self._lock:
            out: dict[str, MotorCalibration] = {}
            for name, m in self.motors.items():
                offset = 0
                if self.protocol_version == 0:
                    offset = int(self.read("Homing_Offset", name, normalize=False, num_retry=SETUP_RETRIES))
                out[name] = MotorCalibration(
                    id=m.id,
                    drive_mode=0,
                    homing_offset=offset,
                    range_min=int(self.read("Min_Position_Limit", name, normalize=False, num_retry=SETUP_RETRIES)),
                    range_max=int(self.read("Max_Position_Limit", name, normalize=False, num_retry=SETUP_RETRIES)),
                )
            return out

    def write_calibration(self, calibration: dict[str, MotorCalibration]) -> None:
        """Write offsets and limits to EEPROM (torque must be disabled) and keep `calibration` as current."""
        with self._lock:
            for name, cal in calibration.items():
                if name not in self.motors:
                    raise KeyError(f"calibration names motor {name!r}, which is not on {self.port}")
                if self.protocol_version == 0:
                    self.write("Homing_Offset", name, cal.homing_offset, normalize=False, num_retry=SETUP_RETRIES)
                self.write("Min_Position_Limit", name, cal.range_min, normalize=False, num_retry=SETUP_RETRIES)
                self.write("Max_Position_Limit", name, cal.range_max, normalize=False, num_retry=SETUP_RETRIES)
            self.calibration = dict(calibration)

    @property
    def is_calibrated(self) -> bool:
        """True when the loaded calibration covers every motor and matches what the EEPROMs hold."""
        with self._lock:
            if set(self.calibration) != set(self.motors):
                return False
            actual = self.read_calibration()
            for name, cal in self.calibration.items():
                got = actual[name]
                if (got.range_min, got.range_max) != (cal.range_min, cal.range_max):
                    return False
                if self.protocol_version == 0 and got.homing_offset != cal.homing_offset:
                    return False
            return True
