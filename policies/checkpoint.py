"""Checkpoints in LeRobot's `pretrained_model/` layout: save one, and load one from a folder or the Hub.

A folder holds `config.json` (its `"type"` picks the policy class), `model.safetensors`, the processor files
with the normalization statistics and, from training, `train_config.json`. `load_policy` also accepts the
folders around it that `lerobot-train` makes (`checkpoints/<step>/`, `checkpoints/last`, the run folder).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from policies.base import ACTION_KEY, Policy
from policies.devices import resolve_device
from policies.files import read_json, write_json, write_safetensors
from policies.normalization import PREPROCESSOR_JSON, read_processor_files

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TRAIN_CONFIG_FILE = "train_config.json"
PRETRAINED_DIR = "pretrained_model"
HUB_FILES = ("*.json", "*.safetensors", "*.md")  # what a policy repo needs; skips training state and media
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# Normalization buffers that LeRobot < 0.4 kept inside model.safetensors (before the processor files).
_LEGACY_PREFIXES = ("normalize_inputs.buffer_", "normalize_targets.buffer_", "unnormalize_outputs.buffer_")


class CheckpointError(Exception):
    """A checkpoint that cannot be loaded; the message says what is wrong and what to do."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    pass


# --- saving ---------------------------------------------------------------------------------------------


