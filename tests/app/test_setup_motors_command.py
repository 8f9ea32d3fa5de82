"""`robotui setup-motors` through the real parser, against the servo emulator: an operator thread plugs one
factory motor at a time into an emulated bus and presses Enter when asked; stdin that ends switches
to timed waits; bad ports and types fail with the fix and a non-zero status; --sim runs end to end."""

from __future__ import annotations

import io
import queue
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.emulator import EmulatedBus, EmulatedServo
from drivers.motors import MotorBus
from robotui.cli import main


@pytest.fixture(autouse=True)
def _quick_search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No motor here has an id above 20, so the broadcast window covers 20 ids, not 252; no real /dev."""
    monkeypatch.setattr(MotorBus, "broadcast_max_id", 20)
    empty = tmp_path / "no-devices"
    empty.mkdir()
    monkeypatch.setattr("drivers.ports.DEV_DIR", empty)
    monkeypatch.setattr("drivers.ports.BY_ID_DIR", empty)


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[EmulatedBus]:
    with EmulatedBus("feetech", {}, name="new-arm", port_dir=tmp_path / "ports") as emu:
        yield emu


class Keyboard:
    """stdin as the command sees it at a terminal: `readline` blocks until the operator presses Enter. It also
    tells the operator when the command is waiting, i.e. the previous motor is done."""

    def __init__(self) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.waiting = threading.Semaphore(0)

    def readline(self) -> str:
        self.waiting.release()
        try:
            return self.lines.get(timeout=60)
        except queue.Empty:
            return ""  # like a closed terminal: the command stops waiting for keys

    def isatty(self) -> bool:
        return True


@pytest.fixture
def keyboard(monkeypatch: pytest.MonkeyPatch) -> Keyboard:
    keys = Keyboard()
    monkeypatch.setattr(sys, "stdin", keys)
    return keys


def test_one_motor_at_a_time_with_enter(
    bus: EmulatedBus, keyboard: Keyboard, capsys: pytest.CaptureFixture[str]
) -> None:
    # What the operator finds in the box: factory motors, one of them left at another id and baud rate.
    plan = {6: (1, 1_000_000), 5: (9, 500_000), 4: (1, 1_000_000), 3: (1, 1_000_000), 2: (1, 1_000_000),
            1: (1, 1_000_000)}
    plugged: dict[int, EmulatedServo] = {}
    problems: list[str] = []

    def operator() -> None:
        for target, (factory_id, baud) in plan.items():
            if not keyboard.waiting.acquire(timeout=60):
                problems.append(f"the command never asked for the motor that gets id {target}")
                return
            for motor_id in list(bus.servos):  # unplug the motor set up before
                bus.remove_motor(motor_id)
            plugged[target] = bus.add_motor(factory_id, "sts3215", baudrate=baud)
            keyboard.lines.put("\n")

    hands = threading.Thread(target=operator)
    hands.start()
    try:
        code = main(["setup-motors", "--robot-type", "so101_follower", "--port", bus.port])
    finally:
        hands.join(timeout=60)
    out = capsys.readouterr().out
    assert not problems and not hands.is_alive()
    assert code == 0, out
    assert {t: (s.id, s.baudrate) for t, s in plugged.items()} == {t: (t, 1_000_000) for t in plan}
    assert "1/6" in out and "'gripper' motor" in out and "6/6" in out
    assert "'gripper': found at 1000000 baud with id 1 -> set to id 6 at 1 Mbps" in out
    assert "'wrist_roll': found at 500000 baud with id 9 -> set to id 5 at 1 Mbps" in out
    assert "'shoulder_pan': already id 1 at 1 Mbps" in out
    assert "6 of 6 motor(s) set up" in out
    assert "not interactive" not in out


def test_two_motors_at_once_says_which_to_unplug(
    bus: EmulatedBus, keyboard: Keyboard, capsys: pytest.CaptureFixture[str]
) -> None:
    bus.add_motor(1, "sts3215")
    bus.add_motor(2, "sts3215")
    for key in ("\n", "q\n"):  # try, read the error, stop
        keyboard.lines.put(key)
    code = main(["setup-motors", "--robot-type", "so101_follower", "--port", bus.port])
    out = capsys.readouterr().out
    assert code == 1
    assert "More than one motor" in out and "Unplug every motor but 'gripper'" in out
    assert "0 of 6 motor(s) set up" in out and "Not done" in out
    assert set(bus.servos) == {1, 2}  # nothing renamed


def test_stdin_not_interactive_single_motor(
    bus: EmulatedBus, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    servo = bus.add_motor(1, "sts3215", baudrate=115_200)
    code = main(["setup-motors", "--robot-type", "so101_leader", "--port", bus.port, "--motor", "gripper"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "stdin is not interactive" in out and "--wait" in out
    assert "found at 115200 baud with id 1 -> set to id 6" in out
    assert (servo.id, servo.baudrate) == (6, 1_000_000)


def test_no_motor_connected(
    bus: EmulatedBus, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code = main(["setup-motors", "--robot-type", "so101_follower", "--port", bus.port, "--motor", "gripper"])
    out = capsys.readouterr().out
    assert code == 1
    assert "No motor answered" in out and "controller board has power" in out
    assert "Not done: gripper" in out


def test_bad_port(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "ttyACM7"
    code = main(["setup-motors", "--robot-type", "so101_follower", "--port", str(missing)])
    out = capsys.readouterr().out
    assert code == 2
    assert f"port {missing} does not exist" in out and "robotui find-port" in out


def test_wrong_robot_type_gets_the_closest_match(capsys: pytest.CaptureFixture[str], bus: EmulatedBus) -> None:
    assert main(["setup-motors", "--robot-type", "so101_folower", "--port", bus.port]) == 2
    assert "unknown arm type 'so101_folower'. Did you mean 'so101_follower'?" in capsys.readouterr().out
    assert main(["setup-motors", "--robot-type", "koch_follower", "--leader", "--port", bus.port]) == 2
    assert "'koch_follower' is a follower type (the leader is 'koch_leader')" in capsys.readouterr().out


def test_unknown_motor_name(capsys: pytest.CaptureFixture[str], bus: EmulatedBus) -> None:
    assert main(["setup-motors", "--robot-type", "so101_follower", "--port", bus.port, "--motor", "elbow"]) == 2
    out = capsys.readouterr().out
    assert "no motor named 'elbow'" in out and "elbow_flex" in out


def test_sim_end_to_end(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code = main(["--sim", "setup-motors", "--leader"])  # the global --sim flag reaches the command
    out = capsys.readouterr().out
    assert code == 0, out
    assert "so101_leader on" in out and "ttyEMU-sim-leader" in out
    assert out.count("is now the only one on the virtual bus") == 6
    assert "'gripper': found at 1000000 baud with id 1 -> set to id 6" in out
    assert "6 of 6 motor(s) set up" in out


def test_a_motor_of_the_wrong_model(
    bus: EmulatedBus, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    servo = bus.add_motor(1, "sts3250")
    code = main(["setup-motors", "--robot-type", "so101_follower", "--port", bus.port, "--motor", "gripper"])
    out = capsys.readouterr().out
    assert code == 1
    assert "'gripper' must be a sts3215" in out and "This is not the motor the arm's type expects" in out
    assert servo.id == 1  # left alone
