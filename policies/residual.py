"""Residual policies: a small MLP from the robot state to an action correction, stacked on any base policy.

Checkpoint (`torch.save` of a dict, loaded with `weights_only=True`):

    state_dim: int, action_dim: int, hidden_dims: list[int],
    model_state_dict: ResidualMLP's state dict (net.0.weight, net.0.bias, ..., the last Linear's),
    optional: activation ("relu" default, "tanh", "gelu"), action_min / action_max ([action_dim] bounds)

Every action the wrapped policy emits becomes `clip(base_action + scale · residual(state), low, high)`, with
`state` the observation's `observation.state` in robot units and the correction in robot units too. One
correction per observation, so a chunk's rows all move by the same amount. The bounds are, in order: the
checkpoint's `action_min`/`action_max` (an explicit choice for this residual), else the base policy's action
`min`/`max` statistics (the range the base was trained on), else no clipping. Deterministic: no sampling, CPU
float32.
"""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from policies.base import ACTION_KEY, STATE_KEY, Observation, ObservationError, Policy, PolicyFeature
from policies.files import write_atomic

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}
REQUIRED_KEYS = ("state_dim", "action_dim", "hidden_dims", "model_state_dict")


class ResidualError(ValueError):
    """A residual checkpoint that cannot be used; the message says what is wrong."""


