"""How a simulated joint angle shows up on its servo's encoder, and the calibration that undoes it.

A real arm's servos are mounted with arbitrary horn positions, so raw ticks at the calibration pose are
anywhere, not 2048. Each virtual arm gets seeded "mounting" offsets, which makes homing and range recording
meaningful. (Turning directions are a property of the SO-101 build, the same on leader and follower, so
they are not randomized: a mirrored joint would make teleoperation move the wrong way.) From the mounting,
the exact calibration a perfect run of LeRobot's procedure would produce is known, and so are the
normalized values the bus reports (LeRobot's `_normalize` formulas); the gym env and the demonstrator use
them so that their numbers match the robot's.

    physical ticks = mount + 2048 + (angle - mid) * 4096 / 2π     (unwrapped, as the emulator takes them)

The emulated firmware wraps Present_Position into one turn, exactly as the STS3215 does; half-turn homing
puts the calibration pose at 2047, where no joint range wraps.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from drivers.motors.bus import MotorCalibration, NormMode
from drivers.sim.scene import GRIPPER, JOINTS, JointSpec

RESOLUTION = 4096
TICKS_PER_RAD = RESOLUTION / (2.0 * math.pi)
HALF_TURN = (RESOLUTION - 1) // 2  # 2047: where half-turn homing puts the calibration pose
FULL_RANGE_JOINTS = ("wrist_roll",)  # LeRobot does not record wrist_roll's range: it stores 0..4095
MAX_MOUNT = 1000  # |mount| bound: keeps the half-turn homing offset well inside its 11-bit magnitude


def norm_mode(name: str) -> NormMode:
    """SO-101 convention (LeRobot, use_degrees=True): every joint in degrees, the gripper 0..100."""
    return NormMode.RANGE_0_100 if name == GRIPPER else NormMode.DEGREES


@dataclass(frozen=True)
class JointMount:
    spec: JointSpec
    mount: int  # ticks added by the horn position

    def physical(self, angle: float) -> float:
        """Raw shaft position (ticks, fractional, unwrapped) for a joint angle in radians."""
        return self.mount + 2048 + (angle - self.spec.mid) * TICKS_PER_RAD

    def angle(self, physical: float) -> float:
        """Inverse of `physical`, modulo a turn: the joint spans less than a turn, so a goal written in a
        wrapped frame (an uncalibrated servo) still means one angle."""
        rel = (physical - self.mount - 2048 + RESOLUTION / 2) % RESOLUTION - RESOLUTION / 2
        return self.spec.mid + rel / TICKS_PER_RAD

    def homed(self, angle: float) -> float:
        """Present_Position (homed frame, fractional) the calibrated servo reports at this angle."""
        return HALF_TURN + (angle - self.spec.mid) * TICKS_PER_RAD

    def calibration(self) -> MotorCalibration:
        """What LeRobot's calibration records for this motor: half-turn homing at the middle of the range,
        then the range of motion in the homed frame."""
        offset = round(self.physical(self.spec.mid)) - HALF_TURN
        if self.spec.name in FULL_RANGE_JOINTS:
            lo, hi = 0, RESOLUTION - 1
        else:
            lo, hi = round(self.homed(self.spec.lower)), round(self.homed(self.spec.upper))
        return MotorCalibration(
            id=self.spec.motor_id, drive_mode=0, homing_offset=offset, range_min=lo, range_max=hi
        )

    def normalized(self, angle: float) -> float:
        """The value the calibrated robot reports for this angle (LeRobot's `_normalize`, without rounding)."""
        cal = self.calibration()
        raw = self.homed(angle)
        if norm_mode(self.spec.name) is NormMode.DEGREES:
            mid = (cal.range_min + cal.range_max) / 2
            return (raw - mid) * 360.0 / (RESOLUTION - 1)
        raw = min(max(raw, cal.range_min), cal.range_max)
        return (raw - cal.range_min) / (cal.range_max - cal.range_min) * 100.0

    def from_normalized(self, value: float) -> float:
        """Joint angle (rad) for a normalized goal, as the bus would unnormalize it (without truncation)."""
        cal = self.calibration()
        if norm_mode(self.spec.name) is NormMode.DEGREES:
            raw = value * (RESOLUTION - 1) / 360.0 + (cal.range_min + cal.range_max) / 2
        else:
            value = min(max(value, 0.0), 100.0)
            raw = value / 100.0 * (cal.range_max - cal.range_min) + cal.range_min
        return self.spec.mid + (raw - HALF_TURN) / TICKS_PER_RAD


class TickMap:
    """The mounting of all six servos of one virtual arm (seeded, so an arm is the same arm every run)."""

    def __init__(self, mounts: dict[str, int]) -> None:
        for name, mount in mounts.items():
            if abs(mount) > MAX_MOUNT:
                raise ValueError(f"{name}: mount {mount} exceeds ±{MAX_MOUNT} ticks")
        self.joints = {s.name: JointMount(spec=s, mount=int(mounts[s.name])) for s in JOINTS}
        # Vector form of the same maps, for the physics thread's per-tick conversions.
        self._base = np.array([self.joints[s.name].mount + 2048 for s in JOINTS], dtype=float)
        self._mid = np.array([s.mid for s in JOINTS])

    @classmethod
    def seeded(cls, seed: int) -> TickMap:
        rng = random.Random(seed)
        return cls({s.name: rng.randint(-MAX_MOUNT, MAX_MOUNT) for s in JOINTS})

    def __getitem__(self, name: str) -> JointMount:
        return self.joints[name]

    def physical(self, angles: Sequence[float] | np.ndarray) -> list[float]:
        """Six joint angles (rad, JOINTS order) to raw shaft ticks."""
        return list(self._base + (np.asarray(angles, dtype=float) - self._mid) * TICKS_PER_RAD)

    def angles(self, physical: Sequence[float] | np.ndarray) -> np.ndarray:
        """Raw shaft ticks (JOINTS order) to joint angles (rad), each unwrapped around its mounting."""
        rel = (np.asarray(physical, dtype=float) - self._base + RESOLUTION / 2) % RESOLUTION - RESOLUTION / 2
        return self._mid + rel / TICKS_PER_RAD

    def calibration(self) -> dict[str, MotorCalibration]:
        """The exact LeRobot calibration of this arm, in bus order."""
        return {n: j.calibration() for n, j in self.joints.items()}

    def normalized(self, angles: list[float] | tuple[float, ...]) -> list[float]:
        """Six joint angles (rad, JOINTS order) to the robot's normalized values."""
        return [self.joints[s.name].normalized(a) for s, a in zip(JOINTS, angles, strict=True)]

    def from_normalized(self, values: list[float] | tuple[float, ...]) -> list[float]:
        return [self.joints[s.name].from_normalized(v) for s, v in zip(JOINTS, values, strict=True)]
