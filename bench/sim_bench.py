"""Sim bench: physics rate and CPU share, render cost per camera and resolution, demonstrator throughput.

Prints one JSON object. `--quick` shortens every phase (about 15 s instead of about a minute).

    MUJOCO_GL=egl python bench/sim_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import mujoco

from drivers.sim.camera import DEFAULT_FPS, DEFAULT_HEIGHT, DEFAULT_WIDTH
from drivers.sim.demonstrator import Demonstrator, run_episode
from drivers.sim.scene import CAMERA_NAMES
from drivers.sim.virtual_robot import VirtualSO101
from drivers.sim.world import SimWorld

RESOLUTIONS = ((160, 120), (256, 192), (320, 240), (640, 480))


def cpu_share(fn: Any, seconds: float) -> tuple[Any, float]:
    """Run fn(seconds) and return (its result, process CPU seconds per wall second meanwhile)."""
    c0, t0 = time.process_time(), time.perf_counter()
    result = fn(seconds)
    return result, (time.process_time() - c0) / (time.perf_counter() - t0)


def bench_raw_physics(seconds: float) -> dict[str, float]:
    """Synchronous stepping with the demonstrator holding the cube: the ceiling, no pacing."""
    world = SimWorld(0)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        world.step(100)
        n += 100
    return {"steps_per_s": round(n / (time.perf_counter() - t0))}


def bench_realtime_runner(seconds: float) -> dict[str, float]:
    """The physics thread coupled to the emulated follower, idle otherwise."""
    with VirtualSO101(seed=0) as sim:
        time.sleep(0.3)
        s0 = sim.runner.stats.steps
        b0 = sim.runner.stats.busy_s
        (_, share) = cpu_share(time.sleep, seconds)
        st = sim.runner.stats
        return {
            "target_steps_per_s": round(1 / sim.world.model.opt.timestep),
            "steps_per_s": round((st.steps - s0) / seconds, 1),
            "tick_hz": round(1 / sim.runner.period),
            "runner_busy_share": round((st.busy_s - b0) / seconds, 4),
            "process_cpu_share": round(share, 4),
            "overruns": st.overruns,
            "dropped_s": round(st.dropped_s, 4),
        }


def bench_render_cost(frames: int) -> list[dict[str, Any]]:
    """Synchronous renders per camera and resolution: wall and CPU ms per frame (llvmpipe may use threads)."""
    world = SimWorld(0)
    out = []
    for width, height in RESOLUTIONS:
        renderer = mujoco.Renderer(world.model, height, width)
        for cam in CAMERA_NAMES:
            renderer.update_scene(world.data, camera=cam)
            renderer.render()
            c0, t0 = time.process_time(), time.perf_counter()
            for _ in range(frames):
                renderer.update_scene(world.data, camera=cam)
                renderer.render()
            wall = (time.perf_counter() - t0) / frames
            cpu = (time.process_time() - c0) / frames
            out.append(
                {
                    "camera": cam,
                    "resolution": f"{width}x{height}",
                    "wall_ms": round(wall * 1000, 2),
                    "cpu_ms": round(cpu * 1000, 2),
                    "max_fps": round(1 / wall, 1),
                }
            )
        renderer.close()
    return out


def bench_cameras_live(seconds: float) -> dict[str, Any]:
    """Both SimCameras at the default resolution and fps, with the physics running: what recording costs."""
    with VirtualSO101(seed=0) as sim:
        for cam in sim.cameras.values():
            cam.connect()
        time.sleep(0.5)
        counts = {n: c.stats.frames for n, c in sim.cameras.items()}
        (_, share) = cpu_share(time.sleep, seconds)
        result = {
            "resolution": f"{DEFAULT_WIDTH}x{DEFAULT_HEIGHT}",
            "target_fps": DEFAULT_FPS,
            "fps": {n: round((c.stats.frames - counts[n]) / seconds, 1) for n, c in sim.cameras.items()},
            "process_cpu_share": round(share, 3),  # physics + both cameras, in cores
        }
        for cam in sim.cameras.values():
            cam.disconnect()
        return result


def bench_demonstrator(episodes: int) -> dict[str, float]:
    world = SimWorld(0)
    demo = Demonstrator(world)
    t0 = time.perf_counter()
    ok = sum(run_episode(world, demo, seed=s) for s in range(episodes))
    elapsed = time.perf_counter() - t0
    return {
        "episodes": episodes,
        "success_rate": ok / episodes,
        "s_per_episode": round(elapsed / episodes, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short phases (about 15 s in all)")
    args = parser.parse_args(argv)
    q = args.quick
    t0 = time.perf_counter()
    result: dict[str, Any] = {
        "physics_raw": bench_raw_physics(1.0 if q else 3.0),
        "physics_realtime": bench_realtime_runner(2.0 if q else 10.0),
        "render": bench_render_cost(5 if q else 30),
        "cameras_live": bench_cameras_live(2.0 if q else 10.0),
        "demonstrator": bench_demonstrator(5 if q else 20),
    }
    result["bench_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
