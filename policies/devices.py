"""Torch device names as LeRobot's configs spell them ("cpu", "cuda", "cuda:1", "mps"), checked up front so a
policy that cannot run here says so before it is built, not halfway through the first inference."""

from __future__ import annotations

import re

import torch

_DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")


def best_device() -> str:
    """What LeRobot picks when a config names no device: cuda, then mps, then cpu."""
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_device(name: str | None) -> torch.device:
    """The torch device for `name` (None = the best one here); a clear ValueError when it does not exist."""
    if name is None or name == "auto":
        return torch.device(best_device())
    if not isinstance(name, str) or not _DEVICE.match(name):
        raise ValueError(f"unknown device {name!r}: use cpu, cuda, cuda:N or mps")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} is not available: torch sees no CUDA GPU here "
                             "(use device='cpu')")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r} does not exist: torch sees {torch.cuda.device_count()} GPU(s)")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' is not available here (it needs Apple silicon): use device='cpu'")
    return torch.device(name)
