"""`VirtualSO101`: a whole simulated SO-101 setup in-process — follower, leader, cameras, demonstrator.

The follower and the leader are emulated Feetech buses on pseudo-terminals, so the real `FeetechBus`,
port finding and the robot classes run against them unchanged. The follower's goals drive the MuJoCo arm;
the leader is moved by the scripted demonstrator or keyboard jogs.

Calibration: each arm has seeded servo mountings, so its exact LeRobot calibration is known. By default
(`calibrated=True`) it is also written into the servos' EEPROM, like an arm that was calibrated before:
with the files from `write_calibration_files()` the robot classes connect with no calibration step and no
EEPROM write. `calibrated=False` gives factory-fresh servos (offset 0, full limits, factory Phase) for
exercising the calibration workflow itself.

Cameras: `cameras` holds a `SimCamera` per scene camera, to pass as a robot's cameras. Camera configs of
type "sim" (`{"front": {"type": "sim", "index_or_path": "front"}}`) build one for the virtual robot
running in this process.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Literal

import numpy as np

from drivers.calibration import calibration_path, save_calibration
from drivers.cameras.base import Camera
from drivers.cameras.config import CameraConfig, CameraConfigError, register_camera_type
from drivers.emulator import EmulatedBus
from drivers.motors.bus import MotorCalibration
from drivers.sim.camera import DEFAULT_FPS, DEFAULT_HEIGHT, DEFAULT_WIDTH, SimCamera
from drivers.sim.demonstrator import Demonstrator
from drivers.sim.leader import SERVO_MODEL, VirtualLeader
from drivers.sim.runner import SimRunner
from drivers.sim.scene import CAMERA_NAMES, JOINTS
from drivers.sim.scripted_leader import ScriptedLeader
from drivers.sim.ticks import TickMap
from drivers.sim.world import SimWorld

ArmRole = Literal["follower", "leader"]

FOLLOWER_ID = "sim_follower"  # calibration ids: --robot.id / --teleop.id to use with the virtual arms
LEADER_ID = "sim_leader"
FOLLOWER_CLASS = "so_follower"  # LeRobot class names: the calibration folders
LEADER_CLASS = "so_leader"
FOLLOWER_MOUNT_SEED = 101
LEADER_MOUNT_SEED = 202
PHASE_UNWRAPPED_FEEDBACK = 0x10


def write_eeprom_calibration(bus: EmulatedBus, calibration: dict[str, MotorCalibration]) -> None:
    """Store offsets and limits as a past calibration (and LeRobot's configure_motors) would have left them."""
    with bus.lock:
        for cal in calibration.values():
            servo = bus.servo(cal.id)
            servo.write_register("Homing_Offset", cal.homing_offset)
            servo.write_register("Min_Position_Limit", cal.range_min)
            servo.write_register("Max_Position_Limit", cal.range_max)
            phase = servo.read_register("Phase")
            servo.write_register("Phase", phase & ~PHASE_UNWRAPPED_FEEDBACK)


_active: VirtualSO101 | None = None  # the one running in this process: what "sim" camera configs render


def active_virtual_robot() -> VirtualSO101 | None:
    """The virtual robot started in this process (`robotui --sim`), if any."""
    return _active


def _make_sim_camera(name: str, config: CameraConfig) -> Camera:
    """Camera config type "sim": `index_or_path` names the scene camera ("front" or "wrist"; default: the
    config's own name)."""
    sim = _active
    if sim is None:
        raise CameraConfigError(
            f"camera '{name}': type 'sim' renders the simulated robot, which is not running in this process "
            "(start robotui with --sim)"
        )
    return SimCamera(
        sim.world,
        str(config.index_or_path or name),
        config.width or DEFAULT_WIDTH,
        config.height or DEFAULT_HEIGHT,
        config.fps or DEFAULT_FPS,
        name=name,
    )


register_camera_type("sim", _make_sim_camera, frozenset({"index_or_path", "width", "height", "fps"}))


class VirtualSO101:
    """Start with `start()` (or `with`); `stop()` ends every thread and removes both ports."""

    def __init__(
        self,
        *,
        seed: int | None = 0,
        port_dir: str | Path | None = None,
        follower_name: str = "sim-follower",
        leader_name: str = "sim-leader",
        camera_width: int = DEFAULT_WIDTH,
        camera_height: int = DEFAULT_HEIGHT,
        camera_fps: float = DEFAULT_FPS,
        calibrated: bool = True,
        follower_mount_seed: int = FOLLOWER_MOUNT_SEED,
        leader_mount_seed: int = LEADER_MOUNT_SEED,
    ) -> None:
        pdir = str(port_dir) if port_dir is not None else None
        self.world = SimWorld(seed)
        self.follower_ticks = TickMap.seeded(follower_mount_seed)
        self.leader_ticks = TickMap.seeded(leader_mount_seed)
        start = self.follower_ticks.physical(list(self.world.joint_positions()))
        self.follower_bus = EmulatedBus(
            protocol="feetech",
            motors={j.motor_id: SERVO_MODEL for j in JOINTS},
            motion="external",
            name=follower_name,
            port_dir=pdir,
            initial_positions=dict(zip((j.motor_id for j in JOINTS), start, strict=True)),
        )
        self.leader = VirtualLeader(self.leader_ticks, name=leader_name, port_dir=pdir)
        if calibrated:
            write_eeprom_calibration(self.follower_bus, self.follower_ticks.calibration())
            write_eeprom_calibration(self.leader.bus, self.leader_ticks.calibration())
        self.runner = SimRunner(self.world, self.follower_bus, self.follower_ticks)
        self.cameras: dict[str, SimCamera] = {
            name: SimCamera(self.world, name, camera_width, camera_height, camera_fps)
            for name in CAMERA_NAMES
        }
        self.demonstrator = Demonstrator(self.world)
        self.scripted_leader = ScriptedLeader(self.leader, self.demonstrator, self.runner.call)

    # ------------------------------------------------------------------------------------ lifecycle
    @property
    def follower_port(self) -> str:
        return self.follower_bus.port

    @property
    def leader_port(self) -> str:
        return self.leader.port

    @property
    def running(self) -> bool:
        return self.runner.running

    def start(self) -> VirtualSO101:
        """Plug in both arms and start the physics. Cameras start when a robot connects them."""
        global _active
        self.follower_bus.start()
        self.leader.start()
        self.runner.start()
        _active = self
        return self

    def stop(self) -> None:
        """Stop the demonstrator, the cameras, the physics and both buses. Idempotent."""
        global _active
        if _active is self:
            _active = None
        self.scripted_leader.stop()
        for cam in self.cameras.values():
            cam.disconnect()
        self.runner.stop()
        self.leader.stop()
        self.follower_bus.stop()

    def __enter__(self) -> VirtualSO101:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------ hardware
    def bus(self, role: ArmRole) -> EmulatedBus:
        return self.follower_bus if role == "follower" else self.leader.bus

    def unplug(self, role: ArmRole) -> None:
        """Pull the arm's USB cable: its port disappears (the physics keeps running, motors keep state)."""
        self.bus(role).unplug()

    def replug(self, role: ArmRole) -> None:
        self.bus(role).replug()

    def jog(self, joint: str, delta_deg: float) -> float:
        """Keyboard teleop: move one leader joint by `delta_deg`; returns its new angle in degrees."""
        return self.leader.jog(joint, delta_deg)

    def start_demo(self, loop: bool = True) -> ScriptedLeader:
        """The scripted demonstrator takes the leader (stop it with `stop_demo`)."""
        self.scripted_leader.loop = loop
        self.scripted_leader.start()
        return self.scripted_leader

    def stop_demo(self) -> None:
        self.scripted_leader.stop()

    def reset_scene(self, seed: int | None = None) -> None:
        """New random cube pose (seeded if given), as a person resetting the table between episodes."""

        def reset(world: SimWorld) -> None:
            if seed is not None:
                world.rng = np.random.default_rng(seed)
            world.randomize_cube()

        self.runner.call(reset)

    def is_success(self) -> bool:
        return bool(self.runner.call(lambda w: w.is_success()))

    # --------------------------------------------------------------------------------- calibration
    def ticks(self, role: ArmRole) -> TickMap:
        return self.follower_ticks if role == "follower" else self.leader_ticks

    def calibration(self, role: ArmRole = "follower") -> dict[str, MotorCalibration]:
        """The exact LeRobot calibration of the virtual follower or leader."""
        return self.ticks(role).calibration()

    def calibration_paths(self, dir: str | Path | None = None) -> dict[ArmRole, Path]:
        """Where the files go: LeRobot's calibration folder, or `dir` used as that folder's root
        (`<dir>/robots/so_follower/sim_follower.json`, like HF_LEROBOT_CALIBRATION)."""
        root = dir

        def where(kind: Literal["robots", "teleoperators"], cls: str, arm_id: str) -> Path:
            directory = Path(root) / kind / cls if root is not None else None
            return calibration_path(kind, cls, arm_id, directory=directory)

        return {
            "follower": where("robots", FOLLOWER_CLASS, FOLLOWER_ID),
            "leader": where("teleoperators", LEADER_CLASS, LEADER_ID),
        }

    def write_calibration_files(self, dir: str | Path | None = None) -> dict[ArmRole, Path]:
        """Write both arms' calibration JSON (see `calibration_paths` for `dir`), so `so_follower` id
        `sim_follower` and `so_leader` id `sim_leader` connect without calibrating. Returns the paths."""
        paths = self.calibration_paths(dir)
        for role, path in paths.items():
            save_calibration(path, self.calibration(role))
        return paths
