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

import functools
import math
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Literal

import mujoco
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
from drivers.sim.scene import CAMERA_NAMES, JOINT_NAMES, JOINTS
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


# ------------------------------------------------------------------------------------------ the hand
# Calibration needs someone to move the limp arms: to the middle pose, then every joint through its range.
# With no person at a simulated arm, the "virtual hand" below does it. For the leader it sets the emulated
# shafts (there is no physics); for the follower the physics owns the positions, so the hand places the limp
# joints in the MuJoCo world and keeps re-placing them, as a hand holding the arm against gravity would.

HAND_RATE_HZ = 50.0  # how often the hand re-places held follower joints and steps a sweep
SWEEP_FRACTION = 0.8  # how far towards each end of its range a sweep takes a joint
_DWELL = 0.3  # share of each sweep leg spent holding still at its end...
_MIN_DWELL_S = 0.1  # ...but at least this long: a recorder at 30 Hz on a busy machine still sees it
_SWEEP_GROUP = ("shoulder_pan", "wrist_flex", "wrist_roll", "gripper")  # swept together, arm held upright


def middle_pose() -> np.ndarray:
    """Every joint at the middle of its range (rad): the pose calibration homes at."""
    return np.array([j.mid for j in JOINTS])


def _reach(joint: str, end: Literal["lower", "upper"], fraction: float) -> float:
    spec = JOINTS[JOINT_NAMES.index(joint)]
    return spec.mid + fraction * (getattr(spec, end) - spec.mid)


