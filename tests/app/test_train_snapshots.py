"""Snapshots of the Train screen (120×40, no robot needed): with no job yet, and the new-job form. Regenerate
with `pytest tests/app/test_train_snapshots.py --snapshot-update` only after looking at the new SVGs."""

from __future__ import annotations

from typing import Any

from textual.widgets import Input

from engine.profile import default_profile
from robotui.app import RobotuiApp
from robotui.command_table import TABLE
from tests.app.pilot_helpers import settle

SIZE = (120, 40)


def make_app() -> RobotuiApp:
    return RobotuiApp(default_profile(), hotkeys=False)  # the registry is the test's own: no jobs


async def _open_train(pilot: Any) -> None:
    await settle(pilot, pilot.app)
    await pilot.press(TABLE["train"].key or "")
    await settle(pilot, pilot.app)  # the first registry listing has been shown
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False  # a blinking cursor would make the picture depend on the moment


def test_train_screen_without_jobs(snap_compare: Any) -> None:
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=_open_train)


def test_new_job_form(snap_compare: Any) -> None:
    async def open_form(pilot: Any) -> None:
        await _open_train(pilot)
        await pilot.press(TABLE["new"].key or "")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=open_form)
