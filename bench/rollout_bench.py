"""Rollout bench: ACT inference latency (batch 1, LeRobot's default ACT size: ResNet-18, 4+1 transformer layers,
dim 512, chunk 100) on the CPU and on CUDA when there is one, and the control loop's period while that policy
drives the virtual SO-101 — once as it is, once slowed to `--slow-ms` per inference (what a VLA such as
SmolVLA costs on a laptop) with seam blending, to show that a slow model starves nothing but the queue.

A third rollout runs a real SmolVLA (LeRobot's architecture with the test suite's tiny SmolVLM backbone, two
cameras, real-time chunking on): its loop period is what matters, since the arm must not notice the model.
The full-size SmolVLA (450M parameters) takes seconds per chunk on a laptop CPU: use a GPU for it.

Weights are random (the figures do not depend on them); the statistics are centred on the simulator's pose.
Prints one JSON object; runs in under 2 minutes (`--quick`: shorter rollouts, fewer timed inferences).

    python bench/rollout_bench.py [--quick] [--seconds N] [--slow-ms MS] [--devices cpu cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")

from engine.profile import sim_profile
from engine.rollout import RolloutSettings
from engine.session import Session
from policies.act import ACTConfig, ACTPolicy
from policies.base import Observation, PolicyFeature

IMAGENET = ([[[0.485]], [[0.456]], [[0.406]]], [[[0.229]], [[0.224]], [[0.225]]])


def default_act(cameras: dict[str, tuple[int, int]], device: str) -> ACTPolicy:
    inputs = {"observation.state": PolicyFeature("STATE", (6,))}
    inputs.update({f"observation.images.{n}": PolicyFeature("VISUAL", (3, h, w)) for n, (h, w) in cameras.items()})
    config = ACTConfig(input_features=inputs, output_features={"action": PolicyFeature("ACTION", (6,))},
                       pretrained_backbone_weights=None, device=device)
    stats: dict[str, dict[str, Any]] = {
        "observation.state": {"mean": np.zeros(6), "std": np.full(6, 30.0)},
        "action": {"mean": np.zeros(6), "std": np.full(6, 2.0)},
    }
    for name in cameras:
        stats[f"observation.images.{name}"] = {"mean": np.array(IMAGENET[0]), "std": np.array(IMAGENET[1])}
    torch.manual_seed(0)
    return ACTPolicy(config, stats).eval()


def observation(cameras: dict[str, tuple[int, int]], rng: np.random.Generator) -> dict[str, Any]:
    obs: dict[str, Any] = {"observation.state": rng.normal(0, 10, 6).astype(np.float32)}
    for name, (h, w) in cameras.items():
        obs[f"observation.images.{name}"] = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    return obs


def _ms(samples: list[float]) -> dict[str, float]:
    a = np.array(samples) * 1e3
    return {"n": int(a.size), "mean": round(float(a.mean()), 1), "p50": round(float(np.percentile(a, 50)), 1),
            "p99": round(float(np.percentile(a, 99)), 1), "min": round(float(a.min()), 1)}


def inference_latency(device: str, cameras: dict[str, tuple[int, int]], runs: int) -> dict[str, Any]:
    policy = default_act(cameras, device)
    rng = np.random.default_rng(0)
    for _ in range(3):
        policy.predict_action_chunk(observation(cameras, rng))
    times = []
    for _ in range(runs):
        obs = observation(cameras, rng)
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        policy.predict_action_chunk(obs)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return {"device": device, "cameras": {n: f"{w}x{h}" for n, (h, w) in cameras.items()}, "ms": _ms(times)}


class Slowed:
    """A policy that takes at least `seconds` per chunk (a stand-in for a VLA's latency)."""

    def __init__(self, policy: ACTPolicy, seconds: float) -> None:
        self._policy, self._seconds = policy, seconds

    def __getattr__(self, name: str) -> Any:
        return getattr(self._policy, name)

    def predict_action_chunk(self, obs: Observation) -> np.ndarray:
        t0 = time.perf_counter()
        chunk = self._policy.predict_action_chunk(obs)
        time.sleep(max(0.0, self._seconds - (time.perf_counter() - t0)))
        return chunk


def rollout(seconds: float, slow_s: float | None, n_action_steps: int) -> dict[str, Any]:
    profile = sim_profile()
    cameras = {name: (int(c["height"]), int(c["width"])) for name, c in profile.cameras.items()}
    act = default_act(cameras, "cpu")
    act.config.n_action_steps = n_action_steps
    policy: Any = Slowed(act, slow_s) if slow_s else act
    blend = 5 if slow_s else 0
    name = f"ACT default size{f', slowed to {slow_s * 1000:.0f} ms' if slow_s else ''}"
    return run_rollout(profile, policy, name, seconds, blend)


def smolvla_rollout(seconds: float) -> dict[str, Any]:
    """A tiny-backbone SmolVLA (built like the test suite's golden checkpoints) with RTC, on cameras shaped as
    its config expects."""
    import tempfile
    from dataclasses import replace

    from policies import load_policy
    from tests.policies.smolvla.conftest import build_checkpoint

    base = sim_profile()
    cam = base.cameras["front"]
    profile = replace(base, cameras={"top": {**cam, "index_or_path": "front", "width": 80, "height": 48},
                                     "wrist": {**cam, "width": 64, "height": 64}})
    with tempfile.TemporaryDirectory() as tmp:
        policy = load_policy(build_checkpoint("cross_attn", Path(tmp) / "smolvla"), rtc=True, noise_seed=0)
        return run_rollout(profile, policy, "SmolVLA (tiny SmolVLM backbone, 10 flow steps, RTC on)", seconds, 3)


def run_rollout(profile: Any, policy: Any, name: str, seconds: float, blend: int) -> dict[str, Any]:
    n_action_steps = policy.n_action_steps
    with Session(profile) as session:
        session.connect()
        r = session.start_rollout(policy, RolloutSettings(task="pick", blend_ticks=blend))
        r.action()
        time.sleep(seconds)
        snap = r.snapshot()
        session.stop_rollout()
    loop = snap.loop
    assert loop is not None
    return {
        "policy": name,
        "n_action_steps": n_action_steps,
        "blend_ticks": blend,
        "seconds": seconds,
        "loop": {"achieved_hz": round(loop.achieved_hz, 2), "period_mean_ms": round(loop.period_mean_ms, 2),
                 "period_p99_ms": round(loop.period_p99_ms, 2), "period_max_ms": round(loop.period_max_ms, 2),
                 "overruns": loop.overruns, "ticks": loop.ticks},
        "inference_ms": {"mean": round(snap.inference.mean_ms, 1), "p99": round(snap.inference.p99_ms, 1),
                         "runs": snap.inference.inferences},
        "actions_dispatched": snap.actions_dispatched,
        "starved_ticks": snap.starved_ticks,
        "late_actions_dropped": snap.stale_actions,
        "error": snap.error,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per rollout (default 20)")
    parser.add_argument("--slow-ms", type=float, default=400.0, help="latency of the slowed policy (default 400)")
    parser.add_argument("--devices", nargs="*", default=None, help="default: cpu, and cuda when available")
    args = parser.parse_args(argv)
    seconds = args.seconds or (6.0 if args.quick else 20.0)
    runs = 5 if args.quick else 20
    devices = args.devices or ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    sim_cams = {"front": (240, 320), "wrist": (240, 320)}
    vga_cams = {"front": (480, 640), "wrist": (480, 640)}
    result = {
        "bench": "rollout",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "inference": [inference_latency(d, cams, runs) for d in devices for cams in (sim_cams, vga_cams)],
        "rollouts": [rollout(seconds, None, 100), rollout(seconds, args.slow_ms / 1000.0, 30),
                     smolvla_rollout(seconds)],
        "machine": {"cpus": os.cpu_count(), "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
    }
    print(json.dumps(result, indent=2))
    return 1 if any(r["error"] for r in result["rollouts"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
