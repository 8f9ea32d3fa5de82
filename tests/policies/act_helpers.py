"""Tiny ACT configs, statistics and observations for the policy tests (seconds, not minutes, on 2 cores)."""

from __future__ import annotations

import numpy as np
import torch

from policies.act import ACTConfig, ACTPolicy
from policies.base import PolicyFeature

STATE_DIM = ACTION_DIM = 6
CAMERAS = {"observation.images.front": (3, 48, 64), "observation.images.wrist": (3, 32, 48)}
TINY = {"dim_model": 32, "n_heads": 4, "dim_feedforward": 64, "n_encoder_layers": 1, "n_decoder_layers": 1,
        "n_vae_encoder_layers": 1, "latent_dim": 8, "chunk_size": 10, "n_action_steps": 10,
        "pretrained_backbone_weights": None, "device": "cpu"}


def tiny_config(cameras: dict[str, tuple[int, int, int]] | None = None, state: bool = True, **overrides) -> ACTConfig:
    inputs = {"observation.state": PolicyFeature("STATE", (STATE_DIM,))} if state else {}
    inputs |= {k: PolicyFeature("VISUAL", shape) for k, shape in (CAMERAS if cameras is None else cameras).items()}
    return ACTConfig(input_features=inputs, output_features={"action": PolicyFeature("ACTION", (ACTION_DIM,))},
                     **{**TINY, **overrides})


def tiny_stats() -> dict[str, dict[str, np.ndarray]]:
    vec = {"mean": np.linspace(-30, 30, STATE_DIM), "std": np.linspace(5, 20, STATE_DIM),
           "min": np.full(STATE_DIM, -90.0), "max": np.full(STATE_DIM, 90.0)}
    stats = {"observation.state": vec, "action": {k: v + 1 for k, v in vec.items()},
             "timestamp": {"mean": np.array([2.0]), "std": np.array([1.0])}}
    for key in CAMERAS:
        stats[key] = {"mean": np.array([0.485, 0.456, 0.406]).reshape(3, 1, 1),
                      "std": np.array([0.229, 0.224, 0.225]).reshape(3, 1, 1)}
    return stats


def observation(config: ACTConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """An unbatched robot observation: float32 joint state, uint8 HWC RGB frames."""
    rng = np.random.default_rng(seed)
    obs = {}
    for key, f in config.input_features.items():
        if f.type == "VISUAL":
            obs[key] = rng.integers(0, 256, (f.shape[1], f.shape[2], 3), dtype=np.uint8)
        else:
            obs[key] = rng.uniform(-60, 60, f.shape).astype(np.float32)
    return obs


def tiny_policy(seed: int = 0, **overrides) -> ACTPolicy:
    torch.manual_seed(seed)
    return ACTPolicy(tiny_config(**overrides), tiny_stats()).eval()
