"""One emulated servo: control-table memory, register access rules and motion.

The base class holds what every servo family shares (a byte image of the control table, the physical
shaft position, motion toward the goal); `FeetechServo` and `DynamixelServo` add each firmware's rules
(homing-offset direction, sign encoding, EEPROM protection, defaults). The protocol layers only move bytes
in and out through `read_bytes` / `write_bytes`, so what a driver sees on the wire is exactly what this
memory says.

All state is guarded by the bus lock (an `RLock` shared by every servo on one bus), because the responder
thread, the physics sim and test code touch it concurrently.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import ClassVar, Literal

from drivers.motors.tables import ControlTable

Motion = Literal["internal", "external"]

MEMORY_SIZE = 1024
# A servo counts as moving while its position error exceeds this many ticks.
MOVING_THRESHOLD_TICKS = 2.0


class EmulatedServo:
    """Shared behaviour of an emulated servo. Subclasses define the firmware specifics."""

    family: ClassVar[str]
    table: ControlTable
    resolution: int
    byteorder: Literal["little", "big"] = "little"
    eeprom_end: int
    baud_table: dict[int, int]
    access_error: ClassVar[int] = 0  # status error code for an address outside the memory

    def __init__(
        self,
        motor_id: int,
        model: str,
        *,
        baudrate: int,
        lock: threading.RLock,
        motion: Motion = "internal",
        max_speed: float = 4000.0,
        initial_position: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if baudrate not in self.baud_table:
            raise ValueError(
                f"{model}: unsupported baud rate {baudrate}; the Baud_Rate register can hold {sorted(self.baud_table)}"
            )
        if motion not in ("internal", "external"):
            raise ValueError(f"motion must be 'internal' or 'external', not {motion!r}")
        self.model = model
        self.motion: Motion = motion
        self.max_speed = float(max_speed)
        self._lock = lock
        self._clock = clock
        self._mem = bytearray(MEMORY_SIZE)
        self._actual = float(initial_position if initial_position is not None else self.resolution // 2)
        self._velocity = 0.0  # ticks/s, internal motion only
        self._last_advance = clock()
        self._pending_write: tuple[int, bytes] | None = None  # REG_WRITE waiting for ACTION
        self._factory_defaults(motor_id, baudrate)
        self._persisted = bytearray(self._mem[: self.eeprom_end])
        self._reset_ram()

    # ------------------------------------------------------------------ firmware specifics (subclasses)
    def _factory_defaults(self, motor_id: int, baudrate: int) -> None:
        raise NotImplementedError

    def _ram_defaults(self) -> dict[str, int]:
        """Decoded RAM values a power-up sets (Present_* and Goal_Position are handled separately)."""
        raise NotImplementedError

    def _present_from_actual(self, actual: float) -> int:
        """Register value of Present_Position (decoded) for a physical shaft position."""
        raise NotImplementedError

    def _goal_to_actual(self, goal: int) -> float:
        """Physical target for a (decoded) Goal_Position, after the firmware's limit clamping."""
        raise NotImplementedError

    def _encode(self, name: str, value: int) -> int:
        """Decoded register value -> unsigned register content."""
        raise NotImplementedError

    def _decode(self, name: str, raw: int) -> int:
        """Unsigned register content -> decoded value."""
        raise NotImplementedError

    def _check_write(self, address: int, data: bytes) -> int:
        """Protocol error code that refuses this write, or 0 to accept it."""
        raise NotImplementedError

    def _writable_bytes(self, address: int, data: bytes) -> bytes:
        """What an accepted wire write actually changes (firmware may skip read-only bytes silently)."""
        return data

    def _persist_write(self, address: int, data: bytes) -> None:
        """Copy an accepted EEPROM write into the image that survives a power cycle (or not)."""
        raise NotImplementedError

    def _velocity_register(self, ticks_per_s: float) -> int:
        raise NotImplementedError

    def _speed_limit(self) -> float:
        """Ticks per second the firmware will move at, from max_speed and any profile register."""
        return self.max_speed

    def _update_status_registers(self) -> None:
        """Family-specific read-only registers (voltage, temperature, ...), refreshed before each read."""

    # ---------------------------------------------------------------------------------- public view
    @property
    def id(self) -> int:
        return self._raw("ID")

    @property
    def baudrate(self) -> int:
        """The baud rate this servo listens at, from its Baud_Rate register."""
        code = self._raw("Baud_Rate")
        for baud, value in self.baud_table.items():
            if value == code:
                return baud
        return -1  # an out-of-table code: the servo hears nothing (as a misconfigured motor would)

    @property
    def torque_enabled(self) -> bool:
        return self._raw("Torque_Enable") == 1

    @property
    def locked(self) -> bool:
        """Feetech Lock register set (EEPROM writes not persisted); Dynamixel: torque on (EEPROM refused)."""
        return self.torque_enabled

    @property
    def actual(self) -> float:
        """Physical shaft position in ticks (unwrapped; not affected by the homing offset)."""
        with self._lock:
            self._advance()
            return self._actual

    @property
    def present_position(self) -> int:
        return self.read_register("Present_Position")

    @property
    def goal_actual(self) -> float | None:
        """Where the firmware is driving the shaft, in the physical frame; None while torque is off."""
        with self._lock:
            if not self.torque_enabled:
                return None
            return self._goal_to_actual(self._decoded("Goal_Position"))

    def read_register(self, name: str) -> int:
        with self._lock:
            self._advance()
            self._refresh()
            return self._decoded(name)

    def write_register(self, name: str, value: int) -> None:
        """Set a register as the factory would: no Lock or torque checks, EEPROM persisted."""
        address, size = self._entry(name)
        data = self._encode(name, int(value)).to_bytes(size, self.byteorder)
        with self._lock:
            self._advance()
            self._store(address, data)
            if address < self.eeprom_end:
                end = min(address + size, self.eeprom_end)
                self._persisted[address:end] = data[: end - address]

    def set_actual(self, position: float) -> None:
        with self._lock:
            self._advance()
            self._actual = float(position)

    # ------------------------------------------------------------------------------- protocol access
    def read_bytes(self, address: int, length: int) -> tuple[int, bytes]:
        """(error code, data) as the firmware answers a READ."""
        with self._lock:
            if address + length > MEMORY_SIZE:
                return self.access_error, bytes(length)
            self._advance()
            self._refresh()
            return 0, bytes(self._mem[address : address + length])

    def write_bytes(self, address: int, data: bytes) -> int:
        """Apply a WRITE as the firmware would; returns the protocol error code (0 = accepted)."""
        with self._lock:
            if address + len(data) > MEMORY_SIZE:
                return self.access_error
            error = self._check_write(address, data)
            if error:
                return error
            data = self._writable_bytes(address, data)
            self._advance()
            self._store(address, data)
            self._persist_write(address, data)
            return 0

    def register_write(self, address: int, data: bytes) -> int:
        """REG_WRITE: park the write until ACTION."""
        with self._lock:
            if address + len(data) > MEMORY_SIZE:
                return self.access_error
            self._pending_write = (address, bytes(data))
            return 0

    def action(self) -> int:
        with self._lock:
            if self._pending_write is None:
                return 0
            address, data = self._pending_write
            self._pending_write = None
            return self.write_bytes(address, data)

    def power_cycle(self) -> None:
        """Power off and on: EEPROM comes back from its persisted image, RAM from its defaults."""
        with self._lock:
            self._advance()
            self._mem[: self.eeprom_end] = self._persisted
            self._pending_write = None
            self._reset_ram()

    # ------------------------------------------------------------------------------------ internals
    def _entry(self, name: str) -> tuple[int, int]:
        try:
            return self.table[name]
        except KeyError:
            raise KeyError(f"{self.model} has no register {name!r}") from None

    def _raw(self, name: str) -> int:
        address, size = self._entry(name)
        return int.from_bytes(self._mem[address : address + size], self.byteorder)

    def _decoded(self, name: str) -> int:
        return self._decode(name, self._raw(name))

    def _set(self, name: str, value: int) -> None:
        """Write a decoded value straight into memory (no side effects, no persistence)."""
        address, size = self._entry(name)
        raw = self._encode(name, int(value)) & ((1 << (8 * size)) - 1)
        self._mem[address : address + size] = raw.to_bytes(size, self.byteorder)

    def _store(self, address: int, data: bytes) -> None:
        """Put bytes in memory and run the side effects of the registers they touch."""
        torque_addr = self._entry("Torque_Enable")[0]
        was_on = self.torque_enabled
        self._mem[address : address + len(data)] = data
        if address <= torque_addr < address + len(data) and self.torque_enabled and not was_on:
            self._hold_current_position()

    def _hold_current_position(self) -> None:
        """Torque-on makes the goal the current position, so enabling torque never jerks the arm."""
        self._set("Goal_Position", self._present_from_actual(self._actual))

    def _reset_ram(self) -> None:
        self._mem[self.eeprom_end :] = bytes(MEMORY_SIZE - self.eeprom_end)
        for name, value in self._ram_defaults().items():
            self._set(name, value)
        self._velocity = 0.0
        self._hold_current_position()
        self._refresh()

    def _advance(self) -> None:
        """Integrate internal motion up to now (lazy: no thread, exact at every access)."""
        now = self._clock()
        dt = max(0.0, now - self._last_advance)
        self._last_advance = now
        if self.motion != "internal" or not self.torque_enabled:
            self._velocity = 0.0
            return
        target = self._goal_to_actual(self._decoded("Goal_Position"))
        error = target - self._actual
        step = self._speed_limit() * dt
        if abs(error) <= step:
            self._velocity = error / dt if dt > 0 and error else 0.0
            self._actual = target
        else:
            direction = 1.0 if error > 0 else -1.0
            self._actual += direction * step
            self._velocity = direction * self._speed_limit()

    def _is_moving(self) -> bool:
        if not self.torque_enabled:
            return False
        return (
            abs(self._goal_to_actual(self._decoded("Goal_Position")) - self._actual) > MOVING_THRESHOLD_TICKS
        )

    def _refresh(self) -> None:
        """Recompute the read-only Present_* / Moving registers from the physical state."""
        self._set("Present_Position", self._present_from_actual(self._actual))
        self._set("Present_Velocity", self._velocity_register(self._velocity))
        self._set("Moving", int(self._is_moving()))
        self._update_status_registers()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id}, model={self.model!r}, baudrate={self.baudrate})"
