"""`robotui teleop`, the headless twin of the Teleop screen: on --sim as a real process (duration, SIGTERM),
and on the real-hardware path against a virtual SO-101 started by the test (the follower's registers are
read back afterwards: it moved, and its torque is off). Bad input gets a message that names the fix."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.sim.virtual_robot import FOLLOWER_ID, LEADER_ID, VirtualSO101
from robotui.cli import main

REPO = Path(__file__).resolve().parents[2]
MOTION = re.compile(r"largest follower motion (\d+\.\d) \((\w+)\)")


@pytest.fixture
def virtual(tmp_path: Path) -> Iterator[VirtualSO101]:
    """A virtual SO-101 on pseudo-terminals, as `robotui sim` in another terminal would provide."""
    sim = VirtualSO101(port_dir=tmp_path / "ports").start()
    try:
        yield sim
    finally:
        sim.stop()


def arm_flags(sim: VirtualSO101) -> list[str]:
    return ["--robot-port", sim.follower_port, "--robot-id", FOLLOWER_ID,
            "--teleop-port", sim.leader_port, "--teleop-id", LEADER_ID]


def torque(sim: VirtualSO101) -> list[int]:
    bus = sim.follower_bus
    with bus.lock:
        return [bus.servo(i).read_register("Torque_Enable") for i in range(1, 7)]


def robotui(*args: str) -> list[str]:
    return [sys.executable, "-m", "robotui", *args]


def test_sim_demo_for_a_duration_exits_zero_and_the_follower_moved() -> None:
    done = subprocess.run(robotui("teleop", "--sim", "--duration", "2", "--demo"), cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "teleop: leader so101_leader on " in done.stdout and "ttyEMU-sim-leader" in done.stdout
    assert re.search(r"Hz \(target 60\)\s+p99\s+\d+\.\d ms\s+overruns \d+", done.stdout), done.stdout
    found = MOTION.search(done.stdout)
    assert found is not None and float(found.group(1)) > 5.0, done.stdout
    assert "follower torque released" in done.stderr


def test_sigterm_stops_cleanly_with_exit_zero() -> None:
    proc = subprocess.Popen(robotui("--sim", "teleop"), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # the first status line: the loop is running
            if "Hz" in line and "target" in line:
                break
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "summary:" in out and "follower torque released" in err


def test_hardware_path_follows_the_leader_and_releases_torque(
    virtual: VirtualSO101, capsys: pytest.CaptureFixture[str]
) -> None:
    virtual.write_calibration_files()
    virtual.start_demo()
    assert main(["teleop", *arm_flags(virtual), "--duration", "2", "--fps", "50"]) == 0
    out = capsys.readouterr().out
    assert "at 50 Hz" in out and "(target 50)" in out
    found = MOTION.search(out)
    assert found is not None and float(found.group(1)) > 5.0, out
    assert torque(virtual) == [0] * 6


def test_keyboard_jogging_from_a_terminal_moves_the_selected_joint(
    virtual: VirtualSO101, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    virtual.write_calibration_files()
    master, slave = os.openpty()
    try:
        with os.fdopen(slave, "r", closefd=False) as terminal:
            monkeypatch.setattr("sys.stdin", terminal)
            # Step 2 -> 10, select elbow_flex, jog twice: the keys wait in the terminal until teleop starts.
            os.write(master, b"++\x1b[B\x1b[B\x1b[C\x1b[C")
            flags = [*arm_flags(virtual)[:4], "--teleop-type", "keyboard"]
            assert main(["teleop", *flags, "--duration", "2.5"]) == 0
    finally:
        os.close(slave)
        os.close(master)
    out = capsys.readouterr().out
    assert "jog elbow_flex ±10" in out
    found = MOTION.search(out)
    assert found is not None and found.group(2) == "elbow_flex" and float(found.group(1)) > 15.0, out
    assert torque(virtual) == [0] * 6


def test_a_lost_port_mid_run_exits_one_naming_the_port(
    virtual: VirtualSO101, capsys: pytest.CaptureFixture[str]
) -> None:
    virtual.write_calibration_files()
    unplug = threading.Timer(1.0, virtual.unplug, args=("follower",))
    unplug.start()
    try:
        assert main(["teleop", *arm_flags(virtual), "--duration", "30"]) == 1
    finally:
        unplug.cancel()
        unplug.join()
    err = capsys.readouterr().err
    assert f"robotui teleop: stopped — Lost {virtual.follower_port}" in err and "Plug it back in" in err
    # Over a dead link nothing can switch torque off; the command says so instead of claiming it did.
    assert "torque could not be switched off: it may still hold its pose" in err
    assert "follower torque released" not in err
    assert torque(virtual) == [1] * 6


def test_missing_calibration_names_the_file_and_the_fix(
    virtual: VirtualSO101, capsys: pytest.CaptureFixture[str]
) -> None:
    # No calibration files written: the arms answer, but nobody knows their ranges.
    assert main(["teleop", *arm_flags(virtual), "--duration", "1"]) == 1
    err = capsys.readouterr().err
    assert "robots/so_follower/sim_follower.json" in err and "teleoperators/so_leader/sim_leader.json" in err
    assert "Calibrate it first" in err
    assert torque(virtual) == [0] * 6  # connecting had enabled it; the exit path released it


def test_a_port_that_does_not_exist_says_how_to_find_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = tmp_path / "ttyACM9"
    assert main(["teleop", "--robot-port", str(port), "--teleop-type", "keyboard", "--duration", "1"]) == 1
    err = capsys.readouterr().err
    assert f"Serial port {port} does not exist" in err and "robotui find-port" in err


def test_no_port_at_all_says_which_flag_to_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["teleop", "--teleop-type", "keyboard", "--duration", "1"]) == 1
    assert "--robot-port" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--robot-type", "so101_folower"], "--robot-type 'so101_folower' is not a known type — did you mean "
                                            "'so101_follower'?"),
        (["--teleop-type", "keybaord"], "did you mean 'keyboard'?"),
        (["--demo"], "--demo moves the simulated leader: add --sim"),
        (["--sim", "--duration", "0"], "--duration must be a positive number of seconds"),
        (["--sim", "--fps", "0"], "teleop_fps must be a whole number of frames per second"),
    ],
)
def test_bad_arguments_exit_two_with_the_fix(
    flags: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["teleop", *flags]) == 2
    assert expected in capsys.readouterr().err
