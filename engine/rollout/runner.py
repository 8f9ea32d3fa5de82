"""Rollout: a policy drives the follower; the operator pauses it, takes over with the leader, hands back.

Modes: PAUSED (the arm holds; an actuated leader is driven smoothly to the follower's pose, torque on, so the
human can take it without a jump) → TAKEOVER (leader limp; the human drives; frames tagged
`intervention=True`) → AUTONOMOUS again from the current state, as often as needed in one episode. A rollout
starts PAUSED: nothing moves until `action()`.

Operator commands (`action`, `pause`, `takeover`, `resume`, `save`, `redo`) may come from any thread; they
only post a request, which the control loop applies at its next tick, so every bus write and every state
change happens on the control thread, in order. Each returns a one-line echo of what it understood.

Strategies: `base` records nothing; `dagger` records the takeovers (each one an episode) or, with
`record_autonomous`, every frame with the `intervention` column, rotating episodes by time; `highlight` keeps
the last seconds in a ring buffer and `save` turns them into the start of an episode that goes on until
`save` again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

import numpy as np

from drivers.motors.bus import CommError
from drivers.robots.base import Robot, Teleoperator
from engine.control_loop import ControlLoop, LoopStats
from engine.dataset.format import ACTION_KEY, IMAGES_PREFIX, STATE_KEY
from engine.dataset.language import LanguageRow
from engine.dataset.writer import CameraStatus, DatasetWriter, LanguageAnchor
from engine.frames import FrameGrabber
from engine.health import BusHealth, bus_health
from engine.recorder import SavedEpisode
from engine.rollout.actions import ActionQueue
from engine.rollout.episodes import EpisodeFeed
from engine.rollout.inference import InferenceStats, InferenceWorker, RawObservation
from engine.rollout.preflight import Preflight, preflight
from engine.teleop import JogSource
from policies.base import Policy

log = logging.getLogger(__name__)

INTERVENTION_KEY = "intervention"
Strategy = Literal["base", "dagger", "highlight"]
STRATEGIES: tuple[Strategy, ...] = ("base", "dagger", "highlight")


class Mode(StrEnum):
    PAUSED = "paused"
    AUTONOMOUS = "autonomous"
    TAKEOVER = "takeover"


@dataclass(frozen=True)
class RolloutSettings:
    strategy: Strategy = "base"
    task: str = ""
    fps: int = 30
    record_autonomous: bool = False  # dagger: every frame (continuous) instead of the takeovers only
    episode_time_s: float = 60.0  # dagger continuous: an episode rotates after this much recording
    ring_buffer_s: float = 10.0  # highlight: seconds kept before `save`
    ring_buffer_max_mb: float = 1024.0
    handover_s: float = 1.5  # how long the leader takes to reach the follower's pose on pause
    blend_ticks: int = 0  # seam smoothing between chunks (slow policies)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy '{self.strategy}' (choose {', '.join(STRATEGIES)})")
        if self.fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        if self.episode_time_s <= 0:
            raise ValueError(f"episode time must be positive seconds, got {self.episode_time_s}")
        if self.ring_buffer_s <= 0 or self.ring_buffer_max_mb <= 0:
            raise ValueError("the highlight ring buffer needs positive seconds and megabytes")
        if self.handover_s < 0:
            raise ValueError(f"handover time cannot be negative, got {self.handover_s}")
        if self.blend_ticks < 0:
            raise ValueError(f"blend ticks cannot be negative, got {self.blend_ticks}")

    @property
    def records(self) -> bool:
        return self.strategy != "base"


@dataclass(frozen=True)
class RolloutSnapshot:
    mode: Mode
    strategy: Strategy
    task: str
    subtask: str | None
    burst_left_s: float | None  # a timed `/action N` in progress
    queue_depth: int
    inference: InferenceStats
    actions_dispatched: int
    starved_ticks: int  # autonomous ticks that found the queue dry (the arm held)
    stale_actions: int  # planned actions dropped because their chunk arrived after their tick
    chunk_age_s: float | None  # age of the observation the actions now executing came from
    loop: LoopStats | None
    handover: bool  # the leader is being driven to the follower's pose
    takeover_pending: bool
    interventions: int
    intervention_s: float
    recording: bool
    episode_frames: int
    saved: tuple[SavedEpisode, ...]
    cameras: tuple[CameraStatus, ...]
    stale_frames: int
    dropped_frames: int
    preflight: tuple[str, ...]
    error: str | None
    message: str | None
    finished: bool
    bus: BusHealth = field(default_factory=BusHealth)


class Rollout:
    """Runs `policy` on `robot`; `leader` (or keyboard `jog`) is the takeover source; `writer` receives the
    recorded frames for the dagger and highlight strategies."""

    def __init__(
        self,
        robot: Robot,
        policy: Policy,
        settings: RolloutSettings,
        *,
        leader: Teleoperator | None = None,
        jog: JogSource | None = None,
        writer: DatasetWriter | None = None,
        on_finished: Callable[[], None] | None = None,
    ) -> None:
        if settings.records and writer is None:
            raise ValueError(f"the {settings.strategy} strategy records: give it a dataset folder")
        if not settings.records and writer is not None:
            raise ValueError("the base strategy records nothing: choose dagger or highlight to record")
        if settings.strategy == "dagger" and leader is None and jog is None:
            raise ValueError("dagger needs a way to take over: a leader arm or keyboard jogging")
        self.robot = robot
        self.policy = policy
        self.settings = settings
        self.leader = leader
        self.jog = jog if leader is None else None
        self.fps = settings.fps
        self._on_finished = on_finished
        self._joints = list(robot.motors)
        self._frames = FrameGrabber(robot.cameras)
        self.queue = ActionQueue(ensemble_coeff=getattr(policy, "temporal_ensemble_coeff", None),
                                 blend_ticks=settings.blend_ticks)
        self.feed: EpisodeFeed | None = None
        if writer is not None:
            ring = 0
            if settings.strategy == "highlight":
                ring = _ring_frames(robot, settings)
            self.feed = EpisodeFeed(writer, ring_frames=ring)
        self._lock = threading.Lock()
        self._requests: list[tuple[str, Any]] = []
        self._mode = Mode.PAUSED
        self._task = settings.task
        self._subtask: str | None = None
        self._tick = 0
        self._hold: dict[str, float] = {}
        self._burst_end: int | None = None
        self._takeover_pending = False
        self._handover: tuple[int, dict[str, float], dict[str, float]] | None = None  # start tick, from, to
        self._aligned = leader is None
        self._dispatched = 0
        self._starved = 0
        self._interventions = 0
        self._takeover_ticks = 0
        self._episode_ticks = 0
        self._error: str | None = None
        self._message: str | None = None
        self._finished = threading.Event()
        self._finishing = False
        self._loop: ControlLoop | None = None
        self.worker: InferenceWorker | None = None
        self.preflight: Preflight | None = None

    # ------------------------------------------------------------------------------------ lifecycle
    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    @property
    def task(self) -> str:
        return self._task

    @property
    def instruction(self) -> str:
        """What a language-conditioned policy is told: the subtask when one is set, else the task."""
        return self._subtask or self._task

    def start(self) -> Preflight:
        """Preflight (raises `PreflightError` before anything moves), torque on, hold, loop running PAUSED."""
        if self._loop is not None:
            assert self.preflight is not None
            return self.preflight
        present = self.robot.read_positions()
        cameras = {name: (cam.height, cam.width) for name, cam in self.robot.cameras.items()}
        state = np.array([present[j] for j in self._joints], dtype=np.float32)
        self.preflight = preflight(self.policy, self._joints, cameras, state)
        for line in self.preflight.report():
            log.debug("preflight: %s", line)  # the screen and the CLI show the report themselves
        self._hold = present
        self.robot.set_torque(True)
        self.worker = InferenceWorker(
            self.policy, self.queue, now=lambda: self._tick, fps=self.fps,
            camera_for=self.preflight.camera_for, task=lambda: self.instruction,
        )
        self.worker.on_error = self._inference_failed
        self.worker.start()
        self._loop = ControlLoop(self.fps, self._step, name="rollout", on_error=self._failed,
                                 transient=(CommError,))
        self._loop.start()
        return self.preflight

    def stop(self) -> None:
        """Stop moving, save what is being recorded, finalize the dataset, release torque (blocks)."""
        with self._lock:
            first = not self._finishing
            self._finishing = True
        if not first:
            self._finished.wait(150)
            return
        if self._loop is not None:
            self._loop.stop()
        if self.worker is not None:
            self.worker.stop()
        if self.feed is not None:
            self.feed.close()
        for arm in (self.robot, self.leader):
            if arm is not None and arm.is_connected:
                try:
                    arm.set_torque(False)
                except Exception as e:
                    log.warning("could not disable torque on %s: %s", arm.label, e)
        self._finished.set()
        if self._on_finished is not None:
            self._on_finished()

    def wait(self, timeout: float | None = None) -> bool:
        return self._finished.wait(timeout)

    # ------------------------------------------------------------------------------------ commands
    def action(self, argument: str | float | None = None) -> str:
        """`/action`: alone resume the policy; a number runs that many seconds then pauses; text sets the task."""
        if isinstance(argument, int | float) and not isinstance(argument, bool):
            if argument <= 0:
                raise ValueError(f"/action seconds must be positive, got {argument:g}")
            self._request("action", float(argument))
            return f"running the policy for {argument:g} s, then pausing"
        if isinstance(argument, str) and argument.strip():
            self._request("action", argument.strip())
            return f"task set to '{argument.strip()}'; running the policy"
        self._request("action", None)
        return "running the policy"

    def pause(self) -> str:
        self._request("pause")
        return "pausing: the arm holds its position"

    def takeover(self) -> str:
        if self.leader is None and self.jog is None:
            raise ValueError("no leader arm to take over with (the profile teleoperates with nothing)")
        self._request("takeover")
        if self.leader is not None and self._mode is not Mode.TAKEOVER:
            return "taking over: the leader moves to the follower's pose, then goes limp — take it then"
        return "taking over"

    def resume(self) -> str:
        self._request("resume")
        return "handing control back to the policy"

    def save(self) -> str:
        if self.feed is None:
            raise ValueError("nothing is recorded with the base strategy")
        self._request("save")
        if self.settings.strategy == "highlight":
            return "highlight: saving the buffered seconds and recording on" if not self.feed.recording \
                else "highlight: saving the episode"
        return "saving the episode"

    def redo(self) -> str:
        if self.feed is None:
            raise ValueError("nothing is recorded with the base strategy")
        self._request("redo")
        return "discarding the episode in progress"

    def set_task(self, task: str) -> str:
        if not task.strip():
            raise ValueError("the task cannot be empty")
        with self._lock:
            self._task = task.strip()
        return f"task: {self._task}"

    def set_subtask(self, text: str | None) -> str:
        with self._lock:
            self._subtask = text.strip() if text and text.strip() else None
        if self._subtask is None:
            return "subtask cleared: the policy follows the task"
        note = "" if self.policy.language_conditioned else " (this policy ignores language)"
        return f"subtask: {self._subtask}{note}"

    # ------------------------------------------------------------------------------------ scene questions
    def language_anchor(self) -> LanguageAnchor | None:
        """The frame being recorded now, to attach a question asked now to (None: not recording questions)."""
        return self.feed.writer.language_anchor() if self.feed is not None else None

    def add_language_event(self, rows: list[LanguageRow], at: LanguageAnchor) -> bool:
        """Record a question and its answer on the frame it was asked at; False once that episode ended."""
        return self.feed is not None and self.feed.writer.add_language_event(rows, at=at)

    def _request(self, name: str, argument: Any = None) -> None:
        if self.finished or self._finishing:
            raise ValueError("the rollout has stopped")
        with self._lock:
            self._requests.append((name, argument))

    # ------------------------------------------------------------------------------------ the tick
    def _step(self, tick: int) -> None:
        self._tick = tick
        with self._lock:
            requests, self._requests = self._requests, []
        for name, argument in requests:
            self._apply(name, argument)
        follower = self.robot.read_positions()
        images = self._frames.grab()
        state = np.array([follower[j] for j in self._joints], dtype=np.float32)
        assert self.worker is not None
        self.worker.publish(RawObservation(tick, state, images))

        mode = self._mode
        if mode is Mode.AUTONOMOUS:
            planned = self.queue.pop(tick)
            if planned is None:
                self._starved += 1
                goal = self._hold
            else:
                goal = {j: float(v) for j, v in zip(self._joints, planned, strict=True)}
                self._hold = goal
                self._dispatched += 1
            if self._burst_end is not None and tick + 1 >= self._burst_end:
                self._enter_paused(follower, "timed run over: paused")
        elif mode is Mode.TAKEOVER:
            goal = self._takeover_goal(follower)
            self._hold = goal
            self._takeover_ticks += 1
        else:
            goal = self._hold
            self._drive_handover(tick)
        self.robot.send_action({f"{j}.pos": v for j, v in goal.items()})
        self._record(mode, state, goal, images)

    def _takeover_goal(self, follower: dict[str, float]) -> dict[str, float]:
        if self.leader is not None:
            return self.leader.read_positions()
        assert self.jog is not None
        return self.jog.targets() or follower

    def _record(self, mode: Mode, state: np.ndarray, goal: dict[str, float], images: dict[str, np.ndarray]) -> None:
        feed = self.feed
        if feed is None or mode is Mode.PAUSED:
            return
        takeover = mode is Mode.TAKEOVER
        strategy = self.settings.strategy
        if strategy == "dagger" and not takeover and not self.settings.record_autonomous:
            return
        if strategy == "dagger" and not feed.recording:
            feed.begin(self._task)
            self._episode_ticks = 0
        frame: dict[str, Any] = {
            STATE_KEY: state,
            ACTION_KEY: np.array([goal[j] for j in self._joints], dtype=np.float32),
            INTERVENTION_KEY: np.array([takeover]),
            "task": self._task,
        }
        for name, image in images.items():
            frame[IMAGES_PREFIX + name] = image
        feed.put(frame)
        self._episode_ticks += 1
        if (strategy == "dagger" and self.settings.record_autonomous and not takeover
                and self._episode_ticks >= self.settings.episode_time_s * self.fps):
            feed.save()  # rotate; the next recorded frame begins the next episode

    # ------------------------------------------------------------------------------------ transitions
    def _apply(self, name: str, argument: Any) -> None:
        mode = self._mode
        if name == "action":
            if isinstance(argument, str):
                self._task = argument
            self._burst_end = self._tick + round(argument * self.fps) if isinstance(argument, float) else None
            if mode is not Mode.AUTONOMOUS:
                self._enter_autonomous()
        elif name == "resume":
            self._burst_end = None
            if mode is not Mode.AUTONOMOUS:
                self._enter_autonomous()
        elif name == "pause":
            self._takeover_pending = False
            if mode is not Mode.PAUSED:
                self._enter_paused(self.robot.read_positions() if mode is Mode.AUTONOMOUS else None)
        elif name == "takeover":
            if mode is Mode.TAKEOVER:
                self._enter_paused(None, "takeover ended: paused")
                return
            if mode is Mode.AUTONOMOUS:
                self._enter_paused(self.robot.read_positions())  # a leader first moves to the follower's pose
            self._takeover_pending = True
            self._try_takeover()
        elif name == "save":
            self._save_request()
        elif name == "redo":
            assert self.feed is not None
            if self.feed.discard():
                self._message = "episode discarded"
                if self._mode is Mode.TAKEOVER and self.settings.strategy == "dagger":
                    self.feed.begin(self._task)
                    self._episode_ticks = 0
            else:
                self._message = "no episode in progress to discard"

    def _save_request(self) -> None:
        feed = self.feed
        assert feed is not None
        if self.settings.strategy == "highlight":
            if feed.recording:
                feed.save()
                self._message = "highlight saved"
            else:
                feed.begin(self._task, ring=True)
                self._message = f"highlight: recording from {feed.episode_frames / self.fps:.1f} s ago; save again to end"
            return
        if feed.save():
            self._message = "episode saved"
            if self._mode is Mode.TAKEOVER:
                feed.begin(self._task)  # the correction goes on as a new episode
                self._episode_ticks = 0
        else:
            self._message = "no episode in progress to save"

    def _enter_autonomous(self) -> None:
        if self._mode is Mode.TAKEOVER:
            self._end_takeover()
        self._takeover_pending = False
        self._handover = None
        if self.leader is not None:
            self.leader.set_torque(False)
            self._aligned = False
        self.queue.clear()
        self._mode = Mode.AUTONOMOUS
        assert self.worker is not None
        self.worker.set_active(True)
        log.info("autonomous: %s", self.instruction or "(no task)")

    def _enter_paused(self, hold: dict[str, float] | None, message: str | None = None) -> None:
        """Hold `hold` (the follower's pose) or, after a takeover, where the leader left the arm."""
        assert self.worker is not None
        self.worker.set_active(False)
        self.queue.clear()
        self._burst_end = None
        was = self._mode
        if was is Mode.TAKEOVER:
            self._end_takeover()
            if self.leader is not None:
                self.leader.set_torque(True)  # hold the leader where the human left it
                self.leader.send_feedback({f"{j}.pos": v for j, v in self._hold.items()})
        elif hold is not None:
            self._hold = hold
        self._mode = Mode.PAUSED
        if was is Mode.AUTONOMOUS and self.leader is not None:
            self._start_handover()
        if message:
            self._message = message

    def _start_handover(self) -> None:
        assert self.leader is not None
        self.leader.set_torque(True)
        start = self.leader.read_positions()
        self._aligned = False
        self._handover = (self._tick, start, dict(self._hold))

    def _drive_handover(self, tick: int) -> None:
        if self._handover is None or self.leader is None:
            return
        t0, start, target = self._handover
        n = max(1, round(self.settings.handover_s * self.fps))
        u = min(1.0, (tick - t0 + 1) / n)
        self.leader.send_feedback({f"{j}.pos": start[j] + u * (target[j] - start[j]) for j in target})
        if u >= 1.0:
            self._handover = None
            self._aligned = True
            self._try_takeover()

    def _try_takeover(self) -> None:
        if not self._takeover_pending or self._mode is not Mode.PAUSED:
            return
        if self.leader is not None and not self._aligned:
            if self._handover is None:
                self._start_handover()
            return  # the leader reaches the follower's pose first
        self._takeover_pending = False
        if self.leader is not None:
            self.leader.set_torque(False)
        else:
            assert self.jog is not None
            self.jog.reset(dict(self._hold))
        self._mode = Mode.TAKEOVER
        self._interventions += 1
        if self.feed is not None and self.settings.strategy == "dagger" and not self.feed.recording:
            self.feed.begin(self._task)
            self._episode_ticks = 0
        log.info("takeover %d: the human is in control", self._interventions)

    def _end_takeover(self) -> None:
        if self.feed is not None and self.settings.strategy == "dagger" and not self.settings.record_autonomous:
            self.feed.save()

    # ------------------------------------------------------------------------------------ failures
    def _inference_failed(self, error: str) -> None:
        self._message = f"the policy failed: {error}; paused"
        with self._lock:
            self._requests.append(("pause", None))

    def _failed(self, error: BaseException) -> None:
        """A tick failed (lost port, dead camera...): stop, keep what was recorded, release torque."""
        self._error = str(error)
        threading.Thread(target=self.stop, name="rollout-stop", daemon=True).start()

    # ------------------------------------------------------------------------------------ status
    def snapshot(self) -> RolloutSnapshot:
        worker = self.worker
        feed = self.feed
        tick = self._tick
        chunk_tick = self.queue.chunk_tick
        burst = self._burst_end
        return RolloutSnapshot(
            mode=self._mode,
            strategy=self.settings.strategy,
            task=self._task,
            subtask=self._subtask,
            burst_left_s=max(0.0, (burst - tick) / self.fps) if burst is not None else None,
            queue_depth=self.queue.remaining(tick),
            inference=worker.stats() if worker is not None else InferenceStats(0, 0.0, 0.0, 0.0, 0, None),
            actions_dispatched=self._dispatched,
            starved_ticks=self._starved,
            stale_actions=self.queue.stale_dropped,
            chunk_age_s=(tick - chunk_tick) / self.fps if chunk_tick is not None else None,
            loop=self._loop.stats() if self._loop is not None else None,
            handover=self._handover is not None,
            takeover_pending=self._takeover_pending,
            interventions=self._interventions,
            intervention_s=self._takeover_ticks / self.fps,
            recording=feed is not None and feed.recording,
            episode_frames=feed.episode_frames if feed is not None else 0,
            saved=feed.saved if feed is not None else (),
            cameras=tuple(feed.writer.camera_status()) if feed is not None else (),
            stale_frames=self._frames.stale,
            dropped_frames=self._frames.dropped,
            preflight=tuple(self.preflight.report()) if self.preflight is not None else (),
            error=self._error or (feed.error if feed is not None else None),
            message=self._message or (feed.message if feed is not None else None),
            finished=self.finished,
            bus=bus_health(self.robot, self.leader),
        )


def _ring_frames(robot: Robot, settings: RolloutSettings) -> int:
    """Frames the highlight ring holds: its seconds, capped by its memory budget (images dominate)."""
    frame_bytes = sum(cam.height * cam.width * 3 for cam in robot.cameras.values()) + 64 * len(robot.motors)
    by_memory = int(settings.ring_buffer_max_mb * 2**20 // max(frame_bytes, 1))
    return max(1, min(round(settings.ring_buffer_s * settings.fps), by_memory))
