"""Recording bench: the whole `robotui record` path on the virtual SO-101 (emulated servos, MuJoCo physics,
two rendered cameras at their default 320x240, streaming video encoders, dataset writer) at 30 Hz.

Reports what decides whether a recording is usable: the control loop's achieved rate and period spread,
overruns, stale and dropped camera frames, the process's CPU use, each episode's save latency and the
encoders' worst queue depth. CPU includes the simulator (physics, rendering, servo emulation), which a real
arm does not cost, so it is an upper bound for hardware. Prints one JSON object; runs in under 2 minutes.

With `--tui` the same recording is started from the Record screen of the app (Textual, headless at 160×50)
with its live camera previews, and the JSON adds the frames per second each preview painted.

    python bench/record_bench.py [--quick] [--tui] [--seconds N] [--vcodec libsvtav1|libx264] [--episode-time S]
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
from engine.recorder import RecorderSnapshot, RecordSettings
from engine.session import Session

SAMPLE_S = 0.1


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Watch:
    """Worst figures seen while a recording runs (snapshots every 0.1 s)."""

    def __init__(self) -> None:
        self.max_queue = 0
        self.queue_cap: int | None = None
        self.worst_p99 = self.worst_max = 0.0

    def sample(self, snap: RecorderSnapshot) -> None:
        self.max_queue = max([self.max_queue, *(c.max_depth for c in snap.cameras)])
        self.queue_cap = max([self.queue_cap or 0, *(c.queue_cap for c in snap.cameras)]) or self.queue_cap
        if snap.loop is not None and snap.loop.ticks > 30:
            self.worst_p99 = max(self.worst_p99, snap.loop.period_p99_ms)
            self.worst_max = max(self.worst_max, snap.loop.period_max_ms)


def bench(seconds: float, episode_time: float, reset_time: float, vcodec: str) -> dict[str, Any]:
    episodes = max(1, math.ceil(seconds / episode_time))
    settings = RecordSettings(episodes, episode_time, reset_time, "pick the cube")
    profile = sim_profile()
    load_before = os.getloadavg()
    watch = _Watch()
    with tempfile.TemporaryDirectory(prefix="record-bench-") as tmp, Session(profile) as session:
        session.connect()
        cpu0, wall0 = _cpu_s(), time.perf_counter()
        recorder = session.start_recording(settings, Path(tmp) / "ds", vcodec=vcodec)
        while not recorder.wait(SAMPLE_S):
            watch.sample(recorder.snapshot())
        session.stop_recording()
        wall = time.perf_counter() - wall0
        cpu = _cpu_s() - cpu0
        snap = recorder.snapshot()
    return report(snap, watch, profile, wall, cpu, settings, vcodec, load_before)


def bench_tui(seconds: float, episode_time: float, reset_time: float, vcodec: str) -> dict[str, Any]:
    """The same recording started from the Record screen, previews painting meanwhile."""
    import asyncio

    from robotui.app import RobotuiApp
    from screens.record import RecordScreen
    from screens.widgets.camera_preview import CameraPreview
    from screens.widgets.record_form import field_id

    episodes = max(1, math.ceil(seconds / episode_time))
    settings = RecordSettings(episodes, episode_time, reset_time, "pick the cube")
    profile = sim_profile()
    load_before = os.getloadavg()
    watch = _Watch()

    async def run(tmp: Path) -> tuple[RecorderSnapshot, float, float, dict[str, Any]]:
        app = RobotuiApp(profile, hotkeys=False)
        async with app.run_test(size=(160, 50)) as pilot:
            await pilot.press("4")
            while not isinstance(app.screen, RecordScreen):
                await asyncio.sleep(0.05)
            screen = app.screen
            values = {"root": str(tmp / "ds"), "task": settings.task, "episodes": str(episodes),
                      "episode_time": str(episode_time), "reset_time": str(reset_time)}
            for name, value in values.items():
                screen.query_one(f"#{field_id(name)}").value = value  # type: ignore[attr-defined]
            screen.query_one(f"#{field_id('vcodec')}").value = vcodec  # type: ignore[attr-defined]
            cpu0, wall0 = _cpu_s(), time.perf_counter()
            await pilot.press("ctrl+s")
            while screen.recorder is None:
                await asyncio.sleep(0.05)
            recorder = screen.recorder
            first: tuple[float, dict[str, int]] | None = None  # (time, frames painted per preview)
            last: tuple[float, dict[str, int]] | None = None
            while not recorder.finished:
                await asyncio.sleep(SAMPLE_S)
                watch.sample(recorder.snapshot())
                previews = list(screen.query(CameraPreview))  # gone once the summary shows
                if previews and recorder.snapshot().frames > 30:
                    last = (time.perf_counter(), {p.label: p.frames_painted for p in previews})
                    first = first or last
            previews_fps = {}
            if first is not None and last is not None and last[0] > first[0]:
                previews_fps = {name: round((n - first[1][name]) / (last[0] - first[0]), 1)
                                for name, n in last[1].items()}
            wall, cpu = time.perf_counter() - wall0, _cpu_s() - cpu0
            snap = recorder.snapshot()
            await pilot.press("ctrl+q")
        return snap, wall, cpu, {"painted_fps_per_camera": previews_fps, "target_fps": RecordScreen.preview_fps,
                                 "terminal": "160x50 headless"}

    with tempfile.TemporaryDirectory(prefix="record-bench-tui-") as tmp:
        snap, wall, cpu, previews = asyncio.run(run(Path(tmp)))
    result = report(snap, watch, profile, wall, cpu, settings, vcodec, load_before)
    result["bench"] = "record-tui"
    result["previews"] = previews
    return result


def report(snap: RecorderSnapshot, watch: _Watch, profile: Any, wall: float, cpu: float, settings: RecordSettings,
           vcodec: str, load_before: tuple[float, float, float]) -> dict[str, Any]:
    loop = snap.loop
    assert loop is not None
    frames = sum(e.length for e in snap.saved)
    episode_time, reset_time = settings.episode_time_s, settings.reset_time_s
    worst_p99, worst_max, max_queue, queue_cap = watch.worst_p99, watch.worst_max, watch.max_queue, watch.queue_cap
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
    parser.add_argument("--tui", action="store_true", help="start the recording from the app's Record screen")
    args = parser.parse_args(argv)
    seconds = args.seconds or (15.0 if args.quick else 60.0)
    episode_time = args.episode_time or (5.0 if args.quick else 20.0)
    result = (bench_tui if args.tui else bench)(seconds, episode_time, args.reset_time, args.vcodec)
    print(json.dumps(result, indent=2))
    return 1 if result["error"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
