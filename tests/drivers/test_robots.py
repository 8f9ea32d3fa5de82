"""Robots and teleoperators on the servo emulator: the real Feetech/Dynamixel drivers talk to emulated motors
over a pty, and every assertion about the motors reads the emulator's registers."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from drivers.calibration import CalibrationFileError, load_calibration, save_calibration
from drivers.cameras.base import Camera
from drivers.emulator import EmulatedBus
from drivers.motors.bus import HandshakeError, MotorCalibration, NormMode, NotCalibratedError
from drivers.robots import safety
from drivers.robots.base import clamp_relative
from drivers.robots.koch import KochFollower, KochFollowerConfig, KochLeader, KochLeaderConfig
from drivers.robots.registry import UnknownTypeError, make_arm, make_robot, make_teleoperator
from drivers.robots.so import SOFollower, SOFollowerConfig, SOLeader, SOLeaderConfig, so_motors

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "calibration" / "so_follower_lerobot.json"
SO_CAL = load_calibration(FIXTURE, so_motors())
SO_IDS = list(range(1, 7))
KOCH_FOLLOWER_MODELS = {
    1: "xl430-w250",
    2: "xl430-w250",
    3: "xl330-m288",
    4: "xl330-m288",
    5: "xl330-m288",
    6: "xl330-m288",
}


def _mid_actual_feetech(cal: dict[str, MotorCalibration]) -> dict[int, float]:
    """Shaft positions that read mid-range once `cal` is on the motors (Feetech: present = actual - offset)."""
    return {c.id: (c.range_min + c.range_max) / 2 + c.homing_offset for c in cal.values()}


def _wait_for(predicate: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def _torque(emu: EmulatedBus) -> dict[int, int]:
    return {i: emu.servo(i).read_register("Torque_Enable") for i in sorted(emu.servos)}


@pytest.fixture
def so_emu(tmp_path: Path) -> Iterator[EmulatedBus]:
    emu = EmulatedBus(
        "feetech",
        dict.fromkeys(SO_IDS, "sts3215"),
        motion="external",
        name="so-follower",
        port_dir=tmp_path / "ports",
        initial_positions=_mid_actual_feetech(SO_CAL),
    )
    with emu:
        yield emu


@pytest.fixture
def so_moving_emu(tmp_path: Path) -> Iterator[EmulatedBus]:
    emu = EmulatedBus(
        "feetech",
        dict.fromkeys(SO_IDS, "sts3215"),
        motion="internal",
        max_speed=20000.0,
        name="so-moving",
        port_dir=tmp_path / "ports",
        initial_positions=_mid_actual_feetech(SO_CAL),
    )
    with emu:
        yield emu


@pytest.fixture(autouse=True)
def _release_everything() -> Iterator[None]:
    yield
    safety.release_all("test teardown")
    safety.uninstall_signal_handlers()


def _so_follower(port: str, arm_id: str = "f1", calibrated: bool = True, **kw: object) -> SOFollower:
    config = SOFollowerConfig(port=port, id=arm_id, **kw)  # type: ignore[arg-type]
    if calibrated:
        save_calibration(SOFollower(config).calibration_fpath, SO_CAL)
    return SOFollower(config)


# ------------------------------------------------------------------------------------- SO follower
def test_connect_writes_the_file_to_the_motors_and_configures(so_emu: EmulatedBus) -> None:
    robot = _so_follower(so_emu.port)
    assert robot.name == "so_follower" and robot.is_calibrated and not robot.is_connected
    robot.connect()
    try:
        assert robot.is_connected and robot.is_calibrated
        for name, cal in SO_CAL.items():
            servo = so_emu.servo(cal.id)
            assert servo.read_register("Homing_Offset") == cal.homing_offset, name
            assert servo.read_register("Min_Position_Limit") == cal.range_min, name
            assert servo.read_register("Max_Position_Limit") == cal.range_max, name
            assert servo.read_register("Operating_Mode") == 0
            assert servo.read_register("P_Coefficient") == 16
            assert servo.read_register("I_Coefficient") == 0
            assert servo.read_register("D_Coefficient") == 32
            assert servo.read_register("Return_Delay_Time") == 0
            assert servo.torque_enabled and servo.locked  # a connected follower holds its pose
        gripper = so_emu.servo(6)
        assert gripper.read_register("Max_Torque_Limit") == 500
        assert gripper.read_register("Protection_Current") == 250
        assert gripper.read_register("Overload_Torque") == 25
        assert so_emu.servo(1).read_register("Max_Torque_Limit") == 1000  # only the gripper is limited
        # The calibration survives a power cycle: it was written with the EEPROM unlocked.
        robot.disconnect()
        so_emu.power_cycle()
        assert so_emu.servo(3).read_register("Homing_Offset") == SO_CAL["elbow_flex"].homing_offset
    finally:
        robot.disconnect()


def test_observation_keys_and_units(so_emu: EmulatedBus) -> None:
    robot = _so_follower(so_emu.port)
    with robot:
        assert robot.observation_features == {f"{m}.pos": float for m in SO_CAL}
        assert robot.action_features == {f"{m}.pos": float for m in SO_CAL}
        pan, grip = SO_CAL["shoulder_pan"], SO_CAL["gripper"]
        pan_mid = (pan.range_min + pan.range_max) / 2
        # shoulder_pan a quarter turn past the middle, gripper 40 % open (present = actual - offset).
        so_emu.set_actual(
            {
                1: pan_mid + 1024 + pan.homing_offset,
                6: grip.range_min + 0.4 * (grip.range_max - grip.range_min) + grip.homing_offset,
            }
        )
        obs = robot.get_observation()
        assert list(obs) == [f"{m}.pos" for m in SO_CAL]
        assert all(isinstance(v, float) for v in obs.values())
        assert obs["shoulder_pan.pos"] == pytest.approx(90.0, abs=0.2)
        assert obs["gripper.pos"] == pytest.approx(40.0, abs=0.2)
        assert obs["elbow_flex.pos"] == pytest.approx(0.0, abs=0.2)


def test_legacy_range_mode_and_old_file_name(
    so_emu: EmulatedBus, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A calibration LeRobot <= 0.4.2 wrote under so101_follower is found; use_degrees=False gives ±100."""
    monkeypatch.setenv("HF_LEROBOT_CALIBRATION", str(tmp_path / "cal"))
    save_calibration(tmp_path / "cal" / "robots" / "so101_follower" / "old.json", SO_CAL)
    robot = SOFollower(SOFollowerConfig(type="so101_follower", port=so_emu.port, id="old", use_degrees=False))
    assert robot.motors["elbow_flex"].norm_mode is NormMode.RANGE_M100_100
    assert robot.calibration_source == tmp_path / "cal" / "robots" / "so101_follower" / "old.json"
    with robot:
        pan = SO_CAL["shoulder_pan"]
        so_emu.set_actual({1: pan.range_max + pan.homing_offset})
        assert robot.get_observation()["shoulder_pan.pos"] == pytest.approx(100.0)


