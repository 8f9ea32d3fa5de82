"""LeRobot's training output tree (lerobot-interop.md §7.1), written so a crash never leaves a half checkpoint.

```
<output_dir>/checkpoints/<step>/pretrained_model/   config.json, model.safetensors, processor files,
                                                     train_config.json
<output_dir>/checkpoints/<step>/training_state/     optimizer_state.safetensors, optimizer_param_groups.json,
                                                     rng_state.safetensors, training_step.json
<output_dir>/checkpoints/last -> <step>             relative symlink
```

`<step>` is zero-padded to max(6, digits of the total steps). A checkpoint is built in a hidden sibling
directory and renamed into place, then `last` is swapped with an atomic rename of a fresh symlink, so
`last` always points at a complete checkpoint. The optimizer and RNG files use LeRobot's flat safetensors
keys (`state/<param id>/exp_avg`, `py_rng_state`, `np_rng_state_values`, `torch_rng_state`...), so LeRobot can
resume a robotui run and the other way round.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from policies.checkpoint import PRETRAINED_DIR, TRAIN_CONFIG_FILE, CheckpointError
from policies.files import read_json, write_json
from policies.train.metrics import METRICS_FILE

CHECKPOINTS_DIR = "checkpoints"
LAST_CHECKPOINT_LINK = "last"
PRETRAINED_MODEL_DIR = PRETRAINED_DIR
TRAINING_STATE_DIR = "training_state"
OPTIMIZER_STATE = "optimizer_state.safetensors"
OPTIMIZER_PARAM_GROUPS = "optimizer_param_groups.json"
RNG_STATE = "rng_state.safetensors"
TRAINING_STEP = "training_step.json"
_IMPLEMENTATION_KEYS = ("foreach", "fused", "capturable", "differentiable")


def step_identifier(step: int, total_steps: int) -> str:
    return f"{step:0{max(6, len(str(total_steps)))}d}"


def checkpoint_dir(output_dir: Path, step: int, total_steps: int) -> Path:
    return Path(output_dir) / CHECKPOINTS_DIR / step_identifier(step, total_steps)


# ------------------------------------------------------------------------------------------- writing


def save_checkpoint(
    output_dir: Path,
    step: int,
    total_steps: int,
    *,
    save_model: Callable[[Path], None],
    optimizer: torch.optim.Optimizer,
    world_size: int,
    batch_size: int,
) -> Path:
    """Write checkpoints/<step>/ completely, then point `last` at it. `save_model(dir)` fills
    pretrained_model/. Returns the checkpoint directory."""
    final = checkpoint_dir(output_dir, step, total_steps)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.with_name(f".{final.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / PRETRAINED_MODEL_DIR).mkdir(parents=True)
    save_model(staging / PRETRAINED_MODEL_DIR)
    save_training_state(staging, step, optimizer, world_size=world_size, batch_size=batch_size)
    _fsync_tree(staging)
    if final.exists():  # left by a run that died after saving this step but before moving `last`
        old = final.with_name(f".{final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(staging, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, final)
    update_last_checkpoint(final)
    return final


def update_last_checkpoint(checkpoint: Path) -> Path:
    """Atomically repoint checkpoints/last at `checkpoint` with a relative symlink."""
    link = checkpoint.parent / LAST_CHECKPOINT_LINK
    tmp = checkpoint.parent / f".{LAST_CHECKPOINT_LINK}.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(checkpoint.name, target_is_directory=True)
    os.replace(tmp, link)
    return link


def save_training_state(
    checkpoint: Path, step: int, optimizer: torch.optim.Optimizer, *, world_size: int, batch_size: int
) -> None:
    state_dir = checkpoint / TRAINING_STATE_DIR
    state_dir.mkdir(parents=True, exist_ok=True)
    _write_json(
        state_dir / TRAINING_STEP,
        {
            "step": step,
            "dp_world_size": world_size,
            "batch_size": batch_size,
            "grad_accum_steps": 1,
            "parallelism": {"dp_replicate": world_size, "dp_shard": 1, "ring_degree": 1, "ulysses_degree": 1},
        },
    )
    save_file(rng_state(), str(state_dir / RNG_STATE))
    save_optimizer_state(optimizer, state_dir)


def save_optimizer_state(optimizer: torch.optim.Optimizer, state_dir: Path) -> None:
    state = optimizer.state_dict()
    flat = {
        f"state/{param_id}/{name}": _tensor(value)
        for param_id, per_param in state["state"].items()
        for name, value in per_param.items()
    }
    save_file(flat, str(state_dir / OPTIMIZER_STATE))
    _write_json(state_dir / OPTIMIZER_PARAM_GROUPS, state["param_groups"])


def rng_state() -> dict[str, torch.Tensor]:
    """Python, numpy and torch RNG states under LeRobot's key names."""
    version, internal, _ = random.getstate()
    _, values, pos, has_gauss, cached = np.random.get_state(legacy=True)
    out = {
        "py_rng_version": torch.tensor([version], dtype=torch.int64),
        "py_rng_state": torch.tensor(internal, dtype=torch.int64),
        "np_rng_state_values": torch.tensor(np.asarray(values, dtype=np.int64)),
        "np_rng_state_index": torch.tensor([pos], dtype=torch.int64),
        "np_rng_has_gauss": torch.tensor([has_gauss], dtype=torch.int64),
        "np_rng_cached_gaussian": torch.tensor([cached], dtype=torch.float32),
        "torch_rng_state": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        out["torch_cuda_rng_state"] = torch.cuda.get_rng_state()
    return out


# ------------------------------------------------------------------------------------------- reading


def load_training_state(checkpoint: Path, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore the optimizer and RNGs; returns training_step.json (its "step" is where to continue)."""
    state_dir = Path(checkpoint) / TRAINING_STATE_DIR
    for name in (TRAINING_STEP, OPTIMIZER_STATE, OPTIMIZER_PARAM_GROUPS, RNG_STATE):
        if not (state_dir / name).is_file():
            raise CheckpointError(f"{state_dir / name} is missing, so this run cannot be resumed exactly; "
                                  "resume from an earlier checkpoint or start a new run from its pretrained_model")
    step_info = _read_json(state_dir / TRAINING_STEP)
    if not isinstance(step_info, dict) or not isinstance(step_info.get("step"), int):
        raise CheckpointError(f"{state_dir / TRAINING_STEP} has no integer \"step\"")
    load_optimizer_state(optimizer, state_dir)
    restore_rng_state(load_file(str(state_dir / RNG_STATE)))
    return step_info


def load_optimizer_state(optimizer: torch.optim.Optimizer, state_dir: Path) -> None:
    flat = load_file(str(state_dir / OPTIMIZER_STATE))
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in flat.items():
        parts = key.split("/")
        if len(parts) != 3 or parts[0] != "state":
            raise CheckpointError(f"{state_dir / OPTIMIZER_STATE}: unexpected key {key!r}")
        per_param.setdefault(int(parts[1]), {})[parts[2]] = value
    saved_groups = _read_json(state_dir / OPTIMIZER_PARAM_GROUPS)
    current = optimizer.state_dict()["param_groups"]
    if not isinstance(saved_groups, list) or len(saved_groups) != len(current) or any(
        len(s.get("params", [])) != len(c["params"]) for s, c in zip(saved_groups, current, strict=True)
    ):
        raise CheckpointError(
            f"{state_dir / OPTIMIZER_PARAM_GROUPS} does not match this policy's parameter groups (was the "
            "architecture changed?); start a new run instead of resuming"
        )
    groups = [_like(c, s) for c, s in zip(current, saved_groups, strict=True)]
    optimizer.load_state_dict({"state": per_param, "param_groups": groups})


def restore_rng_state(state: Mapping[str, torch.Tensor]) -> None:
    random.setstate((int(state["py_rng_version"].item()), tuple(state["py_rng_state"].tolist()), None))
    np.random.set_state((
        "MT19937",
        state["np_rng_state_values"].numpy().astype(np.uint32),
        int(state["np_rng_state_index"].item()),
        int(state["np_rng_has_gauss"].item()),
        float(state["np_rng_cached_gaussian"].item()),
    ))
    torch.set_rng_state(state["torch_rng_state"])
    if torch.cuda.is_available() and "torch_cuda_rng_state" in state:
        torch.cuda.set_rng_state(state["torch_cuda_rng_state"])


def last_checkpoint(output_dir: Path) -> Path:
    """checkpoints/last resolved, or a CheckpointError saying why a resume cannot start."""
    link = Path(output_dir) / CHECKPOINTS_DIR / LAST_CHECKPOINT_LINK
    if not link.exists():
        raise CheckpointError(
            f"nothing to resume in {output_dir}: there is no {CHECKPOINTS_DIR}/{LAST_CHECKPOINT_LINK} (the run "
            "saved no checkpoint yet); drop --resume and pick a new --output-dir to start over"
        )
    target = link.resolve()
    if not (target / PRETRAINED_MODEL_DIR).is_dir() or not (target / TRAINING_STATE_DIR).is_dir():
        raise CheckpointError(f"{link} -> {target} lacks {PRETRAINED_MODEL_DIR}/ or {TRAINING_STATE_DIR}/")
    return target


def read_train_config(checkpoint: Path) -> dict[str, Any]:
    path = Path(checkpoint) / PRETRAINED_MODEL_DIR / TRAIN_CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: this checkpoint cannot tell how its run was configured "
                              "(resume needs a checkpoint written by robotui train or lerobot-train)")
    data = _read_json(path)
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} must hold a JSON object")
    return data


def holds_a_run(output_dir: Path) -> bool:
    """True when the directory already has a training run's outputs (LeRobot refuses any existing directory;
    robotui lets a launcher create the directory and put its own log there first)."""
    output_dir = Path(output_dir)
    return any((output_dir / name).exists() for name in (CHECKPOINTS_DIR, METRICS_FILE))


# ------------------------------------------------------------------------------------------- helpers


def _tensor(value: Any) -> torch.Tensor:
    t = value if isinstance(value, torch.Tensor) else torch.tensor(value)
    return t.detach().to("cpu").contiguous().clone()


def _like(current: Mapping[str, Any], saved: Mapping[str, Any]) -> dict[str, Any]:
    """A saved param group shaped like the current one (JSON turned tuples into lists)."""
    out = dict(current)
    for key, value in saved.items():
        if key in _IMPLEMENTATION_KEYS:
            continue  # how this machine runs the update (fused kernel...), not a hyper-parameter
        if key in out and isinstance(out[key], tuple) and isinstance(value, list):
            value = tuple(value)
        out[key] = value
    return out


def _write_json(path: Path, data: Any) -> None:
    write_json(path, data, indent=4)  # LeRobot's write_json


def _read_json(path: Path) -> Any:
    try:
        return read_json(path)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from exc


def _fsync_tree(root: Path) -> None:
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fd = os.open(dirpath, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