class ResidualMLP(nn.Module):
    """state [.., state_dim] -> correction [.., action_dim]: Linear (+ activation) per hidden width, then Linear."""

    def __init__(self, state_dim: int, action_dim: int, hidden_dims: Sequence[int], activation: str = "relu") -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ResidualError(f"unknown activation {activation!r}; use one of {', '.join(ACTIVATIONS)}")
        layers: list[nn.Module] = []
        widths = [state_dim, *hidden_dims]
        for fan_in, fan_out in itertools.pairwise(widths):
            layers += [nn.Linear(fan_in, fan_out), ACTIVATIONS[activation]()]
        layers.append(nn.Linear(widths[-1], action_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return self.net(state)


def save_residual(path: str | Path, model: ResidualMLP | Mapping[str, torch.Tensor], *, state_dim: int,
                  action_dim: int, hidden_dims: Sequence[int], activation: str = "relu",
                  action_min: Sequence[float] | None = None, action_max: Sequence[float] | None = None) -> Path:
    """Write a residual checkpoint (whole or not at all); `model` is the MLP or its state dict."""
    state_dict = model.state_dict() if isinstance(model, nn.Module) else dict(model)
    data: dict[str, Any] = {
        "state_dim": int(state_dim), "action_dim": int(action_dim), "hidden_dims": [int(h) for h in hidden_dims],
        "model_state_dict": {k: v.detach().to("cpu", torch.float32).clone() for k, v in state_dict.items()},
    }
    if activation != "relu":
        data["activation"] = activation
    for name, bound in (("action_min", action_min), ("action_max", action_max)):
        if bound is not None:
            data[name] = [float(b) for b in bound]
    _build(data, Path(path))  # refuse to write what could not be loaded
    buffer = io.BytesIO()
    torch.save(data, buffer)
    path = Path(path)
    write_atomic(path, buffer.getvalue())
    return path


def load_residual(path: str | Path) -> tuple[ResidualMLP, dict[str, Any]]:
    """(the MLP in eval mode on CPU, the checkpoint's fields)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ResidualError(f"no residual checkpoint at {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises pickle, zip and runtime errors alike for a bad file
        raise ResidualError(f"{path} is not a residual checkpoint saved with torch.save ({e})") from e
    return _build(data, path), data


def _build(data: Any, path: Path) -> ResidualMLP:
    if not isinstance(data, Mapping):
        raise ResidualError(f"{path} holds a {type(data).__name__}, not the residual dict {{{', '.join(REQUIRED_KEYS)}}}")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise ResidualError(f"{path} lacks {', '.join(missing)} (a residual checkpoint holds {', '.join(REQUIRED_KEYS)})")
    dims = [data["state_dim"], data["action_dim"], *data["hidden_dims"]]
    if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in dims):
        raise ResidualError(f"{path}: state_dim, action_dim and hidden_dims must be positive integers, got "
                            f"{data['state_dim']!r}, {data['action_dim']!r}, {data['hidden_dims']!r}")
    for name in ("action_min", "action_max"):
        if name in data and np.shape(data[name]) != (data["action_dim"],):
            raise ResidualError(f"{path}: {name} must hold action_dim ({data['action_dim']}) numbers")
    model = ResidualMLP(data["state_dim"], data["action_dim"], data["hidden_dims"], data.get("activation", "relu"))
    weights = data["model_state_dict"]
    own = model.state_dict()
    if not isinstance(weights, Mapping) or set(weights) != set(own) or any(
            tuple(weights[k].shape) != tuple(v.shape) for k, v in own.items()):
        got = {k: list(v.shape) for k, v in weights.items()} if isinstance(weights, Mapping) else weights
        raise ResidualError(f"{path}: model_state_dict does not fit an MLP {dims[0]} -> {dims[2:]} -> {dims[1]} "
                            f"(expected {({k: list(v.shape) for k, v in own.items()})}, got {got})")
    model.load_state_dict({k: v.to(torch.float32) for k, v in weights.items()})
    return model.eval()


class ResidualPolicy:
    """`base` with a residual correction on every action (see the module docstring); otherwise the base
    policy: same features, chunking, language and protocol."""

    def __init__(self, base: Policy, path: str | Path, scale: float = 1.0) -> None:
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not math.isfinite(scale):
            raise ResidualError(f"the residual scale must be a finite number, got {scale!r}")
        self.base = base
        self.path = Path(path)
        self.scale = float(scale)
        self.residual, data = load_residual(path)
        state = base.input_features.get(STATE_KEY)
        action = base.output_features.get(ACTION_KEY)
        if state is None or state.shape != (data["state_dim"],):
            raise ResidualError(f"the residual {self.path.name} reads a state of {data['state_dim']} values but the "
                                f"base policy's {STATE_KEY} is {list(state.shape) if state else 'absent'}")
        if action is None or action.shape != (data["action_dim"],):
            raise ResidualError(f"the residual {self.path.name} corrects {data['action_dim']} action values but the "
                                f"base policy's actions have {list(action.shape) if action else 'no'} values")
        self.low, self.high = self._bounds(data, base)
        self._last_correction: np.ndarray | None = None

    @staticmethod
    def _bounds(data: Mapping[str, Any], base: Policy) -> tuple[np.ndarray | None, np.ndarray | None]:
        if "action_min" in data or "action_max" in data:
            low, high = data.get("action_min"), data.get("action_max")
        else:
            stats = base.normalization_stats().get(ACTION_KEY, {})
            low, high = stats.get("min"), stats.get("max")
        return (None if low is None else np.asarray(low, np.float32).reshape(-1),
                None if high is None else np.asarray(high, np.float32).reshape(-1))

    # --- the protocol, delegated ---

    @property
    def name(self) -> str:
        return self.base.name

    @property
    def input_features(self) -> Mapping[str, PolicyFeature]:
        return self.base.input_features

    @property
    def output_features(self) -> Mapping[str, PolicyFeature]:
        return self.base.output_features

    @property
    def chunk_size(self) -> int:
        return self.base.chunk_size

    @property
    def n_action_steps(self) -> int:
        return self.base.n_action_steps

    @property
    def language_conditioned(self) -> bool:
        return self.base.language_conditioned

    @property
    def rtc_enabled(self) -> bool:
        return bool(getattr(self.base, "rtc_enabled", False))

    def normalization_stats(self) -> Mapping[str, Mapping[str, np.ndarray]]:
        return self.base.normalization_stats()

    def reset(self) -> None:
        self._last_correction = None
        self.base.reset()

    # --- corrected actions ---

    def correction(self, observation: Observation) -> np.ndarray:
        """scale · residual(state) [action_dim] for this observation."""
        if STATE_KEY not in observation:
            raise ObservationError(f"the residual policy reads {STATE_KEY}, which the observation lacks")
        state = np.asarray(observation[STATE_KEY], dtype=np.float32)
        if state.shape != tuple(self.input_features[STATE_KEY].shape):
            raise ObservationError(f"{STATE_KEY} has shape {list(state.shape)}, the residual expects "
                                   f"{list(self.input_features[STATE_KEY].shape)}")
        with torch.inference_mode():
            delta = self.residual(torch.from_numpy(state)).numpy()
        return (self.scale * delta).astype(np.float32)

    def _apply(self, actions: np.ndarray, correction: np.ndarray) -> np.ndarray:
        out = np.asarray(actions, dtype=np.float32) + correction
        if self.low is not None or self.high is not None:
            out = np.clip(out, self.low, self.high)
        return out.astype(np.float32)

    def select_action(self, observation: Observation) -> np.ndarray:
        return self._apply(self.base.select_action(observation), self.correction(observation))

    def predict_action_chunk(self, observation: Observation, **kwargs: Any) -> np.ndarray:
        """The base's chunk, corrected. A `prefix` (real-time chunking) is given back to the base without the
        previous chunk's correction, so the base is steered towards its own earlier plan."""
        prefix = kwargs.get("prefix")
        if prefix is not None and self._last_correction is not None:
            kwargs["prefix"] = np.asarray(prefix, dtype=np.float32) - self._last_correction
        correction = self.correction(observation)
        chunk = self.base.predict_action_chunk(observation, **kwargs)
        self._last_correction = correction
        return self._apply(chunk, correction)
