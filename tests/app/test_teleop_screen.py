"""The Teleop screen under Pilot on the virtual SO-101: idle until started, the follower tracks the leader
(jogged or the scripted demo), keyboard jogging moves one joint, stop and leaving release torque, a lost
port and a missing calibration end in an actionable message. Torque and goals are read back from the
emulated follower's registers, not from the screen alone.

Keys are sent without `pilot.press`: it waits for the *process* to go idle after each key, which never
happens while the sim's physics thread runs, so every press would cost two seconds of its one-second
idle timeout. The helpers below send the same key events and poll for the effect instead."""

from __future__ import annotations

import dataclasses
import gc
import threading
from collections.abc import Callable
from typing import Any

import pytest
from textual import events
from textual.worker import WorkerState

from engine.profile import ArmConfig, Profile, sim_profile
from robotui.app import RobotuiApp
from screens.home import HomeScreen
from screens.teleop import TeleopScreen
from screens.widgets.camera_preview import CameraPreview
from screens.widgets.joint_table import JointTable

SIZE = (120, 40)
IDS = range(1, 7)


@pytest.fixture(autouse=True)
def _collect_the_last_app() -> None:
    """Collect the previous test's app now: a full GC pass over it, landing mid-handshake, would hold the
    GIL longer than the in-process servo emulator may take to answer (real servos are not in-process)."""
    gc.collect()


def make_app(profile: Profile) -> RobotuiApp:
    return RobotuiApp(profile, hotkeys=False)


def no_cameras(**changes: Any) -> Profile:
    return dataclasses.replace(sim_profile(), cameras={}, **changes)


def screen_text(app: RobotuiApp) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def notifications(app: RobotuiApp) -> list[str]:
    return [n.message for n in app._notifications]


def registers(app: RobotuiApp, name: str) -> list[int]:
    assert app.session.sim is not None
    bus = app.session.sim.follower_bus
    with bus.lock:
        return [bus.servo(i).read_register(name) for i in IDS]


