"""Dynamixel X-series firmware rules (protocol 2.0) on top of `EmulatedServo`.

What matters to drivers and calibration:
- `Present_Position = Actual + Homing_Offset` (two's complement); Drive_Mode bit 0 (reverse) mirrors the
  shaft within one turn before the offset is added.
- EEPROM (below address 64) always persists, but a write there while Torque_Enable is 1 is refused with
  the protocol-2 Access error (7), as are writes to read-only registers.
- Min/Max_Position_Limit clamp goals in position mode (Operating_Mode 3) only.
"""

from __future__ import annotations

from typing import Any, ClassVar

from drivers.emulator.servo import EmulatedServo
from drivers.motors import tables

ERROR_ACCESS = 7
OPERATING_MODE_POSITION = 3
DRIVE_MODE_REVERSE = 0x01
TICKS_PER_S_PER_VELOCITY_UNIT = 0.229 * tables.DYNAMIXEL_RESOLUTION / 60.0  # 0.229 rpm per unit
READ_ONLY_REGISTERS = (
    "Model_Number",
    "Model_Information",
    "Firmware_Version",
    "Registered_Instruction",
    "Hardware_Error_Status",
    "Realtime_Tick",
    "Moving",
    "Moving_Status",
    "Present_PWM",
    "Present_Current",
    "Present_Velocity",
    "Present_Position",
    "Velocity_Trajectory",
    "Position_Trajectory",
    "Present_Input_Voltage",
    "Present_Temperature",
)


def _model_defaults(model: str) -> dict[str, int]:
    """Model-dependent factory values (the 5 V XL330 family versus the 12 V XL430-class motors)."""
    if model.startswith(("xl330", "xc330")):
        return {
            "Max_Voltage_Limit": 70,
            "Min_Voltage_Limit": 35,
            "Current_Limit": 1750,
            "Velocity_Limit": 445,
            "Temperature_Limit": 70,
            "Position_P_Gain": 400,
            "Velocity_P_Gain": 180,
            "Velocity_I_Gain": 1600,
            "voltage": 50,
        }
    return {
        "Max_Voltage_Limit": 140,
        "Min_Voltage_Limit": 60,
        "Current_Limit": 1193,
        "Velocity_Limit": 265,
        "Temperature_Limit": 72,
        "Position_P_Gain": 640,
        "Velocity_P_Gain": 100,
        "Velocity_I_Gain": 1000,
        "voltage": 120,
    }


