"""Replay: play one recorded episode's `action` column back on the follower, at the dataset's rate.

Useful to check a dataset before training (does the arm redo the demonstration?) and to reproduce a
failure. The robot first glides from where it stands to the episode's first action (a recorded episode
rarely starts where the arm is now, and one jump there is how arms hit tables), then gets one action per
tick through the control loop, holds the last goal briefly so it arrives, and is released (torque off).
Every exit path (the end, `stop()`, a failed tick) releases torque. UI-free: a screen polls `snapshot()`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from drivers.motors.bus import CommError
from drivers.robots.base import Robot
from engine.control_loop import ControlLoop, LoopStats
from engine.dataset.reader import LeRobotDatasetReader

log = logging.getLogger(__name__)

ACTION_KEY = "action"


class ReplayError(ValueError):
    """The episode cannot be replayed on this robot; the message says why and what would work."""


class ReplayPhase(StrEnum):
    IDLE = "idle"
    APPROACH = "approach"  # gliding from the present pose to the first action
    PLAYING = "playing"
    SETTLE = "settle"  # holding the last action so the arm reaches it
    DONE = "done"


@dataclass(frozen=True)
class EpisodeActions:
    """One episode's actions, columns in the robot's motor order."""

    episode: int
    actions: np.ndarray  # (L, N) float
    names: tuple[str, ...]  # "<motor>.pos", the robot's action keys
    fps: int
    robot_type: str | None


@dataclass(frozen=True)
class ReplaySnapshot:
    phase: ReplayPhase
    frame: int  # actions sent so far (0..total)
    total: int
    loop: LoopStats | None
    final_positions: dict[str, float] | None  # read just before torque was released
    error: str | None


def _range_text(indices: Sequence[int]) -> str:
    if not indices:
        return "none: the dataset has no episodes"
    if list(indices) == list(range(indices[0], indices[-1] + 1)):
        return f"{indices[0]}..{indices[-1]}"
    return ", ".join(str(i) for i in indices)


def load_episode_actions(reader: LeRobotDatasetReader, episode: int, robot: Robot) -> EpisodeActions:
    """The `action` column of `episode`, reordered to the robot's motors. Raises ReplayError naming the
    valid episodes, or both joint lists when the dataset was recorded on different joints."""
    indices = reader.episode_indices
    if episode not in indices:
        raise ReplayError(
            f"episode {episode} is not in {reader.root}: valid episodes are {_range_text(indices)}"
        )
    feature = reader.features.get(ACTION_KEY)
    if feature is None:
        raise ReplayError(f"{reader.root} has no '{ACTION_KEY}' feature, so there is nothing to replay")
    names = [str(n) for n in (feature.get("names") or [])]
    wanted = list(robot.action_features)
    if sorted(names) != sorted(wanted):
        raise ReplayError(
            f"the dataset's joints do not match the robot's motors:\n"
            f"  dataset ({reader.robot_type or 'unknown robot'}): {', '.join(names) or 'no joint names'}\n"
            f"  robot ({robot.name}): {', '.join(wanted)}\n"
            "replay it on the kind of arm it was recorded with"
        )
    column = np.asarray(reader.frames(episode)[ACTION_KEY], dtype=np.float64)
    if column.ndim != 2 or column.shape[1] != len(names) or column.shape[0] == 0:
        raise ReplayError(
            f"episode {episode}: the action column has shape {column.shape}, expected (frames, {len(names)})"
        )
    order = [names.index(n) for n in wanted]
    return EpisodeActions(episode, column[:, order], tuple(wanted), reader.fps, reader.robot_type)


class Replay:
    """Plays `episode.actions` on a connected, calibrated `robot` at `fps` (default: the dataset's)."""

    def __init__(
        self,
        robot: Robot,
        episode: EpisodeActions,
        *,
        fps: float | None = None,
        approach_s: float = 1.0,
        settle_s: float = 0.5,
    ) -> None:
        if fps is not None and fps <= 0:
            raise ReplayError(f"the replay rate must be positive, got {fps}")
        self.robot = robot
        self.episode = episode
        self.fps = float(fps or episode.fps)
        self._approach_ticks = max(0, round(approach_s * self.fps))
        self._settle_ticks = max(0, round(settle_s * self.fps))
        self._lock = threading.Lock()
        self._phase = ReplayPhase.IDLE
        self._frame = 0
        self._start_pose: np.ndarray | None = None
        self._final: dict[str, float] | None = None
        self._error: str | None = None
        self._loop: ControlLoop | None = None
        self._finishing = False
        self._finished = threading.Event()

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def start(self) -> None:
        """Torque on, then the approach begins on the control thread."""
        if self._loop is not None:
            return
        present = self.robot.read_positions()
        self._start_pose = np.array([present[n.removesuffix(".pos")] for n in self.episode.names])
        self.robot.set_torque(True)
        with self._lock:
            self._phase = ReplayPhase.APPROACH if self._approach_ticks else ReplayPhase.PLAYING
        self._loop = ControlLoop(self.fps, self._tick, name="replay", on_error=self._failed,
                                 transient=(CommError,))
        self._loop.start()

    def stop(self) -> None:
        """Stop where the arm is and release it. Returns once torque is off."""
        self._finish()

    def wait(self, timeout: float | None = None) -> bool:
        return self._finished.wait(timeout)

    def _send(self, values: np.ndarray) -> None:
        self.robot.send_action({n: float(v) for n, v in zip(self.episode.names, values, strict=True)})

    def _tick(self, i: int) -> None:
        actions = self.episode.actions
        total = len(actions)
        if i < self._approach_ticks:
            assert self._start_pose is not None
            w = (i + 1) / self._approach_ticks
            self._send((1 - w) * self._start_pose + w * actions[0])
            return
        k = i - self._approach_ticks
        if k < total:
            self._send(actions[k])
            with self._lock:
                self._phase, self._frame = ReplayPhase.PLAYING, k + 1
            return
        if k < total + self._settle_ticks:
            self._send(actions[-1])
            with self._lock:
                self._phase = ReplayPhase.SETTLE
            return
        # The last tick ends the replay: signal the loop (stop() from its own thread does not join), and
        # release the arm from another thread, which can wait for the loop to end.
        assert self._loop is not None
        self._loop.stop()
        threading.Thread(target=self._finish, name="replay-finish", daemon=True).start()

    def _failed(self, error: BaseException) -> None:
        with self._lock:
            self._error = str(error)
        threading.Thread(target=self._finish, name="replay-finish", daemon=True).start()

    def _finish(self) -> None:
        """Stop the loop, note where the arm ended, torque off. The first caller does it; others wait."""
        with self._lock:
            first = not self._finishing
            self._finishing = True
        if not first:
            self._finished.wait(10)
            return
        try:
            if self._loop is not None:
                self._loop.stop()
            if self._error is None and self._loop is not None:
                try:
                    self._final = self.robot.read_positions()
                except Exception as e:
                    log.warning("could not read the final positions of %s: %s", self.robot.label, e)
        finally:
            try:
                self.robot.set_torque(False)
            except Exception as e:
                log.warning("could not disable torque on %s: %s", self.robot.label, e)
            with self._lock:
                self._phase = ReplayPhase.DONE
            self._finished.set()

    def snapshot(self) -> ReplaySnapshot:
        with self._lock:
            return ReplaySnapshot(
                phase=self._phase,
                frame=self._frame,
                total=len(self.episode.actions),
                loop=self._loop.stats() if self._loop is not None else None,
                final_positions=dict(self._final) if self._final is not None else None,
                error=self._error,
            )
