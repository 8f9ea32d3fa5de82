"""Snapshots of the Teleop screen (120×40, sim): idle before the arms are connected (empty camera tiles),
and connected-idle with keyboard jogging (joint table listed, nothing running, no timing figures).
Regenerate with `pytest tests/app/test_teleop_snapshots.py --snapshot-update` only after looking at the
new SVGs."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine.profile import ArmConfig, Profile, sim_profile
from robotui.app import RobotuiApp
from screens.teleop import TeleopScreen
from tests.app.test_teleop_screen import open_teleop, until

SIZE = (120, 40)


@pytest.fixture(autouse=True)
def _fixed_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path("/tmp/robotui-snapshot-teleop")
    shutil.rmtree(root, ignore_errors=True)
    monkeypatch.setenv("HF_LEROBOT_HOME", str(root / "lerobot"))


async def _open_teleop(pilot: Any) -> None:
    screen = await open_teleop(pilot, pilot.app)
    assert await until(pilot, lambda: screen.state in ("ready", "idle")), screen.message
    await pilot.pause(0.3)  # the 10 Hz refresh has drawn that state


def _app(profile: Profile) -> RobotuiApp:
    return RobotuiApp(profile, hotkeys=False)


def test_teleop_idle_before_connecting(snap_compare: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TeleopScreen, "auto_connect", False)
    assert snap_compare(_app(sim_profile()), terminal_size=SIZE, run_before=_open_teleop)


def test_teleop_keyboard_connected_idle(snap_compare: Any) -> None:
    profile = dataclasses.replace(sim_profile(), teleop=ArmConfig("keyboard"), cameras={})
    assert snap_compare(_app(profile), terminal_size=SIZE, run_before=_open_teleop)
