"""`robotui calibrate` through the real parser: scripted and Enter-driven runs on the virtual SO-101 (its
virtual hand moving the arm), and the command-line mistakes a user makes."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.calibration import CALIBRATION_FIELDS, calibration_path
from drivers.emulator import EmulatedBus
from drivers.motors.bus import MotorCalibration
from drivers.robots import safety
from drivers.sim.scene import JOINT_NAMES
from drivers.sim.ticks import TickMap
from drivers.sim.virtual_robot import FOLLOWER_MOUNT_SEED, LEADER_MOUNT_SEED
from robotui.cli import main

FOLLOWER_FILE = ("robots", "so_follower", "sim_follower")
LEADER_FILE = ("teleoperators", "so_leader", "sim_leader")


@pytest.fixture(autouse=True)
def _release_everything() -> Iterator[None]:
    yield
    safety.release_all("test teardown")
    safety.uninstall_signal_handlers()


def stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def check_file(path: Path, truth: dict[str, MotorCalibration]) -> None:
    """LeRobot's layout, and the numbers of the virtual arm: homed at its middle, most of each range seen."""
    data = json.loads(path.read_text())
    assert list(data) == list(JOINT_NAMES)
    for motor, entry in data.items():
        assert list(entry) == list(CALIBRATION_FIELDS), motor
        assert all(type(value) is int for value in entry.values()), motor
        assert entry["id"] == truth[motor].id and entry["drive_mode"] == 0
        assert abs(entry["homing_offset"] - truth[motor].homing_offset) <= 10, motor
        if motor == "wrist_roll":
            assert (entry["range_min"], entry["range_max"]) == (0, 4095)
            continue
        low, high = truth[motor].range_min, truth[motor].range_max
        assert low - 10 <= entry["range_min"] < 2047 < entry["range_max"] <= high + 10, motor
        assert entry["range_max"] - entry["range_min"] >= 0.6 * (high - low), motor


@pytest.mark.parametrize(
    ("flags", "where", "seed"),
    [
        ([], FOLLOWER_FILE, FOLLOWER_MOUNT_SEED),
        (["--teleop"], LEADER_FILE, LEADER_MOUNT_SEED),
        (["--robot-type", "so101_leader"], LEADER_FILE, LEADER_MOUNT_SEED),  # a leader type implies --teleop
    ],
)
def test_sim_non_interactive_writes_the_calibration(
    flags: list[str], where: tuple[str, str, str], seed: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["calibrate", "--sim", *flags, "--non-interactive", "--range-seconds", "2"]) == 0
    path = calibration_path(*where)  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert f"calibration saved to {path}" in out
    assert "wrist_roll" in out and "full turn" in out  # the range table
    check_file(path, TickMap.seeded(seed).calibration())


def test_sim_interactive_with_enter(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    stdin(monkeypatch, "\n\n")  # Enter at the middle pose, Enter once the ranges are recorded
    assert main(["calibrate", "--sim", "--range-seconds", "1.5"]) == 0
    out = capsys.readouterr().out
    path = calibration_path(*FOLLOWER_FILE)
    assert "Move every joint to the middle" in out and "Homing offsets written" in out
    assert f"calibration saved to {path}" in out
    check_file(path, TickMap.seeded(FOLLOWER_MOUNT_SEED).calibration())

    # The file exists now: Enter uses it (the fresh virtual servos get it written to them)...
    saved = path.read_text()
    stdin(monkeypatch, "\n")
    assert main(["calibrate", "--sim"]) == 0
    out = capsys.readouterr().out
    assert f"Found {path}" in out and "Written to the motors" in out
    assert path.read_text() == saved
    # ... and `c` recalibrates.
    stdin(monkeypatch, "c\n\n\n")
    assert main(["calibrate", "--sim", "--range-seconds", "1.5"]) == 0
    assert "Homing offsets written" in capsys.readouterr().out


def test_stdin_closing_mid_way_says_to_use_non_interactive(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin(monkeypatch, "")
    assert main(["calibrate", "--sim", "--teleop"]) == 1
    err = capsys.readouterr().err
    assert "so_leader 'sim_leader'" in err and "stdin closed" in err and "--non-interactive" in err
    assert not calibration_path(*LEADER_FILE).exists()


def test_a_port_that_is_not_there(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = tmp_path / "ttyACM7"
    code = main(["calibrate", "--robot-type", "so101_follower", "--port", str(port), "--id", "lab",
                 "--non-interactive", "--range-seconds", "1"])
    assert code == 1
    err = capsys.readouterr().err
    assert str(port) in err and "so_follower 'lab'" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--robot-type", "so101_folower", "--port", "/dev/ttyACM0"], "Did you mean 'so101_follower'?"),
        (["--robot-type", "koch_folower", "--sim"], "Did you mean 'koch_follower'?"),
        (["--teleop", "--robot-type", "so101_follower", "--port", "/dev/ttyACM0"], "drop --teleop"),
        (["--robot-type", "so101_follower"], "--port needed"),
        ([], "--robot-type and --port needed (or --sim"),
        (["--sim", "--range-seconds", "0"], "--range-seconds must be a positive number"),
    ],
)
def test_command_line_mistakes(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", *argv, "--non-interactive"]) == 2
    assert message in capsys.readouterr().err


def test_a_joint_that_never_moved_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A scripted run on a rig where nobody moves the arm: the error names the arm and every joint."""
    start = {1: 1000.0, 2: 3000.0, 3: 2100.0, 4: 700.0, 5: 3500.0, 6: 2600.0}
    with EmulatedBus("feetech", dict.fromkeys(range(1, 7), "sts3215"), motion="external", name="still",
                     port_dir=tmp_path / "ports", initial_positions=start) as emu:
        code = main(["calibrate", "--robot-type", "so101_follower", "--port", emu.port, "--id", "still",
                     "--non-interactive", "--range-seconds", "0.2"])
        assert code == 1
        err = capsys.readouterr().err
        assert "so_follower 'still'" in err and "never moved" in err
        for joint in ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "gripper"):
            assert f"{joint} (0 ticks)" in err
        assert "wrist_roll" not in err  # full turn: nothing to record
        assert not any(emu.servo(i).torque_enabled for i in range(1, 7))
    assert not calibration_path("robots", "so_follower", "still").exists()