def test_send_action_moves_the_motors(so_moving_emu: EmulatedBus) -> None:
    robot = _so_follower(so_moving_emu.port)
    with robot:
        action = {"shoulder_pan.pos": 20.0, "elbow_flex.pos": -15.0, "gripper.pos": 80.0}
        sent = robot.send_action(action)
        assert sent == action
        assert robot.last_clamped == {}

        def reached() -> bool:
            obs = robot.get_observation()
            return all(abs(obs[k] - v) < 0.5 for k, v in action.items())

        assert _wait_for(reached)
        pan = SO_CAL["shoulder_pan"]
        expected_raw = int(20.0 * 4095 / 360 + (pan.range_min + pan.range_max) / 2)
        assert so_moving_emu.servo(1).read_register("Goal_Position") == expected_raw
        assert so_moving_emu.servo(1).actual == pytest.approx(expected_raw + pan.homing_offset, abs=1)
        with pytest.raises(KeyError, match=r"elbow_roll\.pos"):
            robot.send_action({"elbow_roll.pos": 3.0})


def test_max_relative_target_clamps_per_motor_and_warns_rate_limited(
    so_emu: EmulatedBus, caplog: pytest.LogCaptureFixture
) -> None:
    robot = _so_follower(so_emu.port, max_relative_target=5.0)
    with robot:
        present = robot.get_observation()
        caplog.set_level(logging.WARNING, logger="drivers.robots.base")
        action = {
            "shoulder_pan.pos": present["shoulder_pan.pos"] + 30.0,
            "elbow_flex.pos": present["elbow_flex.pos"] - 2.0,
            "gripper.pos": present["gripper.pos"] - 12.0,
        }
        sent = robot.send_action(action)
        assert sent["shoulder_pan.pos"] == pytest.approx(present["shoulder_pan.pos"] + 5.0)
        assert sent["elbow_flex.pos"] == pytest.approx(action["elbow_flex.pos"])  # within the cap: untouched
        assert sent["gripper.pos"] == pytest.approx(present["gripper.pos"] - 5.0)
        assert set(robot.last_clamped) == {"shoulder_pan", "gripper"}
        assert robot.last_clamped["shoulder_pan"] == pytest.approx(
            (action["shoulder_pan.pos"], sent["shoulder_pan.pos"])
        )
        assert robot.clamp_count == 1
        # What reached the motor is the clamped goal.
        goal_deg = robot.bus.read("Goal_Position", "shoulder_pan")
        assert goal_deg == pytest.approx(sent["shoulder_pan.pos"], abs=0.1)
        warnings = [r for r in caplog.records if "clamped" in r.getMessage()]
        assert len(warnings) == 1 and "shoulder_pan" in warnings[0].getMessage()
        robot.send_action(action)  # a second clamp right away is counted, not logged again
        assert robot.clamp_count == 2
        assert len([r for r in caplog.records if "clamped" in r.getMessage()]) == 1
        robot.send_action({"elbow_flex.pos": present["elbow_flex.pos"]})
        assert robot.last_clamped == {}


