"""What a training run is: LeRobot's `TrainPipelineConfig` fields that robotui uses, written to and read back
from `train_config.json` in LeRobot's layout, and `--set key=value` overrides with type conversion.

The optimizer follows LeRobot's policy preset (`use_policy_training_preset=true`): AdamW with the policy's
`optimizer_lr` / `optimizer_weight_decay` (ACT: 1e-5 / 1e-4, backbone group at `optimizer_lr_backbone`),
betas (0.9, 0.999), eps 1e-8, gradients clipped at norm 10.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Trainer fields `--set` reaches besides the policy's own (LeRobot: optimizer.grad_clip_norm/betas/eps and
# dataset.use_imagenet_stats).
TRAINER_SET_KEYS = ("grad_clip_norm", "betas", "eps", "use_imagenet_stats")


class SettingError(ValueError):
    """A `--set` that names no field or whose value does not convert; the message says which and why."""


@dataclass
class TrainConfig:
    output_dir: Path
    dataset_repo_id: str
    dataset_root: str | None = None
    steps: int = 100_000
    batch_size: int = 8
    num_workers: int = 4
    seed: int = 1000
    log_freq: int = 200
    save_freq: int = 20_000
    save_checkpoint: bool = True
    resume: bool = False
    job_name: str = "act"
    grad_clip_norm: float = 10.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    use_imagenet_stats: bool = True
    image_transforms: dict[str, Any] = field(default_factory=dict)  # LeRobot's dataset.image_transforms block

    def validate(self) -> None:
        for name in ("steps", "batch_size"):
            if getattr(self, name) < 1:
                raise SettingError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        for name in ("log_freq", "save_freq", "num_workers"):
            if getattr(self, name) < 0:
                raise SettingError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if not self.grad_clip_norm > 0:
            raise SettingError(f"grad_clip_norm must be > 0, got {self.grad_clip_norm}")

    def optimizer_block(self, policy_config: Mapping[str, Any]) -> dict[str, Any]:
        """LeRobot's `optimizer` block (AdamWConfig) for this run."""
        return {
            "type": "adamw",
            "lr": float(policy_config.get("optimizer_lr", 1e-5)),
            "weight_decay": float(policy_config.get("optimizer_weight_decay", 1e-4)),
            "grad_clip_norm": self.grad_clip_norm,
            "betas": list(self.betas),
            "eps": self.eps,
        }

    def to_lerobot(self, policy_config: Mapping[str, Any]) -> dict[str, Any]:
        """train_config.json as LeRobot's TrainPipelineConfig writes it (fields robotui does not use keep
        LeRobot's defaults when LeRobot reads the file)."""
        return {
            "dataset": {
                "repo_id": self.dataset_repo_id,
                "root": self.dataset_root,
                "episodes": None,
                "image_transforms": self.image_transforms,
                "revision": None,
                "use_imagenet_stats": self.use_imagenet_stats,
                "video_backend": "pyav",
            },
            "env": None,
            "policy": dict(policy_config),
            "output_dir": str(self.output_dir),
            "job_name": self.job_name,
            "resume": self.resume,
            "seed": self.seed,
            "num_workers": self.num_workers,
            "batch_size": self.batch_size,
            "steps": self.steps,
            "log_freq": self.log_freq,
            "save_checkpoint": self.save_checkpoint,
            "save_freq": self.save_freq,
            "use_policy_training_preset": True,
            "optimizer": self.optimizer_block(policy_config),
            "scheduler": None,
        }

    @classmethod
    def from_lerobot(cls, data: Mapping[str, Any], where: str) -> TrainConfig:
        """Back from a train_config.json (robotui's or LeRobot's)."""
        try:
            ds = data.get("dataset") or {}
            opt = data.get("optimizer") or {}
            default = cls(output_dir=Path("."), dataset_repo_id="")
            return cls(
                output_dir=Path(data["output_dir"]) if data.get("output_dir") else Path("."),
                dataset_repo_id=str(ds.get("repo_id") or ""),
                dataset_root=ds.get("root"),
                steps=int(data.get("steps", default.steps)),
                batch_size=int(data.get("batch_size", default.batch_size)),
                num_workers=int(data.get("num_workers", default.num_workers)),
                seed=int(data["seed"]) if data.get("seed") is not None else default.seed,
                log_freq=int(data.get("log_freq", default.log_freq)),
                save_freq=int(data.get("save_freq", default.save_freq)),
                save_checkpoint=bool(data.get("save_checkpoint", True)),
                job_name=str(data.get("job_name") or default.job_name),
                grad_clip_norm=float(opt.get("grad_clip_norm", default.grad_clip_norm)),
                betas=tuple(float(b) for b in opt.get("betas", default.betas)),  # type: ignore[arg-type]
                eps=float(opt.get("eps", default.eps)),
                use_imagenet_stats=bool(ds.get("use_imagenet_stats", True)),
                image_transforms=dict(ds.get("image_transforms") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SettingError(f"{where} is not a usable train config: {exc!r}") from exc


# ----------------------------------------------------------------------------------------- --set


def parse_sets(pairs: Sequence[str]) -> dict[str, str]:
    """`["chunk_size=20", "dim_model=64"]` -> {"chunk_size": "20", ...}; later repeats win."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SettingError(f"--set {pair!r}: expected key=value, e.g. --set chunk_size=20")
        out[key] = value.strip()
    return out


def apply_sets(target: Any, values: Mapping[str, str], keys: Sequence[str] | None = None) -> Any:
    """A copy of dataclass `target` with `values` converted to its fields' types (all keys must be fields,
    or in `keys` when given)."""
    if not values:
        return target
    hints = typing.get_type_hints(type(target))
    allowed = list(keys) if keys is not None else [f.name for f in dataclasses.fields(target)]
    changes: dict[str, Any] = {}
    for key, text in values.items():
        if key not in allowed:
            raise unknown_key(key, allowed)
        changes[key] = convert(key, text, hints[key])
    try:
        return dataclasses.replace(target, **changes)
    except (ValueError, TypeError) as exc:
        raise SettingError(f"--set {', '.join(f'{k}={v}' for k, v in values.items())}: {exc}") from exc


def unknown_key(key: str, known: Sequence[str]) -> SettingError:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return SettingError(f"--set {key}: no such setting; {hint}settings: {', '.join(sorted(known))}")


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def convert(key: str, text: str, hint: Any) -> Any:
    """`text` as a value of type `hint` (bool, int, float, str, Optional, tuples/lists, dicts as JSON)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if text.lower() in ("none", "null") and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return convert(key, text, arg)
            except SettingError as exc:
                errors.append(str(exc))
        raise SettingError(errors[0] if len(errors) == 1 else f"--set {key}={text}: not a valid value")
    if hint is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise SettingError(f"--set {key}={text}: {key} is true or false")
    if hint in (int, float):
        try:
            value = hint(text) if hint is float else int(text)
        except ValueError:
            raise SettingError(f"--set {key}={text}: {key} is {'an integer' if hint is int else 'a number'}") from None
        return value
    if hint in (str, Path) or hint is Any:
        return hint(text) if hint is not Any else text
    if origin in (tuple, list) or hint in (tuple, list):
        items = _sequence(key, text)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(items) != len(args):
                raise SettingError(f"--set {key}={text}: {key} takes {len(args)} values, e.g. "
                                   f"{key}={','.join(['1'] * len(args))}")
            return tuple(convert(key, str(v), a) for v, a in zip(items, args, strict=True))
        inner = args[0] if args else str
        values = [convert(key, str(v), inner) for v in items]
        return tuple(values) if (origin or hint) is tuple else values
    if origin in (dict, Mapping) or hint is dict:
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, dict):
            raise SettingError(f"--set {key}={text}: {key} takes a JSON object, e.g. {key}='{{\"a\": 1}}'")
        return value
    raise SettingError(f"--set {key}: this setting cannot be changed from the command line")


def _sequence(key: str, text: str) -> list[Any]:
    stripped = text.strip()
    if stripped.startswith(("[", "(")):
        try:
            value = json.loads("[" + stripped[1:-1] + "]")
        except json.JSONDecodeError:
            raise SettingError(f"--set {key}={text}: not a list; write it as {key}=a,b or {key}='[a, b]'") from None
        return list(value)
    return [part.strip() for part in stripped.split(",") if part.strip()]
