"""Wire-level servo emulator on pseudo-terminals (Feetech protocol 0/1, Dynamixel protocol 2.0).

`EmulatedBus` puts emulated motors behind a pty with a stable symlink (`bus.port`) that the real drivers
open unchanged; it is what `--sim` and the tests run against.

    with EmulatedBus("feetech", {1: "sts3215", 2: "sts3215"}, name="follower") as bus:
        ...  # open bus.port with FeetechBus / scservo_sdk
"""

from drivers.emulator.bus import EmulatedBus
from drivers.emulator.dynamixel_servo import DynamixelServo
from drivers.emulator.faults import EmulatorStats, Faults
from drivers.emulator.feetech_servo import FeetechServo
from drivers.emulator.pty_port import default_port_dir
from drivers.emulator.servo import EmulatedServo

__all__ = [
    "DynamixelServo",
    "EmulatedBus",
    "EmulatedServo",
    "EmulatorStats",
    "Faults",
    "FeetechServo",
    "default_port_dir",
]