def test_max_relative_target_per_motor_dict(so_emu: EmulatedBus) -> None:
    caps = {m: 50.0 for m in SO_CAL} | {"wrist_flex": 1.0}
    robot = _so_follower(so_emu.port, max_relative_target=caps)
    with robot:
        present = robot.get_observation()
        sent = robot.send_action(
            {
                "wrist_flex.pos": present["wrist_flex.pos"] + 10,
                "shoulder_lift.pos": present["shoulder_lift.pos"] + 10,
            }
        )
        assert sent["wrist_flex.pos"] == pytest.approx(present["wrist_flex.pos"] + 1.0)
        assert sent["shoulder_lift.pos"] == pytest.approx(present["shoulder_lift.pos"] + 10)
    with pytest.raises(ValueError, match=r"missing: \['gripper'\]"):
        _so_follower(
            so_emu.port, calibrated=False, max_relative_target={m: 5.0 for m in SO_CAL if m != "gripper"}
        )
    with pytest.raises(ValueError, match="positive"):
        _so_follower(so_emu.port, calibrated=False, max_relative_target=-1.0)


def test_clamp_relative_is_symmetric_and_per_motor() -> None:
    safe, clamped = clamp_relative({"a": 10.0, "b": -10.0, "c": 1.0}, {"a": 0.0, "b": 0.0, "c": 0.0}, 2.5)
    assert safe == {"a": 2.5, "b": -2.5, "c": 1.0}
    assert clamped == {"a": (10.0, 2.5), "b": (-10.0, -2.5)}


def test_uncalibrated_arm_connects_but_refuses_user_units(so_emu: EmulatedBus) -> None:
    robot = _so_follower(so_emu.port, arm_id="fresh", calibrated=False)
    assert not robot.is_calibrated and robot.calibration_source is None
    with pytest.raises(NotCalibratedError, match="robotui calibrate"):
        robot.connect(calibrate=True)
    assert not robot.is_connected
    with robot:
        assert not robot.is_calibrated
        with pytest.raises(NotCalibratedError, match="robotui calibrate"):
            robot.get_observation()
        with pytest.raises(NotCalibratedError):
            robot.send_action({"gripper.pos": 10.0})


def test_damaged_calibration_file_refuses_to_connect(so_emu: EmulatedBus) -> None:
    robot = _so_follower(so_emu.port, arm_id="broken", calibrated=False)
    robot.calibration_fpath.parent.mkdir(parents=True, exist_ok=True)
    robot.calibration_fpath.write_text('{"shoulder_pan": {"id": 1}}')
    robot = SOFollower(robot.config)
    assert robot.calibration_error is not None
    with pytest.raises(CalibrationFileError, match="robotui calibrate"):
        robot.connect()
    assert not robot.is_connected
    assert all(v == 0 for v in _torque(so_emu).values())


