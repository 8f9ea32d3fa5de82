"""`robotui record` headless on the simulated SO-101 (real drivers, sim cameras, real dataset writer): the
demonstrator drives the leader, the dataset validates and reads back, resume appends, refusals are clear,
and SIGTERM mid-episode keeps a valid dataset with the documented exit status."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from drivers.emulator import EmulatedBus
from engine.dataset.reader import LeRobotDatasetReader
from engine.dataset.validate import check, has_errors
from robotui.cli import main

REPO = Path(__file__).resolve().parents[2]
FPS = 30
SHORT = ["--episode-time", "1", "--reset-time", "0.3", "--task", "pick", "--vcodec", "libx264"]


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps at 80 columns otherwise


def record(*argv: str) -> int:
    return main(["record", *argv])


def episodes(root: Path) -> list[dict]:
    ds = LeRobotDatasetReader.open(root)
    return [ds.episode(i) for i in ds.episode_indices]


def test_records_on_the_sim_then_resume_appends(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "ds"
    assert record("--sim", "--episodes", "2", *SHORT, "--dataset-root", str(root)) == 0
    out = capsys.readouterr().out
    assert "● recording episode 1/2" in out and "○ reset the scene" in out
    assert "✓ saved episode 0: 30 frames" in out and "✓ saved episode 1: 30 frames" in out
    assert "loop " in out and " Hz p99 " in out  # at least one progress line
    assert "worst save latency" in out and f"next: robotui dataset check {root}" in out
    assert not has_errors(check(root))
    ds = LeRobotDatasetReader.open(root)
    assert (ds.total_episodes, ds.total_frames) == (2, 2 * FPS)
    assert np.ptp(ds.frames(0)["action"], axis=0).max() > 0.1  # the demonstrator moved the leader

    # The global --sim (before the subcommand) works too; --resume appends with contiguous indices.
    assert main(["--sim", "record", "--resume", "--episodes", "2", *SHORT, "--dataset-root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "dataset index 2" in out and "now holds 4 episodes, 120 frames" in out
    assert not has_errors(check(root))
    rows = episodes(root)
    assert [r["episode_index"] for r in rows] == [0, 1, 2, 3]
    assert [(r["dataset_from_index"], r["dataset_to_index"]) for r in rows] == [
        (i * FPS, (i + 1) * FPS) for i in range(4)
    ]


def test_resume_with_a_different_fps_is_refused_with_the_diff(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "ds"
    assert record("--sim", "--episodes", "1", *SHORT, "--episode-time", "0.5", "--dataset-root", str(root)) == 0
    capsys.readouterr()
    assert record("--sim", "--resume", "--fps", "15", "--episodes", "1", *SHORT, "--dataset-root", str(root)) == 2
    err = capsys.readouterr().err
    assert "cannot resume" in err and "fps: dataset 30, now 15" in err
    assert LeRobotDatasetReader.open(root).total_episodes == 1  # untouched
    assert not has_errors(check(root))


def test_push_offline_keeps_the_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # No folder given: the repo id names it under the datasets folder (the global --dataset-root here).
    root = tmp_path / "datasets" / "someone" / "pick"
    code = main(["--dataset-root", str(tmp_path / "datasets"), "record", "--sim", "--episodes", "1", *SHORT,
                 "--episode-time", "0.5", "--push", "--repo-id", "someone/pick"])
    assert code == 1
    err = capsys.readouterr().err
    assert "HF_HUB_OFFLINE" in err and "dataset is kept" in err and "robotui dataset push" in err
    assert not has_errors(check(root)) and LeRobotDatasetReader.open(root).total_episodes == 1


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--episodes", "1"], "a task description is required"),
        (["--task", "x", "--episodes", "0"], "at least 1"),
        (["--task", "x", "--episode-time", "-1"], "episode time must be positive"),
        (["--task", "x", "--push"], "--push needs --repo-id"),
        (["--task", "x", "--robot-type", "so101_folower"], "is not known"),
        (["--task", "x", "--cameras", "{not json"], "cameras"),
        (["--task", "x", "--vcodec", "nosuchcodec"], "not available"),
        (["--task", "x", "--resume"], "nothing to resume"),
    ],
)
def test_bad_command_lines_are_refused_before_anything_starts(
    argv: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert record("--sim", "--dataset-root", str(tmp_path / "ds"), *argv) == 2
    assert expected in capsys.readouterr().err


def test_no_dataset_root_says_where_to_record(capsys: pytest.CaptureFixture[str]) -> None:
    assert record("--sim", "--task", "x") == 2
    assert "--dataset-root DIR" in capsys.readouterr().err


def test_existing_dataset_without_resume_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "ds"
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "info.json").write_text('{"fps": 30}')
    assert record("--sim", "--task", "x", "--dataset-root", str(root)) == 2
    assert "already holds a dataset: add --resume" in capsys.readouterr().err
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert record("--sim", "--task", "x", "--dataset-root", str(other)) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert (other / "notes.txt").read_text() == "mine"


def test_bad_port_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "ttyACM9"
    code = record("--task", "x", "--dataset-root", str(tmp_path / "ds"), "--robot-port", str(missing),
                  "--teleop-type", "keyboard", "--cameras", "{}")
    assert code == 1
    err = capsys.readouterr().err
    assert "cannot start" in err and str(missing) in err
    assert not (tmp_path / "ds").exists()


def test_missing_calibration_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    motors = {i: "sts3215" for i in range(1, 7)}
    with EmulatedBus("feetech", motors, name="nocal", port_dir=tmp_path / "ports") as bus:
        code = record("--task", "x", "--dataset-root", str(tmp_path / "ds"), "--robot-port", bus.port,
                      "--robot-id", "never_calibrated", "--teleop-type", "keyboard", "--cameras", "{}")
    assert code == 1
    err = capsys.readouterr().err
    assert "not calibrated" in err and "never_calibrated" in err and "calibrate" in err
    assert not (tmp_path / "ds").exists()


def test_sigterm_mid_episode_saves_it_and_exits_143(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    cmd = [sys.executable, "-m", "robotui", "record", "--sim", "--episodes", "3", "--episode-time", "30",
           "--reset-time", "0.3", "--task", "pick", "--vcodec", "libx264", "--dataset-root", str(root)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "250"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait for a progress line with frames in the first episode
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "episode 1/3 recording" in line and " frames |" in line:
                break
        assert any(" frames |" in line for line in lines), "".join(lines) + proc.stderr.read()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, out + err
    assert "stopping: saving the episode in progress" in out and "✓ saved episode 0" in out
    assert not has_errors(check(root))
    ds = LeRobotDatasetReader.open(root)
    assert ds.total_episodes == 1 and 0 < ds.total_frames < 30 * FPS
