"""The training-state files on their own: LeRobot's step naming, the atomic `last` link, optimizer and RNG
round trips through LeRobot's flat safetensors keys, and the refusals that stop a bad resume."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from policies.train import checkpoint as ckpt
from policies.train.metrics import truncate_after


def test_step_directories_are_zero_padded_like_lerobot() -> None:
    assert ckpt.step_identifier(200, 100_000) == "000200"
    assert ckpt.step_identifier(5, 10) == "000005"
    assert ckpt.step_identifier(42, 12_345_678) == "00000042"


def _optimizer(seed: int = 0) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = torch.optim.AdamW([{"params": model[0].parameters()}, {"params": model[2].parameters(), "lr": 1e-5}],
                            lr=1e-3, weight_decay=1e-4)
    for _ in range(3):
        model(torch.randn(5, 4)).pow(2).mean().backward()
        opt.step()
        opt.zero_grad()
    return model, opt


def _save(out: Path, step: int, opt: torch.optim.Optimizer, total: int = 100) -> Path:
    def save_model(directory: Path) -> None:
        (directory / "config.json").write_text("{}")

    return ckpt.save_checkpoint(out, step, total, save_model=save_model, optimizer=opt, world_size=1, batch_size=8)


def test_optimizer_state_round_trips_through_lerobots_keys(tmp_path: Path) -> None:
    _, opt = _optimizer()
    path = _save(tmp_path, 3, opt)
    state_dir = path / "training_state"
    groups = json.loads((state_dir / "optimizer_param_groups.json").read_text())
    assert [g["lr"] for g in groups] == [1e-3, 1e-5] and groups[0]["betas"] == [0.9, 0.999]
    _, fresh = _optimizer(seed=1)
    fresh.param_groups[1]["lr"] = 0.5
    ckpt.load_optimizer_state(fresh, state_dir)
    a, b = opt.state_dict(), fresh.state_dict()
    assert b["param_groups"][1]["lr"] == 1e-5 and b["param_groups"][0]["betas"] == (0.9, 0.999)
    for pid, per_param in a["state"].items():
        for name, value in per_param.items():
            assert torch.equal(value, b["state"][pid][name]), (pid, name)


def test_rng_state_restores_python_numpy_and_torch(tmp_path: Path) -> None:
    _, opt = _optimizer()
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    state_dir = _save(tmp_path, 3, opt) / "training_state"
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    info = ckpt.load_training_state(state_dir.parent, opt)
    assert info["step"] == 3
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_last_is_repointed_atomically_and_a_stale_step_dir_replaced(tmp_path: Path) -> None:
    _, opt = _optimizer()
    _save(tmp_path, 10, opt)
    last = tmp_path / "checkpoints" / "last"
    assert os.readlink(last) == "000010"
    stale = tmp_path / "checkpoints" / "000020"
    stale.mkdir()
    (stale / "half-written").write_text("x")  # a run that died before moving `last`
    _save(tmp_path, 20, opt)
    assert os.readlink(last) == "000020" and ckpt.last_checkpoint(tmp_path) == stale.resolve()
    assert not (stale / "half-written").exists() and (stale / "training_state" / "training_step.json").is_file()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["000010", "000020", "last"]


def test_resume_refusals_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ckpt.CheckpointError, match=r"nothing to resume .* drop --resume"):
        ckpt.last_checkpoint(tmp_path)
    _, opt = _optimizer()
    path = _save(tmp_path, 5, opt)
    (path / "training_state" / "rng_state.safetensors").unlink()
    with pytest.raises(ckpt.CheckpointError, match=r"rng_state\.safetensors is missing"):
        ckpt.load_training_state(path, opt)
    other = torch.optim.AdamW(nn.Linear(2, 2).parameters())
    with pytest.raises(ckpt.CheckpointError, match="does not match this policy's parameter groups"):
        ckpt.load_optimizer_state(other, path / "training_state")
    with pytest.raises(ckpt.CheckpointError, match=r"train_config\.json is missing"):
        ckpt.read_train_config(path)


def test_metrics_past_the_resumed_step_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in (2, 4, 6)) + '{"step": 8, "lo')
    truncate_after(path, 4)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [2, 4]
