"""Real-time chunking (RTC) guidance for flow-matching policies, as LeRobot 0.4.4's `RTCProcessor` does it.

While a chunk executes, the next one is inferred from a newer observation. Its first actions overlap the
previous chunk's leftover (the actions still planned for the same ticks); RTC (Black et al., "Real-Time
Execution of Action Chunking Flow Policies", 2025) treats the new chunk as an inpainting of that leftover so
the seam does not jump. At each denoising step (time t from 1 = noise to 0 = actions, velocity v):

    x̂  = x_t - t · v                                  the clean chunk the step predicts
    e  = W ⊙ (leftover - x̂)                            soft-masked error on the overlap
    v' = v - g(t) · e                                  steer the velocity towards the leftover

W (per action row) is 1 for the first `inference_delay` rows (executed while this inference runs: they must
equal the leftover), then decays to 0 at `execution_horizon` (LINEAR or EXP schedule; ZEROS keeps only the
delay rows, ONES weighs every row up to the horizon), and 0 after. g(t) = min(c · (c'² + τ²)/c'², g_max) with
τ = 1 - t, c' = 1 - τ, c = c'/τ: the paper's guidance weight, clipped at `max_guidance_weight`.

The paper's guidance multiplies e by the Jacobian of x̂ (a vector-Jacobian product through the network).
LeRobot 0.4.4 computes that product after detaching v from x_t, so its Jacobian is the identity and the
correction is e itself; this module does the same without autograd, which keeps robotui's chunks equal to
LeRobot's and costs no backward pass. Everything happens in the policy's normalized action space, with the
leftover zero-padded to the chunk's length and `max_action_dim`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch

SCHEDULES = ("ZEROS", "ONES", "LINEAR", "EXP")


@dataclass
class RTCConfig:
    """LeRobot's `rtc_config` block of config.json (`debug*` are LeRobot's tracing switches, kept for the
    round trip)."""

    enabled: bool = False
    prefix_attention_schedule: str = "LINEAR"
    max_guidance_weight: float = 10.0
    execution_horizon: int = 10
    debug: bool = False
    debug_maxlen: int = 100

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ValueError(f"rtc_config.enabled must be true or false, got {self.enabled!r}")
        if self.prefix_attention_schedule not in SCHEDULES:
            raise ValueError(f"rtc_config.prefix_attention_schedule must be one of {SCHEDULES}, "
                             f"got {self.prefix_attention_schedule!r}")
        if isinstance(self.max_guidance_weight, bool) or not isinstance(self.max_guidance_weight, int | float) \
                or self.max_guidance_weight <= 0:
            raise ValueError(f"rtc_config.max_guidance_weight must be a positive number, got {self.max_guidance_weight!r}")
        if isinstance(self.execution_horizon, bool) or not isinstance(self.execution_horizon, int) \
                or self.execution_horizon < 0:
            raise ValueError(f"rtc_config.execution_horizon must be a non-negative integer, got {self.execution_horizon!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RTCConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown rtc_config field(s) {', '.join(unknown)}; known: {', '.join(cls.__dataclass_fields__)}")
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def prefix_weights(schedule: str, delay: int, horizon: int, total: int) -> torch.Tensor:
    """W over the `total` rows of a chunk: 1 on the first `delay` rows, decaying to 0 at `horizon`."""
    start = min(delay, horizon)
    if schedule == "ZEROS":
        weights = torch.zeros(total)
        weights[:start] = 1.0
        return weights
    if schedule == "ONES":
        weights = torch.ones(total)
        weights[horizon:] = 0.0
        return weights
    steps = total - max(total - horizon, 0) - start
    ramp = torch.linspace(1, 0, steps + 2)[1:-1] if horizon > start and steps > 0 else torch.zeros(0)
    if schedule == "EXP":
        ramp = ramp * torch.expm1(ramp).div(math.e - 1)
    return torch.cat([torch.ones(min(start, total)), ramp, torch.zeros(max(total - horizon, 0))])


def guidance_weight(time: float, max_weight: float) -> torch.Tensor:
    """g(t) in float32, as LeRobot computes it (t = 1 gives the cap)."""
    tau = torch.as_tensor(1 - time)
    cap = torch.as_tensor(max_weight)
    squared = (1 - tau) ** 2
    inv_r2 = (squared + tau**2) / squared
    c = torch.nan_to_num((1 - tau) / tau, posinf=max_weight)
    return torch.minimum(torch.nan_to_num(c * inv_r2, posinf=max_weight), cap)


class PrefixGuidance:
    """The guided velocity for one chunk: built from the normalized leftover [B, P, A] (P, A at most the
    chunk's length and max_action_dim), then called at every denoising step."""

    def __init__(self, config: RTCConfig, leftover: torch.Tensor, delay: int, chunk_size: int,
                 max_action_dim: int) -> None:
        batch, length, dim = leftover.shape
        horizon = min(config.execution_horizon, length)
        self.target = torch.zeros(batch, chunk_size, max_action_dim, dtype=leftover.dtype, device=leftover.device)
        self.target[:, :length, :dim] = leftover
        self.weights = prefix_weights(config.prefix_attention_schedule, delay, horizon, chunk_size).to(
            leftover.device)[None, :, None]
        self.max_weight = config.max_guidance_weight

    def __call__(self, x_t: torch.Tensor, v_t: torch.Tensor, time: float) -> torch.Tensor:
        predicted = x_t - time * v_t
        error = (self.target - predicted) * self.weights
        return v_t - guidance_weight(time, self.max_weight).to(v_t.device) * error
