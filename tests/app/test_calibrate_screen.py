"""The Calibrate screen under Pilot on the virtual SO-101 with factory-fresh servos: both arms calibrated
through the screen (the virtual hand moving them), the "use it" path, a joint that never moved, leaving
mid-way, and the errors a hardware profile can hit."""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from textual import events

from drivers.calibration import CALIBRATION_FIELDS, calibration_path, save_calibration
from drivers.robots import safety
from drivers.sim.scene import JOINT_NAMES
from drivers.sim.ticks import TickMap
from drivers.sim.virtual_robot import FOLLOWER_MOUNT_SEED, VirtualSO101
from engine.profile import ArmConfig, Profile, sim_profile
from engine.session import Session
from robotui.app import RobotuiApp
from screens.calibrate import CalibrateScreen, Phase

SIZE = (120, 40)


@pytest.fixture(autouse=True)
def _quick_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(CalibrateScreen, "HAND_SWEEP_SECONDS", 3.0)  # short, yet room to sample every end


@pytest.fixture(autouse=True)
def _release_everything() -> Any:
    yield
    safety.release_all("test teardown")
    safety.uninstall_signal_handlers()


def sim_app() -> RobotuiApp:
    return RobotuiApp(sim_profile(), session=Session(sim_profile(), sim_calibrated=False), hotkeys=False)


def notifications(app: RobotuiApp) -> list[str]:
    return [n.message for n in app._notifications]


