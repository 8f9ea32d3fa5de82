"""The session: one per app or headless command. It owns the virtual robot (with --sim), the follower, the
leader, their cameras and the running workflow; every screen and headless command goes through it.

The UI never touches a bus: it reads `snapshot()` (immutable, cheap, no I/O) on a timer and calls the
session's methods from worker threads. `close()` is the one shutdown path: stop the workflow, disable
torque, close the buses, stop the simulator.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from drivers.calibration import find_calibration
from drivers.cameras.config import make_camera, parse_cameras
from drivers.ports import port_paths
from drivers.robots.base import Robot, Teleoperator
from drivers.robots.registry import make_robot, make_teleoperator
from drivers.sim.virtual_robot import VirtualSO101
from engine.dataset.format import INTERVENTION_FEATURE
from engine.profile import ArmConfig, Profile
from engine.recorder import Recorder, RecordSettings, open_dataset
from engine.rollout import Rollout, RolloutSettings
from engine.rollout.runner import INTERVENTION_KEY
from engine.teleop import JogSource, Teleop, TeleopSnapshot
from engine.vqa import DEFAULT_MODEL, VLMSettings, VQAService
from policies.base import Policy

log = logging.getLogger(__name__)

Role = Literal["robot", "teleop"]


@dataclass(frozen=True)
class ArmStatus:
    role: Role
    type: str
    port: str
    id: str
    has_bus: bool  # False for keyboard teleop
    port_present: bool
    calibration_file: Path | None
    connected: bool
    calibrated: bool


@dataclass(frozen=True)
class SessionSnapshot:
    profile: Profile
    sim: bool
    robot: ArmStatus
    teleop: ArmStatus
    teleop_state: TeleopSnapshot | None


class Session:
    """Build with a profile; `start()` brings up the simulator when the profile asks for it."""

    def __init__(self, profile: Profile, *, sim_port_dir: Path | None = None, sim_calibrated: bool = True) -> None:
        self._profile = profile
        self._sim_port_dir = sim_port_dir
        self._sim_calibrated = sim_calibrated  # False: factory-fresh virtual servos, no calibration files
        self.sim: VirtualSO101 | None = None
        self.robot: Robot | None = None
        self.leader: Teleoperator | None = None
        self.teleop: Teleop | None = None
        self.recorder: Recorder | None = None
        self.rollout: Rollout | None = None
        self.vqa: VQAService | None = None
        self.output_dir = Path("outputs")  # question overlays go to <output_dir>/vqa/, as LeRobot's outputs/
        self._lock = threading.RLock()

    # ------------------------------------------------------------------------------------ profile
    @property
    def profile(self) -> Profile:
        return self._profile

    def set_profile(self, profile: Profile) -> None:
        """Adopt an edited profile; arms built from the old one are disconnected first, and the simulator
        starts or stops when the profile's `sim` flag changed."""
        with self._lock:
            self.disconnect()
            if self.sim is not None and not profile.sim:
                self.sim.stop()
                self.sim = None
            self._profile = self._with_sim_ports(profile) if self.sim is not None else profile
            self.start()

    def _with_sim_ports(self, profile: Profile) -> Profile:
        assert self.sim is not None
        teleop = profile.teleop
        if teleop.has_bus:
            teleop = replace(teleop, port=self.sim.leader_port)
        return replace(profile, robot=replace(profile.robot, port=self.sim.follower_port), teleop=teleop)

    def start(self) -> Session:
        """Start the virtual SO-101 for a sim profile (ports and calibration files are then in place)."""
        with self._lock:
            if self._profile.sim and self.sim is None:
                self.sim = VirtualSO101(port_dir=self._sim_port_dir, calibrated=self._sim_calibrated).start()
                if self._sim_calibrated:
                    self.sim.write_calibration_files()
                self._profile = self._with_sim_ports(self._profile)
                log.info("simulated SO-101 running: follower %s, leader %s", self.sim.follower_port,
                         self.sim.leader_port)
        return self

    def __enter__(self) -> Session:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------ arms
    def _require_port(self, arm: ArmConfig, role: Role) -> None:
        if not arm.port:
            flag = "--robot-port" if role == "robot" else "--teleop-port"
            raise ValueError(
                f"no port set for the {role} ({arm.type}): run `robotui find-port` and set it in the profile "
                f"(or pass {flag}), or use --sim for the simulated arm"
            )

    def build_robot(self) -> Robot:
        """The follower from the profile (not connected). Cameras come from the profile's camera configs."""
        with self._lock:
            if self.robot is None:
                arm = self._profile.robot
                self._require_port(arm, "robot")
                cameras = {
                    name: (lambda n, c=config: make_camera(n, c))
                    for name, config in parse_cameras(self._profile.cameras).items()
                }
                self.robot = make_robot(
                    arm.type,
                    port=arm.port,
                    id=arm.id or None,
                    cameras=cameras,
                    max_relative_target=self._profile.max_relative_target,
                )
            return self.robot

    def build_leader(self) -> Teleoperator | None:
        """The leader arm, or None when the profile teleoperates with the keyboard."""
        with self._lock:
            arm = self._profile.teleop
            if not arm.has_bus:
                return None
            if self.leader is None:
                self._require_port(arm, "teleop")
                self.leader = make_teleoperator(arm.type, port=arm.port, id=arm.id or None)
            return self.leader

    def connect(self, *, robot: bool = True, teleop: bool = True) -> None:
        """Connect the arms (handshake, calibration from file, configure). Raises with the actionable message
        of the layer that failed (port, motor, calibration file)."""
        with self._lock:
            if robot:
                arm = self.build_robot()
                if not arm.is_connected:
                    arm.connect()
            if teleop:
                leader = self.build_leader()
                if leader is not None and not leader.is_connected:
                    leader.connect()

    def disconnect(self) -> None:
        """Stop the workflow, then release both arms (torque off). Never raises: this is a shutdown path."""
        with self._lock:
            self.stop_teleop()
            self.stop_recording()
            self.stop_rollout()
            for arm in (self.leader, self.robot):
                if arm is not None:
                    try:
                        arm.disconnect()
                    except Exception as e:
                        log.warning("%s did not disconnect cleanly: %s", arm.label, e)
            self.robot = None
            self.leader = None

    # ------------------------------------------------------------------------------------ teleop
    def start_teleop(self, fps: float | None = None) -> Teleop:
        with self._lock:
            if self.teleop is not None and self.teleop.running:
                return self.teleop
            self.connect()
            assert self.robot is not None
            jog = None if self.leader is not None else JogSource(list(self.robot.motors))
            self.teleop = Teleop(self.robot, self.leader, fps=fps or self._profile.teleop_fps, jog=jog)
            self.teleop.start()
            return self.teleop

    def stop_teleop(self) -> None:
        with self._lock:
            if self.teleop is not None:
                self.teleop.stop()
                self.teleop = None

    # ------------------------------------------------------------------------------------ recording
    def start_recording(
        self,
        settings: RecordSettings,
        root: str | Path,
        *,
        resume: bool = False,
        vcodec: str | None = None,
        repo_id: str | None = None,
        fps: int | None = None,
        demo: bool | None = None,
    ) -> Recorder:
        """Connect, open (or resume) the dataset and start recording. In sim the scripted demonstrator drives
        the leader by default (`demo`), and each reset phase re-randomizes the cube."""
        with self._lock:
            if self.recorder is not None and not self.recorder.finished:
                raise RuntimeError("a recording is already running: stop it first")
            self.stop_teleop()
            self.connect()
            assert self.robot is not None
            writer = open_dataset(self.robot, root, fps or self._profile.record_fps, resume=resume,
                                  vcodec=vcodec, repo_id=repo_id)
            sim = self.sim
            use_demo = sim is not None and (demo if demo is not None else self.leader is not None)
            if sim is not None and use_demo:
                sim.start_demo()

            def reset_scene(_next: int) -> None:
                """As a person resets the table: new cube pose; the demonstrator replans from it."""
                assert sim is not None
                if use_demo:
                    sim.stop_demo()
                sim.reset_scene()
                if use_demo:
                    sim.start_demo()

            jog = None if self.leader is not None else JogSource(list(self.robot.motors))
            self.recorder = Recorder(
                self.robot,
                writer,
                settings,
                leader=self.leader,
                jog=jog,
                on_reset=reset_scene if sim is not None else None,
            )
            self.recorder.start()
            return self.recorder

    def stop_recording(self) -> None:
        """Save what is recorded, finalize the dataset, release the arm (blocks until done)."""
        with self._lock:
            recorder, self.recorder = self.recorder, None
        if recorder is not None:
            recorder.stop()
        if self.sim is not None:
            self.sim.stop_demo()

    # ------------------------------------------------------------------------------------ rollout
    def start_rollout(
        self,
        policy: Policy,
        settings: RolloutSettings,
        root: str | Path | None = None,
        *,
        resume: bool = False,
        vcodec: str | None = None,
        repo_id: str | None = None,
        language_events: bool = False,
    ) -> Rollout:
        """Connect, open the dataset when the strategy records (with `language_events`, scene questions are
        recorded in it: LeRobot >= 0.5 reads that column, 0.4 does not), preflight and start the rollout PAUSED.
        Raises `PreflightError` (nothing moved) when the policy cannot run on this robot."""
        with self._lock:
            if self.rollout is not None and not self.rollout.finished:
                raise RuntimeError("a rollout is already running: stop it first")
            self.stop_teleop()
            if self.recorder is not None:
                raise RuntimeError("a recording is running: stop it first")
            self.connect()
            assert self.robot is not None
            writer = None
            if settings.records:
                if root is None:
                    raise ValueError(f"the {settings.strategy} strategy records: give it a dataset folder")
                writer = open_dataset(self.robot, root, settings.fps, resume=resume, vcodec=vcodec,
                                      repo_id=repo_id, extra={INTERVENTION_KEY: INTERVENTION_FEATURE},
                                      language_events=language_events)
            jog = None if self.leader is not None else JogSource(list(self.robot.motors))
            rollout = Rollout(self.robot, policy, settings, leader=self.leader, jog=jog, writer=writer)
            try:
                rollout.start()
            except BaseException:
                rollout.stop()
                raise
            self.rollout = rollout
            return rollout

    def stop_rollout(self) -> None:
        """Stop the policy, save what is recorded, finalize, release torque (blocks until done)."""
        with self._lock:
            rollout, self.rollout = self.rollout, None
        if rollout is not None:
            rollout.stop()

    # ------------------------------------------------------------------------------------ scene questions
    def vqa_service(self) -> VQAService:
        """The vision-language model service (the model itself loads with the first question)."""
        with self._lock:
            if self.vqa is None:
                model = self._profile.vqa_model or DEFAULT_MODEL
                self.vqa = VQAService(VLMSettings(model=model), output_dir=self.output_dir)
            return self.vqa

    # ------------------------------------------------------------------------------------ status
    def arm_status(self, role: Role, ports: set[str] | None = None) -> ArmStatus:
        arm_cfg = self._profile.robot if role == "robot" else self._profile.teleop
        arm = self.robot if role == "robot" else self.leader
        key = arm_cfg.calibration_key
        cal_file = None
        if key is not None and arm_cfg.has_bus:
            kind, name = key
            cal_file = find_calibration(kind, name, arm_cfg.id or None)
        present = arm_cfg.has_bus and bool(arm_cfg.port) and (
            arm_cfg.port in ports if ports is not None else Path(arm_cfg.port).exists()
        )
        return ArmStatus(
            role=role,
            type=arm_cfg.type,
            port=arm_cfg.port,
            id=arm_cfg.id,
            has_bus=arm_cfg.has_bus,
            port_present=present,
            calibration_file=cal_file,
            connected=bool(arm and arm.is_connected),
            calibrated=bool(arm and arm.is_calibrated) if arm is not None else cal_file is not None,
        )

    def snapshot(self) -> SessionSnapshot:
        """Everything the home screen shows; reads files and /dev, never the buses."""
        ports = set(port_paths())
        teleop = self.teleop
        return SessionSnapshot(
            profile=self._profile,
            sim=self.sim is not None,
            robot=self.arm_status("robot", ports),
            teleop=self.arm_status("teleop", ports),
            teleop_state=teleop.snapshot() if teleop is not None else None,
        )

    # ------------------------------------------------------------------------------------ shutdown
    def close(self) -> None:
        """The one shutdown path: workflow stopped, torque off, buses closed, simulator stopped."""
        with self._lock:
            self.disconnect()
            if self.sim is not None:
                self.sim.stop()
                self.sim = None
