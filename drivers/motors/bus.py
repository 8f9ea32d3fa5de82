"""The `MotorBus` interface shared by the Feetech and Dynamixel drivers, its data types and shared logic.

Semantics follow LeRobot's `SerialMotorsBus` (reference/lerobot-interop.md §1) so calibration files and
normalized values are identical. On top of that, every failure names the port, the motor and what to check,
retries are bounded and counted, and each transaction holds a lock so the control loop and the UI can share
one bus from different threads.

The base class owns everything that is the same for both brands (retries, error messages, normalization,
handshake, motor setup, the calibration flow); subclasses supply the wire transactions through the `_tx_*`
hooks and the brand's register rules.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import termios
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

import serial

from drivers.motors import encoding
from drivers.motors.tables import NORMALIZED_DATA, ControlTable

logger = logging.getLogger(__name__)


# What a serial port that vanished (unplugged adapter, closed pty) raises from reads, writes and flushes.
PORT_GONE_ERRORS: tuple[type[BaseException], ...] = (serial.SerialException, OSError, termios.error)

# Retries used for configuration and calibration traffic (idempotent writes, EEPROM reads).
SETUP_RETRIES = 2
USB_FLOOR_MS = 50.0  # packet-timeout floor on a real port (USB latency)
PTY_FLOOR_MS = 500.0  # on a pseudo-terminal: an emulated servo is a thread, scheduled late on a busy machine


class NormMode(StrEnum):
    DEGREES = "degrees"
    RANGE_M100_100 = "range_m100_100"
    RANGE_0_100 = "range_0_100"


@dataclass(frozen=True)
class Motor:
    id: int
    model: str
    norm_mode: NormMode


@dataclass
class MotorCalibration:
    """One motor's entry in LeRobot's calibration JSON (5 int fields)."""

    id: int
    drive_mode: int
    homing_offset: int
    range_min: int
    range_max: int


class BusError(Exception):
    """Base of every motor-bus failure; the message says what happened and what to check."""


class PortError(BusError):
    """The serial port cannot be opened (missing, busy, no permission) or vanished while in use.

    `reason` is one of "missing", "busy", "permission", "vanished", "unsupported", "other" so a UI can
    offer the matching fix without parsing the message.
    """

    def __init__(self, message: str, reason: str = "other"):
        super().__init__(message)
        self.reason = reason


class CommError(BusError, ConnectionError):
    """No reply, or only corrupt replies, after the bounded retries. Names port and motor(s)."""


class NoMotorFoundError(CommError):
    """Looking for the one motor to set up, nothing answered at any baud rate tried (`baudrates`)."""

    def __init__(self, message: str, baudrates: list[int]):
        super().__init__(message)
        self.baudrates = baudrates


class MultipleMotorsError(BusError):
    """Looking for the one motor to set up, several answered (`ids`, at `baudrate`): unplug all but one."""

    def __init__(self, message: str, ids: list[int], baudrate: int):
        super().__init__(message)
        self.ids = ids
        self.baudrate = baudrate


class HandshakeError(BusError):
    """Configured motors missing or of the wrong model. `missing`/`wrong` name them.

    `wrong` maps a motor name to (expected model name, model number found on the wire).
    """

    def __init__(self, message: str, missing: list[str], wrong: dict[str, tuple[str, int]]):
        super().__init__(message)
        self.missing = missing
        self.wrong = wrong


class MotorError(BusError):
    """A motor answered with its status error byte set (overload, voltage, angle limit...)."""


class NotCalibratedError(BusError, RuntimeError):
    """A normalized value was asked for a motor that has no calibration loaded."""


@dataclass
class BusStats:
    """Counters the UI shows and the benches read. Never reset, so they also span reconnects.

    `packets` counts transaction attempts (one instruction and its replies).
    """

    packets: int = 0
    retries: int = 0
    timeouts: int = 0
    corrupt: int = 0
    motor_errors: int = 0
    failures: int = 0  # operations that raised after exhausting retries


@dataclass
class TxOutcome:
    """Result of one wire transaction attempt, in SDK terms (what the subclasses' `_tx_*` hooks return)."""

    comm: int
    value: Any = None
    failed_id: int | None = None  # which motor did not answer (sync read), when known


class PatientPortMixin:
    """PortHandler overrides shared by both SDKs (mixed in before the SDK's `PortHandler`).

    - The SDKs poll a non-blocking port in a busy loop until the packet timeout; on a shared 2-core laptop
      that burns a core per missing motor. `readPort` instead sleeps in `select` until bytes arrive or the
      packet deadline passes, which keeps the same timeouts.
    - Packet timeout: tx_time*len + tx_time*3 + 50 ms (LeRobot's fix for the Feetech SDK bug gitee IBY2S6,
      where the SDK's formula is far too short); used for Dynamixel too, a 50 ms floor tolerates USB latency.
      On a pseudo-terminal (the servo emulator, the simulator) the "servo" is a thread of a possibly busy
      process, not firmware: scheduling stalls of 100 ms happen on a loaded 2-core machine, so the floor is
      `PTY_FLOOR_MS` there.
    - `clearPort` drops stale input (a late reply to a previous, timed-out request) before each request.
    - The port is opened once with an exclusive lock (a second program on the same arm is refused with a
      clear error instead of interleaving packets), and a baud change reconfigures it in place.
    - Times come from a monotonic clock, so a wall-clock jump cannot stretch or cut a timeout.
    """

    is_open: bool
    ser: serial.Serial | None
    port_name: str
    baudrate: int
    tx_time_per_byte: float
    packet_start_time: float
    packet_timeout: float
    floor_ms: float = 50.0

    def setupPort(self, cflag_baud: int) -> bool:
        if self.is_open and self.ser is not None:
            self.ser.baudrate = self.baudrate
        else:
            self.ser = serial.Serial(
                port=self.port_name,
                baudrate=self.baudrate,
                bytesize=serial.EIGHTBITS,
                timeout=0,
                exclusive=True,
            )
            self.is_open = True
        self.ser.reset_input_buffer()
        self.tx_time_per_byte = (1000.0 / self.baudrate) * 10.0
        self.floor_ms = PTY_FLOOR_MS if os.path.realpath(self.port_name).startswith("/dev/pts/") else USB_FLOOR_MS
        return True

    def closePort(self) -> None:
        ser, self.ser, self.is_open = self.ser, None, False
        if ser is not None:
            ser.close()

    def clearPort(self) -> None:
        assert self.ser is not None
        self.ser.reset_input_buffer()

    def getCurrentTime(self) -> float:
        return time.monotonic() * 1000.0

    def getTimeSinceStart(self) -> float:
        return self.getCurrentTime() - self.packet_start_time

    def setPacketTimeout(self, packet_length: int) -> None:
        self.packet_start_time = self.getCurrentTime()
        self.packet_timeout = (self.tx_time_per_byte * packet_length) + (self.tx_time_per_byte * 3.0) + self.floor_ms

    def readPort(self, length: int) -> bytes:
        assert self.ser is not None
        data = self.ser.read(length)
        if data or length <= 0:
            return data
        remaining_s = (self.packet_timeout - self.getTimeSinceStart()) / 1000.0
        if remaining_s > 0:
            select.select([self.ser.fileno()], [], [], remaining_s + 0.001)
            data = self.ser.read(length)
        return data


class MotorBus:
    """Abstract serial motor bus. Subclasses: `FeetechBus` (drivers/motors/feetech.py) and
    `DynamixelBus` (drivers/motors/dynamixel.py)."""

    brand: ClassVar[str] = "motor"
    default_baudrate: int
    available_baudrates: list[int]
    apply_drive_mode: ClassVar[bool] = False
    normalized_data: ClassVar[tuple[str, ...]] = NORMALIZED_DATA
    model_ctrl_table: ClassVar[dict[str, ControlTable]]
    model_number_table: ClassVar[dict[str, int]]
    model_resolution_table: ClassVar[dict[str, int]]
    model_baudrate_table: ClassVar[dict[str, dict[int, int]]]
    # (register, value) writes that switch torque on/off, in order.
    torque_on_writes: ClassVar[tuple[tuple[str, int], ...]] = (("Torque_Enable", 1),)
    torque_off_writes: ClassVar[tuple[tuple[str, int], ...]] = (("Torque_Enable", 0),)
    # Broadcast ping window: one slot per id up to `broadcast_max_id`, each a status packet long plus
    # `broadcast_slot_ms`, then 16 ms (the SDKs' budget). Servos answer a broadcast in id-ordered time slots, not
    # back to back: a lone id 5 answers late, and a listener that gave up after a short quiet spell missed it
    # (ROBOTIS-GIT/Dynamixel2Arduino#106). So a quiet line does not end the scan; only the last slot does.
    # Lower `broadcast_max_id` only where no motor can have a higher id (the emulator tests do).
    broadcast_max_id: ClassVar[int] = 252
    broadcast_slot_ms: ClassVar[float] = 3.0
    # SDK communication result codes.
    comm_success: ClassVar[int] = 0
    comm_timeout: ClassVar[int]
    comm_corrupt: ClassVar[int]

    def __init__(
        self,
        port: str,
        motors: dict[str, Motor],
        calibration: dict[str, MotorCalibration] | None = None,
        *,
        baudrate: int | None = None,
    ) -> None:
        self.port = port
        self.motors = motors
        self.calibration = calibration or {}
        self.baudrate = baudrate or self.default_baudrate
        self.stats = BusStats()
        self._lock = threading.RLock()
        self._handler: Any = None  # the SDK PortHandler while the port is open
        self._ph: Any = None  # the SDK packet handler, set by the subclass
        self._validate_motors()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.port!r}, {len(self.motors)} motors)"

    # ======================================================================================= connection
    @property
    def is_connected(self) -> bool:
        return self._handler is not None and bool(self._handler.is_open)

    def connect(self, handshake: bool = True) -> None:
        """Open the port and (by default) check every configured motor answers with the right model."""
        with self._lock:
            if self.is_connected:
                raise BusError(f"{self} is already connected.")
            self._open_port()
            try:
                if handshake:
                    self._handshake()
            except BaseException:
                self._close_port()
                raise

    def disconnect(self, disable_torque: bool = True) -> None:
        """Disable torque (best effort, with retries) and close the port. Never raises on a lost port, so
        every shutdown path completes."""
        with self._lock:
            if not self.is_connected:
                self._close_port()
                return
            if disable_torque:
                try:
                    self.disable_torque(num_retry=5)
                except BusError as exc:
                    logger.warning("%s: could not disable torque while disconnecting: %s", self.port, exc)
            self._close_port()

    def set_baudrate(self, baudrate: int) -> None:
        with self._lock:
            if self._handler is not None:
                try:
                    ok = self._handler.setBaudRate(baudrate)
                except PORT_GONE_ERRORS as exc:
                    self._raise_lost_port(exc, f"switching to {baudrate} baud")
                if not ok:
                    raise PortError(
                        f"{baudrate} baud is not supported by the {self.brand} SDK on {self.port}; "
                        f"use one of {self.available_baudrates}.",
                        reason="unsupported",
                    )
            self.baudrate = baudrate

    # ======================================================================================== discovery
    def ping(self, motor: str | int, num_retry: int = 0) -> int | None:
        """Model number of the motor (name or id), or None when it does not answer."""
        with self._lock:
            motor_id = motor if isinstance(motor, int) else self._motor(motor).id
            model, error = self._attempts(
                f"pinging id {motor_id}", [motor_id], lambda: self._tx_ping(motor_id), num_retry, must_succeed=False
            ) or (None, 0)
            if model is not None and error:
                self.stats.motor_errors += 1
                logger.warning("%s: id %d answered a ping with error flags: %s", self.port, motor_id,
                               self._describe_error(error))
            return model

    def broadcast_ping(self, num_retry: int = 0) -> dict[int, int]:
        """{id: model number} of every motor answering at the current baud rate ({} when none)."""
        with self._lock:
            return self._broadcast_ping(num_retry)

    @classmethod
    def scan_port(cls, port: str, baudrates: list[int] | None = None, **bus_kwargs: Any) -> dict[int, list[int]]:
        """Broadcast-ping at each baud rate: {baud: [ids]} for the rates where something answered."""
        bus = cls(port, {}, **bus_kwargs)
        bus.connect(handshake=False)
        found: dict[int, list[int]] = {}
        try:
            for baud in baudrates or cls.available_baudrates:
                bus.set_baudrate(baud)
                ids = bus.broadcast_ping(num_retry=1)
                if ids:
                    found[baud] = sorted(ids)
        finally:
            bus.disconnect(disable_torque=False)
        return found

    def setup_motor(self, motor: str, initial_baudrate: int | None = None, initial_id: int | None = None) -> tuple[int, int]:
        """With exactly one motor on the bus: find it (any baud, any id), then write the target id and the
        default baud rate. Returns (baudrate it was found at, id it had).

        Raises NoMotorFoundError when nothing answers, MultipleMotorsError when several do, HandshakeError
        for a motor of the wrong model."""
        with self._lock:
            if not self.is_connected:
                self.connect(handshake=False)
            target = self._motor(motor)
            if initial_baudrate is None:
                initial_baudrate, initial_id = self._find_single_motor(motor)
            elif initial_id is None:
                _, initial_id = self._find_single_motor(motor, initial_baudrate)
            assert initial_id is not None
            self.set_baudrate(initial_baudrate)
            for data_name, value in self.torque_off_writes:
                self._write_id(initial_id, target.model, data_name, value, num_retry=SETUP_RETRIES,
                               label=f"the new '{motor}' motor")
            # The motor may apply a new id/baud before answering, so these replies are optional: a ping at
            # the new settings is the real check.
            self._write_expecting_change(initial_id, target.model, "ID", target.id)
            self._verify_answers(motor, target.id, f"after setting its id to {target.id}")
            baud_code = self.model_baudrate_table[target.model][self.default_baudrate]
            self._write_expecting_change(target.id, target.model, "Baud_Rate", baud_code)
            self.set_baudrate(self.default_baudrate)
            self._verify_answers(motor, target.id, f"after switching it to {self.default_baudrate} baud")
            logger.info("%s: motor '%s' set up (found id %d at %d baud -> id %d at %d baud)", self.port, motor,
                        initial_id, initial_baudrate, target.id, self.default_baudrate)
            return initial_baudrate, initial_id

    # ======================================================================================== registers
    def read(self, data_name: str, motor: str, *, normalize: bool = True, num_retry: int = 0) -> float | int:
        with self._lock:
            m = self._motor(motor)
            addr, length = self._address(m.model, data_name)
            data, error = self._attempts(
                f"reading {data_name}", [m.id], lambda: self._tx_read(m.id, addr, length), num_retry
            )
            self._check_errors({m.id: error}, f"reading {data_name}")
            raw = self._decode(m.model, data_name, self._from_bytes(data))
            if normalize and data_name in self.normalized_data:
                return self._normalize(motor, raw)
            return raw

    def write(
        self, data_name: str, motor: str, value: float | int, *, normalize: bool = True, num_retry: int = SETUP_RETRIES
    ) -> None:
        """Write and wait for the status packet (reliable, slower): for configuration. A register write is
        idempotent, so a lost reply is retried (bounded, counted) rather than failing a whole connect."""
        with self._lock:
            m = self._motor(motor)
            raw = self._to_raw(motor, data_name, value, normalize)
            self._write_id(m.id, m.model, data_name, raw, num_retry=num_retry)

    def sync_read(
        self, data_name: str, motors: list[str] | None = None, *, normalize: bool = True, num_retry: int = 0
    ) -> dict[str, float | int]:
        with self._lock:
            names = self._names(motors)
            addr, length = self._shared_address(names, data_name)
            ids = [self.motors[n].id for n in names]
            replies: dict[int, tuple[int, list[int]]] = self._sync_read_ids(ids, addr, length, data_name, num_retry)
            self._check_errors({i: replies[i][0] for i in ids}, f"reading {data_name}")
            out: dict[str, float | int] = {}
            for name in names:
                m = self.motors[name]
                raw = self._decode(m.model, data_name, self._from_bytes(replies[m.id][1]))
                out[name] = self._normalize(name, raw) if normalize and data_name in self.normalized_data else raw
            return out

    def sync_write(
        self, data_name: str, values: dict[str, float | int] | float | int, *, normalize: bool = True, num_retry: int = 0
    ) -> None:
        """One broadcast packet, no reply (a lost packet is acceptable): for goals in control loops."""
        with self._lock:
            if not isinstance(values, dict):
                values = dict.fromkeys(self.motors, values)
            names = self._names(list(values))
            addr, length = self._shared_address(names, data_name)
            payload: dict[int, list[int]] = {}
            for name in names:
                raw = self._to_raw(name, data_name, values[name], normalize)
                m = self.motors[name]
                payload[m.id] = self._to_bytes(self._encode_for_wire(m.model, f"'{name}'", data_name, raw), length)
            self._attempts(
                f"writing {data_name}", list(payload), lambda: self._tx_sync_write(addr, length, payload), num_retry
            )

    # ========================================================================= torque and configuration
    def enable_torque(self, motors: list[str] | None = None, num_retry: int = SETUP_RETRIES) -> None:
        with self._lock:
            self._torque_writes(self._names(motors), self.torque_on_writes, num_retry)

    def disable_torque(self, motors: list[str] | None = None, num_retry: int = SETUP_RETRIES) -> None:
        with self._lock:
            self._torque_writes(self._names(motors), self.torque_off_writes, num_retry)

    @contextmanager
    def torque_disabled(self, motors: list[str] | None = None) -> Iterator[None]:
        self.disable_torque(motors)
        try:
            yield
        finally:
            self.enable_torque(motors)

    def configure_motors(self) -> None:
        raise NotImplementedError

    # ============================================================================ calibration (EEPROM side)
    def read_calibration(self) -> dict[str, MotorCalibration]:
        raise NotImplementedError

    def write_calibration(self, calibration: dict[str, MotorCalibration]) -> None:
        raise NotImplementedError

    @property
    def is_calibrated(self) -> bool:
        raise NotImplementedError

    def reset_calibration(self, motors: list[str] | None = None) -> None:
        """Zero the homing offset and open the position limits to the full turn."""
        with self._lock:
            names = self._names(motors)
            for name in names:
                model = self.motors[name].model
                if "Homing_Offset" in self.model_ctrl_table[model]:
                    self.write("Homing_Offset", name, 0, normalize=False, num_retry=SETUP_RETRIES)
                self.write("Min_Position_Limit", name, 0, normalize=False, num_retry=SETUP_RETRIES)
                self.write("Max_Position_Limit", name, self.model_resolution_table[model] - 1, normalize=False,
                           num_retry=SETUP_RETRIES)
            for name in names:
                self.calibration.pop(name, None)

    def set_half_turn_homings(self, motors: list[str] | None = None) -> dict[str, int]:
        """Write homing offsets that put each motor's current position at mid-turn (2047 on 4096 ticks).

        Offsets are computed after a calibration reset (so positions are in the un-homed frame) and all of
        them are checked before any is written: one motor that cannot be homed writes no offset at all."""
        with self._lock:
            names = self._names(motors)
            for name in names:
                if "Homing_Offset" not in self.model_ctrl_table[self.motors[name].model]:
                    raise BusError(f"'{name}' ({self.motors[name].model}) has no Homing_Offset register: "
                                   "its range is calibrated with position limits only.")
            self.reset_calibration(names)
            positions = self.sync_read("Present_Position", names, normalize=False, num_retry=SETUP_RETRIES)
            offsets = {name: self._half_turn_offset(name, int(positions[name])) for name in names}
            for name, offset in offsets.items():
                self.write("Homing_Offset", name, offset, normalize=False, num_retry=SETUP_RETRIES)
            return offsets

    # =============================================================================== subclass hooks
    def _make_port_handler(self) -> Any:
        raise NotImplementedError

    def _tx_ping(self, motor_id: int) -> TxOutcome:
        """value = (model number, error byte)."""
        raise NotImplementedError

    def _tx_read(self, motor_id: int, addr: int, length: int) -> TxOutcome:
        """value = (data bytes, error byte)."""
        raise NotImplementedError

    def _tx_write(self, motor_id: int, addr: int, data: list[int]) -> TxOutcome:
        """value = error byte."""
        raise NotImplementedError

    def _tx_sync_read(self, ids: list[int], addr: int, length: int) -> TxOutcome:
        """value = {id: (error byte, data bytes)}; failed_id = the first id that did not answer."""
        raise NotImplementedError

    def _tx_sync_write(self, addr: int, length: int, payload: dict[int, list[int]]) -> TxOutcome:
        # Both SDKs share this call; the broadcast packet gets no reply.
        param = [b for motor_id, data in payload.items() for b in (motor_id, *data)]
        return TxOutcome(self._ph.syncWriteTxOnly(self._handler, addr, length, param, len(param)))

    def _broadcast_ping(self, num_retry: int) -> dict[int, int]:
        raise NotImplementedError

    def _encode(self, model: str, data_name: str, value: int) -> int:
        """Signed register value -> unsigned register content."""
        raise NotImplementedError

    def _decode(self, model: str, data_name: str, value: int) -> int:
        raise NotImplementedError

    def _half_turn_offset(self, motor: str, raw_position: int) -> int:
        raise NotImplementedError

    def _describe_error(self, error: int) -> str:
        raise NotImplementedError

    def _checklist(self) -> list[str]:
        """What to check when motors do not answer, brand-specific."""
        raise NotImplementedError

    def _big_endian_words(self) -> bool:
        return False

    def _handshake(self) -> None:
        self._assert_motors_exist()

    # ============================================================================== shared internals
    def _validate_motors(self) -> None:
        ids: dict[int, str] = {}
        for name, m in self.motors.items():
            if m.model not in self.model_ctrl_table:
                raise ValueError(f"motor '{name}': unknown {self.brand} model {m.model!r} "
                                 f"(known: {', '.join(sorted(self.model_ctrl_table))})")
            if m.id in ids:
                raise ValueError(f"motors '{ids[m.id]}' and '{name}' share id {m.id}")
            ids[m.id] = name

    def _motor(self, name: str) -> Motor:
        try:
            return self.motors[name]
        except KeyError:
            raise KeyError(f"no motor named {name!r} on {self.port} (motors: {', '.join(self.motors)})") from None

    def _names(self, motors: list[str] | str | None) -> list[str]:
        if motors is None:
            return list(self.motors)
        if isinstance(motors, str):  # LeRobot callers pass a single name too
            motors = [motors]
        for name in motors:
            self._motor(name)
        return list(motors)

    def _name_of(self, motor_id: int) -> str | None:
        for name, m in self.motors.items():
            if m.id == motor_id:
                return name
        return None

    def _who(self, ids: list[int]) -> str:
        parts = []
        for i in ids:
            name = self._name_of(i)
            parts.append(f"'{name}' (id {i})" if name else f"id {i}")
        return ", ".join(parts)

    def _model_name(self, number: int) -> str:
        for name, n in self.model_number_table.items():
            if n == number:
                return name
        return "unknown model"

    def _address(self, model: str, data_name: str) -> tuple[int, int]:
        table = self.model_ctrl_table[model]
        if data_name not in table:
            raise KeyError(f"{model} has no register {data_name!r}")
        return table[data_name]

    def _shared_address(self, names: list[str], data_name: str) -> tuple[int, int]:
        entries = {self._address(self.motors[n].model, data_name) for n in names}
        if len(entries) != 1:
            raise ValueError(f"{data_name} sits at different addresses on these motors ({entries}): "
                             "read or write them one by one")
        return entries.pop()

    def _from_bytes(self, data: list[int] | bytes) -> int:
        return encoding.bytes_to_int(data, big_endian_words=self._big_endian_words())

    def _to_bytes(self, value: int, length: int) -> list[int]:
        return encoding.int_to_bytes(value, length, big_endian_words=self._big_endian_words())

    def _normalize(self, name: str, raw: int) -> float:
        cal = self.calibration.get(name)
        if cal is None:
            raise NotCalibratedError(
                f"'{name}' on {self.port} has no calibration loaded: calibrate the arm first "
                "(or read raw ticks with normalize=False)."
            )
        m = self.motors[name]
        return encoding.normalize(raw, m.norm_mode, cal, self.model_resolution_table[m.model], self.apply_drive_mode)

    def _to_raw(self, name: str, data_name: str, value: float | int, normalize: bool) -> int:
        if normalize and data_name in self.normalized_data:
            cal = self.calibration.get(name)
            if cal is None:
                raise NotCalibratedError(
                    f"'{name}' on {self.port} has no calibration loaded: calibrate the arm first "
                    "(or write raw ticks with normalize=False)."
                )
            m = self.motors[name]
            return encoding.unnormalize(value, m.norm_mode, cal, self.model_resolution_table[m.model],
                                        self.apply_drive_mode)
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"{data_name} of '{name}' takes whole register values, not {value}")
            value = int(value)
        return int(value)

    # ------------------------------------------------------------------------------------ transactions
    def _open_port(self) -> None:
        handler = self._make_port_handler()
        handler.baudrate = self.baudrate
        try:
            ok = handler.openPort()
        except PORT_GONE_ERRORS as exc:
            raise self._open_error(exc) from exc
        if not ok:
            raise PortError(
                f"{self.baudrate} baud is not supported by the {self.brand} SDK; use one of {self.available_baudrates}.",
                reason="unsupported",
            )
        self._handler = handler

    def _close_port(self) -> None:
        handler, self._handler = self._handler, None
        if handler is None:
            return
        try:
            handler.closePort()
        except Exception as exc:  # closing a vanished port must not break a shutdown path
            logger.debug("%s: error while closing: %s", self.port, exc)

    def _open_error(self, exc: BaseException) -> PortError:
        code = getattr(exc, "errno", None)
        if code is None and exc.args and isinstance(exc.args[0], int):
            code = exc.args[0]
        if code == errno.ENOENT or not os.path.exists(self.port):
            return PortError(
                f"Serial port {self.port} does not exist. Is the {self.brand} controller board plugged in over "
                "USB? Run `robotui find-port` to find its port.",
                reason="missing",
            )
        if code in (errno.EACCES, errno.EPERM) or isinstance(exc, PermissionError):
            return PortError(
                f"No permission to open {self.port}. Add your user to the dialout group "
                "(`sudo usermod -aG dialout $USER`, then log out and back in) or install a udev rule for the board.",
                reason="permission",
            )
        if code in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK) or "lock" in str(exc).lower():
            return PortError(
                f"{self.port} is busy: another program (another robotui, lerobot, a serial monitor) has it open. "
                "Close it and try again.",
                reason="busy",
            )
        return PortError(f"Cannot open {self.port}: {exc}", reason="other")

    def _raise_lost_port(self, exc: BaseException | None, action: str) -> None:
        self._close_port()
        self.stats.failures += 1
        detail = f" ({exc})" if exc else ""
        raise PortError(
            f"Lost {self.port} while {action}: the port vanished{detail}. Is the USB cable unplugged or the "
            "controller board unpowered? Plug it back in, then reconnect.",
            reason="vanished",
        ) from exc

    def _require_open(self) -> Any:
        if self._handler is None:
            raise BusError(f"{self} is not connected: call connect() first.")
        return self._handler

    def _attempts(
        self,
        action: str,
        ids: list[int],
        attempt: Callable[[], TxOutcome],
        num_retry: int,
        *,
        must_succeed: bool = True,
        retry_timeouts: bool = True,
    ) -> Any:
        """Run one transaction with up to `num_retry` immediate retries; count what happens.

        Returns the outcome value, or None when `must_succeed` is False and every attempt failed. A port
        that vanished raises PortError at once (retrying cannot help). `retry_timeouts=False` is for
        broadcasts, where silence means nobody is there rather than a lost packet."""
        handler = self._require_open()
        last = TxOutcome(self.comm_timeout)
        for n in range(num_retry + 1):
            if n:
                self.stats.retries += 1
            self.stats.packets += 1
            try:
                last = attempt()
            except PORT_GONE_ERRORS as exc:
                self._raise_lost_port(exc, action)
            finally:
                handler.is_using = False
            if last.comm == self.comm_success:
                return last.value
            if last.comm == self.comm_timeout:
                self.stats.timeouts += 1
                if not os.path.exists(self.port):
                    self._raise_lost_port(None, action)
                if not retry_timeouts:
                    break
            elif last.comm == self.comm_corrupt:
                self.stats.corrupt += 1
            logger.debug("%s: %s failed (%s), attempt %d/%d", self.port, action, last.comm, n + 1, num_retry + 1)
        if not must_succeed:
            return None
        self.stats.failures += 1
        culprits = [last.failed_id] if last.failed_id is not None else ids
        raise CommError(self._comm_message(action, culprits, last.comm, num_retry + 1))

    def _comm_message(self, action: str, ids: list[int], comm: int, attempts: int) -> str:
        if comm == self.comm_timeout:
            what = "No reply"
        elif comm == self.comm_corrupt:
            what = "Only corrupt replies (bad checksum or cut-off packets)"
        else:
            what = f"Communication failure (SDK result {comm})"
        plural = "s" if len(ids) > 1 else ""
        tries = f"{attempts} attempt{'s' if attempts > 1 else ''}"
        return (
            f"{what} from motor{plural} {self._who(ids)} on {self.port} at {self.baudrate} baud while {action} "
            f"({tries}).\nCheck:\n" + "\n".join(f"  - {line}" for line in self._checklist())
        )

    def _check_errors(self, errors: dict[int, int], action: str) -> None:
        bad = {i: e for i, e in errors.items() if e}
        if not bad:
            return
        self.stats.motor_errors += len(bad)
        lines = [f"{self._who([i])}: {self._describe_error(e)} (error byte 0x{e:02X})" for i, e in bad.items()]
        raise MotorError(f"Motor error on {self.port} while {action}:\n" + "\n".join(f"  - {ln}" for ln in lines))

    def _write_id(self, motor_id: int, model: str, data_name: str, raw: int, *, num_retry: int,
                  label: str | None = None) -> None:
        addr, length = self._address(model, data_name)
        known = self._name_of(motor_id)
        name = f"'{known}'" if known else (label or f"id {motor_id}")
        data = self._to_bytes(self._encode_for_wire(model, name, data_name, raw), length)
        error = self._attempts(f"writing {data_name}", [motor_id], lambda: self._tx_write(motor_id, addr, data),
                               num_retry)
        self._check_errors({motor_id: error}, f"writing {data_name}")

    def _encode_for_wire(self, model: str, name: str, data_name: str, raw: int) -> int:
        try:
            encoded = self._encode(model, data_name, raw)
            self._to_bytes(encoded, self._address(model, data_name)[1])
        except ValueError as exc:
            raise ValueError(f"cannot write {raw} to {data_name} of {name}: {exc}") from None
        return encoded

    def _sync_read_ids(self, ids: list[int], addr: int, length: int, data_name: str,
                       num_retry: int) -> dict[int, tuple[int, list[int]]]:
        return self._attempts(f"reading {data_name}", ids, lambda: self._tx_sync_read(ids, addr, length), num_retry)

    def _torque_writes(self, names: list[str], writes: tuple[tuple[str, int], ...], num_retry: int) -> None:
        """Apply the torque writes to every motor even if one fails, so a shutdown reaches them all; then
        raise the first failure."""
        failure: BusError | None = None
        for name in names:
            m = self.motors[name]
            try:
                for data_name, value in writes:
                    self._write_id(m.id, m.model, data_name, value, num_retry=num_retry)
            except PortError:
                raise
            except BusError as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    # ------------------------------------------------------------------------------ handshake, setup
    def _assert_motors_exist(self) -> None:
        missing: list[str] = []
        wrong: dict[str, tuple[str, int]] = {}
        for name, m in self.motors.items():
            found = self.ping(m.id, num_retry=SETUP_RETRIES)
            if found is None:
                missing.append(name)
            elif found != self.model_number_table[m.model]:
                wrong[name] = (m.model, found)
        if not missing and not wrong:
            return
        lines = [f"'{n}' (id {self.motors[n].id}, {self.motors[n].model}): no reply" for n in missing]
        for n, (model, found) in wrong.items():
            lines.append(
                f"'{n}' (id {self.motors[n].id}): expected {model} (model {self.model_number_table[model]}), "
                f"found model {found} ({self._model_name(found)})"
            )
        hints = self._checklist()
        if len(missing) == len(self.motors):
            hints = ["no motor answered at all: wrong port or baud rate, or the arm's power is off", *hints]
        raise HandshakeError(
            f"Motor check failed on {self.port} at {self.baudrate} baud:\n"
            + "\n".join(f"  - {ln}" for ln in lines)
            + "\nCheck:\n"
            + "\n".join(f"  - {h}" for h in hints),
            missing,
            wrong,
        )

    def _find_single_motor(self, motor: str, baudrate: int | None = None) -> tuple[int, int]:
        """(baud, id) of the only motor on the bus, trying the model's baud rates in table order."""
        m = self._motor(motor)
        expected = self.model_number_table[m.model]
        bauds = [baudrate] if baudrate is not None else list(self.model_baudrate_table[m.model])
        for baud in bauds:
            self.set_baudrate(baud)
            found = self._discover_single(num_retry=1)
            if not found:
                continue
            if len(found) > 1:
                raise MultipleMotorsError(
                    f"More than one motor answers on {self.port} at {baud} baud (ids {sorted(found)}). Connect "
                    f"only the '{motor}' motor to the controller board, then try again.",
                    sorted(found),
                    baud,
                )
            motor_id, model = next(iter(found.items()))
            if model != expected:
                raise HandshakeError(
                    f"The motor on {self.port} (id {motor_id}, {baud} baud) is a {self._model_name(model)} "
                    f"(model {model}), but '{motor}' must be a {m.model} (model {expected}).",
                    [],
                    {motor: (m.model, model)},
                )
            return baud, motor_id
        self.stats.failures += 1
        raise NoMotorFoundError(
            f"No motor answered on {self.port} at any of {bauds} baud while looking for the '{motor}' motor.\n"
            "Check:\n" + "\n".join(f"  - {line}" for line in ["exactly one motor is connected", *self._checklist()]),
            bauds,
        )

    def _discover_single(self, num_retry: int) -> dict[int, int]:
        return self._broadcast_ping(num_retry)

    def _broadcast_window_ms(self, status_len: int) -> float:
        """How long the replies to a broadcast ping may take at the current baud rate (see `broadcast_max_id`)."""
        byte_ms = 10_000.0 / self.baudrate  # 10 bits per byte on the wire
        return self.broadcast_max_id * (status_len * byte_ms + self.broadcast_slot_ms) + 16.0

    def _receive_broadcast(self, status_len: int) -> bytes:
        """Every byte that arrives until the last id's slot has passed (or every id has answered): never less,
        since a quiet line can still be followed by a higher id's reply."""
        handler = self._handler
        wait_length = status_len * (self.broadcast_max_id + 1)
        handler.setPacketTimeoutMillis(self._broadcast_window_ms(status_len))
        rx = bytearray()
        while len(rx) < wait_length and not handler.isPacketTimeout():
            rx += handler.readPort(wait_length - len(rx))
        return bytes(rx)

    def _write_expecting_change(self, motor_id: int, model: str, data_name: str, raw: int) -> None:
        """A write whose reply may be lost because the motor changes its id or baud rate right away."""
        try:
            self._write_id(motor_id, model, data_name, raw, num_retry=0)
        except CommError as exc:
            logger.debug("%s: no reply to %s write (may be expected): %s", self.port, data_name, exc)

    def _verify_answers(self, motor: str, motor_id: int, when: str) -> None:
        expected = self.model_number_table[self.motors[motor].model]
        found = self.ping(motor_id, num_retry=SETUP_RETRIES)
        if found != expected:
            self.stats.failures += 1
            raise CommError(
                f"'{motor}' did not answer at id {motor_id} on {self.port} ({self.baudrate} baud) {when}"
                + (f" (found model {found})" if found is not None else "")
                + ". Power-cycle the motor and run its setup again.\nCheck:\n"
                + "\n".join(f"  - {line}" for line in self._checklist())
            )
