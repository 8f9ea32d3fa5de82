"""The motor-setup wizard under Pilot on the virtual robot: opened from the Ports screen, it walks the
follower's six motors gripper first, with the simulation aid connecting one factory-fresh motor at a time;
what went wrong (several motors, none) is said with what to do; skip/back move between motors; closing it
gives the virtual arm its own motors back, in working order."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import pytest

from drivers.motors import MotorBus
from drivers.ports import BrlttyFinding
from robotui.app import RobotuiApp, choose_profile
from screens.motor_setup import MotorSetupScreen
from screens.ports import PortScanner, PortsScreen
from tests.app.pilot_helpers import settle
from tests.app.test_ports_screen import shown, until

SIZE = (120, 40)
ORDER = ["gripper", "wrist_roll", "wrist_flex", "elbow_flex", "shoulder_lift", "shoulder_pan"]


@pytest.fixture(autouse=True)
def _quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """No motor here has an id above 20 (a 20-id broadcast window, not 252); no host brltty scan."""
    monkeypatch.setattr(MotorBus, "broadcast_max_id", 20)
    monkeypatch.setattr(PortsScreen, "scanner", PortScanner(brltty=BrlttyFinding()))


def sim_app() -> RobotuiApp:
    profile, store, error = choose_profile(argparse.Namespace(sim=True, verbose=False))
    return RobotuiApp(profile, store=store, store_error=error, hotkeys=False)


async def open_wizard(pilot: Any, app: RobotuiApp) -> MotorSetupScreen:
    await settle(pilot, app)
    await pilot.press("1")
    await until(pilot, lambda: isinstance(app.screen, PortsScreen), "the Ports screen")
    await pilot.press("m")
    await until(pilot, lambda: isinstance(app.screen, MotorSetupScreen) and app.screen.procedure is not None,
                "the wizard to open the arm")
    assert isinstance(app.screen, MotorSetupScreen)
    return app.screen


async def press_and_wait(pilot: Any, wizard: MotorSetupScreen, key: str) -> None:
    await pilot.press(key)
    await pilot.pause(0)
    await until(pilot, lambda: not wizard.busy, "the motor search")
    await pilot.pause(0)


async def command(pilot: Any, wizard: MotorSetupScreen, name: str) -> None:
    """Run a command-table row the way its key does (`command(name)` on the app), without Pilot's key press:
    that waits for an idle process, which the running physics never is (two seconds per key)."""
    await pilot.app.run_action(f"command({name!r})")
    await pilot.pause(0)
    await until(pilot, lambda: not wizard.busy, "the motor search")
    await pilot.pause(0)


async def test_every_motor_set_up_one_at_a_time_then_the_arm_is_back() -> None:
    app = sim_app()
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, app)
        sim = app.session.sim
        assert sim is not None
        bus = sim.follower_bus
        own_motors = dict(bus.servos)
        assert wizard.role == "robot" and wizard.aid is not None
        await shown(
            pilot,
            "Motor 1 of 6: gripper",
            "Connect only the 'gripper' motor (sts3215) to the controller board",
            "then press Enter. It will get id 6.",
            "Simulation aid: press f to connect only a factory-fresh 'gripper' motor",
        )

        # The whole arm is still on the cable: the wizard refuses and says what to unplug.
        await press_and_wait(pilot, wizard, "enter")
        await shown(pilot, "More than one motor answers", "Unplug every motor but 'gripper'")
        assert set(bus.servos) == set(own_motors)  # nothing was renamed

        await pilot.press("f")  # the keys themselves once; the table's commands for the rest
        for n, motor in enumerate(ORDER):
            if motor == "wrist_flex":  # skip it, then come back to it
                await command(pilot, wizard, "skip")
                assert wizard.procedure is not None and wizard.procedure.current.motor == "elbow_flex"
                await shown(pilot, "Skipped 'wrist_flex'.")
                await command(pilot, wizard, "back")
                assert wizard.procedure.current.motor == "wrist_flex"
            if n:
                await command(pilot, wizard, "sim-motor")
            assert [s.id for s in bus.servos.values()] == [1]  # one factory-fresh motor, alone
            if n:
                await command(pilot, wizard, "setup")
            else:
                await press_and_wait(pilot, wizard, "enter")
            step_id = 6 - n
            if motor == "shoulder_pan":
                await shown(pilot, "✓ 'shoulder_pan': already id 1 at 1 Mbps, nothing to change")
            else:
                await shown(pilot, f"✓ '{motor}': found at 1000000 baud with id 1 -> set to id {step_id} at 1 Mbps")
            assert set(bus.servos) == {step_id}

        assert wizard.procedure is not None and wizard.procedure.done
        text = await shown(pilot, "Summary", "6 of 6 motors set up", "calibrate the arm")
        assert "skipped" not in text

        await pilot.press("escape")  # back to the Ports screen: the virtual arm has its own motors again
        await until(pilot, lambda: isinstance(app.screen, PortsScreen), "the Ports screen")
        assert bus.servos == own_motors  # the very same motor objects, which the physics drives
        robot = app.session.build_robot()
        await asyncio.to_thread(robot.connect_bus)  # the handshake: all six answer, with the right model
        try:
            offsets = await asyncio.to_thread(robot.bus.sync_read, "Homing_Offset", normalize=False)
            assert offsets == {m: c.homing_offset for m, c in sim.calibration("follower").items()}
        finally:
            await asyncio.to_thread(robot.disconnect)


async def test_no_motor_connected_says_what_to_check() -> None:
    app = sim_app()
    async with app.run_test(size=SIZE) as pilot:
        wizard = await open_wizard(pilot, app)
        assert wizard.aid is not None
        wizard.aid.unplug()  # the motor's cable came loose
        await press_and_wait(pilot, wizard, "enter")
        await shown(
            pilot,
            "No motor answered",
            "Check that the 'gripper' motor's 3-pin cable is seated at both ends",
            "press Enter to try again",
        )
        assert wizard.procedure is not None and wizard.procedure.current.motor == "gripper"  # not advanced
        assert wizard.query_one("#setup-current").has_class("-error")

        await command(pilot, wizard, "sim-motor")  # plugged in properly this time
        await command(pilot, wizard, "setup")
        await shown(pilot, "✓ 'gripper': found at 1000000 baud with id 1 -> set to id 6")
        assert wizard.procedure.current.motor == "wrist_roll"


async def test_the_keyboard_teleop_has_no_motors(monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from engine.profile import ArmConfig

    profile, _, _ = choose_profile(argparse.Namespace(sim=True, verbose=False))
    app = RobotuiApp(replace(profile, teleop=ArmConfig("keyboard")), hotkeys=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("1")
        await until(pilot, lambda: isinstance(app.screen, PortsScreen), "the Ports screen")
        await app.screen.run_action("motor_setup('teleop')")
        await until(pilot, lambda: isinstance(app.screen, MotorSetupScreen) and bool(app.screen.problem),
                    "the wizard's verdict")
        await shown(pilot, "The teleop is the keyboard in this profile: it has no motors to set up.")
        await pilot.press("enter")  # nothing to set up: it says so instead of failing
        assert any("keyboard" in n.message for n in app._notifications)