def screen_text(app: RobotuiApp) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def wait_for(pilot: Any, predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Let the workers run until `predicate` holds (the bound only catches a hang; nothing is timed)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        await pilot.pause(0.05)


KEY_CHARS = {"enter": "\r", "escape": "\x1b"}


async def tap(pilot: Any, key: str) -> None:
    """Press a key the way the terminal driver delivers it. (`pilot.press` also waits for the process to go
    CPU-idle, which never happens while the physics runs: it would add two seconds to every key.)"""
    pilot.app.post_message(events.Key(key, KEY_CHARS.get(key, key if len(key) == 1 else None)))
    await pilot.pause(0.05)


async def open_calibrate(pilot: Any, app: RobotuiApp) -> CalibrateScreen:
    await press_and_wait(pilot, "2", lambda: isinstance(app.screen, CalibrateScreen), "the Calibrate screen")
    screen = app.screen
    assert isinstance(screen, CalibrateScreen)
    await wait_for(pilot, lambda: screen.phase is not Phase.CHECKING, "the calibration file check")
    return screen


def failed(screen: CalibrateScreen) -> bool:
    """The screen shows an error (in bold red, as `_fail` sets it)."""
    return not screen.busy and screen.message.style == "bold red"


async def press_and_wait(pilot: Any, key: str, predicate: Callable[[], bool], what: str) -> None:
    await tap(pilot, key)
    await wait_for(pilot, predicate, what)


async def calibrate_with_the_hand(pilot: Any, screen: CalibrateScreen) -> None:
    """Start, hand to the middle, set it, hand sweeps, finish: Enter does each step."""
    await press_and_wait(pilot, "enter", lambda: screen.phase is Phase.MIDDLE, "torque off")
    await press_and_wait(pilot, "h", lambda: "hand holds every joint" in screen.message.plain,
                         "the hand at the middle")
    await press_and_wait(pilot, "enter", lambda: screen.phase is Phase.RANGES, "homing offsets")
    await press_and_wait(pilot, "h", lambda: "swept every joint" in screen.message.plain, "the hand's sweep")
    await press_and_wait(pilot, "enter", lambda: screen.phase is Phase.SAVED or failed(screen), "finish and save")
    assert screen.phase is Phase.SAVED, screen.message.plain


def check_file(sim: VirtualSO101, role: str, path_args: tuple[str, str, str]) -> None:
    """The saved JSON: LeRobot's layout, the motors' EEPROM, and close to the virtual arm's true calibration."""
    path = calibration_path(*path_args)  # type: ignore[arg-type]
    data = json.loads(path.read_text())
    assert list(data) == list(JOINT_NAMES)
    truth = sim.calibration(role)  # type: ignore[arg-type]
    bus = sim.bus(role)  # type: ignore[arg-type]
    for motor, entry in data.items():
        assert list(entry) == list(CALIBRATION_FIELDS), motor
        assert all(type(value) is int for value in entry.values()), motor
        servo = bus.servo(entry["id"])
        assert entry["id"] == truth[motor].id
        # The file is what the motors hold.
        assert entry["homing_offset"] == servo.read_register("Homing_Offset"), motor
        assert entry["range_min"] == servo.read_register("Min_Position_Limit"), motor
        assert entry["range_max"] == servo.read_register("Max_Position_Limit"), motor
        # The hand homed at the true middle, so the offsets are the arm's own.
        assert abs(entry["homing_offset"] - truth[motor].homing_offset) <= 10, motor
        if motor == "wrist_roll":
            assert (entry["range_min"], entry["range_max"]) == (0, 4095)
            continue
        low, high = truth[motor].range_min, truth[motor].range_max
        assert low - 10 <= entry["range_min"] < 2047 < entry["range_max"] <= high + 10, motor
        assert entry["range_max"] - entry["range_min"] >= 0.6 * (high - low), motor


async def test_calibrate_both_arms_through_the_screen() -> None:
    app = sim_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_calibrate(pilot, app)
        sim = app.session.sim
        assert sim is not None
        assert screen.role == "robot" and screen.phase is Phase.NO_FILE
        text = screen_text(app)
        assert "▶ Follower (robot)" in text and "No calibration file yet" in text
        assert "sim_follower.json" in text

        await calibrate_with_the_hand(pilot, screen)
        robot_path = ("robots", "so_follower", "sim_follower")
        assert screen.saved_path == calibration_path(*robot_path)
        await wait_for(pilot, lambda: str(screen.saved_path) in "".join(notifications(app)), "the saved notice")
        check_file(sim, "follower", robot_path)
        # The live table showed the recorded ranges, wrist_roll as the full turn.
        await pilot.pause()
        text = screen_text(app)
        assert "full turn" in text and "Saved" in text
        rows = {row.motor: row for row in screen.rows}
        assert rows["wrist_roll"].full_turn and rows["elbow_flex"].travel > 1000
        # Torque stayed off and the procedure let the bus go.
        assert app.session.robot is not None and not app.session.robot.is_connected
        assert not any(sim.follower_bus.servo(i).torque_enabled for i in range(1, 7))
        assert not sim.follower_hand.holding

        await press_and_wait(pilot, "a", lambda: screen.role == "teleop" and screen.phase is Phase.NO_FILE,
                             "the leader's file check")
        assert "▶ Leader (teleop)" in screen_text(app)
        await calibrate_with_the_hand(pilot, screen)
        check_file(sim, "leader", ("teleoperators", "so_leader", "sim_leader"))

        # Both arms now connect with the files just written, no calibration step.
        await press_and_wait(pilot, "escape", lambda: not isinstance(app.screen, CalibrateScreen), "home")
        app.session.connect()
        assert app.session.robot.is_calibrated and app.session.leader is not None
        assert app.session.leader.is_calibrated


async def test_existing_file_use_it() -> None:
    truth = TickMap.seeded(FOLLOWER_MOUNT_SEED).calibration()  # the virtual follower's own calibration
    path = save_calibration(calibration_path("robots", "so_follower", "sim_follower"), truth)
    app = sim_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_calibrate(pilot, app)
        assert screen.phase is Phase.EXISTING
        text = screen_text(app)
        assert "Found" in text and "to use it" in text and "recalibrate" in text
        await press_and_wait(pilot, "enter", lambda: screen.phase is Phase.SAVED, "using the file")
        assert screen.saved_path == path
        assert "written to the motors" in screen.message.plain  # factory-fresh servos held nothing
        sim = app.session.sim
        assert sim is not None
        for cal in truth.values():
            servo = sim.follower_bus.servo(cal.id)
            assert servo.read_register("Homing_Offset") == cal.homing_offset
            assert servo.read_register("Max_Position_Limit") == cal.range_max
            assert not servo.torque_enabled
        # `r` recalibrates over it: the file is offered, not forced.
        await press_and_wait(pilot, "r", lambda: screen.phase is Phase.MIDDLE, "recalibration start")
        await press_and_wait(pilot, "x", lambda: screen.phase is Phase.EXISTING, "abort")


async def test_a_joint_that_never_moved_is_named() -> None:
    app = sim_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_calibrate(pilot, app)
        sim = app.session.sim
        assert sim is not None
        await press_and_wait(pilot, "a", lambda: screen.role == "teleop" and screen.phase is Phase.NO_FILE,
                             "the leader")
        await press_and_wait(pilot, "enter", lambda: screen.phase is Phase.MIDDLE, "torque off")
        await press_and_wait(pilot, "h", lambda: "hand holds every joint" in screen.message.plain,
                         "the hand at the middle")
        await press_and_wait(pilot, "m", lambda: screen.phase is Phase.RANGES, "homing offsets")
        moved = ("shoulder_pan", "shoulder_lift", "wrist_flex", "gripper")  # elbow_flex forgotten
        for sign in (-1, 1):
            sim.move_joints("leader", {j: 50.0 + sign * 40 if j == "gripper" else sign * 60.0 for j in moved})
            await wait_for(pilot, lambda s=sign: any(
                r.motor == "shoulder_pan" and (r.min if s < 0 else r.max) != 2047 and abs(r.pos - 2047) > 500
                for r in screen.rows), "the table to record the move")
        sim.move_to_middle("leader")
        await press_and_wait(pilot, "f", lambda: "never moved" in screen.message.plain, "the finish error")
        message = screen.message.plain
        assert "so_leader 'sim_leader'" in message  # the arm
        assert "elbow_flex" in message and "wrist_roll" not in message and "shoulder_pan" not in message
        await wait_for(pilot, lambda: any("elbow_flex" in n for n in notifications(app)), "the error notice")
        assert screen.phase is Phase.RANGES  # still recording: move it and finish again
        assert "move it through its range" in screen_text(app)
        sim.move_joints("leader", {"elbow_flex": -60.0})
        await wait_for(pilot, lambda: any(r.motor == "elbow_flex" and r.travel > 500 for r in screen.rows),
                       "the elbow's range")
        sim.move_joints("leader", {"elbow_flex": 60.0})
        await wait_for(pilot, lambda: any(r.motor == "elbow_flex" and r.max > 2047 + 500 for r in screen.rows),
                       "the elbow's range")
        await press_and_wait(pilot, "f", lambda: screen.phase is Phase.SAVED, "the file")
        saved = json.loads(calibration_path("teleoperators", "so_leader", "sim_leader").read_text())
        assert saved["elbow_flex"]["range_max"] - saved["elbow_flex"]["range_min"] > 1000


async def test_leaving_mid_way_closes_the_procedure_with_torque_off() -> None:
    app = sim_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_calibrate(pilot, app)
        sim = app.session.sim
        assert sim is not None
        await press_and_wait(pilot, "enter", lambda: screen.phase is Phase.MIDDLE, "torque off")
        await press_and_wait(pilot, "h", lambda: "hand holds every joint" in screen.message.plain,
                         "the hand at the middle")
        await press_and_wait(pilot, "enter", lambda: screen.phase is Phase.RANGES, "homing offsets")
        robot = app.session.robot
        assert robot is not None and robot.is_connected  # the procedure holds the bus
        await tap(pilot, "a")  # no switching arms mid-way
        await wait_for(pilot, lambda: any("abort" in n for n in notifications(app)), "the refusal")
        assert screen.role == "robot"
        await press_and_wait(pilot, "i", lambda: any("motor setup needs the bus" in n for n in notifications(app)),
                             "motor setup refused mid-way")
        assert isinstance(app.screen, CalibrateScreen)
        await tap(pilot, "escape")
        await wait_for(pilot, lambda: not robot.is_connected, "the bus to be released")
        assert not isinstance(app.screen, CalibrateScreen)
        assert not any(sim.follower_bus.servo(i).torque_enabled for i in range(1, 7))
        assert not sim.follower_hand.holding
        assert not calibration_path("robots", "so_follower", "sim_follower").exists()


def hardware_app(port: str) -> RobotuiApp:
    profile = Profile(
        name="lab",
        robot=ArmConfig("so101_follower", port, "lab"),
        teleop=ArmConfig("keyboard", "", ""),
    )
    return RobotuiApp(profile, hotkeys=False)


async def test_hardware_profile_errors_say_what_to_fix(tmp_path: Any) -> None:
    app = hardware_app("")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_calibrate(pilot, app)
        assert screen.phase is Phase.UNAVAILABLE
        assert "no port set for the robot" in screen_text(app) and "find-port" in screen_text(app)
        await press_and_wait(pilot, "h", lambda: any("simulated arm only" in n for n in notifications(app)),
                             "the refusal")
        await press_and_wait(pilot, "a", lambda: screen.role == "teleop" and screen.phase is Phase.UNAVAILABLE,
                             "the keyboard teleop")
        assert "keyboard" in screen.problem and "nothing to calibrate" in screen_text(app)

    missing = str(tmp_path / "ttyACM9")
    app = hardware_app(missing)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_calibrate(pilot, app)
        assert screen.phase is Phase.NO_FILE
        await press_and_wait(pilot, "enter", lambda: failed(screen), "the error")
        assert screen.phase is Phase.NO_FILE
        message = screen.message.plain
        assert "so_follower 'lab'" in message and missing in message
        # Steps out of order are refused with the way forward.
        await press_and_wait(pilot, "m", lambda: any("Start calibrating first" in n for n in notifications(app)),
                             "the refusal")


async def test_motor_setup_key_opens_the_wizard_for_the_chosen_arm() -> None:
    if importlib.util.find_spec("screens.motor_setup") is None:
        pytest.skip("screens/motor_setup.py (MotorSetupScreen) is written by another task and not here yet")
    app = sim_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_calibrate(pilot, app)
        await press_and_wait(pilot, "a", lambda: screen.role == "teleop" and screen.phase is Phase.NO_FILE,
                             "the leader")
        await press_and_wait(pilot, "i", lambda: type(app.screen).__name__ == "MotorSetupScreen", "the wizard")
        await pilot.pause(0.3)  # let it finish mounting before the app shuts down
        assert getattr(app.screen, "role", None) == "teleop"
