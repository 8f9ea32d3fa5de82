"""`ScriptedLeader`: plays demonstrator trajectories on the virtual leader in real time, episode after episode.

This is the simulated human: it looks at the cube (privileged sim state), moves the leader arm through a
pick-and-place, and between demonstrations puts the cube somewhere new, as a person resets the scene. The
follower only moves if something teleoperates it from the leader (the app, `robotui teleop`, a test), so
recording in sim produces real teleoperated demonstrations.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from drivers.sim.demonstrator import Demonstrator, IKError, Trajectory
from drivers.sim.leader import VirtualLeader
from drivers.sim.world import SimWorld

log = logging.getLogger(__name__)

WorldCall = Callable[[Callable[[SimWorld], object]], object]


@dataclass
class DemoStatus:
    episodes: int = 0
    successes: int = 0
    phase: str = "idle"  # the current trajectory segment's label ("approach", "grasp", ...) or "reset"


class ScriptedLeader:
    """Runs on its own thread; `call_world` runs a function on the world's owning (physics) thread."""

    def __init__(
        self,
        leader: VirtualLeader,
        demonstrator: Demonstrator,
        call_world: WorldCall,
        *,
        rate_hz: float = 60.0,
        pause_s: float = 1.0,
        loop: bool = True,
    ) -> None:
        self.leader = leader
        self.demonstrator = demonstrator
        self.call_world = call_world
        self.rate_hz = rate_hz
        self.pause_s = pause_s
        self.loop = loop
        self.status = DemoStatus()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sim-demonstrator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        self.status.phase = "idle"

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a non-looping run to finish; True if it did."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _plan(self) -> Trajectory:
        start = np.array(self.leader.positions())
        cube = self.call_world(lambda w: w.cube_pose())
        pos, yaw = cube  # type: ignore[misc]
        return self.demonstrator.plan(start, pos, yaw)

    def play(self, traj: Trajectory) -> bool:
        """Move the leader along `traj` in real time; False if stopped midway."""
        period = 1.0 / self.rate_hz
        t0 = time.perf_counter()
        deadline = t0
        while not self._stop.is_set():
            t = time.perf_counter() - t0
            self.status.phase = traj.label_at(t)
            self.leader.set_positions(list(traj(t)))
            if t >= traj.duration:
                return True
            deadline = max(deadline + period, time.perf_counter())
            self._stop.wait(deadline - time.perf_counter())
        return False

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                traj = self._plan()
            except IKError as e:
                log.warning("demonstrator: %s; moving the cube", e)
                self.call_world(lambda w: w.randomize_cube())
                continue
            if not self.play(traj):
                return
            self.status.episodes += 1
            self.status.phase = "reset"
            if self._stop.wait(self.pause_s):
                return
            if self.call_world(lambda w: w.is_success()):
                self.status.successes += 1
            if not self.loop:
                self.status.phase = "idle"
                return
            self.call_world(lambda w: w.randomize_cube())