def test_wrong_motor_model_is_named(tmp_path: Path) -> None:
    models = dict.fromkeys(SO_IDS, "sts3215") | {3: "sts3250"}
    with EmulatedBus("feetech", models, name="wrong", port_dir=tmp_path) as emu:
        robot = _so_follower(emu.port)
        with pytest.raises(HandshakeError) as info:
            robot.connect()
        assert "elbow_flex" in str(info.value) and "sts3215" in str(info.value)
        assert info.value.wrong == {"elbow_flex": ("sts3215", 2825)}
        assert not robot.is_connected and robot not in safety.registered()
        emu.remove_motor(3)
        emu.add_motor(3, "sts3215")
        robot.connect()  # the port was released: a retry after the fix works
        assert robot.is_connected
        robot.disconnect()


def test_disconnect_disables_torque_or_holds_when_configured(so_emu: EmulatedBus) -> None:
    robot = _so_follower(so_emu.port)
    robot.connect()
    assert robot in safety.registered()
    assert set(_torque(so_emu).values()) == {1}
    robot.disconnect()
    assert set(_torque(so_emu).values()) == {0}
    assert robot not in safety.registered()
    robot.disconnect()  # idempotent

    holding = _so_follower(so_emu.port, arm_id="hold", disable_torque_on_disconnect=False)
    holding.connect()
    holding.disconnect()
    assert set(_torque(so_emu).values()) == {1}
    assert not holding.is_connected


def test_exception_inside_with_block_disables_torque(so_emu: EmulatedBus) -> None:
    robot = _so_follower(so_emu.port)
    with pytest.raises(ZeroDivisionError), robot:
        assert set(_torque(so_emu).values()) == {1}
        _ = 1 / 0
    assert set(_torque(so_emu).values()) == {0}
    assert not robot.is_connected


def test_lost_port_during_disconnect_does_not_raise(so_emu: EmulatedBus) -> None:
    robot = _so_follower(so_emu.port)
    robot.connect()
    so_emu.unplug()
    robot.disconnect()
    assert not robot.is_connected
    assert robot not in safety.registered()


def test_release_all_reaches_every_arm(so_emu: EmulatedBus, tmp_path: Path) -> None:
    with EmulatedBus(
        "feetech", dict.fromkeys(SO_IDS, "sts3215"), name="leader", port_dir=tmp_path
    ) as lead_emu:
        robot = _so_follower(so_emu.port)
        leader = SOLeader(SOLeaderConfig(port=lead_emu.port, id="l1"))
        robot.connect()
        leader.connect()
        lead_emu.servo(2).write_register("Torque_Enable", 1)  # someone switched a leader motor on
        so_emu.unplug()  # and the follower's adapter is gone: the leader must still be released
        assert safety.release_all("test") == 2
        assert set(_torque(lead_emu).values()) == {0}
        assert safety.registered() == [] and safety.release_all("again") == 0


def test_sigterm_handler_releases_arms_and_chains(so_emu: EmulatedBus) -> None:
    calls: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))
    try:
        robot = _so_follower(so_emu.port)
        robot.connect()
        os.kill(os.getpid(), signal.SIGTERM)
        assert _wait_for(lambda: calls == [signal.SIGTERM], timeout=2.0)
        assert set(_torque(so_emu).values()) == {0}
        assert not robot.is_connected
    finally:
        safety.uninstall_signal_handlers()
        signal.signal(signal.SIGTERM, previous)


CHILD = textwrap.dedent(
    """
    import sys, time
    from drivers.robots.so import SOFollower, SOFollowerConfig
    robot = SOFollower(SOFollowerConfig(port=sys.argv[1], id="f1"))
    robot.connect()
    print("ready", flush=True)
    while True:
        robot.get_observation()
        time.sleep(0.02)
    """
)


@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGINT, -signal.SIGINT)]
)
def test_signal_to_a_process_leaves_no_motor_energised(so_emu: EmulatedBus, sig: int, code: int) -> None:
    _so_follower(so_emu.port)  # writes the calibration file the child loads
    env = dict(os.environ, PYTHONPATH=str(REPO))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, so_emu.port],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.strip() == "ready", child.stderr.read() if child.stderr else ""
        assert set(_torque(so_emu).values()) == {1}
        child.send_signal(sig)
        assert child.wait(timeout=10) == code
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert set(_torque(so_emu).values()) == {0}