def sweep_waypoints(fraction: float = SWEEP_FRACTION) -> list[np.ndarray]:
    """The poses a person takes the arm through when recording ranges, starting and ending at the middle.

    Joints are swept from safe poses so the gripper never reaches the table: the wrist, pan and gripper with
    the arm held upright, the shoulder with the forearm folded up, the elbow with the shoulder leaning back.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"sweep fraction must be in (0, 1], got {fraction}")
    index = {name: i for i, name in enumerate(JOINT_NAMES)}

    def pose(base: np.ndarray, **angles: float) -> np.ndarray:
        out = base.copy()
        for name, angle in angles.items():
            out[index[name]] = angle
        return out

    middle = middle_pose()
    upright = pose(middle, elbow_flex=_reach("elbow_flex", "lower", fraction))
    leaning = pose(upright, shoulder_lift=_reach("shoulder_lift", "lower", 0.5))
    return [
        middle,
        pose(upright, **{j: _reach(j, "lower", fraction) for j in _SWEEP_GROUP}),
        pose(upright, **{j: _reach(j, "upper", fraction) for j in _SWEEP_GROUP}),
        pose(upright, shoulder_lift=_reach("shoulder_lift", "lower", fraction)),
        pose(upright, shoulder_lift=_reach("shoulder_lift", "upper", fraction)),
        leaning,
        pose(leaning, elbow_flex=_reach("elbow_flex", "upper", fraction)),
        middle,
    ]


def sweep_pose(waypoints: list[np.ndarray], u: float, dwell: float = _DWELL) -> np.ndarray:
    """The pose at progress `u` (0..1) along the waypoints: equal time per leg, eased in and out, and the
    `dwell` share of each leg spent still at its end, so a range recorder sampling the encoders sees every
    range end even when it reads only a few times per leg."""
    if not 0.0 <= dwell < 1.0:
        raise ValueError(f"dwell must be in [0, 1), got {dwell}")
    legs = len(waypoints) - 1
    x = min(max(u, 0.0), 1.0) * legs
    leg = min(int(x), legs - 1)
    s = min((x - leg) / (1.0 - dwell), 1.0)
    ease = 0.5 - 0.5 * math.cos(math.pi * s)
    return waypoints[leg] + ease * (waypoints[leg + 1] - waypoints[leg])


class FollowerHand:
    """Holds limp follower joints where it put them, re-placing them `HAND_RATE_HZ` times a second (gravity
    pulls a limp joint down in well under a second). Joints with torque on are the motor's, not the hand's.
    Its thread ends on `release()` or once the physics stops."""

    def __init__(self, runner: SimRunner, rate_hz: float = HAND_RATE_HZ) -> None:
        self._runner = runner
        self._period = 1.0 / rate_hz
        self._held: dict[int, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def holding(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def place(self, angles: Mapping[int, float]) -> None:
        """Put joints (JOINTS index -> rad) there now and keep holding them."""
        with self._lock:
            self._held.update(angles)
            held = dict(self._held)
            start = not self.holding
            if start:
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="sim-hand", daemon=True)
        self._apply(held)
        if start:
            assert self._thread is not None
            self._thread.start()

    def release(self) -> None:
        """Let go of every joint (limp ones then follow gravity)."""
        with self._lock:
            self._held.clear()
            thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)

    def _apply(self, held: Mapping[int, float]) -> None:
        def put(world: SimWorld) -> None:
            for i, angle in held.items():
                if not world.torque[i]:
                    world.data.qpos[world.qadr[i]] = min(max(angle, world.lower[i]), world.upper[i])
                    world.data.qvel[world.dadr[i]] = 0.0
            mujoco.mj_forward(world.model, world.data)
            world.publish()

        self._runner.call(put)

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            if not self._runner.running:
                break
            with self._lock:
                held = dict(self._held)
            try:
                self._apply(held)
            except (RuntimeError, TimeoutError):  # the runner stopped under us
                break


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


    # --------------------------------------------------------------------------------- virtual hand
    @functools.cached_property
    def follower_hand(self) -> FollowerHand:
        """The hand on the follower (made on first use; its thread only runs while it holds joints)."""
        return FollowerHand(self.runner)

    def joint_degrees(self, role: ArmRole) -> dict[str, float]:
        """Each joint's angle in degrees (0 = middle of the range, except the gripper: 0 closed..100)."""
        if role == "follower":
            angles = self.runner.call(lambda w: list(w.joint_positions()))
        else:
            angles = self.leader.positions()
        return {name: math.degrees(a) for name, a in zip(JOINT_NAMES, angles, strict=True)}

    def move_joints(self, role: ArmRole, degrees: Mapping[str, float]) -> dict[str, float]:
        """The hand moves the named joints of a limp arm to these angles (degrees, clipped to each joint's
        range) and holds them there; returns every joint's angle afterwards. Joints with torque on are left
        to their motor."""
        unknown = [name for name in degrees if name not in JOINT_NAMES]
        if unknown:
            raise ValueError(f"no joint called {', '.join(map(repr, unknown))}; joints: {', '.join(JOINT_NAMES)}")
        targets = {JOINT_NAMES.index(name): math.radians(value) for name, value in degrees.items()}
        if role == "follower":
            self.follower_hand.place(targets)
        else:
            angles = self.leader.positions()
            for i, angle in targets.items():
                angles[i] = angle
            self.leader.set_positions(angles)
        return self.joint_degrees(role)

    def move_to_middle(self, role: ArmRole) -> dict[str, float]:
        """What the operator does before homing: every joint to the middle of its range, held there."""
        return self.move_joints(role, dict(zip(JOINT_NAMES, np.degrees(middle_pose()).tolist(), strict=True)))

    def sweep_joints(
        self,
        role: ArmRole,
        seconds: float,
        stop: threading.Event | None = None,
        *,
        fraction: float = SWEEP_FRACTION,
    ) -> bool:
        """What the operator does while ranges are recorded: every joint smoothly through most of its range
        (`fraction` of the way to each end) and back to the middle, taking `seconds`. Blocks; returns False
        if `stop` was set first. The hand keeps holding the middle pose afterwards."""
        if seconds <= 0:
            raise ValueError(f"sweep seconds must be positive, got {seconds}")
        waypoints = sweep_waypoints(fraction)
        current = np.radians([self.joint_degrees(role)[name] for name in JOINT_NAMES])
        waypoints = [current, *waypoints]
        dwell = min(0.6, max(_DWELL, _MIN_DWELL_S * (len(waypoints) - 1) / seconds))
        period = 1.0 / HAND_RATE_HZ
        start = time.monotonic()
        while True:
            u = (time.monotonic() - start) / seconds
            pose = sweep_pose(waypoints, u, dwell)
            self.move_joints(role, dict(zip(JOINT_NAMES, np.degrees(pose).tolist(), strict=True)))
            if u >= 1.0:
                return True
            if stop is None:
                time.sleep(period)
            elif stop.wait(period):
                return False

    def release(self, role: ArmRole) -> None:
        """The hand lets go (a limp follower then sinks under gravity; the leader stays where it is)."""
        if role == "follower" and "follower_hand" in self.__dict__:
            self.follower_hand.release()
