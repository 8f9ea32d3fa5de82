"""A tiny dataset recorded from the virtual robot, shared by the trainer, training-data and `robotui train` tests.

`robotui record --sim` runs the scripted demonstrator on the MuJoCo SO-101 with two small cameras; it is
recorded once per test session (in a subprocess with its own HF/XDG dirs, so nothing leaks into the user's or
the test's) and reused read-only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
CAMERA = {"type": "sim", "width": 32, "height": 24, "fps": 30}
EPISODES, EPISODE_S, FPS = 2, 1.0, 30
# A tiny ACT for a few seconds of CPU training: 1 layer everywhere, 32-wide, chunks of 10, no ImageNet weights.
TINY_ACT = ["dim_model=32", "n_heads=2", "dim_feedforward=64", "n_encoder_layers=1", "n_decoder_layers=1",
            "n_vae_encoder_layers=1", "latent_dim=8", "chunk_size=10", "n_action_steps=10",
            "pretrained_backbone_weights=none"]


def tiny_act_sets() -> list[str]:
    return [arg for s in TINY_ACT for arg in ("--set", s)]


def sim_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The recorded dataset's root (recorded on first use in this session)."""
    base = tmp_path_factory.getbasetemp()
    root = base / "sim-train-dataset" / "ds"
    if (root / "meta" / "stats.json").is_file():
        return root
    home = base / "sim-train-dataset" / "home"
    (home / "run").mkdir(parents=True, exist_ok=True, mode=0o700)
    env = {**os.environ, "HF_HOME": str(home / "hf"), "HF_LEROBOT_HOME": str(home / "hf" / "lerobot"),
           "XDG_CONFIG_HOME": str(home / "config"), "XDG_DATA_HOME": str(home / "data"),
           "XDG_CACHE_HOME": str(home / "cache"), "XDG_RUNTIME_DIR": str(home / "run"),
           "HF_HUB_OFFLINE": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    env.pop("HF_LEROBOT_CALIBRATION", None)
    cameras = json.dumps({"front": CAMERA, "wrist": CAMERA})
    cmd = [sys.executable, "-m", "robotui", "record", "--sim", "--episodes", str(EPISODES), "--episode-time",
           str(EPISODE_S), "--reset-time", "0.2", "--task", "pick the cube", "--vcodec", "libx264",
           "--dataset-root", str(root), "--cameras", cameras]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root
