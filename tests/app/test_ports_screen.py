"""The Ports screen under Pilot: the live port list, "find the port" on the virtual robot (its cable pulled
and re-seated with the simulation-aid keys) and on a pty standing in for a USB adapter in a made-up /dev,
assigning the port to the profile, and access problems with their fixes."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.ports import BrlttyFinding, UserIdentity
from engine.profile import ArmConfig, Profile, load_profiles, profiles_path
from robotui.app import RobotuiApp, choose_profile
from screens.ports import PortScanner, PortsScreen
from tests.app.pilot_helpers import settle

SIZE = (120, 40)
BY_ID_NAME = "usb-1a86_USB_Single_Serial_5A46"


def flat_text(app: RobotuiApp) -> str:
    """The screen's text with borders dropped and wrapped lines joined, so a sentence can be searched."""
    lines = (strip.text for strip in app.screen._compositor.render_strips())
    return " ".join(" ".join(line.strip(" │╭╮╰╯─").split()) for line in lines)


def notifications(app: RobotuiApp) -> list[str]:
    return [n.message for n in app._notifications]


async def until(pilot: Any, predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def shown(pilot: Any, *texts: str, timeout: float = 10.0) -> str:
    """The screen's flat text once it shows all of `texts` (a repaint follows a state change shortly)."""
    text = ""
    for _ in range(int(timeout / 0.05)):
        text = flat_text(pilot.app)
        if all(t in text for t in texts):
            return text
        await pilot.pause(0.05)
    missing = [t for t in texts if t not in text]
    raise AssertionError(f"the screen never showed {missing!r}; it shows: {text}")


@pytest.fixture
def dev(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A made-up /dev (and /dev/serial/by-id) that only holds what a test puts there; no brltty around. A
    short path, like the real one, so the screen shows it on one line."""
    dev_dir = Path(tempfile.mkdtemp(prefix="rt-dev-"))
    by_id = dev_dir / "serial" / "by-id"
    by_id.mkdir(parents=True)
    monkeypatch.setattr("drivers.ports.DEV_DIR", dev_dir)
    monkeypatch.setattr("drivers.ports.BY_ID_DIR", by_id)
    monkeypatch.setattr(PortsScreen, "scanner", PortScanner(brltty=BrlttyFinding()))
    yield dev_dir
    shutil.rmtree(dev_dir, ignore_errors=True)


class UsbAdapter:
    """A pty behind /dev/ttyACM0 and its by-id link: pulling the cable removes both, as udev does."""

    def __init__(self, dev_dir: Path, name: str = "ttyACM0") -> None:
        self.master, self.slave = os.openpty()
        self.target = os.ttyname(self.slave)
        self.node = dev_dir / name
        self.by_id = dev_dir / "serial" / "by-id" / f"{BY_ID_NAME}-{name}-if00"
        self.plug()

    def plug(self) -> None:
        self.node.symlink_to(self.target)
        self.by_id.symlink_to(self.target)

    def unplug(self) -> None:
        self.node.unlink()
        self.by_id.unlink()

    def close(self) -> None:
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def adapters(dev: Path) -> Iterator[list[UsbAdapter]]:
    made: list[UsbAdapter] = []
    yield made
    for adapter in made:
        adapter.close()


def sim_app() -> RobotuiApp:
    profile, store, error = choose_profile(argparse.Namespace(sim=True, verbose=False))
    return RobotuiApp(profile, store=store, store_error=error, hotkeys=False)


def lab_app() -> RobotuiApp:
    profile = Profile(name="lab", robot=ArmConfig("so101_follower", "", "lab"),
                      teleop=ArmConfig("so101_leader", "", "lab_leader"))
    return RobotuiApp(profile, hotkeys=False)


async def open_ports(pilot: Any, app: RobotuiApp) -> PortsScreen:
    await settle(pilot, app)
    await pilot.press("1")
    await until(pilot, lambda: isinstance(app.screen, PortsScreen) and app.screen.ports != [], "the port list")
    assert isinstance(app.screen, PortsScreen)
    return app.screen


async def test_find_the_virtual_followers_port_and_assign_it(dev: Path) -> None:
    app = sim_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_ports(pilot, app)
        assert app.session.sim is not None
        follower, leader = app.session.sim.follower_port, app.session.sim.leader_port
        # the ports the profile uses are marked
        await shown(pilot, follower, leader, "✓ usable ← robot", "✓ usable ← teleop")
        described = {p.path: p.description for p in screen.ports}
        assert described[follower] == "robotui servo emulator (sim-follower)"
        await shown(pilot, "Simulation aid: press u to pull the virtual follower's USB cable, p to plug it back in")

        await pilot.press("r")
        assert screen.find is not None and screen.find.stage == "unplug"
        await shown(pilot, "Unplug the follower's USB cable now — no need to press anything")

        await pilot.press("u")  # the simulation aid pulls the cable; nothing else is pressed
        await until(pilot, lambda: screen.find is not None and screen.find.stage == "replug", "the unplug")
        assert screen.find.port == follower
        await shown(pilot, f"✓ The follower's port is {follower} Plug the cable back in")
        await until(pilot, lambda: follower not in [p.path for p in screen.ports], "the list to drop it")

        await pilot.press("p")
        await until(pilot, lambda: screen.find is not None and screen.find.stage == "done", "the replug")
        assert screen.find.back_as == follower and screen.find.by_id is None  # a pty has no by-id name
        await shown(pilot, "(confirmed: it came back when you plugged the cable in)")

        assert app.profile.robot.port == ""  # the sim profile leaves ports to the session
        await pilot.press("a")
        await until(pilot, lambda: app.profile.robot.port == follower, "the profile to take the port")
        assert app.session.profile.robot.port == follower
        assert f"robot port set to {follower} for this session (sim)." in notifications(app)
        assert not profiles_path().exists()  # virtual ports are not written to the profiles file


async def test_find_a_usb_port_replug_and_save_its_by_id_name(adapters: list[UsbAdapter], dev: Path) -> None:
    adapters.append(UsbAdapter(dev))
    arm = adapters[0]
    app = lab_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_ports(pilot, app)
        await shown(pilot, str(arm.node), "robot so101_follower not set — find it above")
        assert [(p.path, p.by_id_name) for p in screen.ports] == [(str(arm.node), arm.by_id.name)]

        await pilot.press("t")  # the leader this time
        await pilot.pause(0)
        arm.unplug()
        await until(pilot, lambda: screen.find is not None and screen.find.stage == "replug", "the unplug")
        assert (screen.find.role, screen.find.port, screen.find.by_id) == ("teleop", str(arm.node), str(arm.by_id))
        await shown(pilot, f"The leader's port is {arm.node}")

        arm.plug()
        await until(pilot, lambda: screen.find is not None and screen.find.stage == "done", "the replug")
        await shown(pilot, f"Stable name: {arm.by_id} — use it: /dev/ttyACM*/ttyUSB* numbers change",
                    f"Press a to set {arm.by_id} as the teleop port in the profile")

        await pilot.press("a")
        await until(pilot, lambda: app.profile.teleop.port == str(arm.by_id), "the profile to be saved")
        saved = load_profiles().profiles["lab"]
        assert saved.teleop.port == str(arm.by_id) and saved.robot.port == ""
        assert f"teleop port set to {arm.by_id} in profile 'lab'." in notifications(app)
        await shown(pilot, f"teleop so101_leader {arm.by_id} ✓ present")


async def test_a_cable_with_two_ports_and_a_timeout_are_explained(
    adapters: list[UsbAdapter], dev: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapters += [UsbAdapter(dev, "ttyACM0"), UsbAdapter(dev, "ttyACM1")]
    monkeypatch.setattr(PortsScreen, "find_timeout_s", 0.5)
    app = lab_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_ports(pilot, app)
        await pilot.press("r")
        await until(pilot, lambda: screen.find is not None and screen.find.stage == "failed", "the timeout")
        await shown(pilot, "No port disappeared within 0.5 s", "dmesg")

        await pilot.press("r")
        await pilot.pause(0)
        for adapter in adapters:
            adapter.unplug()
        await until(pilot, lambda: screen.find is not None and screen.find.stage == "failed", "the unplug")
        await shown(pilot, "2 ports disappeared at once", "Unplug only the follower's own cable")

        await pilot.press("a")  # nothing was found: nothing to assign
        assert any("Nothing to assign yet: press r (or t)" in n for n in notifications(app))
        await pilot.press("u")  # not a simulated robot: the aid says what to do instead
        assert any("with a real arm, pull or plug its USB cable yourself" in n for n in notifications(app))


async def test_permission_and_brltty_problems_come_with_the_fix(
    dev: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev.mkdir(exist_ok=True)
    group_only, owner_only = dev / "ttyUSB0", dev / "ttyACM0"
    for node, mode in ((group_only, 0o660), (owner_only, 0o600)):
        node.touch()
        node.chmod(mode)
    import grp

    group = grp.getgrgid(os.stat(group_only).st_gid).gr_name
    operator = UserIdentity(uid=os.getuid() + 4242, name="operator", gids=frozenset({os.getgid() + 4242}))
    brltty = BrlttyFinding(pids=(4242,))
    monkeypatch.setattr(PortsScreen, "scanner", PortScanner(user=operator, brltty=brltty))
    app = lab_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_ports(pilot, app)
        await until(pilot, lambda: len(screen.problems) == 3, "the problems")
        text = await shown(
            pilot,
            f"{group_only} belongs to group '{group}' and user 'operator' is not in it",
            f"fix: sudo usermod -aG {group} $USER, then log out and back in",
            f"{owner_only} is readable only by its owner",
            "udevadm",
            "brltty is running (pid 4242)",
            "sudo apt remove brltty",
        )
        assert text.count("✗ no access (fix below)") == 2

    # The same user after `usermod` but before logging in again: log out and back in, not usermod.
    listed = UserIdentity(operator.uid, "operator", operator.gids, listed_groups=frozenset({group}))
    monkeypatch.setattr(PortsScreen, "scanner", PortScanner(user=listed, brltty=BrlttyFinding()))
    owner_only.unlink()
    app = lab_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_ports(pilot, app)
        await until(pilot, lambda: len(screen.problems) == 1, "the problem")
        await shown(pilot, "✗ log in again (fix below)", "this login session started before you were added",
                    f"newgrp {group}")
