"""Dynamixel bus (X series, protocol 2.0) over `dynamixel_sdk`.

Drive mode is applied by the motor itself (Drive_Mode register bit 0), so normalization ignores it, and
the firmware adds the homing offset (Present = Actual + Homing_Offset), so a half-turn offset is
2047 - position. Signed registers are two's complement over their width.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import dynamixel_sdk as dxl

from drivers.motors import encoding
from drivers.motors.bus import (
    SETUP_RETRIES,
    Motor,
    MotorBus,
    MotorCalibration,
    PatientPortMixin,
    TxOutcome,
)
from drivers.motors.tables import (
    DYNAMIXEL_BAUDRATE_TABLE,
    DYNAMIXEL_DEFAULT_BAUDRATE,
    DYNAMIXEL_MODEL_NUMBERS,
    DYNAMIXEL_RESOLUTION,
    DYNAMIXEL_SCAN_BAUDRATES,
    DYNAMIXEL_SIGNED_REGISTERS,
    X_SERIES_CONTROL_TABLE,
)

logger = logging.getLogger(__name__)

_ERRBIT_ALERT = 0x80
# A ping's status packet: FF FF FD 00 | ID | LEN=7 (2 bytes) | 0x55 | ERR | model (2) | firmware | CRC (2).
_PING_STATUS_LEN = 14
_PING_STATUS_HEAD = b"\xff\xff\xfd\x00"
_PING_STATUS_LEN_INST = b"\x07\x00\x55"
_ERROR_NUMBERS: dict[int, str] = {
    1: "the motor failed to process the instruction",
    2: "undefined or malformed instruction",
    3: "CRC mismatch (noise on the bus: reseat the cables)",
    4: "value out of range for this register",
    5: "wrong data length for this register",
    6: "value exceeds the register's limit",
    7: "register not accessible (EEPROM writes need torque disabled)",
}


class DynamixelPortHandler(PatientPortMixin, dxl.PortHandler):
    """dynamixel_sdk PortHandler with the quiet, locked port and a 50 ms reply floor (see the mixin)."""


class DynamixelBus(MotorBus):
    brand = "Dynamixel"
    default_baudrate = DYNAMIXEL_DEFAULT_BAUDRATE
    available_baudrates = DYNAMIXEL_SCAN_BAUDRATES
    apply_drive_mode = False
    model_ctrl_table: ClassVar[dict[str, dict[str, tuple[int, int]]]] = dict.fromkeys(
        DYNAMIXEL_MODEL_NUMBERS, X_SERIES_CONTROL_TABLE
    )
    model_number_table = DYNAMIXEL_MODEL_NUMBERS
    model_resolution_table: ClassVar[dict[str, int]] = dict.fromkeys(DYNAMIXEL_MODEL_NUMBERS, DYNAMIXEL_RESOLUTION)
    model_baudrate_table: ClassVar[dict[str, dict[int, int]]] = dict.fromkeys(
        DYNAMIXEL_MODEL_NUMBERS, DYNAMIXEL_BAUDRATE_TABLE
    )
    comm_success = dxl.COMM_SUCCESS
    comm_timeout = dxl.COMM_RX_TIMEOUT
    comm_corrupt = dxl.COMM_RX_CORRUPT

    def __init__(
        self,
        port: str,
        motors: dict[str, Motor],
        calibration: dict[str, MotorCalibration] | None = None,
        *,
        baudrate: int | None = None,
    ) -> None:
        super().__init__(port, motors, calibration, baudrate=baudrate)
        self._ph = dxl.PacketHandler(2.0)

    # ------------------------------------------------------------------------------------- wire hooks
    def _make_port_handler(self) -> Any:
        return DynamixelPortHandler(self.port)

    def _tx_ping(self, motor_id: int) -> TxOutcome:
        model, comm, error = self._ph.ping(self._handler, motor_id)
        return TxOutcome(comm, (model, error))

    def _tx_read(self, motor_id: int, addr: int, length: int) -> TxOutcome:
        data, comm, error = self._ph.readTxRx(self._handler, motor_id, addr, length)
        if comm == dxl.COMM_SUCCESS and len(data) != length:
            comm = dxl.COMM_RX_CORRUPT
        return TxOutcome(comm, (list(data), error))

    def _tx_write(self, motor_id: int, addr: int, data: list[int]) -> TxOutcome:
        comm, error = self._ph.writeTxRx(self._handler, motor_id, addr, len(data), data)
        return TxOutcome(comm, error)

    def _tx_sync_read(self, ids: list[int], addr: int, length: int) -> TxOutcome:
        # The packet-level calls GroupSyncRead makes, kept here so each motor's error byte and the first
        # silent motor are known.
        comm = self._ph.syncReadTx(self._handler, addr, length, ids, len(ids), False)
        if comm != dxl.COMM_SUCCESS:
            return TxOutcome(comm)
        replies: dict[int, tuple[int, list[int]]] = {}
        for motor_id in ids:
            data, comm, error = self._ph.readRx(self._handler, motor_id, length)
            if comm == dxl.COMM_SUCCESS and len(data) != length:
                comm = dxl.COMM_RX_CORRUPT
            if comm != dxl.COMM_SUCCESS:
                return TxOutcome(comm, failed_id=motor_id)
            replies[motor_id] = (error, list(data))
        return TxOutcome(dxl.COMM_SUCCESS, replies)

    def _tx_broadcast_ping(self) -> TxOutcome:
        """value = {id: model number} from every ping status packet that arrives within the broadcast window.

        Not the SDK's `broadcastPing`, whose window always covers all 252 ids: this one follows
        `broadcast_max_id` (see MotorBus)."""
        tx = [0] * 10
        tx[dxl.PKT_ID], tx[dxl.PKT_LENGTH_L], tx[dxl.PKT_LENGTH_H] = dxl.BROADCAST_ID, 3, 0
        tx[dxl.PKT_INSTRUCTION] = dxl.INST_PING
        comm = self._ph.txPacket(self._handler, tx)
        if comm != dxl.COMM_SUCCESS:
            return TxOutcome(comm)
        rx = self._receive_broadcast(_PING_STATUS_LEN)
        if not rx:
            return TxOutcome(dxl.COMM_RX_TIMEOUT)
        models: dict[int, int] = {}
        i = 0
        while i + _PING_STATUS_LEN <= len(rx):
            pkt = rx[i : i + _PING_STATUS_LEN]
            if pkt[:4] == _PING_STATUS_HEAD and pkt[5:8] == _PING_STATUS_LEN_INST \
                    and self._ph.updateCRC(0, list(pkt), _PING_STATUS_LEN - 2) == pkt[12] | pkt[13] << 8:
                models[pkt[4]] = pkt[9] | pkt[10] << 8
                i += _PING_STATUS_LEN
            else:
                i += 1
        # A corrupt tail after good packets still leaves those motors found.
        return TxOutcome(dxl.COMM_SUCCESS if models else dxl.COMM_RX_CORRUPT, models)

    def _broadcast_ping(self, num_retry: int) -> dict[int, int]:
        found = self._attempts("broadcast-pinging", [], self._tx_broadcast_ping, num_retry,
                               must_succeed=False, retry_timeouts=False)
        return dict(sorted(found.items())) if found else {}

    # ------------------------------------------------------------------------------- register rules
    def _encode(self, model: str, data_name: str, value: int) -> int:
        if data_name in DYNAMIXEL_SIGNED_REGISTERS:
            return encoding.encode_twos_complement(value, self.model_ctrl_table[model][data_name][1])
        return value

    def _decode(self, model: str, data_name: str, value: int) -> int:
        if data_name in DYNAMIXEL_SIGNED_REGISTERS:
            return encoding.decode_twos_complement(value, self.model_ctrl_table[model][data_name][1])
        return value

    def _half_turn_offset(self, motor: str, raw_position: int) -> int:
        return int((self.model_resolution_table[self.motors[motor].model] - 1) / 2) - raw_position

    def _describe_error(self, error: int) -> str:
        parts = []
        if error & _ERRBIT_ALERT:
            parts.append("hardware alert (overload, overheating, input voltage or encoder: read "
                         "Hardware_Error_Status; fix the cause, then power-cycle the motor)")
        number = error & ~_ERRBIT_ALERT
        if number:
            parts.append(_ERROR_NUMBERS.get(number, f"unknown error number {number}"))
        return "; ".join(parts)

    def _checklist(self) -> list[str]:
        return [
            "power: the arm's power supply is plugged in and switched on (USB alone does not power the servos)",
            f"port: {self.port} is this arm's controller board (run `robotui find-port` if unsure)",
            "LEDs: each Dynamixel blinks once at power-up; one that never lights is unpowered: reseat the cable "
            "between it and the previous motor and check the controller board's power",
            "a blinking red LED = hardware error (overload, overheating or wrong supply voltage): fix the cause, "
            "then power-cycle the arm",
            "ids and baud rate: a new Dynamixel answers at id 1 and 57600 baud until its motor setup has been run",
        ]

    # ------------------------------------------------------------------------ configuration, calibration
    def configure_motors(self) -> None:
        """Fastest status replies (Return_Delay_Time 0 = 0 µs instead of the factory 500 µs)."""
        with self._lock:
            for name in self.motors:
                self.write("Return_Delay_Time", name, 0, num_retry=SETUP_RETRIES)

    def read_calibration(self) -> dict[str, MotorCalibration]:
        with self._lock:
            regs = {
                reg: self.sync_read(reg, normalize=False, num_retry=SETUP_RETRIES)
                for reg in ("Homing_Offset", "Min_Position_Limit", "Max_Position_Limit", "Drive_Mode")
            }
            return {
                name: MotorCalibration(
                    id=m.id,
                    drive_mode=int(regs["Drive_Mode"][name]),
                    homing_offset=int(regs["Homing_Offset"][name]),
                    range_min=int(regs["Min_Position_Limit"][name]),
                    range_max=int(regs["Max_Position_Limit"][name]),
                )
                for name, m in self.motors.items()
            }

    def write_calibration(self, calibration: dict[str, MotorCalibration]) -> None:
        """Write offsets and limits to EEPROM (torque must be disabled); Drive_Mode is left to the robot, as
        in LeRobot. Keeps `calibration` as current."""
        with self._lock:
            for name, cal in calibration.items():
                if name not in self.motors:
                    raise KeyError(f"calibration names motor {name!r}, which is not on {self.port}")
                self.write("Homing_Offset", name, cal.homing_offset, normalize=False, num_retry=SETUP_RETRIES)
                self.write("Min_Position_Limit", name, cal.range_min, normalize=False, num_retry=SETUP_RETRIES)
                self.write("Max_Position_Limit", name, cal.range_max, normalize=False, num_retry=SETUP_RETRIES)
            self.calibration = dict(calibration)

    @property
    def is_calibrated(self) -> bool:
        with self._lock:
            if set(self.calibration) != set(self.motors):
                return False
            return self.calibration == self.read_calibration()
