"""Finding SmolVLA's VLM backbone (SmolVLM2) offline: its config.json and tokenizer.

A LeRobot SmolVLA checkpoint's model.safetensors holds every weight, the backbone's included, but not the
backbone's architecture (config.json) nor its tokenizer: LeRobot fetches those from the Hub repo named by
`vlm_model_name` (HuggingFaceTB/SmolVLM2-500M-Video-Instruct). Looked up here, in order:
  1. `vlm_model_name` as a local folder (absolute, or relative to the working directory);
  2. a folder of that name inside the checkpoint folder (a backbone bundled with the checkpoint);
  3. the Hugging Face Hub cache (downloading only config and tokenizer files, never the weights, when the
     Hub is reachable and HF_HUB_OFFLINE is not set).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from policies.checkpoint import CheckpointError, CheckpointNotFoundError

CONFIG_FILE = "config.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
BACKBONE_PATTERNS = ["*.json", "*.txt", "*.jinja"]  # config, tokenizer, vocabulary, merges, chat template


def resolve_backbone(name: str, checkpoint_dir: Path | None = None, *, what: str = "backbone") -> Path:
    """The folder holding the backbone's config.json and tokenizer files; a clear error when there is none."""
    local = Path(name).expanduser()
    for candidate in (local, checkpoint_dir / name if checkpoint_dir is not None else None):
        if candidate is not None and candidate.is_dir():
            _check_folder(candidate, name)
            return candidate
    if local.is_absolute() or name.startswith((".", "~")) or name.count("/") != 1:
        raise CheckpointNotFoundError(f"the SmolVLA {what} {name!r} (vlm_model_name) is not a folder here: point "
                                      "vlm_model_name at a folder with its config.json and tokenizer files")
    folder = _from_hub_cache(name, checkpoint_dir)
    _check_folder(folder, name)
    return folder


def _from_hub_cache(repo_id: str, checkpoint_dir: Path | None) -> Path:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, allow_patterns=BACKBONE_PATTERNS))
    except LocalEntryNotFoundError as e:
        offline = constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}
        why = "HF_HUB_OFFLINE is set" if offline else "the Hugging Face Hub cannot be reached"
        bundled = f" or into {checkpoint_dir / repo_id}" if checkpoint_dir is not None else ""
        raise CheckpointNotFoundError(
            f"SmolVLA needs its backbone's config and tokenizer ({repo_id}), which are not in the Hub cache "
            f"({constants.HF_HUB_CACHE}) and {why}: on a connected machine run `hf download {repo_id}` (and "
            f"`hf download lerobot/smolvla_base` for the base policy), then copy that cache here, or copy the "
            f"backbone's config.json and tokenizer files into a folder and set vlm_model_name to it{bundled}"
        ) from e
    except HfHubHTTPError as e:
        raise CheckpointNotFoundError(f"cannot fetch SmolVLA's backbone {repo_id!r} from the Hub ({e})") from e


def _check_folder(folder: Path, name: str) -> None:
    missing = [] if (folder / CONFIG_FILE).is_file() else [CONFIG_FILE]
    if not any((folder / f).is_file() for f in TOKENIZER_FILES):
        missing.append(" / ".join(TOKENIZER_FILES))
    if missing:
        raise CheckpointNotFoundError(f"the SmolVLA backbone folder {folder} (for {name!r}) lacks "
                                      f"{' and '.join(missing)}: copy its complete config and tokenizer files there")


def read_backbone_config(folder: Path) -> Any:
    """The SmolVLM config (transformers' `SmolVLMConfig`) from the backbone folder."""
    from transformers import AutoConfig, SmolVLMConfig

    try:
        config = AutoConfig.from_pretrained(folder)
    except (OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"{folder / CONFIG_FILE} is not a readable transformers config ({e})") from e
    if not isinstance(config, SmolVLMConfig):
        raise CheckpointError(f"{folder / CONFIG_FILE} describes a {config.model_type!r} model; SmolVLA's backbone "
                              "is a SmolVLM (model_type 'smolvlm', e.g. HuggingFaceTB/SmolVLM2-500M-Video-Instruct)")
    return config


def load_tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"cannot load the tokenizer in {folder} ({e}): copy its tokenizer files again") from e
