"""SmolVLA's processor files: LeRobot's `make_smolvla_pre_post_processors` pipeline, read and written.

The preprocessor is rename → to_batch → smolvla_new_line_processor (the task gets a trailing "\\n") →
tokenizer_processor (the VLM's tokenizer; padding, side, max length) → device → normalizer, so its statistics
file is `policy_preprocessor_step_5_normalizer_processor.safetensors`; the postprocessor is the same as ACT's.
Normalization statistics are read by `policies.normalization.read_processor_files`; this module adds the
language steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policies.features import features_to_json
from policies.files import read_json, write_json, write_safetensors
from policies.normalization import (
    EPS,
    NORMALIZER_STEP,
    POSTPROCESSOR_JSON,
    PREPROCESSOR_JSON,
    RENAME_STEP,
    UNNORMALIZER_STATE,
    UNNORMALIZER_STEP,
    Stats,
    flatten_stats,
)
from policies.smolvla.config import SmolVLAConfig

NEWLINE_STEP = "smolvla_new_line_processor"
TOKENIZER_STEP = "tokenizer_processor"


@dataclass(frozen=True)
class LanguageSettings:
    """How the task becomes tokens: LeRobot's TokenizerProcessorStep arguments, and the newline step."""

    tokenizer_name: str
    max_length: int
    padding: str = "longest"
    padding_side: str = "right"
    truncation: bool = True
    add_newline: bool = True

    @classmethod
    def from_config(cls, config: SmolVLAConfig) -> LanguageSettings:
        return cls(tokenizer_name=config.vlm_model_name, max_length=config.tokenizer_max_length,
                   padding=config.pad_language_to)


def read_language_settings(directory: Path, config: SmolVLAConfig) -> LanguageSettings:
    """The language steps of the checkpoint's preprocessor (the config's values when there is no file)."""
    path = directory / PREPROCESSOR_JSON
    if not path.is_file():
        return LanguageSettings.from_config(config)
    steps = read_json(path).get("steps")
    if not isinstance(steps, list):
        raise ValueError(f"{path} has no 'steps' list: it is not a LeRobot processor file")
    names = [s.get("registry_name") for s in steps if isinstance(s, Mapping)]
    tokenizer = next((s for s in steps if isinstance(s, Mapping) and s.get("registry_name") == TOKENIZER_STEP), None)
    if tokenizer is None:
        raise ValueError(f"{path} has no {TOKENIZER_STEP!r} step (its steps: {names}), so the task cannot be "
                         "tokenized as in training")
    c = tokenizer.get("config") or {}
    settings = LanguageSettings(
        tokenizer_name=c.get("tokenizer_name") or config.vlm_model_name,
        max_length=c.get("max_length", config.tokenizer_max_length),
        padding=c.get("padding", "max_length"),
        padding_side=c.get("padding_side", "right"),
        truncation=c.get("truncation", True),
        add_newline=NEWLINE_STEP in names,
    )
    if not isinstance(settings.max_length, int) or settings.max_length < 1 or settings.padding_side not in (
            "left", "right") or not isinstance(settings.truncation, bool) or not isinstance(settings.padding, str):
        raise ValueError(f"{path}: the {TOKENIZER_STEP} step's config is not valid: {c}")
    return settings


def _normalizer_config(features: Mapping[str, Any], config: SmolVLAConfig, eps: float) -> dict[str, Any]:
    return {"eps": eps, "features": features_to_json(features), "norm_map": dict(config.normalization_mapping)}


def write_processor_files(directory: Path, config: SmolVLAConfig, stats: Stats, language: LanguageSettings,
                          rename_map: Mapping[str, str] | None = None, eps: float = EPS) -> None:
    """The files LeRobot 0.4.4's `make_smolvla_pre_post_processors(...).save_pretrained` writes."""
    tokenizer_config: dict[str, Any] = {"max_length": language.max_length, "task_key": "task",
                                        "padding_side": language.padding_side, "padding": language.padding,
                                        "truncation": language.truncation, "tokenizer_name": language.tokenizer_name}
    steps: list[dict[str, Any]] = [
        {"registry_name": RENAME_STEP, "config": {"rename_map": dict(rename_map or {})}},
        {"registry_name": "to_batch_processor", "config": {}},
        *([{"registry_name": NEWLINE_STEP, "config": {}}] if language.add_newline else []),
        {"registry_name": TOKENIZER_STEP, "config": tokenizer_config},
        {"registry_name": "device_processor", "config": {"device": config.device, "float_dtype": None}},
    ]
    state_file = f"policy_preprocessor_step_{len(steps)}_{NORMALIZER_STEP}.safetensors"
    steps.append({"registry_name": NORMALIZER_STEP,
                  "config": _normalizer_config({**config.input_features, **config.output_features}, config, eps),
                  "state_file": state_file})
    post = {"name": "policy_postprocessor", "steps": [
        {"registry_name": UNNORMALIZER_STEP, "config": _normalizer_config(config.output_features, config, eps),
         "state_file": UNNORMALIZER_STATE},
        {"registry_name": "device_processor", "config": {"device": "cpu", "float_dtype": None}},
    ]}
    flat = flatten_stats(stats)
    write_safetensors(directory / state_file, flat, metadata=None)
    write_safetensors(directory / UNNORMALIZER_STATE, flat, metadata=None)
    write_json(directory / PREPROCESSOR_JSON, {"name": "policy_preprocessor", "steps": steps}, indent=2)
    write_json(directory / POSTPROCESSOR_JSON, post, indent=2)
