"""End to end on a dataset recorded from the virtual robot: a tiny ACT trains and its loss falls, the output
tree is LeRobot's file for file, the log lines are LeRobot's, resume continues the step count, and a
2-process gloo DDP run under torchrun works with rank 0 alone writing."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import policies
from robotui.cli import main
from tests.policies.train.sim_dataset import REPO, sim_dataset, tiny_act_sets

STEPS, LOG_FREQ, SAVE_FREQ, BATCH = 16, 4, 8, 4
# LeRobot's MetricsTracker line after its "%(levelname)s %(asctime)s %(location)15s" prefix (§7.1).
LINE = re.compile(
    r"^INFO \d{4}-\d\d-\d\d \d\d:\d\d:\d\d [ \w.:/-]{15} step:(\d+) smpl:(\d+K?) ep:\d+ epch:\d+\.\d\d "
    r"loss:\d+\.\d{3} grdn:\d+\.\d{3} lr:\d\.\de-\d\d data_s:\d+\.\d{3} prep_s:\d+\.\d{3} updt_s:\d+\.\d{3} "
    r"step_s:\d+\.\d{3} smp/s:\d+ l1_loss:\d+\.\d{3} kld_loss:\d+\.\d{3}$"
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sim_dataset(tmp_path_factory)


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Two cores shared with other tests: one intra-op thread avoids oversubscription stalls."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def train(*argv: str) -> int:
    return main(["train", "--device", "cpu", "--num-workers", "0", *argv])


@pytest.fixture(scope="module")
def run(dataset: Path, tmp_path_factory: pytest.TempPathFactory, one_thread: None) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("train") / "run"
    capture = tmp_path_factory.getbasetemp() / "train-run.log"
    with capture.open("w") as stream, contextlib.redirect_stdout(stream):
        code = train("--dataset", str(dataset), "--output-dir", str(out), "--steps", str(STEPS), "--batch-size",
                     str(BATCH), "--log-freq", str(LOG_FREQ), "--save-freq", str(SAVE_FREQ), "--seed", "3",
                     *tiny_act_sets(), "--set", "optimizer_lr=1e-3")
    log = capture.read_text()
    assert code == 0, log
    return out, log


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_loss_decreases(run: tuple[Path, str]) -> None:
    out, _ = run
    recs = records(out)
    assert [r["step"] for r in recs] == list(range(LOG_FREQ, STEPS + 1, LOG_FREQ))
    first, last = recs[0], recs[-1]
    assert last["loss"] < 0.6 * first["loss"], [r["loss"] for r in recs]
    assert last["l1_loss"] < first["l1_loss"], [r["l1_loss"] for r in recs]
    for r in recs:
        assert r["total_steps"] == STEPS and r["samples"] == r["step"] * BATCH
        assert r["samples_per_s"] > 0 and r["grad_norm"] > 0 and r["lr"] == pytest.approx(1e-3)
        assert r["epoch"] == pytest.approx(r["samples"] / 60)
        assert {"data_s", "prep_s", "update_s", "step_s", "kld_loss", "time"} <= set(r)


def test_console_lines_are_lerobots(run: tuple[Path, str]) -> None:
    _, log = run
    lines = [m for m in map(LINE.match, log.splitlines()) if m]
    assert [int(m.group(1)) for m in lines] == list(range(LOG_FREQ, STEPS + 1, LOG_FREQ)), log
    assert lines[0].group(2) == str(LOG_FREQ * BATCH)
    assert "checkpoint saved:" in log and "random weights" in log  # the backbone warning is printed


def test_output_tree_is_lerobots(run: tuple[Path, str], dataset: Path) -> None:
    out, _ = run
    ckpts = out / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["000008", "000016", "last"]
    last = ckpts / "last"
    assert last.is_symlink() and os.readlink(last) == "000016"  # relative
    model_files = {"config.json", "model.safetensors", "train_config.json", "policy_preprocessor.json",
                   "policy_preprocessor_step_3_normalizer_processor.safetensors", "policy_postprocessor.json",
                   "policy_postprocessor_step_0_unnormalizer_processor.safetensors"}
    state_files = {"optimizer_state.safetensors", "optimizer_param_groups.json", "rng_state.safetensors",
                   "training_step.json"}
    for step in ("000008", "000016"):
        assert {p.name for p in (ckpts / step / "pretrained_model").iterdir()} == model_files
        assert {p.name for p in (ckpts / step / "training_state").iterdir()} == state_files
    assert not [p for p in ckpts.iterdir() if p.name.startswith(".")]  # no staging leftovers

    state = ckpts / "000016" / "training_state"
    assert json.loads((state / "training_step.json").read_text()) == {
        "step": 16, "dp_world_size": 1, "batch_size": BATCH, "grad_accum_steps": 1,
        "parallelism": {"dp_replicate": 1, "dp_shard": 1, "ring_degree": 1, "ulysses_degree": 1}}
    groups = json.loads((state / "optimizer_param_groups.json").read_text())
    assert [g["lr"] for g in groups] == [1e-3, 1e-5] and groups[0]["weight_decay"] == 1e-4
    opt = load_file(state / "optimizer_state.safetensors")
    n_params = sum(len(g["params"]) for g in groups)
    assert {k.rsplit("/", 1)[1] for k in opt} == {"step", "exp_avg", "exp_avg_sq"}
    assert len(opt) == 3 * n_params and opt["state/0/step"].item() == 16
    assert {"py_rng_version", "py_rng_state", "np_rng_state_values", "np_rng_state_index", "np_rng_has_gauss",
            "np_rng_cached_gaussian", "torch_rng_state"} <= set(load_file(state / "rng_state.safetensors"))

    pretrained = ckpts / "000016" / "pretrained_model"
    config = json.loads((pretrained / "config.json").read_text())
    assert config["type"] == "act" and config["chunk_size"] == 10 and config["dim_model"] == 32
    assert set(config["input_features"]) == {"observation.state", "observation.images.front",
                                             "observation.images.wrist"}
    assert config["input_features"]["observation.images.front"] == {"type": "VISUAL", "shape": [3, 24, 32]}
    policy = policies.load_policy(pretrained, "cpu")  # LeRobot's layout is what the loader reads
    assert set(load_file(pretrained / "model.safetensors")) == set(policy.state_dict())
    norm = load_file(pretrained / "policy_preprocessor_step_3_normalizer_processor.safetensors")
    assert norm["observation.images.front.mean"].flatten().tolist() == pytest.approx([0.485, 0.456, 0.406])
    assert "timestamp.mean" in norm  # every dataset stat is kept, as LeRobot does

    tc = json.loads((pretrained / "train_config.json").read_text())
    assert tc["dataset"]["root"] == str(dataset.resolve()) and tc["dataset"]["use_imagenet_stats"] is True
    assert tc["dataset"]["image_transforms"]["enable"] is False
    assert set(tc["dataset"]["image_transforms"]["tfs"]) == {"brightness", "contrast", "saturation", "hue",
                                                              "sharpness", "affine"}
    assert tc["policy"] == config
    assert tc["optimizer"] == {"type": "adamw", "lr": 1e-3, "weight_decay": 1e-4, "grad_clip_norm": 10.0,
                               "betas": [0.9, 0.999], "eps": 1e-8}
    assert (tc["steps"], tc["batch_size"], tc["save_freq"], tc["log_freq"], tc["seed"]) == (STEPS, BATCH, SAVE_FREQ, LOG_FREQ, 3)
    assert tc["scheduler"] is None and tc["use_policy_training_preset"] is True


def test_resume_continues_the_step_count(run: tuple[Path, str], tmp_path: Path, one_thread: None,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    source, _ = run
    out = tmp_path / "run"
    shutil.copytree(source, out, symlinks=True)
    with (out / "metrics.jsonl").open("a") as f:  # a record from a crash after the last checkpoint
        f.write(json.dumps({"step": 17, "loss": 1.0}) + "\n" + '{"step": 18, "lo')
    assert train("--resume", "--output-dir", str(out), "--steps", "20", "--num-workers", "2") == 0
    log = capsys.readouterr().out
    assert f"resuming {out}" in log and "steps 16 -> 20" in log
    assert os.readlink(out / "checkpoints" / "last") == "000020"
    state = out / "checkpoints" / "000020" / "training_state"
    assert json.loads((state / "training_step.json").read_text())["step"] == 20
    assert load_file(state / "optimizer_state.safetensors")["state/0/step"].item() == 20  # Adam moments kept
    steps = [r["step"] for r in records(out)]
    assert steps == [4, 8, 12, 16, 20]  # the crashed run's tail was dropped, nothing duplicated
    tc = json.loads((out / "checkpoints" / "000020" / "pretrained_model" / "train_config.json").read_text())
    assert tc["steps"] == 20 and tc["resume"] is True and tc["batch_size"] == BATCH

    # Finished: asking for no more steps says how to go on.
    assert train("--resume", "--output-dir", str(out)) == 1
    assert "already reached step 20 of 20" in capsys.readouterr().err


def test_ddp_two_processes_on_cpu(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "robotui",
           "train", "--dataset", str(dataset), "--output-dir", str(out), "--steps", "4", "--batch-size", "2",
           "--log-freq", "2", "--save-freq", "4", "--device", "cpu", "--num-workers", "0", *tiny_act_sets()]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text
    lines = [m for m in map(LINE.match, proc.stdout.splitlines()) if m]
    assert [(int(m.group(1)), m.group(2)) for m in lines] == [(2, "8"), (4, "16")], text  # rank 0 alone logs
    assert "2 process(es)" in proc.stdout
    assert [r["step"] for r in records(out)] == [2, 4]  # one writer
    state = out / "checkpoints" / "000004" / "training_state"
    info = json.loads((state / "training_step.json").read_text())
    assert (info["dp_world_size"], info["batch_size"]) == (2, 2)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["000004", "last"]
    weights = load_file(out / "checkpoints" / "000004" / "pretrained_model" / "model.safetensors")
    assert not any(k.startswith("module.") for k in weights)  # the DDP wrapper is not saved
