"""Teleop bench: leader → follower at 60 Hz over the emulated Feetech buses of the virtual SO-101 (the scripted
demonstrator moves the leader; MuJoCo moves the follower), through the real drivers and `engine.teleop`.

Reports the control loop's achieved rate and period spread, and the wire round trips that bound it: every
`sync_read` of Present_Position (instruction out, six status packets back) and every `sync_write` of
Goal_Position (no reply), timed per call on each arm, plus how closely the follower tracked the leader.
Prints one JSON object; runs in under 2 minutes (`--quick`: 8 s).

    python bench/teleop_bench.py [--quick] [--seconds N] [--fps F]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")

from engine.profile import sim_profile
from engine.session import Session


def _timed(fn: Callable[..., Any], samples: list[float]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            samples.append(time.perf_counter() - t0)

    return wrapper


def _ms(samples: list[float]) -> dict[str, float]:
    a = np.array(samples) * 1e3
    if not a.size:
        return {}
    return {"n": int(a.size), "mean": round(float(a.mean()), 3), "p50": round(float(np.percentile(a, 50)), 3),
            "p99": round(float(np.percentile(a, 99)), 3), "max": round(float(a.max()), 3)}


def bench(seconds: float, fps: int) -> dict[str, Any]:
    profile = sim_profile()
    load_before = os.getloadavg()
    with Session(profile) as session:
        session.connect()
        assert session.sim is not None and session.robot is not None and session.leader is not None
        timings: dict[str, list[float]] = {k: [] for k in ("follower_read", "follower_write", "leader_read")}
        robot_bus, leader_bus = session.robot.bus, session.leader.bus
        robot_bus.sync_read = _timed(robot_bus.sync_read, timings["follower_read"])  # type: ignore[method-assign]
        robot_bus.sync_write = _timed(robot_bus.sync_write, timings["follower_write"])  # type: ignore[method-assign]
        leader_bus.sync_read = _timed(leader_bus.sync_read, timings["leader_read"])  # type: ignore[method-assign]
        session.sim.start_demo()
        teleop = session.start_teleop(fps=fps)
        errors: list[float] = []
        t_end = time.perf_counter() + seconds
        while time.perf_counter() < t_end:
            time.sleep(0.25)
            snap = teleop.snapshot()
            errors.extend(abs(r.follower - r.leader) for r in snap.rows if r.leader is not None)
        snap = teleop.snapshot()
        loop = snap.loop
        assert loop is not None
        session.stop_teleop()
    return {
        "bench": "teleop",
        "fps": fps,
        "seconds": seconds,
        "loop": {
            "achieved_hz": round(loop.achieved_hz, 2),
            "period_mean_ms": round(loop.period_mean_ms, 2),
            "period_p99_ms": round(loop.period_p99_ms, 2),
            "period_max_ms": round(loop.period_max_ms, 2),
            "work_mean_ms": round(loop.work_mean_ms, 2),
            "work_p99_ms": round(loop.work_p99_ms, 2),
            "overruns": loop.overruns,
            "failed_ticks": loop.failed_ticks,
            "ticks": loop.ticks,
        },
        "sync_read_round_trip_ms": {"follower": _ms(timings["follower_read"]), "leader": _ms(timings["leader_read"])},
        "sync_write_ms": _ms(timings["follower_write"]),
        "tracking_error_deg": {"mean": round(float(np.mean(errors)), 2) if errors else None,
                               "p99": round(float(np.percentile(errors, 99)), 2) if errors else None},
        "bus": snap.bus.line(),
        "error": snap.error,
        "machine": {"cpus": os.cpu_count(), "loadavg_1m_before": round(load_before[0], 2)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 s instead of 60 s")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--fps", type=int, default=60)
    args = parser.parse_args(argv)
    result = bench(args.seconds or (8.0 if args.quick else 60.0), args.fps)
    print(json.dumps(result, indent=2))
    return 1 if result["error"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