async def until(pilot: Any, predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Let the app run until `predicate` holds (the bound only keeps a broken test from hanging)."""
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return True
        await pilot.pause(0.05)
    return predicate()


async def settle(pilot: Any, app: RobotuiApp) -> None:
    """Until no worker of the app or its screens is pending or running."""

    def idle() -> bool:
        return not any(w.state in (WorkerState.PENDING, WorkerState.RUNNING) for w in app.workers)

    await pilot.pause(0.1)
    assert await until(pilot, idle)


async def press(pilot: Any, *keys: str) -> None:
    """Send key events as a terminal would (see the module docstring for why not `pilot.press`)."""
    characters = {"plus": "+", "minus": "-"}
    for key in keys:
        char = key if len(key) == 1 else characters.get(key)
        pilot.app.post_message(events.Key(key, char))
        await pilot.pause(0.05)


async def open_teleop(pilot: Any, app: RobotuiApp) -> TeleopScreen:
    await settle(pilot, app)
    await press(pilot, "3")
    await until(pilot, lambda: isinstance(app.screen, TeleopScreen))
    await settle(pilot, app)
    screen = app.screen
    assert isinstance(screen, TeleopScreen)
    return screen


def rows(screen: TeleopScreen) -> dict[str, Any]:
    return {r.name: r for r in screen.query_one(JointTable).rows}


async def test_leader_teleop_idle_until_started_then_tracks_and_stop_releases_torque() -> None:
    camera = {"type": "sim", "width": 160, "height": 120, "fps": 15}
    app = make_app(dataclasses.replace(sim_profile(), cameras={"front": camera}))
    ours = ("teleop", "sim-", "emulator-", "camera-", "preview-")
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_teleop(pilot, app)
        sim = app.session.sim
        assert sim is not None
        assert screen.state == "ready", screen.message
        assert registers(app, "Torque_Enable") == [1] * 6  # connected: the follower holds its pose
        table = screen.query_one(JointTable)
        assert table.joints[:3] == ["shoulder_pan", "shoulder_lift", "elbow_flex"] and not table.rows
        # The camera tile got the follower's camera once connected and paints frames.
        tile = screen.query_one(CameraPreview)
        assert await until(pilot, lambda: tile.frame_index is not None), tile.no_signal

        # Nothing moves before start: the leader is moved, no goal is written.
        goals = registers(app, "Goal_Position")
        sim.jog("elbow_flex", 25.0)
        await pilot.pause(0.5)
        assert registers(app, "Goal_Position") == goals
        assert screen.teleop is None and app.session.teleop is None

        await press(pilot, "s")
        assert await until(pilot, lambda: screen.state == "running"), screen.message
        leader_elbow = sim.leader.positions()[2]  # radians of the virtual leader

        def tracking() -> bool:
            elbow = rows(screen).get("elbow_flex")
            return elbow is not None and elbow.leader is not None and abs(elbow.follower - elbow.leader) < 2.0

        assert await until(pilot, tracking), rows(screen)
        assert registers(app, "Goal_Position") != goals
        assert sim.leader.positions()[2] == leader_elbow
        assert await until(pilot, lambda: "p99 period" in screen_text(app) and "rate —" not in screen_text(app))

        # The scripted demonstrator moves the leader; the follower keeps up with it.
        start = {n: r.follower for n, r in rows(screen).items()}
        await press(pilot, "d")
        assert await until(pilot, lambda: sim.scripted_leader.running)

        def demo_tracked() -> bool:
            now = rows(screen)
            moved = max(abs(now[n].follower - start[n]) for n in start)
            return moved > 10.0 and all(abs(r.follower - r.leader) < 8.0 for r in now.values())

        assert await until(pilot, demo_tracked), rows(screen)
        await press(pilot, "d")
        assert await until(pilot, lambda: not sim.scripted_leader.running)

        await press(pilot, "x")
        assert await until(pilot, lambda: screen.state == "stopped"), screen.message
        assert registers(app, "Torque_Enable") == [0] * 6
        assert app.session.teleop is None
        assert any(t.name == "preview-front" for t in threading.enumerate())
    # Closing the app stopped every thread the screen and the session started.
    assert not [t.name for t in threading.enumerate() if t.name.startswith(ours)]


async def test_keyboard_jog_moves_only_the_selected_joint_and_leaving_releases_torque() -> None:
    app = make_app(no_cameras(teleop=ArmConfig("keyboard")))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_teleop(pilot, app)
        assert screen.state == "ready", screen.message
        assert "No cameras in this profile" in screen_text(app)
        goals = registers(app, "Goal_Position")
        await press(pilot, "right")  # before start: refused with a hint, nothing written
        assert await until(pilot, lambda: any("to start first" in m for m in notifications(app)))
        assert registers(app, "Goal_Position") == goals

        await press(pilot, "s")
        assert await until(pilot, lambda: screen.state == "running" and bool(rows(screen))), screen.message
        before = {n: r.goal for n, r in rows(screen).items()}
        await press(pilot, "down", "down", "plus")  # elbow_flex, step 2 -> 5
        jog = screen.teleop.jog if screen.teleop is not None else None
        assert jog is not None
        assert await until(pilot, lambda: jog.selected == "elbow_flex" and jog.step == 5.0)
        assert screen.query_one(JointTable).selected == "elbow_flex"
        await press(pilot, "right", "right", "right", "right")

        def jogged() -> bool:
            now = rows(screen)["elbow_flex"]
            return now.goal is not None and abs(now.goal - (before["elbow_flex"] + 20.0)) < 0.01

        assert await until(pilot, jogged), rows(screen)
        now = rows(screen)
        for name, goal in before.items():
            if name != "elbow_flex":
                assert now[name].goal == goal, name
        elbow = rows(screen)["elbow_flex"]
        assert await until(pilot, lambda: abs(rows(screen)["elbow_flex"].follower - elbow.goal) < 2.0), rows(screen)
        assert registers(app, "Torque_Enable") == [1] * 6

        await press(pilot, "escape")  # leaving the screen stops teleop and releases torque
        assert await until(pilot, lambda: isinstance(app.screen, HomeScreen))
        assert await until(pilot, lambda: registers(app, "Torque_Enable") == [0] * 6)
        assert app.session.teleop is None


async def test_a_lost_port_stops_releases_and_says_what_to_do_then_restart_reconnects() -> None:
    app = make_app(no_cameras())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_teleop(pilot, app)
        sim = app.session.sim
        assert sim is not None
        await press(pilot, "s")
        assert await until(pilot, lambda: screen.state == "running"), screen.message
        sim.unplug("follower")
        assert await until(pilot, lambda: screen.state == "error"), screen.message
        assert await until(pilot, lambda: app.session.robot is None)  # closed: the next start reconnects
        assert await until(pilot, lambda: "Fix the cause" in screen.message), screen.message
        assert "ttyEMU-sim-follower" in screen.message and "Plug it back in" in screen.message
        assert await until(pilot, lambda: any("ttyEMU-sim-follower" in m for m in notifications(app)))
        # Nothing can switch torque off over a dead link: the message says so rather than claim it did.
        assert "may still hold its pose" in screen.message and registers(app, "Torque_Enable") == [1] * 6
        assert "STOPPED (error)" in screen_text(app)

        await press(pilot, "s")  # still unplugged: the connect error names the port
        await settle(pilot, app)
        assert screen.state == "error" and "does not exist" in screen.message

        sim.replug("follower")
        await press(pilot, "s")
        assert await until(pilot, lambda: screen.state == "running"), screen.message
        await press(pilot, "x")
        assert await until(pilot, lambda: screen.state == "stopped"), screen.message
        assert registers(app, "Torque_Enable") == [0] * 6


async def test_missing_calibration_names_the_file_and_the_fix() -> None:
    app = make_app(no_cameras(robot=ArmConfig("so101_follower", "", "nobody")))
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_teleop(pilot, app)
        assert screen.state == "error", screen.message
        assert "robots/so_follower/nobody.json" in screen.message and "Calibrate" in screen.message
        assert await until(pilot, lambda: any("nobody.json" in m and "Calibrate" in m for m in notifications(app)))
        await press(pilot, "s")  # refused again, and the uncalibrated follower is let go
        await settle(pilot, app)
        assert screen.state == "error" and "nobody.json" in screen.message
        assert app.session.teleop is None
        assert registers(app, "Torque_Enable") == [0] * 6


async def test_quitting_while_running_releases_torque() -> None:
    app = make_app(no_cameras())
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_teleop(pilot, app)
        sim = app.session.sim
        assert sim is not None
        await press(pilot, "s")
        assert await until(pilot, lambda: screen.state == "running"), screen.message
        assert registers(app, "Torque_Enable") == [1] * 6
        await press(pilot, "ctrl+q")
        assert await until(pilot, lambda: not app.is_running)
    bus = sim.follower_bus  # the app closed the session (and the simulator); the registers stay readable
    with bus.lock:
        assert [bus.servo(i).read_register("Torque_Enable") for i in IDS] == [0] * 6
