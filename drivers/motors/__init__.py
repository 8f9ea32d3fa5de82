"""Serial motor buses (Feetech, Dynamixel): control tables, encodings, normalization, drivers."""

from drivers.motors.bus import (
    BusError,
    BusStats,
    CommError,
    HandshakeError,
    Motor,
    MotorBus,
    MotorCalibration,
    MotorError,
    MultipleMotorsError,
    NoMotorFoundError,
    NormMode,
    NotCalibratedError,
    PortError,
)
from drivers.motors.dynamixel import DynamixelBus
from drivers.motors.feetech import FeetechBus

__all__ = [
    "BusError",
    "BusStats",
    "CommError",
    "DynamixelBus",
    "FeetechBus",
    "HandshakeError",
    "Motor",
    "MotorBus",
    "MotorCalibration",
    "MotorError",
    "MultipleMotorsError",
    "NoMotorFoundError",
    "NormMode",
    "NotCalibratedError",
    "PortError",
]
