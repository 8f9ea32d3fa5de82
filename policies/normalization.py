"""Normalization as LeRobot's processor pipeline does it, and the processor files that carry its statistics.

LeRobot (>= 0.4) keeps normalization out of `model.safetensors`: `policy_preprocessor.json` ends with a
`normalizer_processor` step whose statistics live in `policy_preprocessor_step_3_normalizer_processor
.safetensors`, and `policy_postprocessor.json` starts with the matching `unnormalizer_processor`. The formulas
(and the 1e-8 epsilon) are LeRobot's, so the same checkpoint gives the same actions in both programs:

    MEAN_STD    (x - mean) / (std + eps)           inverse  x * std + mean
    MIN_MAX     2 (x - min) / (max - min) - 1      inverse  (x + 1) / 2 (max - min) + min
    QUANTILES   as MIN_MAX with q01 / q99;  QUANTILE10 with q10 / q90
    IDENTITY    unchanged

(a zero range is replaced by eps). Unlike LeRobot, a feature whose mode needs statistics that are missing is
refused when the normalizer is built instead of passing through unnormalized: a policy fed raw joint angles,
or commanding normalized ones, moves the arm wildly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file

from policies.base import ACTION_KEY, PolicyFeature
from policies.features import FEATURE_TYPES, features_from_json, features_to_json
from policies.files import read_json, write_json, write_safetensors

EPS = 1e-8
NORM_MODES: dict[str, tuple[str, str] | tuple[()]] = {
    "MEAN_STD": ("mean", "std"),
    "MIN_MAX": ("min", "max"),
    "QUANTILES": ("q01", "q99"),
    "QUANTILE10": ("q10", "q90"),
    "IDENTITY": (),
}
PREPROCESSOR_JSON = "policy_preprocessor.json"
POSTPROCESSOR_JSON = "policy_postprocessor.json"
RENAME_STEP = "rename_observations_processor"
NORMALIZER_STEP = "normalizer_processor"
UNNORMALIZER_STEP = "unnormalizer_processor"
NORMALIZER_STATE = f"policy_preprocessor_step_3_{NORMALIZER_STEP}.safetensors"
UNNORMALIZER_STATE = f"policy_postprocessor_step_0_{UNNORMALIZER_STEP}.safetensors"

Stats = Mapping[str, Mapping[str, Any]]


def stats_to_numpy(stats: Stats) -> dict[str, dict[str, np.ndarray]]:
    """float32 copies, as LeRobot stores them (tensors, arrays, lists and scalars accepted)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for key, entry in stats.items():
        if not isinstance(entry, Mapping):
            raise ValueError(f"statistics for {key!r} must map stat names to arrays, got "
                             f"{type(entry).__name__}")
        out[key] = {}
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                value = value.detach().cpu().numpy()
            out[key][name] = np.array(value, dtype=np.float32)
    return out


def check_norm_map(norm_map: Mapping[str, str], where: str) -> dict[str, str]:
    for kind, mode in norm_map.items():
        if kind not in FEATURE_TYPES:
            raise ValueError(f"{where}: unknown feature type {kind!r}; known: {', '.join(FEATURE_TYPES)}")
        if mode not in NORM_MODES:
            raise ValueError(f"{where}: unknown normalization mode {mode!r} for {kind}; known: "
                             f"{', '.join(NORM_MODES)}")
    return dict(norm_map)


