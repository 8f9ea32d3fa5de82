"""Teleoperation: leader arm (or keyboard jogging) → follower, on the fixed-rate control loop.

Starts idle: nothing moves until `start()`. The UI reads `snapshot()` (immutable) and never touches the
buses; keyboard jogging goes through `JogSource`, whose methods are safe to call from the UI thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from drivers.motors.bus import CommError
from drivers.robots.base import Robot, Teleoperator
from engine.control_loop import ControlLoop, LoopStats
from engine.health import BusHealth, bus_health

log = logging.getLogger(__name__)


class JogSource:
    """Keyboard jogging: a target per joint, moved a step per key press (Textual has no key-release events,
    so hold-to-move is impossible; step semantics are what works over SSH)."""

    steps = (0.5, 1.0, 2.0, 5.0, 10.0)  # degrees (or % for 0..100 joints) per press

    def __init__(self, joints: list[str], step_index: int = 2) -> None:
        if not joints:
            raise ValueError("keyboard jogging needs at least one joint")
        self.joints = joints
        self._selected = 0
        self._step_index = step_index
        self._targets: dict[str, float] | None = None
        self._lock = threading.Lock()

    @property
    def selected(self) -> str:
        return self.joints[self._selected]

    @property
    def step(self) -> float:
        return self.steps[self._step_index]

    def select(self, joint: str) -> None:
        if joint not in self.joints:
            raise ValueError(f"unknown joint '{joint}' (joints: {', '.join(self.joints)})")
        self._selected = self.joints.index(joint)

    def select_next(self, offset: int = 1) -> str:
        self._selected = (self._selected + offset) % len(self.joints)
        return self.selected

    def change_step(self, offset: int) -> float:
        self._step_index = min(max(self._step_index + offset, 0), len(self.steps) - 1)
        return self.step

    def reset(self, positions: dict[str, float]) -> None:
        """Start from where the follower is, so the first tick does not move it."""
        with self._lock:
            self._targets = {j: positions[j] for j in self.joints}

    def jog(self, direction: int, joint: str | None = None) -> None:
        joint = joint or self.selected
        with self._lock:
            if self._targets is None:
                return  # not started: the press is ignored rather than queued
            self._targets[joint] += direction * self.step

    def targets(self) -> dict[str, float] | None:
        with self._lock:
            return dict(self._targets) if self._targets is not None else None


@dataclass(frozen=True)
class JointRow:
    name: str
    leader: float | None
    follower: float
    goal: float | None
    clamped: bool


@dataclass(frozen=True)
class TeleopSnapshot:
    running: bool
    source: str  # "leader" | "keyboard"
    rows: tuple[JointRow, ...]
    loop: LoopStats | None
    error: str | None
    jog_joint: str | None
    jog_step: float | None
    bus: BusHealth = field(default_factory=BusHealth)


class Teleop:
    """Drives `robot` from `leader` (or `jog`) at `fps`. A failed tick stops the loop and releases the
    follower's torque (the arm must not keep holding a stale goal while nobody is in control)."""

    def __init__(
        self,
        robot: Robot,
        leader: Teleoperator | None = None,
        *,
        fps: float = 60.0,
        jog: JogSource | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        if leader is None and jog is None:
            jog = JogSource(list(robot.motors))
        self.robot = robot
        self.leader = leader
        self.jog = jog if leader is None else None
        self.fps = fps
        self._on_error = on_error
        self._loop: ControlLoop | None = None
        self._rows: tuple[JointRow, ...] = ()
        self._error: str | None = None

    @property
    def source(self) -> str:
        return "leader" if self.leader is not None else "keyboard"

    @property
    def running(self) -> bool:
        return self._loop is not None and self._loop.is_running

    def start(self) -> None:
        if self.running:
            return
        self._error = None
        present = self.robot.read_positions()
        if self.jog is not None:
            self.jog.reset(present)
        self.robot.set_torque(True)
        self._loop = ControlLoop(self.fps, self._step, name="teleop", on_error=self._failed,
                                 transient=(CommError,))
        self._loop.start()
        log.info("teleop started (%s → %s at %g Hz)", self.source, self.robot.label, self.fps)

    def stop(self, *, release: bool = True) -> None:
        """Stop the loop; with `release`, disable the follower's torque (the safe default)."""
        if self._loop is not None:
            self._loop.stop()
        if release and self.robot.is_connected:
            try:
                self.robot.set_torque(False)
            except Exception as e:  # the bus may be gone; shutdown must still complete
                log.warning("could not disable torque on %s: %s", self.robot.label, e)
        log.info("teleop stopped")

    def _step(self, _tick: int) -> None:
        follower = self.robot.read_positions()
        if self.leader is not None:
            leader = self.leader.read_positions()
            action = {f"{m}.pos": v for m, v in leader.items()}
        else:
            leader = {}
            targets = self.jog.targets() if self.jog else None
            action = {f"{m}.pos": v for m, v in (targets or {}).items()}
        sent = self.robot.send_action(action)
        clamped = self.robot.last_clamped
        self._rows = tuple(
            JointRow(
                name=m,
                leader=leader.get(m),
                follower=follower[m],
                goal=sent.get(f"{m}.pos"),
                clamped=m in clamped,
            )
            for m in self.robot.motors
        )

    def _failed(self, error: BaseException) -> None:
        self._error = str(error)
        try:
            self.robot.set_torque(False)
        except Exception as e:
            log.warning("could not disable torque after teleop failure: %s", e)
        if self._on_error is not None:
            self._on_error(error)

    def snapshot(self) -> TeleopSnapshot:
        return TeleopSnapshot(
            running=self.running,
            source=self.source,
            rows=self._rows,
            loop=self._loop.stats() if self._loop is not None else None,
            error=self._error,
            jog_joint=self.jog.selected if self.jog else None,
            jog_step=self.jog.step if self.jog else None,
            bus=bus_health(self.robot, self.leader),
        )
