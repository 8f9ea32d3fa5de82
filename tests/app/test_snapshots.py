"""Snapshots of the home and help screens (120×40, sim profile). Regenerate with
`pytest tests/app/test_snapshots.py --snapshot-update` only after looking at the new SVGs."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

import pytest

from robotui.app import RobotuiApp, choose_profile
from tests.app.pilot_helpers import settle

SIZE = (120, 40)


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> RobotuiApp:
    # Paths on screen must not depend on the test's tmp dir: datasets and calibration (the session writes the
    # virtual arms' files) live under this fixed root, emptied first.
    root = Path("/tmp/robotui-snapshot")
    shutil.rmtree(root, ignore_errors=True)
    monkeypatch.setenv("HF_LEROBOT_HOME", str(root / "lerobot"))
    profile, store, error = choose_profile(argparse.Namespace(sim=True))
    return RobotuiApp(profile, store=store, store_error=error, hotkeys=False)


async def _checks_done(pilot: Any) -> None:
    await settle(pilot, pilot.app)


def test_home_screen(snap_compare: Any, app: RobotuiApp) -> None:
    assert snap_compare(app, terminal_size=SIZE, run_before=_checks_done)


def test_help_screen(snap_compare: Any, app: RobotuiApp) -> None:
    async def open_help(pilot: Any) -> None:
        await _checks_done(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=open_help)
