"""Recording bench: the whole `robotui record` path on the virtual SO-101 (emulated servos, MuJoCo physics,
two rendered cameras at their default 320x240, streaming video encoders, dataset writer) at 30 Hz.

Reports what decides whether a recording is usable: the control loop's achieved rate and period spread,
overruns, stale and dropped camera frames, the process's CPU use, each episode's save latency and the
encoders' worst queue depth. CPU includes the simulator (physics, rendering, servo emulation), which a real
arm does not cost, so it is an upper bound for hardware. Prints one JSON object; runs in under 2 minutes.

    python bench/record_bench.py [--quick] [--seconds N] [--vcodec libsvtav1|libx264] [--episode-time S]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")

from engine.profile import sim_profile
from engine.recorder import RecordSettings
from engine.session import Session

SAMPLE_S = 0.1


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bench(seconds: float, episode_time: float, reset_time: float, vcodec: str) -> dict[str, Any]:
    episodes = max(1, math.ceil(seconds / episode_time))
    settings = RecordSettings(episodes, episode_time, reset_time, "pick the cube")
    profile = sim_profile()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="record-bench-") as tmp, Session(profile) as session:
        session.connect()
        cpu0, wall0 = _cpu_s(), time.perf_counter()
        recorder = session.start_recording(settings, Path(tmp) / "ds", vcodec=vcodec)
        max_queue = 0
        queue_cap: int | None = None
        worst_p99 = worst_max = 0.0
        while not recorder.wait(SAMPLE_S):
            snap = recorder.snapshot()
            max_queue = max([max_queue, *(c.max_depth for c in snap.cameras)])
            queue_cap = max([queue_cap or 0, *(c.queue_cap for c in snap.cameras)]) or queue_cap
            if snap.loop is not None and snap.loop.ticks > 30:
                worst_p99 = max(worst_p99, snap.loop.period_p99_ms)
                worst_max = max(worst_max, snap.loop.period_max_ms)
        session.stop_recording()
        wall = time.perf_counter() - wall0
        cpu = _cpu_s() - cpu0
        snap = recorder.snapshot()
        loop = snap.loop
        assert loop is not None
        frames = sum(e.length for e in snap.saved)
    return {
        "bench": "record",
        "vcodec": vcodec,
        "cameras": {name: f"{c['width']}x{c['height']}" for name, c in profile.cameras.items()},
        "fps": profile.record_fps,
        "episodes": len(snap.saved),
        "episode_time_s": episode_time,
        "reset_time_s": reset_time,
        "frames": frames,
        "wall_s": round(wall, 2),
        "loop": {
            "achieved_hz": round(loop.achieved_hz, 2),
            "period_mean_ms": round(loop.period_mean_ms, 2),
            "period_p99_ms": round(loop.period_p99_ms, 2),
            "period_max_ms": round(loop.period_max_ms, 2),
            "worst_window_p99_ms": round(max(worst_p99, loop.period_p99_ms), 2),
            "worst_period_max_ms": round(max(worst_max, loop.period_max_ms), 2),
            "overruns": loop.overruns,
            "ticks": loop.ticks,
            "note": "mean/p99/max over the last 1000 periods; worst_* over every 0.1 s sample of the run",
        },
        "stale_frames": snap.stale_frames,
        "dropped_frames": snap.dropped_frames,
        "cpu": {
            "process_cpu_s": round(cpu, 2),
            "cores_used": round(cpu / wall, 2),
            "note": "user+sys of the whole process, simulator included",
        },
        "save_latency_s": [round(e.save_latency_s, 3) for e in snap.saved],
        "save_latency_max_s": round(max((e.save_latency_s for e in snap.saved), default=0.0), 3),
        "encoder_max_queue_depth": max_queue,
        "encoder_queue_cap": queue_cap,
        "error": snap.error,
        "machine": {"cpus": os.cpu_count(), "loadavg_1m_before": round(load_before[0], 2)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about 15 s of recording (3 episodes of 5 s)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds of recording (default 60)")
    parser.add_argument("--episode-time", type=float, default=None, help="seconds per episode (default 20)")
    parser.add_argument("--reset-time", type=float, default=1.0, help="seconds between episodes (default 1)")
    parser.add_argument("--vcodec", default="libsvtav1", help="video codec (default libsvtav1)")
    args = parser.parse_args(argv)
    seconds = args.seconds or (15.0 if args.quick else 60.0)
    episode_time = args.episode_time or (5.0 if args.quick else 20.0)
    result = bench(seconds, episode_time, args.reset_time, args.vcodec)
    print(json.dumps(result, indent=2))
    return 1 if result["error"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
