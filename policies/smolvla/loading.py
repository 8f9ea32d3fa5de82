"""Loading a LeRobot SmolVLA checkpoint folder (`load_policy` dispatches `"type": "smolvla"` here)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from policies.base import Policy
from policies.checkpoint import CONFIG_FILE, CheckpointError, _normalization, load_weights, read_weights
from policies.smolvla.backbone import load_tokenizer, read_backbone_config, resolve_backbone
from policies.smolvla.config import SmolVLAConfig
from policies.smolvla.policy import SmolVLAPolicy
from policies.smolvla.processor import read_language_settings

# Options of the policy object, not of config.json.
RUNTIME_OPTIONS = ("noise_seed", "backbone_dtype")


def load_smolvla(directory: Path, config: dict[str, Any], device: str | None, overrides: dict[str, Any]) -> Policy:
    """`overrides`: config fields (e.g. `n_action_steps=25`, `num_steps=5`, `rtc_config={"enabled": True}`)
    and the runtime options `noise_seed` (int) and `backbone_dtype` ("auto", "float32", "bfloat16")."""
    overrides = dict(overrides)
    runtime = {k: overrides.pop(k) for k in RUNTIME_OPTIONS if k in overrides}
    fields = {f.name for f in dataclasses.fields(SmolVLAConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise CheckpointError(f"unknown SmolVLA option(s) {', '.join(unknown)}; valid: "
                              f"{', '.join(sorted(fields | set(RUNTIME_OPTIONS)))}")
    try:
        smolvla_config = SmolVLAConfig.from_dict({**config, **overrides, "device": device})
        language = read_language_settings(directory, smolvla_config)
    except ValueError as e:
        raise CheckpointError(f"{directory / CONFIG_FILE}: {e}") from e
    weights = read_weights(directory)
    stats, rename_map = _normalization(directory, weights, smolvla_config)
    backbone = resolve_backbone(smolvla_config.vlm_model_name, directory)
    tokenizer_folder = backbone if language.tokenizer_name == smolvla_config.vlm_model_name else resolve_backbone(
        language.tokenizer_name, directory, what="tokenizer")
    try:
        policy = SmolVLAPolicy(smolvla_config, stats, read_backbone_config(backbone), load_tokenizer(tokenizer_folder),
                               language=language, rename_map=rename_map, empty_weights=True, **runtime)
    except ValueError as e:
        raise CheckpointError(f"{directory}: {e}") from e
    load_weights(policy, weights, directory)
    policy.eval()
    return policy
