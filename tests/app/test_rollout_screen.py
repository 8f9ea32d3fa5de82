"""The Rollout screen on the virtual SO-101 with a real (tiny) ACT checkpoint, driven under Pilot: the form,
keys, the command line (typed text survives refreshes, bad commands get the closest match), takeover with
the leader, a timed burst, and a dagger run whose takeover lands in the dataset with `intervention`."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from textual.widgets import Input, Select

from engine.dataset.reader import LeRobotDatasetReader
from engine.dataset.validate import check, has_errors
from engine.rollout import Mode
from robotui.app import RobotuiApp, choose_profile
from screens.rollout import RolloutScreen
from screens.widgets.command_bar import CommandBar
from screens.widgets.conversation import Conversation
from screens.widgets.rollout_form import field_id
from tests.act_checkpoint import save_tiny_act
from tests.app.pilot_helpers import settle

SIZE = (120, 40)
TIMEOUT = 90.0  # a safety net for a loaded machine, never a timing claim


def make_app() -> RobotuiApp:
    profile, store, error = choose_profile(argparse.Namespace(sim=True))
    return RobotuiApp(profile, store=store, store_error=error, hotkeys=False)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_act(tmp_path_factory.mktemp("act"))


async def wait_until(pilot: Any, condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.02)


def said(screen: RolloutScreen) -> str:
    return "\n".join(screen.query_one(Conversation).lines_written)


async def open_and_start(pilot: Any, app: RobotuiApp, policy: str, **fields: str) -> RolloutScreen:
    await settle(pilot, app)
    await pilot.press("5")
    await wait_until(pilot, lambda: isinstance(app.screen, RolloutScreen), "the rollout screen")
    screen = app.screen
    assert isinstance(screen, RolloutScreen)
    screen.query_one(f"#{field_id('policy')}", Input).value = policy
    for name, value in fields.items():
        widget = screen.query_one(f"#{field_id(name)}")
        if isinstance(widget, Select):
            widget.value = value
        else:
            assert isinstance(widget, Input)
            widget.value = value
    await pilot.press("ctrl+s")
    await wait_until(pilot, lambda: screen.state != "loading", "the policy to load")
    return screen


async def type_command(pilot: Any, text: str) -> None:
    await pilot.press("slash")
    await pilot.press(*list(text.removeprefix("/")))
    await pilot.press("enter")


async def test_keys_and_command_line_drive_the_policy_on_the_sim(checkpoint: Path) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_and_start(pilot, app, str(checkpoint), task="pick the cube")
        assert screen.state == "running", screen.query_one("#form-error").render()
        rollout = screen.rollout
        assert rollout is not None and rollout.mode is Mode.PAUSED
        assert "ready and paused" in said(screen)
        assert rollout.snapshot().actions_dispatched == 0

        await pilot.press("a")  # /action: the policy drives
        await wait_until(pilot, lambda: rollout.snapshot().actions_dispatched > 5, "actions to reach the arm")
        assert "> /action  running the policy" in said(screen)

        # What is being typed survives the status refreshes around it.
        await pilot.press("slash", "p", "a")
        await pilot.pause(0.5)
        bar = screen.query_one(CommandBar)
        assert bar.value == "/pa" and bar.has_focus
        await pilot.press("u", "s", "e", "enter")
        await wait_until(pilot, lambda: rollout.mode is Mode.PAUSED, "the pause")
        assert "> /pause  pausing: the arm holds its position" in said(screen)

        await type_command(pilot, "/paws")
        assert "unknown command /paws — did you mean /pause?" in said(screen)
        await type_command(pilot, "/action -3")
        assert "seconds must be positive" in said(screen)

        await type_command(pilot, "/action 0.5")
        await wait_until(pilot, lambda: "timed run over: paused" in said(screen), "the timed run to pause by itself")
        assert "> /action 0.5  running the policy for 0.5 s, then pausing" in said(screen)
        assert rollout.mode is Mode.PAUSED

        await pilot.press("tab")  # takeover: the leader first goes to the follower's pose
        await wait_until(pilot, lambda: rollout.mode is Mode.TAKEOVER, "the takeover")
        await pilot.press("g")  # /resume hands control back to the policy
        await wait_until(pilot, lambda: rollout.mode is Mode.AUTONOMOUS, "the hand-back")
        await pilot.press("space")  # pause, and again: resume
        await wait_until(pilot, lambda: rollout.mode is Mode.PAUSED, "the pause key")
        await pilot.press("space")
        await wait_until(pilot, lambda: rollout.mode is Mode.AUTONOMOUS, "the resume key")
        assert rollout.snapshot().interventions == 1

        await pilot.press("escape")
        await wait_until(pilot, lambda: screen.state == "done", "the stop")
        assert rollout.finished
        sim = app.session.sim
        assert sim is not None
        assert all(sim.follower_bus.servo(i).read_register("Torque_Enable") == 0 for i in range(1, 7))


async def test_dagger_takeover_is_recorded_with_intervention(checkpoint: Path, tmp_path: Path) -> None:
    root = tmp_path / "dagger"
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_and_start(pilot, app, str(checkpoint), strategy="dagger", task="pick",
                                      root=str(root))
        assert screen.state == "running", screen.query_one("#form-error").render()
        rollout = screen.rollout
        assert rollout is not None
        await pilot.press("tab")
        await wait_until(pilot, lambda: rollout.mode is Mode.TAKEOVER, "the takeover")
        sim = app.session.sim
        assert sim is not None
        start = sim.joint_degrees("leader")["shoulder_pan"]
        for k in range(1, 11):
            sim.move_joints("leader", {"shoulder_pan": start + k})
            await pilot.pause(0.05)
        await pilot.press("tab")  # ends the takeover: the correction is saved as an episode
        await wait_until(pilot, lambda: len(rollout.snapshot().saved) == 1, "the correction to be saved")
        await pilot.press("escape")
        await wait_until(pilot, lambda: screen.state == "done", "the stop")
    assert not has_errors(check(root))
    ds = LeRobotDatasetReader.open(root)
    assert ds.total_episodes == 1
    frames = ds.frames(0)
    assert frames["intervention"].all() and np.ptp(frames["action"][:, 0]) > 5


async def test_the_form_refuses_what_would_fail(tmp_path: Path) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_and_start(pilot, app, "")
        assert screen.state == "setup"
        assert "choose a policy" in str(screen.query_one("#form-error").render())
        screen = await open_and_start(pilot, app, str(tmp_path / "nothing-here"))
        assert screen.state == "setup"
        assert "nothing-here" in str(screen.query_one("#form-error").render())
        screen = await open_and_start(pilot, app, str(tmp_path), strategy="highlight")
        assert "highlight strategy records: choose a dataset folder" in str(screen.query_one("#form-error").render())