class Normalizer:
    """Normalizes each feature by its type's mode; statistics are float32 and follow the input's device."""

    def __init__(
        self,
        features: Mapping[str, PolicyFeature],
        norm_map: Mapping[str, str],
        stats: Stats | None,
        eps: float = EPS,
    ) -> None:
        self.features = dict(features)
        self.norm_map = check_norm_map(norm_map, "normalization_mapping")
        self.eps = eps
        self.stats = stats_to_numpy(stats or {})
        for key, feature in self.features.items():
            mode = self.mode(key)
            have = self.stats.get(key, {})
            missing = [s for s in NORM_MODES[mode] if s not in have]
            if missing:
                raise ValueError(
                    f"no {' and '.join(missing)} statistics for {key!r} ({feature.type} features use {mode}): "
                    "pass the dataset's stats (meta/stats.json) or a checkpoint that has its processor files"
                )
            for name in NORM_MODES[mode]:
                try:
                    shape = np.broadcast_shapes(have[name].shape, feature.shape)
                except ValueError:
                    shape = None
                if shape != tuple(feature.shape):
                    raise ValueError(
                        f"statistic {key}.{name} has shape {list(have[name].shape)}, which does not fit the "
                        f"feature's shape {list(feature.shape)}: the statistics come from a different dataset"
                    )
        self._tensors: dict[tuple[torch.device, torch.dtype], dict[str, dict[str, torch.Tensor]]] = {}

    def mode(self, key: str) -> str:
        return self.norm_map.get(self.features[key].type, "IDENTITY")

    def _stats_for(self, key: str, like: torch.Tensor) -> dict[str, torch.Tensor]:
        cache = self._tensors.get((like.device, like.dtype))
        if cache is None:
            cache = {
                k: {s: torch.from_numpy(v).to(device=like.device, dtype=like.dtype) for s, v in entry.items()}
                for k, entry in self.stats.items()
                if k in self.features
            }
            self._tensors = {(like.device, like.dtype): cache}
        return cache[key]

    def normalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        mode = self.mode(key)
        if mode == "IDENTITY":
            return x
        s = self._stats_for(key, x)
        if mode == "MEAN_STD":
            return (x - s["mean"]) / (s["std"] + self.eps)
        low, high = (s[name] for name in NORM_MODES[mode])
        return 2 * (x - low) / self._range(low, high) - 1

    def unnormalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        mode = self.mode(key)
        if mode == "IDENTITY":
            return x
        s = self._stats_for(key, x)
        if mode == "MEAN_STD":
            return x * s["std"] + s["mean"]
        low, high = (s[name] for name in NORM_MODES[mode])
        return (x + 1) / 2 * self._range(low, high) + low

    def _range(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        span = high - low
        return torch.where(span == 0, torch.full_like(span, self.eps), span)


# --- processor files ------------------------------------------------------------------------------------


def flatten_stats(stats: Stats) -> dict[str, torch.Tensor]:
    """`{"observation.state": {"mean": ...}}` -> `{"observation.state.mean": tensor}` (the safetensors keys)."""
    return {f"{key}.{name}": torch.from_numpy(v)
            for key, entry in stats_to_numpy(stats).items() for name, v in entry.items()}


def unflatten_stats(flat: Mapping[str, torch.Tensor]) -> dict[str, dict[str, np.ndarray]]:
    stats: dict[str, dict[str, np.ndarray]] = {}
    for flat_key, tensor in flat.items():
        key, _, name = flat_key.rpartition(".")
        stats.setdefault(key, {})[name] = tensor.to(torch.float32).numpy()
    return stats


def _normalizer_config(features: Mapping[str, PolicyFeature], norm_map: Mapping[str, str], eps: float) -> dict:
    return {"eps": eps, "features": features_to_json(features), "norm_map": dict(norm_map)}


def write_processor_files(
    directory: Path,
    *,
    input_features: Mapping[str, PolicyFeature],
    output_features: Mapping[str, PolicyFeature],
    norm_map: Mapping[str, str],
    stats: Stats,
    device: str | None,
    eps: float = EPS,
    rename_map: Mapping[str, str] | None = None,
) -> None:
    """The four processor files LeRobot 0.4.4's `make_act_pre_post_processors(...).save_pretrained` writes.

    Every statistic in `stats` is kept (LeRobot saves the whole dataset stats, `timestamp.*` included), in both
    state files.
    """
    pre = {
        "name": "policy_preprocessor",
        "steps": [
            {"registry_name": RENAME_STEP, "config": {"rename_map": dict(rename_map or {})}},
            {"registry_name": "to_batch_processor", "config": {}},
            {"registry_name": "device_processor", "config": {"device": device, "float_dtype": None}},
            {
                "registry_name": NORMALIZER_STEP,
                "config": _normalizer_config({**input_features, **output_features}, norm_map, eps),
                "state_file": NORMALIZER_STATE,
            },
        ],
    }
    post = {
        "name": "policy_postprocessor",
        "steps": [
            {
                "registry_name": UNNORMALIZER_STEP,
                "config": _normalizer_config(output_features, norm_map, eps),
                "state_file": UNNORMALIZER_STATE,
            },
            {"registry_name": "device_processor", "config": {"device": "cpu", "float_dtype": None}},
        ],
    }
    flat = flatten_stats(stats)
    write_safetensors(directory / NORMALIZER_STATE, flat, metadata=None)
    write_safetensors(directory / UNNORMALIZER_STATE, flat, metadata=None)
    write_json(directory / PREPROCESSOR_JSON, pre, indent=2)
    write_json(directory / POSTPROCESSOR_JSON, post, indent=2)


@dataclass
class ProcessorSettings:
    """What the processor files say about normalization (and the one pre-step that changes observations)."""

    features: dict[str, PolicyFeature]
    norm_map: dict[str, str]
    eps: float
    stats: dict[str, dict[str, np.ndarray]]
    rename_map: dict[str, str] = field(default_factory=dict)


def _step(pipeline: Any, registry_name: str, path: Path) -> dict:
    steps = pipeline.get("steps") if isinstance(pipeline, Mapping) else None
    if not isinstance(steps, list):
        raise ValueError(f"{path} has no 'steps' list: it is not a LeRobot processor file")
    for step in steps:
        if isinstance(step, Mapping) and step.get("registry_name") == registry_name:
            return dict(step)
    names = [s.get("registry_name", s.get("class")) for s in steps if isinstance(s, Mapping)]
    raise ValueError(f"{path} has no {registry_name!r} step (its steps: {names})")


def _step_stats(step: dict, directory: Path, path: Path) -> dict[str, dict[str, np.ndarray]]:
    state_file = step.get("state_file")
    if not state_file:
        raise ValueError(f"the {step['registry_name']} step in {path} names no state_file with its statistics")
    state_path = directory / state_file
    if not state_path.is_file():
        raise FileNotFoundError(f"{path} refers to {state_file}, which is missing from {directory}")
    return unflatten_stats(load_file(state_path))


def read_processor_files(directory: Path) -> ProcessorSettings:
    """Normalization settings from a checkpoint's processor files (raises when they are absent or malformed).

    Inputs use the preprocessor's statistics and the action uses the postprocessor's, as in LeRobot, where the
    two pipelines are separate objects (they hold the same numbers unless someone edited one).
    """
    pre_path, post_path = directory / PREPROCESSOR_JSON, directory / POSTPROCESSOR_JSON
    pre_json = read_json(pre_path)
    pre = _step(pre_json, NORMALIZER_STEP, pre_path)
    config = pre.get("config") or {}
    where = f"{pre_path} {NORMALIZER_STEP}"
    features = features_from_json(config.get("features", {}), f"{where} features")
    norm_map = check_norm_map(config.get("norm_map") or {}, f"{where} norm_map")
    eps = config.get("eps", EPS)
    if not isinstance(eps, int | float) or isinstance(eps, bool) or eps < 0:
        raise ValueError(f"{where}: eps must be a non-negative number, got {eps!r}")
    stats = _step_stats(pre, directory, pre_path)
    if post_path.is_file():
        post = _step(read_json(post_path), UNNORMALIZER_STEP, post_path)
        post_stats = _step_stats(post, directory, post_path)
        if ACTION_KEY in post_stats:
            stats[ACTION_KEY] = post_stats[ACTION_KEY]
    rename = next((s for s in pre_json["steps"] if isinstance(s, Mapping)
                   and s.get("registry_name") == RENAME_STEP), {})
    rename_map = (rename.get("config") or {}).get("rename_map") or {}
    if not isinstance(rename_map, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in rename_map.items()
    ):
        raise ValueError(f"{pre_path}: the {RENAME_STEP} step's rename_map must map strings to strings")
    return ProcessorSettings(features=features, norm_map=norm_map, eps=float(eps), stats=stats,
                             rename_map=dict(rename_map))
