"""SO-100 / SO-101 follower and leader (Feetech STS3215), matching LeRobot's `so_follower` / `so_leader`.

Motor names, ids, norm modes, register values and the calibration file name are LeRobot's (reference §3.1,
§3.2), so a calibration or dataset made by either project works in the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from drivers.motors.bus import Motor, NormMode
from drivers.motors.feetech import FeetechBus
from drivers.motors.tables import FEETECH_MODEL_RESOLUTION
from drivers.robots.base import Robot, RobotConfig, Teleoperator, TeleoperatorConfig

SO_MOTOR_IDS: dict[str, int] = {
    "shoulder_pan": 1,
    "shoulder_lift": 2,
    "elbow_flex": 3,
    "wrist_flex": 4,
    "wrist_roll": 5,
    "gripper": 6,
}
SO_MODEL = "sts3215"
FEETECH_POSITION_MODE = 0


def so_motors(use_degrees: bool = True) -> dict[str, Motor]:
    """The six SO-arm motors in bus order; joints in degrees (LeRobot >= 0.4.4) or ±100 (older datasets),
    the gripper always 0..100."""
    body = NormMode.DEGREES if use_degrees else NormMode.RANGE_M100_100
    return {
        name: Motor(motor_id, SO_MODEL, NormMode.RANGE_0_100 if name == "gripper" else body)
        for name, motor_id in SO_MOTOR_IDS.items()
    }


@dataclass(kw_only=True)
class SOFollowerConfig(RobotConfig):
    type: str = "so_follower"
    # LeRobot's defaults: the factory P of 32 makes the arm shake, 16 does not.
    position_p_coefficient: int = 16
    position_i_coefficient: int = 0
    position_d_coefficient: int = 32


@dataclass(kw_only=True)
class SOLeaderConfig(TeleoperatorConfig):
    type: str = "so_leader"


class _SOArm:
    """What SO followers and leaders share: motors, bus and calibration facts."""

    bus_class = FeetechBus
    calibration_operating_mode: ClassVar[int] = FEETECH_POSITION_MODE
    full_turn_motors: ClassVar[tuple[str, ...]] = ("wrist_roll",)

    def _motors(self) -> dict[str, Motor]:
        return so_motors(self.config.use_degrees)  # type: ignore[attr-defined]

    def motor_resolution(self, motor: str) -> int:
        return FEETECH_MODEL_RESOLUTION[SO_MODEL]


class SOFollower(_SOArm, Robot):
    name = "so_follower"
    config: SOFollowerConfig

    def __init__(self, config: SOFollowerConfig) -> None:
        super().__init__(config)

    def configure(self) -> None:
        """Position mode with LeRobot's softer gains, and a gripper that cannot burn itself out squeezing.
        Runs with torque off (EEPROM writes) and re-enables it: a connected follower holds its pose."""
        cfg = self.config
        with self.bus.torque_disabled():
            self.bus.configure_motors()
            for motor in self.motors:
                self.bus.write("Operating_Mode", motor, FEETECH_POSITION_MODE)
                self.bus.write("P_Coefficient", motor, cfg.position_p_coefficient)
                self.bus.write("I_Coefficient", motor, cfg.position_i_coefficient)
                self.bus.write("D_Coefficient", motor, cfg.position_d_coefficient)
            self.bus.write("Max_Torque_Limit", "gripper", 500)  # 50 % of max torque
            self.bus.write("Protection_Current", "gripper", 250)  # 50 % of max current
            self.bus.write("Overload_Torque", "gripper", 25)  # 25 % torque when overloaded


class SOLeader(_SOArm, Teleoperator):
    name = "so_leader"
    config: SOLeaderConfig

    def __init__(self, config: SOLeaderConfig) -> None:
        super().__init__(config)

    def configure(self) -> None:
        """The leader is moved by hand: torque stays off."""
        self.bus.disable_torque()
        self.bus.configure_motors()
        for motor in self.motors:
            self.bus.write("Operating_Mode", motor, FEETECH_POSITION_MODE)