# ------------------------------------------------------------------------------------------ leader
def test_so_leader_is_limp_and_reads_actions(tmp_path: Path) -> None:
    with EmulatedBus(
        "feetech",
        dict.fromkeys(SO_IDS, "sts3215"),
        motion="external",
        name="lead",
        port_dir=tmp_path,
        initial_positions=_mid_actual_feetech(SO_CAL),
    ) as emu:
        config = SOLeaderConfig(port=emu.port, id="l1")
        leader = SOLeader(config)
        assert leader.kind == "teleoperators" and leader.name == "so_leader"
        save_calibration(leader.calibration_fpath, SO_CAL)
        leader = SOLeader(config)
        with leader:
            assert set(_torque(emu).values()) == {0}
            assert all(emu.servo(i).read_register("Operating_Mode") == 0 for i in SO_IDS)
            assert leader.action_features == leader.feedback_features == {f"{m}.pos": float for m in SO_CAL}
            action = leader.get_action()
            assert list(action) == [f"{m}.pos" for m in SO_CAL]
            assert action["wrist_flex.pos"] == pytest.approx(0.0, abs=0.2)
            leader.set_torque(True)
            leader.send_feedback({"wrist_flex.pos": 10.0})
            wf = SO_CAL["wrist_flex"]
            goal = int(10 * 4095 / 360 + (wf.range_min + wf.range_max) / 2)
            # sync_write gets no reply: wait for the emulator to have applied it.
            assert _wait_for(lambda: emu.servo(4).read_register("Goal_Position") == goal)
        assert set(_torque(emu).values()) == {0}


# -------------------------------------------------------------------------------------------- cameras
class _PatternCamera(Camera):
    """A real Camera (reader thread, newest-frame slot) whose source is a generated gradient."""

    def __init__(self, name: str) -> None:
        super().__init__(name, width=8, height=6, fps=100)

    def _open(self) -> None:
        self._n = 0

    def _grab(self) -> np.ndarray:
        time.sleep(0.01)
        self._n += 1
        return np.full((self.height, self.width, 3), self._n % 256, dtype=np.uint8)

    def _close(self) -> None:
        pass


def test_cameras_join_the_observation(so_emu: EmulatedBus) -> None:
    front = _PatternCamera("front")
    robot = _so_follower(so_emu.port, cameras={"front": front, "wrist": _PatternCamera})
    assert robot.observation_features["front"] == (6, 8, 3)
    assert robot.observation_features["wrist"] == (6, 8, 3)
    with robot:
        assert front.is_connected
        assert _wait_for(lambda: front.latest() is not None and robot.cameras["wrist"].latest() is not None)
        obs = robot.get_observation()
        assert obs["front"].shape == (6, 8, 3) and obs["front"].dtype == np.uint8
        assert obs["wrist"].shape == (6, 8, 3)
    assert not front.is_connected
    with pytest.raises(TypeError, match="camera 'bad'"):
        _so_follower(so_emu.port, calibrated=False, cameras={"bad": 42})


# ---------------------------------------------------------------------------------------------- Koch
def _koch_cal(drive_modes: dict[str, int] | None = None) -> dict[str, MotorCalibration]:
    names = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
    full = {"shoulder_pan", "wrist_roll"}
    return {
        n: MotorCalibration(
            i + 1,
            (drive_modes or {}).get(n, 0),
            100 * (i + 1) - 300,
            0 if n in full else 1000 + 10 * i,
            4095 if n in full else 3000 - 10 * i,
        )
        for i, n in enumerate(names)
    }


def test_koch_follower_configure_and_calibration_on_dynamixel(tmp_path: Path) -> None:
    with EmulatedBus(
        "dynamixel", KOCH_FOLLOWER_MODELS, motion="external", name="koch", port_dir=tmp_path
    ) as emu:
        config = KochFollowerConfig(port=emu.port, id="k1")
        cal = _koch_cal()
        save_calibration(KochFollower(config).calibration_fpath, cal)
        robot = KochFollower(config)
        assert robot.motors["elbow_flex"].norm_mode is NormMode.RANGE_M100_100  # Koch default
        with robot:
            for name, c in cal.items():
                servo = emu.servo(c.id)
                assert servo.read_register("Homing_Offset") == c.homing_offset
                assert servo.read_register("Min_Position_Limit") == c.range_min
                assert servo.read_register("Max_Position_Limit") == c.range_max
                assert servo.read_register("Operating_Mode") == (5 if name == "gripper" else 4)
                assert servo.torque_enabled
            elbow = emu.servo(3)
            assert (
                elbow.read_register("Position_P_Gain"),
                elbow.read_register("Position_I_Gain"),
                elbow.read_register("Position_D_Gain"),
            ) == (1500, 0, 600)
            # Dynamixel: present = actual + offset. Put wrist_flex at the top of its range.
            wf = cal["wrist_flex"]
            emu.set_actual({4: wf.range_max - wf.homing_offset})
            assert robot.get_observation()["wrist_flex.pos"] == pytest.approx(100.0)
        assert set(_torque(emu).values()) == {0}


