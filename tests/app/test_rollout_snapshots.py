"""Snapshot of the Rollout screen's set-up form (120×40, sim profile). Regenerate with
`pytest tests/app/test_rollout_snapshots.py --snapshot-update` only after looking at the new SVG."""

from __future__ import annotations

import argparse
from typing import Any

import pytest
from textual.widgets import Input

from robotui.app import RobotuiApp, choose_profile
from robotui.command_table import TABLE
from tests.app.pilot_helpers import settle

SIZE = (120, 40)


@pytest.fixture
def app() -> RobotuiApp:
    profile, store, error = choose_profile(argparse.Namespace(sim=True))
    return RobotuiApp(profile, store=store, store_error=error, hotkeys=False)


def test_rollout_form(snap_compare: Any, app: RobotuiApp) -> None:
    async def open_rollout(pilot: Any) -> None:
        await settle(pilot, pilot.app)
        await pilot.press(TABLE["rollout"].key or "")
        await pilot.pause()
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False

    assert snap_compare(app, terminal_size=SIZE, run_before=open_rollout)
