"""The `MotorBus` interface shared by the Feetech and Dynamixel drivers, and its data types.

CONTRACT (filled in by the bus implementation; robots, engine and the sim code against these names).
Semantics follow LeRobot's `SerialMotorsBus` (reference/lerobot-interop.md §1) so calibration files and
normalized values are identical; on top of that, every failure names the port, the motor and what to check.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum


class NormMode(str, Enum):
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
    """The serial port cannot be opened (missing, busy, no permission) or vanished while in use."""


class CommError(BusError, ConnectionError):
    """No reply, or only corrupt replies, after the bounded retries. Names port and motor(s)."""


class HandshakeError(BusError):
    """Configured motors missing or of the wrong model. `missing`/`wrong` name them."""

    def __init__(self, message: str, missing: list[str], wrong: dict[str, tuple[str, int]]):
        super().__init__(message)
        self.missing = missing
        self.wrong = wrong


class MotorError(BusError):
    """A motor answered with its status error byte set (overload, voltage, angle limit...)."""


@dataclass
class BusStats:
    """Counters the UI shows and the benches read. Reset never: they count since connect."""

    packets: int = 0
    retries: int = 0
    timeouts: int = 0
    corrupt: int = 0
    motor_errors: int = 0
    failures: int = 0  # operations that raised after exhausting retries


class MotorBus:
    """Abstract serial motor bus. Subclasses: `FeetechBus` (drivers/motors/feetech.py) and
    `DynamixelBus` (drivers/motors/dynamixel.py)."""

    default_baudrate: int
    available_baudrates: list[int]

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

    # --- connection
    @property
    def is_connected(self) -> bool: ...
    def connect(self, handshake: bool = True) -> None: ...
    def disconnect(self, disable_torque: bool = True) -> None: ...
    def set_baudrate(self, baudrate: int) -> None: ...

    # --- discovery
    def ping(self, motor: str | int, num_retry: int = 0) -> int | None: ...
    def broadcast_ping(self, num_retry: int = 0) -> dict[int, int]: ...
    @classmethod
    def scan_port(cls, port: str, baudrates: list[int] | None = None) -> dict[int, list[int]]: ...
    def setup_motor(self, motor: str, initial_baudrate: int | None = None, initial_id: int | None = None) -> tuple[int, int]:
        """With exactly one motor on the bus: find it (any baud, any id), then write the target id and the
        default baud rate. Returns (baudrate it was found at, id it had)."""
        ...

    # --- registers
    def read(self, data_name: str, motor: str, *, normalize: bool = True, num_retry: int = 0) -> float | int: ...
    def write(self, data_name: str, motor: str, value: float | int, *, normalize: bool = True, num_retry: int = 0) -> None: ...
    def sync_read(
        self, data_name: str, motors: list[str] | None = None, *, normalize: bool = True, num_retry: int = 0
    ) -> dict[str, float | int]: ...
    def sync_write(
        self, data_name: str, values: dict[str, float | int] | float | int, *, normalize: bool = True, num_retry: int = 0
    ) -> None: ...

    # --- torque and configuration
    def enable_torque(self, motors: list[str] | None = None, num_retry: int = 0) -> None: ...
    def disable_torque(self, motors: list[str] | None = None, num_retry: int = 0) -> None: ...
    @contextmanager
    def torque_disabled(self, motors: list[str] | None = None) -> Iterator[None]:
        self.disable_torque(motors)
        try:
            yield
        finally:
            self.enable_torque(motors)

    def configure_motors(self) -> None: ...

    # --- calibration (EEPROM side)
    def read_calibration(self) -> dict[str, MotorCalibration]: ...
    def write_calibration(self, calibration: dict[str, MotorCalibration]) -> None: ...
    @property
    def is_calibrated(self) -> bool: ...
    def reset_calibration(self, motors: list[str] | None = None) -> None: ...
    def set_half_turn_homings(self, motors: list[str] | None = None) -> dict[str, int]: ...
