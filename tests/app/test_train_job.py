"""`robotui train --detach` and `--host`: the same tiny training as a launcher job, here in the background and
over a real SSH connection (sshd on 127.0.0.1); the job's metrics are parsed and its checkpoint comes home."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from engine.jobs import JobLauncher, JobState
from robotui.cli import main
from tests.engine.jobs.sshd import SshServer, sshd  # noqa: F401 (the session fixture)
from tests.policies.train.sim_dataset import sim_dataset, tiny_act_sets

ROBOTUI = str(Path(sys.executable).with_name("robotui"))  # the venv's entry point, as a remote PATH would have


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sim_dataset(tmp_path_factory)


def finish(name: str, timeout: float = 240.0) -> JobLauncher:
    launcher = JobLauncher()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = launcher.snapshot(name)
        if snap.record.state is not JobState.RUNNING:
            assert snap.record.state is JobState.FINISHED, (snap.record, snap.problem)
            assert snap.progress.step == 6 and snap.progress.loss is not None
            return launcher
        time.sleep(0.5)
    raise AssertionError(f"job {name} still running after {timeout} s")


def train_args(dataset: Path) -> list[str]:
    return ["train", "--dataset", str(dataset), "--steps", "6", "--batch-size", "2", "--num-workers", "0",
            "--log-freq", "2", "--save-freq", "6", "--device", "cpu", *tiny_act_sets(), "--program", ROBOTUI]


def test_detach_trains_in_the_background(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*train_args(dataset), "--detach", "--name", "bg", "--output-dir", str(tmp_path / "run")]) == 0
    assert "started job bg on this machine" in capsys.readouterr().out
    finish("bg")
    assert (tmp_path / "run" / "train" / "checkpoints" / "last" / "pretrained_model" / "config.json").is_file()


def test_host_trains_over_ssh_and_the_checkpoint_comes_home(dataset: Path, tmp_path: Path, sshd: SshServer,  # noqa: F811
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    options = [a for o in sshd.options for a in ("--ssh-option", o)]
    code = main([*train_args(dataset), "--host", sshd.host, "--identity", str(sshd.identity), *options,
                 "--name", "gpu", "--output-dir", str(tmp_path / "remote-run")])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    assert f"started job gpu on {sshd.host}" in out.out
    launcher = finish("gpu")
    fetched = launcher.fetch("gpu")
    assert (fetched / "config.json").is_file() and (fetched / "model.safetensors").is_file()
