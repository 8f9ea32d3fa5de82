"""A tiny but real ACT checkpoint for tests of what runs policies (rollout engine, screen, CLI, benches):
LeRobot's layout and keys, small transformer, seeded weights, statistics centred on the simulator's pose."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from policies import save_pretrained
from policies.act import ACTConfig, ACTPolicy
from policies.base import PolicyFeature

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406]).reshape(3, 1, 1)
IMAGENET_STD = np.array([0.229, 0.224, 0.225]).reshape(3, 1, 1)


def tiny_act(
    *,
    state_dim: int = 6,
    cameras: Mapping[str, tuple[int, int]] | None = None,
    chunk_size: int = 10,
    n_action_steps: int | None = None,
    temporal_ensemble_coeff: float | None = None,
    seed: int = 0,
) -> ACTPolicy:
    cameras = {"front": (96, 128)} if cameras is None else cameras
    inputs = {"observation.state": PolicyFeature("STATE", (state_dim,))}
    for name, (h, w) in cameras.items():
        inputs[f"observation.images.{name}"] = PolicyFeature("VISUAL", (3, h, w))
    config = ACTConfig(
        input_features=inputs,
        output_features={"action": PolicyFeature("ACTION", (state_dim,))},
        chunk_size=chunk_size,
        n_action_steps=n_action_steps or (1 if temporal_ensemble_coeff is not None else chunk_size),
        temporal_ensemble_coeff=temporal_ensemble_coeff,
        dim_model=32,
        n_heads=2,
        dim_feedforward=64,
        n_encoder_layers=1,
        n_decoder_layers=1,
        n_vae_encoder_layers=1,
        latent_dim=8,
        pretrained_backbone_weights=None,
        device="cpu",
    )
    stats: dict[str, dict[str, np.ndarray]] = {
        "observation.state": {"mean": np.zeros(state_dim), "std": np.full(state_dim, 30.0)},
        "action": {"mean": np.zeros(state_dim), "std": np.full(state_dim, 5.0)},
    }
    for name in cameras:
        stats[f"observation.images.{name}"] = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD}
    torch.manual_seed(seed)
    policy = ACTPolicy(config, stats)
    policy.eval()
    return policy


def save_tiny_act(directory: Path, **kwargs: object) -> Path:
    """Write a tiny ACT as `directory/pretrained_model` and return that folder."""
    return save_pretrained(tiny_act(**kwargs), directory / "pretrained_model")  # type: ignore[arg-type]