def save_pretrained(policy: Any, directory: str | Path, train_config: Mapping[str, Any] | None = None) -> Path:
    """Write `policy` as LeRobot's `pretrained_model/` folder (which `lerobot` loads with `from_pretrained`).

    The policy provides `config.to_dict()`, `state_dict()` and `save_processors(directory)`. Each file is
    written whole (temporary file, then rename), so an interrupted save leaves the previous version intact.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_safetensors(directory / WEIGHTS_FILE, policy.state_dict(), metadata={"format": "pt"})
    policy.save_processors(directory)
    write_json(directory / CONFIG_FILE, policy.config.to_dict(), indent=4)
    if train_config is not None:
        write_json(directory / TRAIN_CONFIG_FILE, dict(train_config), indent=4)
    return directory


# --- loading --------------------------------------------------------------------------------------------

Loader = Callable[[Path, dict[str, Any], "str | None", dict[str, Any]], Policy]


def _load_act(directory: Path, config: dict[str, Any], device: str | None, overrides: dict[str, Any]) -> Policy:
    import dataclasses

    from policies.act import ACTConfig, ACTPolicy

    fields = {f.name for f in dataclasses.fields(ACTConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise CheckpointError(f"unknown ACT option(s) {', '.join(unknown)}; valid: {', '.join(sorted(fields))}")
    try:
        act_config = ACTConfig.from_dict({**config, **overrides, "device": device})
    except ValueError as e:
        raise CheckpointError(f"{directory / CONFIG_FILE}: {e}") from e
    weights = read_weights(directory)
    stats, rename_map = _normalization(directory, weights, act_config)
    try:
        policy = ACTPolicy(act_config, stats, rename_map=rename_map)
    except ValueError as e:
        raise CheckpointError(f"{directory}: {e}") from e
    load_weights(policy, weights, directory)
    policy.eval()
    return policy


def _load_smolvla(directory: Path, config: dict[str, Any], device: str | None, overrides: dict[str, Any]) -> Policy:
    from policies.smolvla.loading import load_smolvla  # imports transformers: only when a SmolVLA is loaded

    return load_smolvla(directory, config, device, overrides)


LOADERS: dict[str, Loader] = {"act": _load_act, "smolvla": _load_smolvla}
RTC_TYPES = frozenset({"smolvla"})  # policies that can continue a chunk from the leftover of the previous one


def load_policy(path_or_repo_id: str | Path, device: str | None = "cpu", **overrides: Any) -> Policy:
    """A ready policy (eval mode, on `device`) from a checkpoint folder or a Hugging Face Hub repo id.

    `overrides` replace config fields, e.g. `temporal_ensemble_coeff=0.01, n_action_steps=1`;
    `residual=PATH` (with `residual_scale=S`, default 1) stacks a residual policy on the loaded one.
    `rtc=True` turns on real-time chunking guidance (refused for a policy without it), `rtc="auto"` turns it on
    where the policy has it; by default the checkpoint's own setting stands.
    `device=None` picks cuda, then mps, then cpu.
    """
    residual = overrides.pop("residual", None)
    residual_scale = float(overrides.pop("residual_scale", 1.0))
    if residual is not None:
        from policies.residual import ResidualPolicy

        return ResidualPolicy(load_policy(path_or_repo_id, device, **overrides), residual, residual_scale)
    resolve_device(device)  # a typo'd or absent device is the caller's error, reported before any loading
    directory = resolve_checkpoint(path_or_repo_id)
    try:
        config = read_json(directory / CONFIG_FILE)
    except ValueError as e:
        raise CheckpointError(f"{e}: the checkpoint's config is damaged; re-save or re-download it") from e
    if not isinstance(config, dict):
        raise CheckpointError(f"{directory / CONFIG_FILE} must hold a JSON object, got {type(config).__name__}")
    kind = config.get("type")
    if kind is None:
        raise CheckpointError(f"{directory / CONFIG_FILE} has no \"type\" field, so the policy class is "
                              f"unknown (robotui runs: {', '.join(sorted(LOADERS))})")
    if kind not in LOADERS:
        supported = ", ".join(sorted(LOADERS))
        raise CheckpointError(f"{directory} holds a {kind!r} policy; robotui runs: {supported}")
    rtc = overrides.pop("rtc", None)
    if rtc and kind in RTC_TYPES:
        overrides.setdefault("rtc_config", {**(config.get("rtc_config") or {}), "enabled": True})
    elif rtc is True:
        raise CheckpointError(f"the {kind} policy has no real-time chunking guidance (policies with it: "
                              f"{', '.join(sorted(RTC_TYPES))}); smooth its chunk seams with blending instead")
    return LOADERS[kind](directory, config, device, overrides)


def resolve_checkpoint(path_or_repo_id: str | Path) -> Path:
    """The folder holding config.json: a local checkpoint (or a training run / checkpoint folder around one),
    else a Hub snapshot."""
    text = str(path_or_repo_id)
    path = Path(text).expanduser()
    if path.exists():
        candidates = (path, path / PRETRAINED_DIR, path / "last" / PRETRAINED_DIR,
                      path / "checkpoints" / "last" / PRETRAINED_DIR)
        for candidate in candidates:
            if (candidate / CONFIG_FILE).is_file():
                return candidate
        raise CheckpointNotFoundError(
            f"{path} holds no policy checkpoint: expected {CONFIG_FILE} in it or in {PRETRAINED_DIR}/ "
            f"(lerobot-train writes checkpoints/<step>/{PRETRAINED_DIR}/)"
        )
    if not _REPO_ID.match(text) or text.startswith((".", "/", "~")):
        raise CheckpointNotFoundError(f"no checkpoint at {path}: the folder does not exist")
    return _download(text)


def _hub_offline() -> bool:
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}
    return bool(constants.HF_HUB_OFFLINE) or env


def _download(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.constants import HF_HUB_CACHE
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        directory = Path(snapshot_download(repo_id, allow_patterns=list(HUB_FILES)))
    except LocalEntryNotFoundError as e:
        where = "HF_HUB_OFFLINE is set" if _hub_offline() else "the Hugging Face Hub cannot be reached"
        raise CheckpointNotFoundError(
            f"{repo_id!r} is neither a local folder nor in the Hub cache ({HF_HUB_CACHE}), and {where}: "
            f"download it on a connected machine (`hf download {repo_id}`) and copy the cache, or pass the "
            "path of a local copy of its files"
        ) from e
    except GatedRepoError as e:
        raise CheckpointNotFoundError(
            f"{repo_id!r} is gated: accept its conditions on huggingface.co, then log in with `hf auth login`"
        ) from e
    except RepositoryNotFoundError as e:
        raise CheckpointNotFoundError(
            f"no local folder {repo_id!r} and no such Hub repo (check the name; for a private repo, log in "
            "with `hf auth login`)"
        ) from e
    if not (directory / CONFIG_FILE).is_file():
        raise CheckpointNotFoundError(f"Hub repo {repo_id!r} has no {CONFIG_FILE}: it is not a policy "
                                      "checkpoint")
    return directory


def read_weights(directory: Path) -> dict[str, torch.Tensor]:
    path = directory / WEIGHTS_FILE
    if not path.is_file():
        raise CheckpointNotFoundError(f"{directory} has {CONFIG_FILE} but no {WEIGHTS_FILE}: the save was "
                                      "interrupted or the download is incomplete")
    try:
        return load_file(path)
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path} cannot be read ({e}): the file is damaged; re-save or re-download "
                              "it") from e


def load_weights(module: nn.Module, weights: Mapping[str, torch.Tensor], directory: Path) -> None:
    """Strict load with a message that lists what differs (keys and shapes), not torch's wall of text."""
    own = module.state_dict()
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    wrong = [f"{k} {list(weights[k].shape)} (expected {list(v.shape)})"
             for k, v in own.items() if k in weights and weights[k].shape != v.shape]
    if missing or unexpected or wrong:
        parts = [f"{label}: {', '.join(items[:4])}{' ...' if len(items) > 4 else ''} ({len(items)})"
                 for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
                 if items]
        raise CheckpointError(f"{directory / WEIGHTS_FILE} does not match its {CONFIG_FILE}: "
                              f"{'; '.join(parts)}")
    module.load_state_dict(weights, strict=True)


