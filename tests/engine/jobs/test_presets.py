"""Presets produce LeRobot's CLI flags (and robotui train's), with the lessons from LeRobot users built in."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.jobs import Hyperparameters, JobError, plan_training_job
from engine.jobs.presets import PRESETS, get_preset, training_argv
from policies.act.config import ACTConfig
from policies.train.config import apply_sets, parse_sets


def _argv(preset: str, **hyper: object) -> list[str]:
    return training_argv(
        PRESETS[preset],
        Hyperparameters(**hyper),
        dataset="/data/pick",
        output_dir="/runs/x/train",
        job_name="x",
    )


def test_act_from_scratch() -> None:
    assert _argv("act") == [
        "lerobot-train",
        "--dataset.repo_id=local/pick",
        "--dataset.root=/data/pick",
        "--policy.type=act",
        "--output_dir=/runs/x/train",
        "--job_name=x",
        "--policy.push_to_hub=false",
        "--steps=100000",
        "--batch_size=8",
        "--policy.optimizer_lr=1e-05",
        "--policy.chunk_size=100",
        "--policy.n_action_steps=100",
        "--save_freq=20000",
        "--log_freq=200",
    ]


def test_smolvla_fine_tune_with_unfrozen_encoder() -> None:
    argv = _argv("smolvla", steps=3000, freeze_vision_encoder=False, train_expert_only=False, device="cuda")
    assert "--policy.path=lerobot/smolvla_base" in argv and not any(
        a.startswith("--policy.type") for a in argv
    )
    assert "--policy.freeze_vision_encoder=false" in argv and "--policy.train_expert_only=false" in argv
    assert "--policy.scheduler_decay_steps=3000" in argv  # else a short run never decays its LR
    assert "--save_freq=3000" in argv and "--policy.device=cuda" in argv  # save_freq capped at the run


@pytest.mark.parametrize(("preset", "base"), [("pi0", "lerobot/pi0_base"), ("pi05", "lerobot/pi05_base")])
def test_pi_presets_fine_tune_their_base(preset: str, base: str) -> None:
    argv = _argv(preset)
    assert (
        f"--policy.path={base}" in argv
        and "--batch_size=4" in argv
        and "--policy.optimizer_lr=2.5e-05" in argv
    )
    assert "--policy.chunk_size=50" in argv and "--policy.scheduler_decay_steps=30000" in argv


def test_diffusion_horizon_and_overrides() -> None:
    argv = _argv("diffusion", chunk_size=32, n_action_steps=16, lr=3e-4, pretrained="me/my_diffusion")
    assert "--policy.horizon=32" in argv and "--policy.n_action_steps=16" in argv
    assert "--policy.optimizer_lr=0.0003" in argv and "--policy.path=me/my_diffusion" in argv
    hub = training_argv(
        PRESETS["act"],
        Hyperparameters(),
        dataset="me/pick",
        output_dir="o",
        job_name="j",
        dataset_is_folder=False,
        extra=["--seed=7"],
    )
    assert (
        "--dataset.repo_id=me/pick" in hub
        and not any("dataset.root" in a for a in hub)
        and hub[-1] == "--seed=7"
    )


def test_robotui_trainer_preset() -> None:
    argv = _argv(
        "robotui-act", steps=500, batch_size=4, lr=2e-5, chunk_size=20, n_action_steps=10, device="cpu"
    )
    assert argv == [
        "robotui",
        "train",
        "--dataset",
        "/data/pick",
        "--policy",
        "act",
        "--output-dir",
        "/runs/x/train",
        "--steps",
        "500",
        "--batch-size",
        "4",
        "--device",
        "cpu",
        "--set",
        "optimizer_lr=2e-05",
        "--set",
        "chunk_size=20",
        "--set",
        "n_action_steps=10",
    ]
    sets = parse_sets([argv[i + 1] for i, a in enumerate(argv) if a == "--set"])
    config = apply_sets(ACTConfig(), sets)  # the trainer's own --set parser takes them
    assert (config.optimizer_lr, config.chunk_size, config.n_action_steps) == (2e-5, 20, 10)


@pytest.mark.parametrize(
    ("preset", "hyper", "message"),
    [
        ("act", {"freeze_vision_encoder": False}, "act has no freeze_vision_encoder"),
        ("act", {"chunk_size": 10, "n_action_steps": 20}, "cannot exceed the chunk size"),
        ("act", {"steps": 0}, "steps must be at least 1"),
        ("smolvla", {"lr": -1.0}, "learning rate must be positive"),
        ("robotui-act", {"save_freq": 10}, "robotui train takes no save/log frequency"),
    ],
)
def test_bad_hyperparameters(preset: str, hyper: dict, message: str) -> None:
    with pytest.raises(JobError, match=message):
        _argv(preset, **hyper)
    with pytest.raises(JobError, match="no preset 'act2': choose one of act, diffusion"):
        get_preset("act2")


def test_plan_remote_and_local_jobs(tmp_path: Path) -> None:
    dataset = tmp_path / "pick"
    dataset.mkdir()
    remote = plan_training_job("r1", "act", Hyperparameters(steps=50), str(dataset), host="me@gpu:2222")
    assert (remote.run_dir, remote.output_dir, remote.total_steps) == (
        "robotui/runs/r1",
        "robotui/runs/r1/train",
        50,
    )
    assert (remote.dataset, remote.remote_dataset) == (str(dataset), "robotui/datasets/pick")
    assert (
        "--dataset.root=robotui/datasets/pick" in remote.argv
        and "--output_dir=robotui/runs/r1/train" in remote.argv
    )
    assert "--dataset.repo_id=local/pick" in remote.argv
    odd = tmp_path / "my data (v2)"
    odd.mkdir()
    assert (
        "--dataset.repo_id=local/my_data_v2"
        in plan_training_job("r2", "act", Hyperparameters(), str(odd)).argv
    )

    local = plan_training_job(
        "l1", "robotui-act", Hyperparameters(), str(dataset), run_dir=str(tmp_path / "run")
    )
    assert local.host is None and local.dataset is None and local.total_steps == 100_000
    assert local.argv[:4] == ("robotui", "train", "--dataset", str(dataset))
    assert local.output_dir == str(tmp_path / "run" / "train")

    hub = plan_training_job("h1", "smolvla", Hyperparameters(), "me/pick", host="gpu")
    assert hub.dataset is None and "--dataset.repo_id=me/pick" in hub.argv