def test_koch_wrong_model_is_named(tmp_path: Path) -> None:
    models = dict(KOCH_FOLLOWER_MODELS) | {1: "xl330-m288"}
    with EmulatedBus("dynamixel", models, name="koch-wrong", port_dir=tmp_path) as emu:
        robot = KochFollower(KochFollowerConfig(port=emu.port, id="k"))
        with pytest.raises(HandshakeError, match="shoulder_pan"):
            robot.connect()
        assert not robot.is_connected


def test_koch_leader_drive_mode_and_gripper_spring(tmp_path: Path) -> None:
    with EmulatedBus(
        "dynamixel",
        dict.fromkeys(SO_IDS, "xl330-m077"),
        motion="external",
        name="koch-lead",
        port_dir=tmp_path,
    ) as emu:
        config = KochLeaderConfig(port=emu.port, id="kl")
        cal = _koch_cal({"elbow_flex": 1})
        save_calibration(KochLeader(config).calibration_fpath, cal)
        leader = KochLeader(config)
        with leader:
            assert emu.servo(3).read_register("Drive_Mode") & 1 == 1  # the motor reverses the elbow itself
            assert emu.servo(2).read_register("Drive_Mode") & 1 == 0
            torque = _torque(emu)
            assert torque[6] == 1 and all(
                torque[i] == 0 for i in range(1, 6)
            )  # only the trigger spring is on
            g = cal["gripper"]
            assert emu.servo(6).read_register("Goal_Position") == int(
                g.range_min + 0.5 * (g.range_max - g.range_min)
            )
            assert emu.servo(6).read_register("Operating_Mode") == 5
            assert leader.is_calibrated
        assert set(_torque(emu).values()) == {0}


# ------------------------------------------------------------------------------------------ registry
def test_registry_accepts_lerobot_type_names(so_emu: EmulatedBus, tmp_path: Path) -> None:
    for type_name in ("so100_follower", "so101_follower", "so_follower"):
        robot = make_robot(type_name, port=so_emu.port, id="r")
        assert isinstance(robot, SOFollower) and robot.config.type == type_name
        assert robot.calibration_fpath.parent.name == "so_follower"
    assert isinstance(make_robot("koch_follower", port="/dev/null"), KochFollower)
    assert isinstance(make_teleoperator("so101_leader", port="/dev/null"), SOLeader)
    assert isinstance(make_teleoperator("koch_leader", port="/dev/null", gripper_open_pos=20.0), KochLeader)
    assert isinstance(make_arm("so100_leader", port="/dev/null"), SOLeader)
    assert isinstance(make_arm("koch_follower", port="/dev/null"), KochFollower)
    config = SOFollowerConfig(type="so101_follower", port=so_emu.port)
    assert make_robot(config).config is config
    mine = make_robot("so101_follower", port=so_emu.port, id="x", calibration_dir=tmp_path / "mine")
    assert mine.calibration_fpath == tmp_path / "mine" / "x.json"  # LeRobot's calibration_dir: the folder itself


def test_registry_unknown_names_suggest_the_closest() -> None:
    with pytest.raises(UnknownTypeError, match="Did you mean 'so101_follower'") as info:
        make_robot("so101_folower", port="x")
    assert "koch_follower" in str(info.value)
    with pytest.raises(UnknownTypeError, match="Did you mean 'koch_leader'"):
        make_teleoperator("koch_lead", port="x")
    with pytest.raises(UnknownTypeError, match="'so_leader' is a teleoperator"):
        make_robot("so_leader", port="x")
    with pytest.raises(UnknownTypeError, match="'koch_follower' is a robot"):
        make_teleoperator("koch_follower", port="x")
    with pytest.raises(UnknownTypeError, match="Did you mean 'max_relative_target'"):
        make_robot("so101_follower", port="x", max_relative_targt=5)
    with pytest.raises(UnknownTypeError, match="gripper_open_pos"):
        make_teleoperator("koch_leader", port="x", gripper_open=5)
