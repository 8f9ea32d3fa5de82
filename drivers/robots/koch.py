"""Koch follower and leader (Dynamixel X series), matching LeRobot's `koch_follower` / `koch_leader` (§3.3).

Koch joints run in EXTENDED_POSITION so a joint crossing the encoder's wrap point does not jump a turn; the
grippers run in CURRENT_POSITION so they squeeze with limited current. The leader's gripper is a spring:
torque on, pulled back to `gripper_open_pos`, so the operator's trigger returns by itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

from drivers.motors.bus import Motor, NormMode
from drivers.motors.dynamixel import DynamixelBus
from drivers.motors.tables import DYNAMIXEL_RESOLUTION
from drivers.robots.base import Robot, RobotConfig, Teleoperator, TeleoperatorConfig

log = logging.getLogger(__name__)

# Dynamixel Operating_Mode values.
CURRENT_POSITION = 5
EXTENDED_POSITION = 4

KOCH_MOTOR_IDS: dict[str, int] = {
    "shoulder_pan": 1,
    "shoulder_lift": 2,
    "elbow_flex": 3,
    "wrist_flex": 4,
    "wrist_roll": 5,
    "gripper": 6,
}
KOCH_FOLLOWER_MODELS: dict[str, str] = {
    "shoulder_pan": "xl430-w250",
    "shoulder_lift": "xl430-w250",
    "elbow_flex": "xl330-m288",
    "wrist_flex": "xl330-m288",
    "wrist_roll": "xl330-m288",
    "gripper": "xl330-m288",
}
KOCH_LEADER_MODEL = "xl330-m077"


def koch_motors(models: dict[str, str], use_degrees: bool) -> dict[str, Motor]:
    body = NormMode.DEGREES if use_degrees else NormMode.RANGE_M100_100
    return {
        name: Motor(motor_id, models[name], NormMode.RANGE_0_100 if name == "gripper" else body)
        for name, motor_id in KOCH_MOTOR_IDS.items()
    }


@dataclass(kw_only=True)
class KochFollowerConfig(RobotConfig):
    type: str = "koch_follower"
    use_degrees: bool = False


@dataclass(kw_only=True)
class KochLeaderConfig(TeleoperatorConfig):
    type: str = "koch_leader"
    use_degrees: bool = False
    gripper_open_pos: float = 50.0  # where the gripper trigger springs back to, 0..100


class _KochArm:
    bus_class = DynamixelBus
    calibration_operating_mode: ClassVar[int] = EXTENDED_POSITION
    # shoulder_pan and wrist_roll can turn all the way round: they get the whole encoder range.
    full_turn_motors: ClassVar[tuple[str, ...]] = ("shoulder_pan", "wrist_roll")
    drive_mode_register: ClassVar[bool] = True

    def motor_resolution(self, motor: str) -> int:
        return DYNAMIXEL_RESOLUTION

    def _write_operating_modes(self) -> None:
        bus = self.bus  # type: ignore[attr-defined]
        for motor in self.motors:  # type: ignore[attr-defined]
            bus.write("Operating_Mode", motor, CURRENT_POSITION if motor == "gripper" else EXTENDED_POSITION)


class KochFollower(_KochArm, Robot):
    name = "koch_follower"
    config: KochFollowerConfig

    def __init__(self, config: KochFollowerConfig) -> None:
        super().__init__(config)

    def _motors(self) -> dict[str, Motor]:
        return koch_motors(KOCH_FOLLOWER_MODELS, self.config.use_degrees)

    def configure(self) -> None:
        """Operating modes, and firmer elbow gains: the elbow carries the forearm's weight."""
        with self.bus.torque_disabled():
            self.bus.configure_motors()
            self._write_operating_modes()
            self.bus.write("Position_P_Gain", "elbow_flex", 1500)
            self.bus.write("Position_I_Gain", "elbow_flex", 0)
            self.bus.write("Position_D_Gain", "elbow_flex", 600)


class KochLeader(_KochArm, Teleoperator):
    name = "koch_leader"
    config: KochLeaderConfig
    # The leader's elbow is mounted mirrored: the motor reverses it (Drive_Mode bit 0) and the file says so.
    calibration_drive_modes: ClassVar[dict[str, int]] = {"elbow_flex": 1}

    def __init__(self, config: KochLeaderConfig) -> None:
        super().__init__(config)

    def _motors(self) -> dict[str, Motor]:
        return koch_motors(dict.fromkeys(KOCH_MOTOR_IDS, KOCH_LEADER_MODEL), self.config.use_degrees)

    def configure(self) -> None:
        """Limp joints, spring-loaded gripper trigger (needs a calibration to know where 'open' is)."""
        self.bus.disable_torque()
        self.bus.configure_motors()
        self._write_operating_modes()
        if not self.calibration:
            log.info("%s: not calibrated, gripper spring left off", self.label)
            return
        # Torque first: switching it on makes the motor hold where it is (goal := present), so a goal
        # written before would be lost.
        self.bus.enable_torque(["gripper"])
        self.bus.write("Goal_Position", "gripper", self.config.gripper_open_pos)
