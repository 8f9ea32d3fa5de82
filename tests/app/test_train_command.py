"""`robotui train` refusals: every bad input stops before training with a one-line message that says what to do
(the training itself is tested in tests/policies/train on a dataset recorded from the virtual robot)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from robotui.cli import main
from tests.engine.dataset.lerobot_fixture import write_lerobot_style_dataset
from tests.policies.train.sim_dataset import REPO, TINY_ACT, tiny_act_sets


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # rich wraps at 80 columns otherwise


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """Two cores shared with other tests: one intra-op thread avoids oversubscription stalls."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("train-cmd")
    return {
        "two_cams": write_lerobot_style_dataset(base / "two", [6, 5], {"front": (16, 16), "wrist": (16, 16)}).root,
        "one_cam": write_lerobot_style_dataset(base / "one", [6], {"front": (16, 16)}).root,
        "no_cam": write_lerobot_style_dataset(base / "none", [6], {}).root,
    }


def train(*argv: str) -> int:
    return main(["train", "--device", "cpu", "--num-workers", "0", *argv])


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], "say what to train on: --dataset ROOT_OR_ID"),
        (["--dataset", "{missing}"], "no dataset at"),
        (["--dataset", "{two_cams}", "--set", "dim_modle=64"], "did you mean 'dim_model'"),
        (["--dataset", "{two_cams}", "--set", "chunk_size=abc"], "chunk_size is an integer"),
        (["--dataset", "{two_cams}", "--set", "input_features=x"], "no such setting"),
        (["--dataset", "{two_cams}", "--set", "n_action_steps=500"], "cannot exceed chunk_size"),
        (["--dataset", "{two_cams}", "--batch-size", "0"], "--batch-size must be at least 1"),
        (["--dataset", "{no_cam}"], "ACT needs at least one camera"),
        (["--dataset", "{two_cams}", "--resume"], "nothing to resume"),
    ],
)
def test_bad_command_lines_are_refused(argv: list[str], expected: str, datasets: dict[str, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a.format(missing=tmp_path / "nope", **datasets) for a in argv]
    assert train("--output-dir", str(tmp_path / "run"), *argv) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # nothing was written


def test_an_existing_run_needs_resume(datasets: dict[str, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "launcher.log").write_text("a launcher may create the run directory first\n")
    (out / "metrics.jsonl").write_text('{"step": 2, "loss": 1.0}\n')
    assert train("--dataset", str(datasets["two_cams"]), "--output-dir", str(out)) == 2
    assert "already holds a training run: add --resume" in capsys.readouterr().err
    assert (out / "metrics.jsonl").read_text() == '{"step": 2, "loss": 1.0}\n'


def test_imagenet_weights_offline_say_how_to_proceed(datasets: dict[str, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    tiny = [a for s in TINY_ACT if not s.startswith("pretrained_backbone") for a in ("--set", s)]  # LeRobot's default
    assert train("--dataset", str(datasets["two_cams"]), "--output-dir", str(tmp_path / "run"), *tiny) == 2
    err = capsys.readouterr().err
    assert "timm/resnet18.tv_in1k" in err and "offline" in err and "pretrained_backbone_weights=none" in err


def test_resume_refuses_a_dataset_without_the_policys_cameras(datasets: dict[str, Path], tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert train("--dataset", str(datasets["two_cams"]), "--output-dir", str(out), "--steps", "2", "--batch-size",
                 "2", "--log-freq", "1", *tiny_act_sets()) == 0
    assert "step:2 smpl:4" in capsys.readouterr().out
    assert train("--resume", "--output-dir", str(out), "--steps", "3", "--dataset", str(datasets["one_cam"])) == 2
    err = capsys.readouterr().err
    assert "lacks observation.images.wrist, which the policy needs" in err
    assert train("--resume", "--output-dir", str(out), "--steps", "3", "--set", "chunk_size=20") == 2
    assert "--set chunk_size cannot change on --resume" in capsys.readouterr().err
    assert train("--resume", "--output-dir", str(out), "--steps", "3", "--batch-size", "64") == 1
    assert "fewer than one batch of 64" in capsys.readouterr().err


def test_help_and_a_light_import(capsys: pytest.CaptureFixture[str]) -> None:
    """`robotui --help` and the app import every command module: this one must not pull torch in."""
    code = ("import sys, robotui.commands.train as t, argparse; p = argparse.ArgumentParser(); "
            "t.register(p.add_subparsers()); print('torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "False", proc.stderr
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    for flag in ("--dataset", "--policy", "--steps", "--batch-size", "--output-dir", "--device", "--resume",
                 "--num-workers", "--seed", "--log-freq", "--save-freq", "--set", "--augment", "--host",
                 "--detach"):
        assert flag in help_text
