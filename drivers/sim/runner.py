"""`SimRunner`: steps a `SimWorld` in real time on its own thread and couples it to the emulated follower.

Every tick (default 200 Hz: three 600 Hz physics steps) it takes the bus lock once, briefly: it reads each
servo's goal in the physical frame (None = torque off) and writes back the shaft positions the physics
produced. Everything else (stepping, converting ticks) happens outside the lock, so the responder thread
answering the real driver, and therefore the control loop, never waits on physics.

The schedule runs against absolute deadlines; if the process stalls for longer than `max_lag_s` the
runner drops the lost time instead of fast-forwarding through it (a stalled robot does not teleport).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np

from drivers.emulator import EmulatedBus
from drivers.sim.scene import JOINTS
from drivers.sim.ticks import TickMap
from drivers.sim.world import SimWorld

log = logging.getLogger(__name__)


@dataclass
class RunnerStats:
    ticks: int = 0
    steps: int = 0
    overruns: int = 0  # ticks that started later than one period after their deadline
    dropped_s: float = 0.0  # real time skipped after stalls
    busy_s: float = 0.0  # time spent working (not sleeping): the runner's CPU footprint
    started: float = 0.0  # perf_counter at start

    def steps_per_s(self) -> float:
        elapsed = time.perf_counter() - self.started
        return self.steps / elapsed if elapsed > 0 else 0.0


class SimRunner:
    """Owns the world while running: other threads act on it only through `call()`."""

    def __init__(
        self,
        world: SimWorld,
        bus: EmulatedBus | None,
        ticks: TickMap,
        *,
        substeps: int = 3,
        max_lag_s: float = 0.1,
    ) -> None:
        self.world = world
        self.bus = bus
        self.ticks = ticks
        self.substeps = substeps
        self.period = substeps * float(world.model.opt.timestep)
        self.max_lag_s = max_lag_s
        self.stats = RunnerStats()
        self._servos = [bus.servo(j.motor_id) for j in JOINTS] if bus is not None else []
        self._calls: queue.SimpleQueue[tuple[Callable[[SimWorld], Any], Future[Any]]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._torque = np.ones(len(JOINTS), dtype=bool)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self.stats = RunnerStats(started=time.perf_counter())
        self._thread = threading.Thread(target=self._run, name="sim-physics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        while True:  # nobody will run what is still queued: fail it rather than leave callers waiting
            try:
                _, fut = self._calls.get_nowait()
            except queue.Empty:
                break
            fut.set_exception(RuntimeError("sim runner stopped"))

    def call(self, fn: Callable[[SimWorld], Any], timeout: float | None = 2.0) -> Any:
        """Run `fn(world)` on the physics thread between two ticks and return its result (or, if the runner
        is not running, right here)."""
        if not self.running:
            return fn(self.world)
        fut: Future[Any] = Future()
        self._calls.put((fn, fut))
        return fut.result(timeout=timeout)

    # ------------------------------------------------------------------------------------- the loop
    def exchange(self) -> None:
        """Swap goals and positions with the bus (one short lock hold), then apply the goals."""
        if not self._servos:
            return
        physical = self.ticks.physical(self.world.joint_positions())
        assert self.bus is not None
        with self.bus.lock:
            goals = [s.goal_actual for s in self._servos]
            for servo, p in zip(self._servos, physical, strict=True):
                servo.set_actual(p)
        torque = np.array([g is not None for g in goals])
        if not np.array_equal(torque, self._torque):
            self._torque = torque
            self.world.set_torque(torque)
        if torque.any():  # limp joints keep their old target: the actuator is off anyway
            goal_ticks = np.array([0.0 if g is None else g for g in goals])
            self.world.set_targets(np.where(torque, self.ticks.angles(goal_ticks), self.world.targets()))

    def _run(self) -> None:
        deadline = time.perf_counter()
        st = self.stats
        while not self._stop.is_set():
            t0 = time.perf_counter()
            try:
                self.exchange()
                self.world.step(self.substeps)
                while True:
                    try:
                        fn, fut = self._calls.get_nowait()
                    except queue.Empty:
                        break
                    try:
                        fut.set_result(fn(self.world))
                    except BaseException as e:
                        fut.set_exception(e)
            except Exception:
                log.exception("sim physics tick failed")
            st.ticks += 1
            st.steps += self.substeps
            now = time.perf_counter()
            st.busy_s += now - t0
            deadline += self.period
            lag = now - deadline
            if lag > self.max_lag_s:
                st.dropped_s += lag
                deadline = now
            elif lag > self.period:
                st.overruns += 1
            delay = deadline - time.perf_counter()
            if delay > 0:
                time.sleep(delay)  # cheaper per wake-up than Event.wait; stop() waits at most one period
