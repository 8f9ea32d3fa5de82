"""`robotui replay` headless on the simulated follower: plays an episode and exits 0; a missing episode or a
dataset of other joints is refused (exit 2) with the valid range or both joint lists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from robotui.cli import main
from tests.engine.test_replay import SO_JOINTS, wave, write_dataset


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps at 80 columns otherwise


def test_replay_on_the_sim(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_dataset(tmp_path / "ds", SO_JOINTS, [wave(10), wave(40)])
    assert main(["replay", "--sim", "--dataset", str(root), "--episode", "1", "--fps", "60"]) == 0
    out = capsys.readouterr().out
    assert "replaying episode 1" in out and "40 frames at 60 fps" in out
    assert "replayed 40/40 frames; torque released; final pose within" in out
    within = float(out.split("final pose within ")[1].split()[0])
    assert within < 5.0


def test_missing_episode_is_refused_with_the_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_dataset(tmp_path / "ds", SO_JOINTS, [wave(5), wave(5), wave(5)])
    assert main(["--sim", "replay", "--dataset", str(root), "--episode", "3"]) == 2
    assert "episodes 0..2" in capsys.readouterr().err


def test_other_joints_are_refused_before_moving(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_dataset(tmp_path / "ds", ["base.pos", "elbow.pos"], [np.zeros((3, 2))], robot_type="other")
    assert main(["replay", "--sim", "--dataset", str(root), "--episode", "0"]) == 2
    err = capsys.readouterr().err
    assert "base.pos, elbow.pos" in err and ", ".join(SO_JOINTS) in err


def test_missing_dataset_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "--sim", "--dataset", str(tmp_path / "nope"), "--episode", "0"]) == 2
    assert str(tmp_path / "nope") in capsys.readouterr().err
