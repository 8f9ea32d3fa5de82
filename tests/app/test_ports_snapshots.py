"""Snapshots of the Ports screen and the motor-setup wizard (120×40, sim profile, idle). Regenerate with
`pytest tests/app/test_ports_snapshots.py --snapshot-update` only after looking at the new SVGs.

Everything on screen is pinned: the virtual ports live under a fixed runtime dir, /dev and by-id are empty
folders, and no brltty is looked for, so the host's own ports never show up."""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.motors import MotorBus
from drivers.ports import BrlttyFinding
from robotui.app import RobotuiApp, choose_profile
from screens.motor_setup import MotorSetupScreen
from screens.ports import PortScanner, PortsScreen
from tests.app.pilot_helpers import settle

SIZE = (120, 40)
ROOT = Path("/tmp/rt-snap")


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Iterator[RobotuiApp]:
    shutil.rmtree(ROOT, ignore_errors=True)
    (ROOT / "dev" / "serial" / "by-id").mkdir(parents=True)
    (ROOT / "run").mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(ROOT / "run"))
    monkeypatch.setenv("HF_LEROBOT_HOME", str(ROOT / "lerobot"))
    monkeypatch.setattr("drivers.ports.DEV_DIR", ROOT / "dev")
    monkeypatch.setattr("drivers.ports.BY_ID_DIR", ROOT / "dev" / "serial" / "by-id")
    monkeypatch.setattr(PortsScreen, "scanner", PortScanner(brltty=BrlttyFinding()))
    monkeypatch.setattr(MotorBus, "broadcast_max_id", 20)
    profile, store, error = choose_profile(argparse.Namespace(sim=True))
    yield RobotuiApp(profile, store=store, store_error=error, hotkeys=False)
    shutil.rmtree(ROOT, ignore_errors=True)


async def _wait(pilot: Any, predicate: Any) -> None:
    for _ in range(400):
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError("the screen never got ready")


async def _open_ports(pilot: Any) -> None:
    await settle(pilot, pilot.app)
    await pilot.press("1")
    await _wait(pilot, lambda: isinstance(pilot.app.screen, PortsScreen) and len(pilot.app.screen.ports) == 2)
    await pilot.pause()


def test_ports_screen(snap_compare: Any, app: RobotuiApp) -> None:
    assert snap_compare(app, terminal_size=SIZE, run_before=_open_ports)


def test_motor_setup_wizard(snap_compare: Any, app: RobotuiApp) -> None:
    async def open_wizard(pilot: Any) -> None:
        await _open_ports(pilot)
        await pilot.press("m")
        await _wait(pilot, lambda: isinstance(pilot.app.screen, MotorSetupScreen) and pilot.app.screen.procedure)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=open_wizard)