def _normalization(
    directory: Path, weights: dict[str, torch.Tensor], config: Any
) -> tuple[dict[str, Any], dict[str, str]]:
    """(stats, rename map) from the processor files, or from the buffers older checkpoints carry in
    model.safetensors (removed from `weights`)."""
    legacy = {k: weights.pop(k) for k in list(weights) if k.startswith(_LEGACY_PREFIXES)}
    if (directory / PREPROCESSOR_JSON).is_file():
        try:
            settings = read_processor_files(directory)
        except (ValueError, FileNotFoundError) as e:
            raise CheckpointError(f"{e}: the processor files are damaged; re-save or re-download them") from e
        if settings.norm_map != config.normalization_mapping:
            log.warning("%s normalizes with %s (processor files), not %s (config.json): using the processor's",
                        directory, settings.norm_map, config.normalization_mapping)
            config.normalization_mapping = settings.norm_map
        return settings.stats, settings.rename_map
    if legacy:
        return _legacy_stats(legacy, [*config.input_features, *config.output_features]), {}
    raise CheckpointError(
        f"{directory} has no {PREPROCESSOR_JSON} and no normalization buffers in {WEIGHTS_FILE}, so the "
        "normalization statistics are unknown: copy the processor files (policy_preprocessor*, "
        "policy_postprocessor*) from the training output next to config.json"
    )


def _legacy_stats(buffers: Mapping[str, torch.Tensor], features: list[str]) -> dict[str, dict[str, Any]]:
    """`normalize_inputs.buffer_observation_images_front.mean` -> stats["observation.images.front"]["mean"].

    Buffer names replaced the dots of feature keys with underscores; they are matched against the config's
    features (so a camera called `wrist_cam` is found). The output unnormalizer's action stats win.
    """
    by_buffer_name = {key.replace(".", "_"): key for key in features}
    stats: dict[str, dict[str, Any]] = {}
    for prefix in _LEGACY_PREFIXES:  # unnormalize_outputs last: its action stats are the ones LeRobot applied
        for name, tensor in buffers.items():
            if not name.startswith(prefix):
                continue
            buffer, _, stat = name[len(prefix):].rpartition(".")
            if buffer in by_buffer_name:
                stats.setdefault(by_buffer_name[buffer], {})[stat] = tensor.float().numpy()
    if ACTION_KEY not in stats:
        raise CheckpointError("the normalization buffers in model.safetensors hold no action statistics")
    return stats
