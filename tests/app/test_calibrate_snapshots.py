"""Snapshot of the Calibrate screen at rest (120×40, virtual SO-101 with factory-fresh servos, follower
chosen, no calibration file yet). Regenerate with `pytest tests/app/test_calibrate_snapshots.py
--snapshot-update` only after looking at the new SVG."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from engine.profile import sim_profile
from engine.session import Session
from robotui.app import RobotuiApp
from screens.calibrate import CalibrateScreen, Phase
from tests.app.test_calibrate_screen import open_calibrate, wait_for

SIZE = (120, 40)


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> RobotuiApp:
    # The file path on screen must not depend on the test's tmp dir.
    root = Path("/tmp/robotui-snapshot-calibrate")
    shutil.rmtree(root, ignore_errors=True)
    monkeypatch.setenv("HF_LEROBOT_HOME", str(root / "lerobot"))
    return RobotuiApp(sim_profile(), session=Session(sim_profile(), sim_calibrated=False), hotkeys=False)


def test_calibrate_screen_at_rest(snap_compare: Any, app: RobotuiApp) -> None:
    async def open_screen(pilot: Any) -> None:
        screen = await open_calibrate(pilot, app)
        assert isinstance(screen, CalibrateScreen)
        await wait_for(pilot, lambda: screen.phase is Phase.NO_FILE, "the file check")
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SIZE, run_before=open_screen)
