"""ImageNet weights for ACT's ResNet-18 backbone without torchvision.

`pretrained_backbone_weights` (the ACT config field) may name:
- LeRobot's default `ResNet18_Weights.IMAGENET1K_V1`: torchvision's original ImageNet weights, fetched from
  the Hub as `timm/resnet18.tv_in1k` (the same tensors, stored as safetensors under torchvision's key names);
- a local file, `.safetensors` or a `torch.save`d `.pth/.pt/.bin` state dict, in torchvision's resnet18 keys
  (`conv1.weight`, `bn1.running_mean`, `layer1.0.conv1.weight`, ..., `fc.*` ignored);
- a Hub file: `hf://OWNER/REPO/FILE.safetensors`, or `OWNER/REPO` for its `model.safetensors`;
- `none`: random initialisation (allowed, with a warning: ACT learns much worse without ImageNet features).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

TORCHVISION_IMAGENET = "ResNet18_Weights.IMAGENET1K_V1"
HUB_IMAGENET = ("timm/resnet18.tv_in1k", "model.safetensors")
RANDOM_INIT = "none"
_HUB_SPEC = re.compile(r"^(?:hf://)?([\w.-]+/[\w.-]+)(?:/(.+))?$")
_PREFIXES = ("module.", "model.backbone.", "backbone.", "model.")
OFFLINE_HINT = (
    "pass a local file in torchvision's resnet18 key format with --set pretrained_backbone_weights=PATH "
    "(.safetensors or .pth), or --set pretrained_backbone_weights=none to start from random weights"
)


class BackboneWeightsError(RuntimeError):
    """The requested weights cannot be found or do not fit the backbone."""


def load_backbone_weights(backbone: nn.Module, spec: str | None) -> str:
    """Load `spec` into `backbone` (strictly: every backbone tensor must be covered with the right shape).
    Returns a one-line description of what was loaded, for the run's log."""
    if spec is None or str(spec).strip().lower() in (RANDOM_INIT, "null", ""):
        log.warning("the vision backbone starts from random weights (pretrained_backbone_weights=none): "
                    "expect slower training and a weaker policy than with ImageNet weights")
        return "random initialisation"
    path, source = resolve_weights_file(str(spec))
    state = read_state_dict(path)
    load_into(backbone, state, source)
    return f"ImageNet ResNet-18 weights from {source}"


def resolve_weights_file(spec: str) -> tuple[Path, str]:
    """(local file, description) for a weights spec, downloading from the Hub when it names a Hub file."""
    local = Path(spec).expanduser()
    if local.is_file():
        return local, str(local)
    if spec == TORCHVISION_IMAGENET:
        repo, filename = HUB_IMAGENET
    else:
        match = _HUB_SPEC.match(spec)
        if match is None or local.suffix in (".pth", ".pt", ".bin") or spec.startswith((".", "/", "~")):
            raise BackboneWeightsError(f"pretrained_backbone_weights: no file at {local}; {OFFLINE_HINT}")
        repo, filename = match.group(1), match.group(2) or "model.safetensors"
    return _download(repo, filename), f"hf://{repo}/{filename}"


def _download(repo: str, filename: str) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        return Path(hf_hub_download(repo, filename))
    except LocalEntryNotFoundError as exc:
        raise BackboneWeightsError(
            f"the backbone weights hf://{repo}/{filename} are not in the Hugging Face cache and the Hub cannot "
            f"be reached (offline?): download them once with `hf download {repo} {filename}`, or {OFFLINE_HINT}"
        ) from exc
    except (RepositoryNotFoundError, EntryNotFoundError) as exc:
        raise BackboneWeightsError(f"hf://{repo}/{filename} does not exist on the Hub; {OFFLINE_HINT}") from exc
    except OSError as exc:
        raise BackboneWeightsError(f"could not download hf://{repo}/{filename}: {exc}; {OFFLINE_HINT}") from exc


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            data: object = load_file(str(path))
        else:
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # safetensors, pickle and zip errors have no common base
        raise BackboneWeightsError(f"{path} is not a readable weights file: {exc}") from exc
    if isinstance(data, Mapping) and not any(isinstance(v, torch.Tensor) for v in data.values()):
        data = next((data[k] for k in ("state_dict", "model") if isinstance(data.get(k), Mapping)), data)
    if not isinstance(data, Mapping):
        raise BackboneWeightsError(f"{path} does not hold a state dict")
    return {str(k): v for k, v in data.items() if isinstance(v, torch.Tensor)}


def load_into(backbone: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Copy torchvision-keyed tensors into the backbone; `fc.*` and `num_batches_tracked` are dropped."""
    state = _strip_prefix(state)
    wanted = backbone.state_dict()
    usable = {k: v for k, v in state.items() if k in wanted}
    missing = [k for k in wanted if k not in usable]
    if missing:
        raise BackboneWeightsError(
            f"{source} does not hold a ResNet-18 in torchvision's key format: {len(missing)} backbone tensors "
            f"missing, e.g. {', '.join(missing[:4])}"
        )
    wrong = [f"{k} {list(v.shape)} != {list(wanted[k].shape)}" for k, v in usable.items()
             if v.shape != wanted[k].shape]
    if wrong:
        raise BackboneWeightsError(f"{source}: shapes do not match the backbone: {'; '.join(wrong[:3])}")
    backbone.load_state_dict({k: v.to(wanted[k].dtype) for k, v in usable.items()}, strict=True)


def _strip_prefix(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    keys = [k for k in state if not k.endswith("num_batches_tracked")]
    for prefix in _PREFIXES:
        if keys and all(k.startswith(prefix) for k in keys):
            return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return dict(state)
