"""Policy features as LeRobot's JSON files spell them: `{"type": "STATE", "shape": [6]}`.

The same entries appear in `config.json` (`input_features`, `output_features`) and in the normalizer steps of
the processor JSON files, so both read and write them here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.base import PolicyFeature

FEATURE_TYPES = ("STATE", "VISUAL", "ENV", "ACTION", "REWARD", "LANGUAGE")


def features_to_json(features: Mapping[str, PolicyFeature]) -> dict[str, dict[str, Any]]:
    return {key: {"type": f.type, "shape": list(f.shape)} for key, f in features.items()}


def features_from_json(data: Any, where: str) -> dict[str, PolicyFeature]:
    """`where` names the file and field for the error message (e.g. "config.json input_features")."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{where} must be an object mapping feature keys to {{type, shape}}, got {data!r}")
    features: dict[str, PolicyFeature] = {}
    for key, entry in data.items():
        if isinstance(entry, PolicyFeature):
            entry = {"type": entry.type, "shape": entry.shape}
        if not isinstance(entry, Mapping) or "type" not in entry or "shape" not in entry:
            raise ValueError(f"{where}[{key!r}] must be {{\"type\": ..., \"shape\": [...]}}, got {entry!r}")
        kind, shape = entry["type"], entry["shape"]
        if kind not in FEATURE_TYPES:
            raise ValueError(f"{where}[{key!r}] has type {kind!r}; known types: {', '.join(FEATURE_TYPES)}")
        if not isinstance(shape, list | tuple) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape
        ):
            raise ValueError(f"{where}[{key!r}] has shape {shape!r}; expected a list of positive integers")
        features[key] = PolicyFeature(type=kind, shape=tuple(shape))
    return features
