"""`robotui rollout` headless on the simulated SO-101 with a tiny real ACT checkpoint: slash commands from
stdin are echoed or refused with the closest match, the policy's actions reach the arm, dagger records, and
bad command lines or policies are refused before anything moves."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.dataset.reader import LeRobotDatasetReader
from engine.dataset.validate import check, has_errors
from robotui.cli import main
from tests.act_checkpoint import save_tiny_act


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_act(tmp_path_factory.mktemp("act"))


class TypedLines:
    """stdin as a person types it: one line every `gap_s` seconds."""

    def __init__(self, lines: tuple[str, ...], gap_s: float) -> None:
        self.lines, self.gap_s = lines, gap_s

    def __iter__(self) -> Iterator[str]:
        for line in self.lines:
            time.sleep(self.gap_s)
            yield line + "\n"


def stdin(monkeypatch: pytest.MonkeyPatch, *lines: str, gap_s: float = 0.0) -> None:
    monkeypatch.setattr("sys.stdin", TypedLines(lines, gap_s))


def test_commands_from_stdin_run_the_policy(checkpoint: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    stdin(monkeypatch, "/action", "/paws", "/help", "/subtask grasp", "/takeover", gap_s=0.3)
    code = main(["rollout", "--sim", "--policy", str(checkpoint), "--task", "pick", "--duration", "4"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "preflight: front: camera 320×240 is resized to the policy's 128×96" in out
    assert "ready, paused (base)" in out
    assert "> /action: running the policy" in out
    assert "unknown command /paws — did you mean /pause?" in out
    assert "/takeover" in out and "Take control" in out  # /help lists the rollout commands
    assert "> /subtask: subtask: grasp (this policy ignores language)" in out
    assert "mode: autonomous" in out and "mode: takeover" in out  # the leader reached the pose, then limp
    dispatched = int(out.split("dispatched ")[-1].split()[0])
    assert dispatched > 10


def test_end_of_input_stops_and_dagger_records(checkpoint: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "rollout_dagger"
    stdin(monkeypatch, "/takeover")
    code = main(["rollout", "--sim", "--policy", str(checkpoint), "--strategy", "dagger", "--task", "pick",
                 "--dataset-root", str(root), "--record-autonomous", "--start", "--vcodec", "libx264",
                 "--duration", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "> /action: running the policy" in out
    assert "saved" in out and str(root) in out
    assert not has_errors(check(root))
    ds = LeRobotDatasetReader.open(root)
    assert ds.total_episodes == 1 and "intervention" in ds.features


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--strategy", "dagger"], "--strategy dagger records: give it --dataset-root DIR"),
        (["--dataset-root", "/tmp/x"], "the base strategy records nothing"),
        (["--duration", "-1"], "--duration must be positive seconds"),
        (["--blend", "-3"], "blend ticks cannot be negative"),
        (["--rtc"], "act policy has no real-time chunking guidance"),
    ],
)
def test_bad_command_lines_are_refused(checkpoint: Path, argv: list[str], message: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rollout", "--sim", "--policy", str(checkpoint), *argv]) == 2
    assert message in capsys.readouterr().err


def test_a_missing_policy_or_camera_is_refused_before_anything_moves(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rollout", "--sim", "--policy", str(tmp_path / "nope")]) == 2
    assert "cannot load the policy" in capsys.readouterr().err
    top = save_tiny_act(tmp_path / "top", cameras={"top": (96, 128)})
    assert main(["rollout", "--sim", "--policy", str(top)]) == 2
    err = capsys.readouterr().err
    assert "refused" in err and "camera 'top'" in err
