"""Feetech STS/SMS (protocol 0) and SCS (protocol 1) firmware rules on top of `EmulatedServo`.

What matters to drivers and calibration:
- `Present_Position = Actual - Homing_Offset` (Homing_Offset sign-magnitude, sign bit 11; positions sign
  bit 15). With Phase bit 4 clear (what LeRobot's configure_motors sets) positions wrap into [0, 4095];
  with it set (the STS3215 factory value) they are reported unwrapped, so they can go negative.
- EEPROM is below address 40. Writes there always take effect, but only survive a power cycle when the
  Lock register is 0; Lock comes up as 1 at power-on.
- SCS (scs0009) stores words big-endian, has no Homing_Offset and no sign encoding.
"""

from __future__ import annotations

from typing import Any, ClassVar

from drivers.emulator.servo import EmulatedServo
from drivers.motors import tables

PHASE_UNWRAPPED_FEEDBACK = 0x10  # Phase bit 4: angle feedback not wrapped to one turn
FACTORY_PHASE = {"sts3215": PHASE_UNWRAPPED_FEEDBACK}
READ_ONLY_RANGES = ((0, 5), (56, 80))  # firmware/model number; Present_* block
SIGN_MAGNITUDE_MAX_BIT = 15


class FeetechServo(EmulatedServo):
    family: ClassVar[str] = "feetech"
    eeprom_end = tables.FEETECH_EEPROM_END
    baud_table = tables.FEETECH_BAUDRATE_TABLE

    def __init__(self, motor_id: int, model: str, **kwargs: Any) -> None:
        if model not in tables.FEETECH_MODEL_NUMBERS:
            raise ValueError(
                f"unknown Feetech model {model!r}; known: {sorted(tables.FEETECH_MODEL_NUMBERS)}"
            )
        self.table = tables.FEETECH_MODEL_CONTROL_TABLE[model]
        self.resolution = tables.FEETECH_MODEL_RESOLUTION[model]
        self.protocol = tables.FEETECH_MODEL_PROTOCOL[model]
        self.byteorder = "little" if self.protocol == 0 else "big"
        self._sign_bits = tables.FEETECH_MODEL_ENCODINGS[model]
        super().__init__(motor_id, model, **kwargs)

    @property
    def locked(self) -> bool:
        return self._raw("Lock") == 1

    @property
    def homing_offset(self) -> int:
        return self._decoded("Homing_Offset") if "Homing_Offset" in self.table else 0

    # ------------------------------------------------------------------------------- defaults
    def _factory_defaults(self, motor_id: int, baudrate: int) -> None:
        major, minor = tables.FEETECH_FIRMWARE
        defaults = {
            "Firmware_Major_Version": major,
            "Firmware_Minor_Version": minor,
            "Model_Number": tables.FEETECH_MODEL_NUMBERS[self.model],
            "ID": motor_id,
            "Baud_Rate": self.baud_table[baudrate],
            "Return_Delay_Time": 250,
            "Response_Status_Level": 1,
            "Min_Position_Limit": 0,
            "Max_Position_Limit": self.resolution - 1,
            "Max_Temperature_Limit": 70,
            "Max_Voltage_Limit": 140,
            "Min_Voltage_Limit": 40,
            "Max_Torque_Limit": 1000,
            "Phase": FACTORY_PHASE.get(self.model, 0),
            "Unloading_Condition": 44,
            "LED_Alarm_Condition": 47,
            "P_Coefficient": 32,
            "D_Coefficient": 32,
            "I_Coefficient": 0,
            "Minimum_Startup_Force": 16,
            "CW_Dead_Zone": 1,
            "CCW_Dead_Zone": 1,
            "Protective_Torque": 20,
            "Protection_Time": 200,
        }
        if self.protocol == 0:
            defaults |= {
                "Protection_Current": 500,
                "Angular_Resolution": 1,
                "Homing_Offset": 0,
                "Operating_Mode": 0,
                "Overload_Torque": 80,
                "Velocity_closed_loop_P_proportional_coefficient": 10,
                "Over_Current_Protection_Time": 200,
                "Velocity_closed_loop_I_integral_coefficient": 200,
            }
        for name, value in defaults.items():
            self._set(name, value)

    def _ram_defaults(self) -> dict[str, int]:
        ram = {"Torque_Enable": 0, "Lock": 1, "Present_Voltage": 120, "Present_Temperature": 30}
        if self.protocol == 0:
            ram |= {"Torque_Limit": 1000, "Maximum_Acceleration": 254}
        return ram

    # ------------------------------------------------------------------------------ encodings
    def _encode(self, name: str, value: int) -> int:
        bit = self._sign_bits.get(name)
        if bit is None:
            return value
        magnitude = abs(value)
        if magnitude > (1 << bit) - 1:
            raise ValueError(f"{name}={value} does not fit a sign-magnitude field with sign bit {bit}")
        return (1 << bit) | magnitude if value < 0 else magnitude

    def _decode(self, name: str, raw: int) -> int:
        bit = self._sign_bits.get(name)
        if bit is None:
            return raw
        magnitude = raw & ((1 << bit) - 1)
        return -magnitude if (raw >> bit) & 1 else magnitude

    # --------------------------------------------------------------------------- position maps
    def _present_from_actual(self, actual: float) -> int:
        homed = round(actual) - self.homing_offset
        if self.protocol == 1:
            return min(max(homed, 0), self.resolution - 1)
        if self._wraps():
            return homed % self.resolution
        limit = (1 << SIGN_MAGNITUDE_MAX_BIT) - 1
        return min(max(homed, -limit), limit)

    def _wraps(self) -> bool:
        return self.protocol == 0 and not self._raw("Phase") & PHASE_UNWRAPPED_FEEDBACK

    def _goal_to_actual(self, goal: int) -> float:
        low, high = self._decoded("Min_Position_Limit"), self._decoded("Max_Position_Limit")
        if low < high:  # min == max (both 0) is the unlimited / wheel configuration
            goal = min(max(goal, low), high)
        target = goal + self.homing_offset
        if self._wraps():
            # The position loop runs in the wrapped homed frame, so the shaft moves within the turn it is in.
            target += self.resolution * ((round(self._actual) - self.homing_offset) // self.resolution)
        return float(target)

    def _velocity_register(self, ticks_per_s: float) -> int:
        limit = (1 << SIGN_MAGNITUDE_MAX_BIT) - 1
        value = max(-limit, min(limit, round(ticks_per_s)))
        return value if self.protocol == 0 else abs(value)  # SCS registers carry no sign

    def _speed_limit(self) -> float:
        requested = abs(self._decoded("Goal_Velocity"))
        return min(self.max_speed, float(requested)) if requested else self.max_speed

    # --------------------------------------------------------------------------------- writes
    def _check_write(self, address: int, data: bytes) -> int:
        return 0  # Feetech firmware never refuses a write; read-only bytes are skipped (_writable_bytes)

    def _writable_bytes(self, address: int, data: bytes) -> bytes:
        merged = bytearray(self._mem[address : address + len(data)])
        for offset, byte in enumerate(data):
            if not any(lo <= address + offset < hi for lo, hi in READ_ONLY_RANGES):
                merged[offset] = byte
        return bytes(merged)

    def _persist_write(self, address: int, data: bytes) -> None:
        if address >= self.eeprom_end or self.locked:
            return  # RAM, or EEPROM written while locked: live now, gone after a power cycle
        end = min(address + len(data), self.eeprom_end)
        self._persisted[address:end] = self._mem[address:end]
