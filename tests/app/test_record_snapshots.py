"""Snapshots of the Record screen's set-up form (120×40, sim profile): as it opens, and refusing to start
without a task. Regenerate with `pytest tests/app/test_record_snapshots.py --snapshot-update` only after
looking at the new SVGs."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input

from robotui.app import RobotuiApp, choose_profile
from robotui.command_table import TABLE
from tests.app.pilot_helpers import settle

SIZE = (120, 40)


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> RobotuiApp:
    # The form shows the default dataset folder: keep it under a fixed root, emptied first.
    root = Path("/tmp/robotui-record-snapshot")
    shutil.rmtree(root, ignore_errors=True)
    monkeypatch.setenv("HF_LEROBOT_HOME", str(root / "lerobot"))
    monkeypatch.delenv("HF_USER", raising=False)
    profile, store, error = choose_profile(argparse.Namespace(sim=True))
    return RobotuiApp(profile, store=store, store_error=error, hotkeys=False)


async def _open_record(pilot: Any) -> None:
    await settle(pilot, pilot.app)
    await pilot.press(TABLE["record"].key or "")
    await pilot.pause()
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False  # a blinking cursor would make the picture depend on the moment


def test_record_form(snap_compare: Any, app: RobotuiApp) -> None:
    assert snap_compare(app, terminal_size=SIZE, run_before=_open_record)


def test_record_form_refuses_an_empty_task(snap_compare: Any, app: RobotuiApp) -> None:
    async def start_without_task(pilot: Any) -> None:
        await _open_record(pilot)
        await pilot.press(TABLE["start"].key or "")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=start_without_task)
