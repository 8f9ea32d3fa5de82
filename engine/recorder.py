"""Episode recording: record (episode timer) → reset (timer; teleop keeps driving, nothing recorded) → next.

The control loop (one thread, fixed rate) reads the follower and the cameras, drives the follower from the
leader (or keyboard jog), and hands each frame to the dataset writer, which never blocks it. Saving an episode
happens on a separate saver thread while the next phase is already running, so the operator never waits;
the episode is durable on disk when its summary appears in `snapshot().saved`.

Keys map onto `next()` (end the phase early; a recorded episode is saved), `redo()` (drop the episode being
recorded and record it again) and `stop()` (save what is recorded, finalize, release the arm).
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from drivers.cameras.base import Camera
from drivers.motors.bus import CommError
from drivers.robots.base import Robot, Teleoperator
from engine.control_loop import ControlLoop, LoopStats
from engine.dataset.format import IMAGES_PREFIX, build_features
from engine.dataset.writer import CameraStatus, DatasetWriter, EpisodeInfo, EpisodeRefused
from engine.frames import FrameGrabber
from engine.health import BusHealth, bus_health
from engine.teleop import JogSource

log = logging.getLogger(__name__)

STATE_KEY = "observation.state"
ACTION_KEY = "action"


class Phase(StrEnum):
    IDLE = "idle"
    RECORDING = "recording"
    RESET = "reset"
    DONE = "done"


@dataclass(frozen=True)
class RecordSettings:
    num_episodes: int = 50
    episode_time_s: float = 60.0
    reset_time_s: float = 60.0
    task: str = ""

    def __post_init__(self) -> None:
        if self.num_episodes < 1:
            raise ValueError(f"the number of episodes must be at least 1, got {self.num_episodes}")
        if self.episode_time_s <= 0:
            raise ValueError(f"episode time must be positive seconds, got {self.episode_time_s}")
        if self.reset_time_s < 0:
            raise ValueError(f"reset time cannot be negative, got {self.reset_time_s}")
        if not self.task.strip():
            raise ValueError("a task description is required (what the robot does, e.g. 'pick the cube')")


@dataclass(frozen=True)
class SavedEpisode:
    index: int
    length: int
    duration_s: float
    save_latency_s: float


@dataclass(frozen=True)
class RecorderSnapshot:
    phase: Phase
    episode: int  # 0-based index of the episode being recorded (or next to record)
    recorded: int  # episodes saved in this session
    num_episodes: int
    time_left_s: float
    task: str
    frames: int  # frames in the episode in progress
    loop: LoopStats | None
    cameras: tuple[CameraStatus, ...]
    stale_frames: int  # ticks that found no new camera frame and reused the previous one
    dropped_frames: int  # camera frames produced but never recorded (the loop was slower than the camera)
    saving: bool
    saved: tuple[SavedEpisode, ...]
    disk_free_bytes: int
    error: str | None
    message: str | None  # the last notice for the operator (refused episode, redo...)
    bus: BusHealth = field(default_factory=BusHealth)


class Recorder:
    """Records `settings.num_episodes` episodes from `robot` (driven by `leader` or `jog`) into `writer`.

    `on_reset(next_index)` runs on its own thread as each reset phase begins (the sim re-randomizes its scene
    there, as a person resets the table); `on_finished()` runs once at the end, after the writer is finalized
    and torque released.
    """

    def __init__(
        self,
        robot: Robot,
        writer: DatasetWriter,
        settings: RecordSettings,
        *,
        leader: Teleoperator | None = None,
        jog: JogSource | None = None,
        on_reset: Callable[[int], None] | None = None,
        on_finished: Callable[[], None] | None = None,
        stale_timeout_s: float = 2.0,
    ) -> None:
        if leader is None and jog is None:
            jog = JogSource(list(robot.motors))
        self.robot = robot
        self.writer = writer
        self.settings = settings
        self.leader = leader
        self.jog = jog if leader is None else None
        self._on_reset = on_reset
        self._on_finished = on_finished
        self.fps = writer.fps
        self._joints = list(robot.motors)
        self._cameras: dict[str, Camera] = dict(robot.cameras)
        missing = [k for k in writer.video_keys if k.removeprefix(IMAGES_PREFIX) not in self._cameras]
        if missing:
            raise ValueError(
                f"the dataset has cameras the robot lacks: {', '.join(missing)} "
                f"(robot cameras: {', '.join(self._cameras) or 'none'})"
            )
        self._lock = threading.Lock()
        self._phase = Phase.IDLE
        self._episode = writer.total_episodes
        self._recorded = 0
        self._phase_ticks = 0
        self._phase_len = 0
        self._task = settings.task
        self._frames = FrameGrabber(self._cameras, stale_timeout_s)
        self._saved: list[SavedEpisode] = []
        self._saving = threading.Event()
        self._pending_begin = False
        self._error: str | None = None
        self._message: str | None = None
        self._loop: ControlLoop | None = None
        self._finished = threading.Event()
        self._finishing = False
        self._stop_requested = False

    # ----------------------------------------------------------------------------------- control
    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def start(self) -> None:
        """Torque on, first episode starts recording at once."""
        if self._loop is not None:
            return
        present = self.robot.read_positions()
        if self.jog is not None:
            self.jog.reset(present)
        self.robot.set_torque(True)
        self._begin_episode()
        self._loop = ControlLoop(self.fps, self._tick, name="record", on_error=self._failed,
                                 transient=(CommError,))
        self._loop.start()

    def set_task(self, task: str) -> None:
        """The task of the next episodes (the one in progress keeps its task)."""
        if not task.strip():
            raise ValueError("the task description cannot be empty")
        self._task = task.strip()

    def next(self) -> None:
        """End the current phase early: a recorded episode is saved; a reset phase ends."""
        with self._lock:
            if self._phase is Phase.RECORDING:
                self._end_recording(save=True)
            elif self._phase is Phase.RESET:
                self._phase_len = self._phase_ticks  # the tick ends it

    def redo(self) -> None:
        """Drop the episode being recorded and record it again after the reset phase."""
        with self._lock:
            if self._phase is Phase.RECORDING:
                self._end_recording(save=False)
                self._message = f"episode {self._episode} discarded: it will be recorded again"
            elif self._phase is Phase.RESET:
                self._message = "the last episode is already saved; press redo while recording to drop one"

    def stop(self) -> None:
        """Save what is recorded, finalize the dataset, release the arm. Returns once all that is done."""
        with self._lock:
            self._stop_requested = True
            if self._phase is Phase.RECORDING:
                self._end_recording(save=True)
            elif self._phase in (Phase.RESET, Phase.IDLE):
                self._phase = Phase.DONE
        self._finish()

    def wait(self, timeout: float | None = None) -> bool:
        return self._finished.wait(timeout)

    # ----------------------------------------------------------------------------------- the tick
    def _tick(self, _i: int) -> None:
        follower = self.robot.read_positions()
        if self.leader is not None:
            action_values = self.leader.read_positions()
        else:
            targets = self.jog.targets() if self.jog is not None else None
            action_values = targets or follower
        self.robot.send_action({f"{m}.pos": v for m, v in action_values.items()})
        with self._lock:
            phase = self._phase
            if phase is Phase.RECORDING:
                frame: dict[str, Any] = {
                    STATE_KEY: np.array([follower[j] for j in self._joints], dtype=np.float32),
                    ACTION_KEY: np.array([action_values[j] for j in self._joints], dtype=np.float32),
                }
                for name, image in self._frames.grab().items():
                    frame[IMAGES_PREFIX + name] = image
                self.writer.add_frame(frame)
            self._phase_ticks += 1
            if phase is Phase.RECORDING and self._phase_ticks >= self._phase_len:
                self._end_recording(save=True)
            elif phase is Phase.RESET and self._phase_ticks >= self._phase_len and not self._saving.is_set():
                self._after_reset()

    # ----------------------------------------------------------------------------------- phases
    def _begin_episode(self) -> None:
        self.writer.begin_episode(self._task)
        self._phase = Phase.RECORDING
        self._phase_ticks = 0
        self._phase_len = max(1, round(self.settings.episode_time_s * self.fps))

    def _end_recording(self, *, save: bool) -> None:
        """Called with the lock held, on the control thread or a UI thread."""
        frames = self.writer.episode_frames
        if save and frames > 0:
            self._saving.set()
            threading.Thread(target=self._save, name="record-saver", daemon=True).start()
        else:
            self.writer.discard_episode()
        last = save and frames > 0 and self._recorded + 1 >= self.settings.num_episodes
        if self._stop_requested or last:
            self._phase = Phase.DONE
        else:
            self._phase = Phase.RESET
            self._phase_ticks = 0
            self._phase_len = round(self.settings.reset_time_s * self.fps)
            if self._on_reset is not None:
                threading.Thread(target=self._run_reset_hook, args=(self._episode + (1 if save else 0),),
                                 name="record-reset", daemon=True).start()

    def _run_reset_hook(self, next_index: int) -> None:
        assert self._on_reset is not None
        try:
            self._on_reset(next_index)
        except Exception as e:
            log.warning("reset hook failed: %s", e)

    def _save(self) -> None:
        try:
            info: EpisodeInfo = self.writer.save_episode()
            with self._lock:
                self._saved.append(
                    SavedEpisode(info.episode_index, info.length, info.duration_s, info.save_latency_s)
                )
                self._recorded += 1
                self._episode = self.writer.total_episodes
            log.info("episode %d saved: %d frames in %.2f s", info.episode_index, info.length,
                     info.save_latency_s)
        except EpisodeRefused as e:
            with self._lock:
                self._message = f"episode not saved: {e}"
            log.warning("episode not saved: %s", e)
        except Exception as e:
            with self._lock:
                self._error = f"saving the episode failed: {e}"
            log.exception("saving the episode failed")
        finally:
            self._saving.clear()
            if self._phase is Phase.DONE:
                threading.Thread(target=self._finish, name="record-finish", daemon=True).start()

    def _after_reset(self) -> None:
        """End of the reset phase (lock held, control thread): the next episode starts recording."""
        self._begin_episode()

    def _failed(self, error: BaseException) -> None:
        """A tick failed (lost port, dead camera...): drop the episode in progress, keep the saved ones."""
        with self._lock:
            self._error = str(error)
            if self.writer.recording:
                self.writer.discard_episode()
            self._phase = Phase.DONE
        threading.Thread(target=self._finish, name="record-finish", daemon=True).start()

    def _finish(self) -> None:
        """Stop the loop, wait for a save in flight, finalize the dataset, release torque. The first caller
        does the work; any other (stop key, saver, failed tick) waits for it."""
        with self._lock:
            first = not self._finishing
            self._finishing = True
        if not first:
            self._finished.wait(130)
            return
        if self._loop is not None:
            self._loop.stop()
        deadline = time.monotonic() + 120
        while self._saving.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        with self._lock:
            if self.writer.recording:
                self.writer.discard_episode()
            try:
                self.writer.finalize()
            except Exception as e:
                self._error = self._error or f"finalizing the dataset failed: {e}"
                log.exception("finalizing the dataset failed")
            try:
                self.robot.set_torque(False)
            except Exception as e:
                log.warning("could not disable torque on %s: %s", self.robot.label, e)
            self._phase = Phase.DONE
        self._finished.set()
        if self._on_finished is not None:
            self._on_finished()

    # ----------------------------------------------------------------------------------- status
    def snapshot(self) -> RecorderSnapshot:
        with self._lock:
            left = max(0.0, (self._phase_len - self._phase_ticks) / self.fps)
            if self._phase in (Phase.IDLE, Phase.DONE):
                left = 0.0
            return RecorderSnapshot(
                phase=self._phase,
                episode=self._episode,
                recorded=self._recorded,
                num_episodes=self.settings.num_episodes,
                time_left_s=left,
                task=self._task,
                frames=self.writer.episode_frames,
                loop=self._loop.stats() if self._loop is not None else None,
                cameras=tuple(self.writer.camera_status()),
                stale_frames=self._frames.stale,
                dropped_frames=self._frames.dropped,
                saving=self._saving.is_set(),
                saved=tuple(self._saved),
                disk_free_bytes=_disk_free(self.writer.root),
                error=self._error,
                message=self._message,
                bus=bus_health(self.robot, self.leader),
            )


def open_dataset(
    robot: Robot,
    root: str | Path,
    fps: int,
    *,
    resume: bool = False,
    vcodec: str | None = None,
    repo_id: str | None = None,
    extra: Mapping[str, Mapping[str, Any]] | None = None,
    language_events: bool = False,
) -> DatasetWriter:
    """A writer for `robot`'s joints and cameras (plus `extra` features, e.g. `intervention`): a new dataset
    (`vcodec` default libsvtav1, as LeRobot), or (`resume`) the existing one, refused with a readable diff when
    its fps, robot type or features differ, or when `vcodec` is given and differs from the codec the dataset
    was recorded with."""
    cameras = {name: (cam.height, cam.width) for name, cam in robot.cameras.items()}
    features = build_features(list(robot.position_features), cameras, extra=extra, language_events=language_events)
    if resume:
        return DatasetWriter.resume(root, fps=fps, features=features, robot_type=robot.name, vcodec=vcodec,
                                    repo_id=repo_id)
    return DatasetWriter.create(root, fps, features, robot.name, vcodec=vcodec or "libsvtav1", repo_id=repo_id)


def _disk_free(path: Path) -> int:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return 0