class DynamixelServo(EmulatedServo):
    family: ClassVar[str] = "dynamixel"
    table = tables.X_SERIES_CONTROL_TABLE
    resolution = tables.DYNAMIXEL_RESOLUTION
    eeprom_end = tables.DYNAMIXEL_EEPROM_END
    baud_table = tables.DYNAMIXEL_BAUDRATE_TABLE
    access_error: ClassVar[int] = ERROR_ACCESS

    def __init__(self, motor_id: int, model: str, **kwargs: Any) -> None:
        if model not in tables.DYNAMIXEL_MODEL_NUMBERS:
            raise ValueError(
                f"unknown Dynamixel model {model!r}; known: {sorted(tables.DYNAMIXEL_MODEL_NUMBERS)}"
            )
        self._model_values = _model_defaults(model)
        self._read_only = bytearray(256)
        for name in READ_ONLY_REGISTERS:
            address, size = self.table[name]
            self._read_only[address : address + size] = b"\x01" * size
        super().__init__(motor_id, model, **kwargs)

    @property
    def homing_offset(self) -> int:
        return self._decoded("Homing_Offset")

    # ------------------------------------------------------------------------------- defaults
    def _factory_defaults(self, motor_id: int, baudrate: int) -> None:
        values = self._model_values
        defaults = {
            "Model_Number": tables.DYNAMIXEL_MODEL_NUMBERS[self.model],
            "Firmware_Version": tables.DYNAMIXEL_FIRMWARE,
            "ID": motor_id,
            "Baud_Rate": self.baud_table[baudrate],
            "Return_Delay_Time": 250,
            "Operating_Mode": OPERATING_MODE_POSITION,
            "Secondary_ID": 255,
            "Protocol_Type": 2,
            "Moving_Threshold": 10,
            "Temperature_Limit": values["Temperature_Limit"],
            "Max_Voltage_Limit": values["Max_Voltage_Limit"],
            "Min_Voltage_Limit": values["Min_Voltage_Limit"],
            "PWM_Limit": 885,
            "Current_Limit": values["Current_Limit"],
            "Acceleration_Limit": 32767,
            "Velocity_Limit": values["Velocity_Limit"],
            "Max_Position_Limit": self.resolution - 1,
            "Min_Position_Limit": 0,
            "Shutdown": 52,
        }
        for name, value in defaults.items():
            self._set(name, value)

    def _ram_defaults(self) -> dict[str, int]:
        values = self._model_values
        return {
            "Status_Return_Level": 2,
            "Velocity_I_Gain": values["Velocity_I_Gain"],
            "Velocity_P_Gain": values["Velocity_P_Gain"],
            "Position_P_Gain": values["Position_P_Gain"],
            "Goal_PWM": self._decoded("PWM_Limit"),
            "Goal_Current": self._decoded("Current_Limit"),
        }

    def _update_status_registers(self) -> None:
        self._set("Present_Input_Voltage", self._model_values["voltage"])
        self._set("Present_Temperature", 30)
        self._set("Realtime_Tick", int(self._clock() * 1000) % 32768)
        self._set("Moving_Status", 0 if self._is_moving() else 1)  # bit 0: in position

    # ------------------------------------------------------------------------------ encodings
    def _encode(self, name: str, value: int) -> int:
        if name not in tables.DYNAMIXEL_SIGNED_REGISTERS:
            return value
        bits = 8 * self.table[name][1]
        if not -(1 << (bits - 1)) <= value < (1 << (bits - 1)):
            raise ValueError(f"{name}={value} does not fit {bits}-bit two's complement")
        return value & ((1 << bits) - 1)

    def _decode(self, name: str, raw: int) -> int:
        if name not in tables.DYNAMIXEL_SIGNED_REGISTERS:
            return raw
        bits = 8 * self.table[name][1]
        return raw - (1 << bits) if raw >> (bits - 1) else raw

    # --------------------------------------------------------------------------- position maps
    def _reversed(self) -> bool:
        return bool(self._raw("Drive_Mode") & DRIVE_MODE_REVERSE)

    def _present_from_actual(self, actual: float) -> int:
        shaft = round(actual)
        if self._reversed():
            shaft = self.resolution - 1 - shaft
        return shaft + self.homing_offset

    def _goal_to_actual(self, goal: int) -> float:
        if self._raw("Operating_Mode") == OPERATING_MODE_POSITION:
            goal = min(max(goal, self._decoded("Min_Position_Limit")), self._decoded("Max_Position_Limit"))
        shaft = goal - self.homing_offset
        if self._reversed():
            shaft = self.resolution - 1 - shaft
        return float(shaft)

    def _velocity_register(self, ticks_per_s: float) -> int:
        return round(ticks_per_s / TICKS_PER_S_PER_VELOCITY_UNIT)

    def _speed_limit(self) -> float:
        profile = self._raw("Profile_Velocity")
        return min(self.max_speed, profile * TICKS_PER_S_PER_VELOCITY_UNIT) if profile else self.max_speed

    # --------------------------------------------------------------------------------- writes
    def _check_write(self, address: int, data: bytes) -> int:
        end = address + len(data)
        if any(self._read_only[address:end]):
            return ERROR_ACCESS
        if address < self.eeprom_end and self.torque_enabled:
            return ERROR_ACCESS
        return 0

    def _persist_write(self, address: int, data: bytes) -> None:
        if address < self.eeprom_end:
            end = min(address + len(data), self.eeprom_end)
            self._persisted[address:end] = self._mem[address:end]
