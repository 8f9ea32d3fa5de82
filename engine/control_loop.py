"""A fixed-rate control loop on its own thread, paced against absolute deadlines.

Teleop, recording and rollout all run their per-tick work through this loop. It never waits on the UI: the
step function does the work, the loop keeps timing statistics that the UI shows and the benches read. A tick
that runs late is counted as an overrun and the schedule skips ahead instead of bursting to catch up, so the
robot never receives a flurry of stale goals after a stall.

A tick that fails with one of the `transient` errors (a servo reply lost or corrupted on a noisy bus) is
skipped and counted: the robot keeps its last goal for that tick. Only when every tick has failed for longer
than `grace_s`, and at least `MIN_FAILED_TICKS` ticks in a row (a failed tick can itself take a while: its
reads time out), does the loop stop with that error, so a motor that stopped answering still ends the run
(and the owner's error handler brings the arm to a safe state) within about a second.

The loop shares the interpreter with CPU-bound threads (the TUI's rendering, preview conversion, inference,
encoders). Its tick is mostly short serial I/O, and each I/O call gives the GIL away; with Python's default
5 ms switch interval it then waits up to 5 ms to get it back, a dozen times a tick (the convoy effect), and a
30 Hz loop misses deadlines whenever the UI is busy. While a loop runs the interval is therefore short; it is
put back when the last loop ends.

The garbage collector is the other stall: a full collection walks every object of the process (the UI, MuJoCo,
torch...) with every thread stopped, which took 350 ms with the TUI up. When a loop starts, what exists by then
(imported modules, the app, the robot) is frozen out of collection and young collections run less often, so the
collections that remain only walk what was created since.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

SWITCH_INTERVAL_S = 0.0005  # how long a thread may hold the GIL while the control loop waits for it
MIN_FAILED_TICKS = 3  # consecutive failed ticks before a persisting transient error stops the loop
GC_THRESHOLDS = (20_000, 20, 20)  # allocations before a young collection (Python's default: 700, 10, 10)


@dataclass(frozen=True)
class LoopStats:
    fps: float  # target rate
    ticks: int
    achieved_hz: float  # over the stats window
    period_mean_ms: float
    period_p99_ms: float
    period_max_ms: float
    jitter_ms: float  # standard deviation of the period
    work_mean_ms: float
    work_p99_ms: float
    overruns: int  # ticks whose work finished after the next deadline
    failed_ticks: int = 0  # ticks skipped because of a transient error (noisy bus), never fatal alone


class _RealtimeTuning:
    """The interpreter settings a running loop needs, held while any loop runs (reference counted)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loops = 0
        self._saved: tuple[float, tuple[int, int, int]] | None = None

    def acquire(self) -> None:
        with self._lock:
            self._loops += 1
            if self._loops == 1:
                self._saved = (sys.getswitchinterval(), gc.get_threshold())
                sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
                gc.freeze()
                gc.set_threshold(*GC_THRESHOLDS)

    def release(self) -> None:
        with self._lock:
            self._loops -= 1
            if self._loops == 0 and self._saved is not None:
                interval, thresholds = self._saved
                sys.setswitchinterval(interval)
                gc.set_threshold(*thresholds)
                gc.unfreeze()  # what was kept alive for the run can be collected again


_tuning = _RealtimeTuning()


class ControlLoop:
    """Calls `step(tick_index)` at `fps` until stopped or until `step` raises.

    An exception in `step` stops the loop, is kept in `.error` and handed to `on_error` (from the loop thread),
    so the owner can bring the robot to a safe state.
    """

    def __init__(
        self,
        fps: float,
        step: Callable[[int], None],
        *,
        name: str = "control-loop",
        on_error: Callable[[BaseException], None] | None = None,
        window: int = 1000,
        transient: tuple[type[BaseException], ...] = (),
        grace_s: float = 1.0,
    ) -> None:
        if fps <= 0:
            raise ValueError(f"control loop rate must be positive, got {fps}")
        self.fps = fps
        self.period = 1.0 / fps
        self._step = step
        self._name = name
        self._on_error = on_error
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._periods: deque[float] = deque(maxlen=window)
        self._works: deque[float] = deque(maxlen=window)
        self._ticks = 0
        self._overruns = 0
        self._transient = transient
        self._grace_s = grace_s
        self._failed = 0
        self._failing_since: float | None = None
        self._failed_in_a_row = 0
        self.last_transient: BaseException | None = None
        self.error: BaseException | None = None

    @property
    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.is_running:
            return
        _tuning.acquire()
        self._stop.clear()
        self.error = None
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("%s did not stop within %.1f s (a step is blocked)", self._name, timeout)
        self._thread = None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the loop ends by itself (error or stop); True if it ended."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def _run(self) -> None:
        try:
            self._ticking()
        finally:
            _tuning.release()

    def _ticking(self) -> None:
        period = self.period
        start = time.perf_counter()
        k = 0  # index of the deadline we are aiming for
        last_tick: float | None = None
        while not self._stop.is_set():
            tick_start = time.perf_counter()
            try:
                self._step(self._ticks)
                self._failing_since = None
                self._failed_in_a_row = 0
            except self._transient as e:
                self._failed += 1
                self._failed_in_a_row += 1
                self.last_transient = e
                if self._failing_since is None:
                    self._failing_since = tick_start
                if tick_start - self._failing_since > self._grace_s and self._failed_in_a_row >= MIN_FAILED_TICKS:
                    self._fail(e)
                    return
                log.debug("%s: tick %d skipped: %s", self._name, self._ticks, e)
            except BaseException as e:  # the owner decides what a failed tick means
                self._fail(e)
                return
            done = time.perf_counter()
            with self._lock:
                self._ticks += 1
                self._works.append(done - tick_start)
                if last_tick is not None:
                    self._periods.append(tick_start - last_tick)
            last_tick = tick_start
            k += 1
            deadline = start + k * period
            if done > deadline:
                with self._lock:
                    self._overruns += 1
                # Skip the deadlines we already missed rather than bursting through them.
                k = int((done - start) / period) + 1
                deadline = start + k * period
            remaining = deadline - time.perf_counter()
            if remaining > 0:
                self._stop.wait(remaining)

    def _fail(self, error: BaseException) -> None:
        self.error = error
        log.error("%s stopped: %s", self._name, error)
        if self._on_error is not None:
            try:
                self._on_error(error)
            except Exception:
                log.exception("error handler of %s failed", self._name)

    def stats(self) -> LoopStats:
        with self._lock:
            periods = np.fromiter(self._periods, dtype=np.float64)
            works = np.fromiter(self._works, dtype=np.float64)
            ticks, overruns, failed = self._ticks, self._overruns, self._failed
        if periods.size:
            mean = float(periods.mean())
            p99, pmax, jitter = float(np.percentile(periods, 99)), float(periods.max()), float(periods.std())
            achieved = 1.0 / mean if mean > 0 else 0.0
        else:
            mean = p99 = pmax = jitter = achieved = 0.0
        wmean = float(works.mean()) if works.size else 0.0
        wp99 = float(np.percentile(works, 99)) if works.size else 0.0
        return LoopStats(
            fps=self.fps,
            ticks=ticks,
            achieved_hz=achieved,
            period_mean_ms=mean * 1e3,
            period_p99_ms=p99 * 1e3,
            period_max_ms=pmax * 1e3,
            jitter_ms=jitter * 1e3,
            work_mean_ms=wmean * 1e3,
            work_p99_ms=wp99 * 1e3,
            overruns=overruns,
            failed_ticks=failed,
        )
