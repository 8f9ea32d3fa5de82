"""The control loop: ticks in order, counts overruns instead of bursting, stops on errors."""

import threading
import time

import pytest

from engine.control_loop import ControlLoop


def test_ticks_are_sequential_and_counted() -> None:
    seen: list[int] = []
    done = threading.Event()

    def step(i: int) -> None:
        seen.append(i)
        if len(seen) == 10:
            done.set()

    loop = ControlLoop(200, step)
    loop.start()
    assert done.wait(5)
    loop.stop()
    assert seen[:10] == list(range(10))
    stats = loop.stats()
    assert stats.ticks >= 10
    assert stats.period_mean_ms > 0
    assert stats.period_p99_ms >= stats.period_mean_ms * 0.5


def test_slow_step_counts_overruns_and_skips_missed_deadlines() -> None:
    """After a stall of ~10 periods the loop skips the missed deadlines instead of bursting through them.

    Bursting would keep the tick count on the time grid; skipping leaves it ~9 ticks short. Machine load can
    only lower the count further, so the bound cannot flake.
    """
    done = threading.Event()

    def step(i: int) -> None:
        if i == 2:
            time.sleep(0.1)  # 10 periods at 100 Hz
        if i == 20:
            done.set()

    loop = ControlLoop(100, step)
    t0 = time.perf_counter()
    loop.start()
    assert done.wait(10)
    loop.stop()
    elapsed = time.perf_counter() - t0
    stats = loop.stats()
    assert stats.overruns >= 1
    assert stats.ticks <= elapsed * 100 - 5


def test_error_in_step_stops_loop_and_reaches_handler() -> None:
    errors: list[BaseException] = []

    def step(i: int) -> None:
        if i == 3:
            raise RuntimeError("motor 'elbow_flex' stopped answering")

    loop = ControlLoop(200, step, on_error=errors.append)
    loop.start()
    assert loop.wait(5)
    assert isinstance(loop.error, RuntimeError)
    assert errors and "elbow_flex" in str(errors[0])
    assert not loop.is_running


def test_rejects_non_positive_rate() -> None:
    with pytest.raises(ValueError, match="positive"):
        ControlLoop(0, lambda i: None)


def test_transient_errors_skip_ticks_and_are_counted() -> None:
    """A lost servo reply costs one tick, not the run."""
    done = threading.Event()

    def step(i: int) -> None:
        if i in (3, 4, 9):
            raise ConnectionError("no reply from motor 'gripper'")
        if i == 20:
            done.set()

    loop = ControlLoop(200, step, transient=(ConnectionError,))
    loop.start()
    assert done.wait(10)
    loop.stop()
    assert loop.error is None
    assert loop.stats().failed_ticks == 3


def test_transient_errors_that_persist_beyond_the_grace_stop_the_loop() -> None:
    """A motor that stopped answering: every tick fails, and after the grace period the loop stops with the
    motor's error so the owner can release the arm."""
    errors: list[BaseException] = []

    def step(i: int) -> None:
        if i >= 2:
            raise ConnectionError("no reply from motor 'elbow_flex' (id 3)")

    loop = ControlLoop(100, step, on_error=errors.append, transient=(ConnectionError,), grace_s=0.2)
    loop.start()
    assert loop.wait(10)
    assert isinstance(loop.error, ConnectionError) and "elbow_flex" in str(errors[0])
    assert loop.stats().failed_ticks >= 10  # it kept trying for the grace period first


def test_interpreter_tuning_is_held_while_a_loop_runs_and_given_back() -> None:
    import gc
    import sys

    before = (sys.getswitchinterval(), gc.get_threshold())
    first, second = ControlLoop(100, lambda i: None), ControlLoop(100, lambda i: None)
    first.start()
    second.start()
    assert sys.getswitchinterval() <= 0.0005 and gc.get_threshold()[0] > before[1][0]
    first.stop()
    assert sys.getswitchinterval() <= 0.0005  # the other loop still runs
    second.stop()
    assert (sys.getswitchinterval(), gc.get_threshold()) == before
