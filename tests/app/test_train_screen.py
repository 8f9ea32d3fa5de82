"""The Train screen under Pilot with a real local job: `robotui train` on a tiny ACT and a tiny LeRobot
dataset, started from the form, left running while robotui exits, found again by the next robotui (the
registry is per test: $XDG_DATA_HOME), watched (table, curves, log), fetched, cancelled and opened in
Rollout. Plus the form's refusals and an unreachable SSH host."""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.widgets import Input, Select, Static

from engine.jobs import JobRecord, JobRegistry, JobSpec
from engine.jobs.presets import PRESETS, ROBOTUI
from engine.profile import default_profile
from robotui.app import RobotuiApp
from screens.rollout import RolloutScreen
from screens.train import TrainScreen
from screens.widgets.command_bar import CommandBar
from screens.widgets.field_form import FormError
from screens.widgets.loss_plot import CurvePlot
from screens.widgets.rollout_form import field_id as rollout_field
from screens.widgets.train_confirm import ConfirmCancel
from screens.widgets.train_form import TEXT_FIELDS, field_id, parse_form, trainer_program
from screens.widgets.train_jobs import JobTable
from screens.widgets.train_log import JobLog
from tests.app.pilot_helpers import settle
from tests.engine.dataset.lerobot_fixture import write_lerobot_style_dataset
from tests.engine.jobs.conftest import live, live_group_members
from tests.policies.train.sim_dataset import TINY_ACT

SIZE = (140, 44)
TIMEOUT = 120.0  # a safety net for a loaded machine, never a timing claim
TINY_RUN = "--num-workers 0 --log-freq 1 --save-freq 2 " + " ".join(f"--set {s}" for s in TINY_ACT)


def make_app() -> RobotuiApp:
    """No simulator: the Train screen needs no robot, and the trainer gets the CPU."""
    return RobotuiApp(default_profile(), hotkeys=False)


@pytest.fixture(autouse=True)
def _quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TrainScreen, "poll_interval", 0.5)  # status checks are cheap here: shorter waits


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_lerobot_style_dataset(
        tmp_path_factory.mktemp("train-screen") / "ds", [6, 5], {"front": (16, 16)}
    ).root


async def wait_until(pilot: Any, condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


async def open_train(pilot: Any, app: RobotuiApp) -> TrainScreen:
    await settle(pilot, app)
    await pilot.press("6")
    await wait_until(pilot, lambda: isinstance(app.screen, TrainScreen), "the train screen")
    assert isinstance(app.screen, TrainScreen)
    return app.screen


def fill(screen: TrainScreen, **values: str) -> None:
    """Every text field of the form: the given value, else empty."""
    for name in TEXT_FIELDS:
        screen.query_one(f"#{field_id(name)}", Input).value = values.get(name, "")


def cell(screen: TrainScreen, job: str, column: str) -> str:
    table = screen.query_one(JobTable)
    return table.get_cell(job, column).plain if job in table.rows else ""


def text_of(screen: TrainScreen, selector: str) -> str:
    """A Static's content as plain text (rich renderables drawn wide enough not to wrap)."""
    console = Console(width=400, record=True, file=io.StringIO())
    console.print(screen.query_one(selector, Static).content)
    return console.export_text()


def log_text(screen: TrainScreen) -> str:
    return "\n".join(strip.text for strip in screen.query_one(JobLog).lines)


def notifications(app: RobotuiApp) -> list[str]:
    return [n.message for n in app._notifications]


def test_parse_form_fills_in_what_the_trainers_need() -> None:
    request = parse_form({"dataset": "alice/pick", "preset": "act", "chunk_size": "20", "steps": "20_000"})
    assert request.name.startswith("act-") and request.host is None
    assert (request.hyper.steps, request.hyper.chunk_size, request.hyper.n_action_steps) == (20_000, 20, 20)
    request = parse_form({"dataset": "d", "host": "me@[::1]:2222", "extra": "--set 'a=b c'", "device": "cpu"})
    assert request.preset == "robotui-act" and request.extra == ("--set", "a=b c")
    assert request.hyper.device == "cpu" and request.hyper.n_action_steps is None
    local = trainer_program(parse_form({"dataset": "d"}))
    assert PRESETS["robotui-act"].program == ROBOTUI and local is not None and Path(local).name == "robotui"
    assert trainer_program(parse_form({"dataset": "d", "host": "gpu"})) is None  # the host's own robotui
    remote = parse_form(
        {"dataset": "d", "host": "gpu", "preset": "act", "program": "~/env/bin/lerobot-train"}
    )
    assert trainer_program(remote) == "env/bin/lerobot-train"  # the remote shell never expands a quoted ~
    here = parse_form({"dataset": "d", "preset": "act", "program": "~/env/bin/lerobot-train"})
    assert trainer_program(here) == str(Path.home() / "env/bin/lerobot-train")


@pytest.mark.parametrize(
    ("values", "message", "field"),
    [
        ({"host": "me@gpu box"}, "host 'me@gpu box' is not [user@]host[:port] (IPv6 as [addr])", "host"),
        ({"host": "gpu:99999"}, "host 'gpu:99999' is not [user@]host[:port]", "host"),
        ({"steps": "ten"}, "steps must be a whole number, got 'ten' (empty: the preset's)", "steps"),
        ({"batch_size": "0"}, "the batch size must be at least 1, got 0", "batch_size"),
        ({"lr": "-1e-5"}, "the learning rate must be a positive number such as 1e-5, got '-1e-5'", "lr"),
        ({"lr": "nan"}, "the learning rate must be a positive number", "lr"),
        ({"name": "my job"}, "job name 'my job' is not usable", "name"),
        ({"identity": "~/.ssh/id"}, "an identity file is only used with an SSH host", "identity"),
        ({"program": "--help"}, "the trainer program cannot start with '-'", "program"),
        ({"extra": "--set 'a"}, "extra arguments: No closing quotation: quote them as in a shell", "extra"),
    ],
)
def test_parse_form_refusals_name_the_field(values: dict[str, str], message: str, field: str) -> None:
    with pytest.raises(FormError) as info:
        parse_form({"dataset": "alice/pick", **values})
    assert message in str(info.value) and "\n" not in str(info.value)
    assert info.value.field == field


async def test_the_form_refuses_bad_input_and_names_the_field(dataset: Path, tmp_path: Path) -> None:
    """On the screen: a typed value refused (the cursor goes to the field), then what only the start worker
    can see (the folder, the trainer on the job's machine); nothing is registered."""
    no_dataset = tmp_path / "plain folder"
    no_dataset.mkdir()
    cases = [
        ({}, "choose a dataset: its folder (the one holding meta/) or a Hub repo id", "dataset"),
        ({"dataset": str(dataset), "steps": "ten"}, "steps must be a whole number, got 'ten'", "steps"),
        (
            {"dataset": str(tmp_path / "nope")},
            f"dataset folder {tmp_path / 'nope'} does not exist",
            "dataset",
        ),
        ({"dataset": str(no_dataset)}, "is not a LeRobot dataset (no meta/info.json)", "dataset"),
        ({"dataset": "not a repo id"}, "is neither a folder here nor a Hub repo id", "dataset"),
        (  # refused by the launcher on the job's machine (here: sh)
            {"dataset": str(dataset), "program": str(tmp_path / "no-trainer")},
            f"'{tmp_path / 'no-trainer'}' is not found on this machine",
            "program",
        ),
    ]
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_train(pilot, app)
        assert "No training jobs yet" in text_of(screen, "#train-empty")
        assert not screen.query_one(JobTable).display
        await pilot.press("n")
        assert screen.form_shown
        screen.query_one(f"#{field_id('preset')}", Select).value = "smolvla"  # the summary follows the preset
        await wait_until(pilot, lambda: "lerobot-train" in text_of(screen, "#train-preset-help"), "the summary")
        assert screen.query_one(f"#{field_id('steps')}", Input).placeholder == f"preset: {PRESETS['smolvla'].defaults.steps}"
        screen.query_one(f"#{field_id('preset')}", Select).value = "robotui-act"
        for values, message, field in cases:
            fill(screen, **values)
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: not screen.starting, "the start to be refused")
            shown = text_of(screen, "#train-message")
            assert message in shown, (values, shown)
            assert "\n" not in shown.strip()
            assert app.focused is not None and app.focused.id == field_id(field), (values, app.focused)
        assert JobRegistry().records() == []  # nothing was started
        await pilot.click("#train-back")
        assert not screen.form_shown


async def test_an_unreachable_host_is_one_line_and_the_ui_goes_on() -> None:
    """A job on a host that refuses the connection: its row says unreachable, the detail pane and a
    notification say what to check, and the screen keeps answering keys meanwhile."""
    spec = JobSpec.create(
        "far", ["robotui", "train"], host="127.0.0.1:1", output_dir="robotui/runs/far/train", total_steps=10
    )
    JobRegistry().add(JobRecord(spec=spec, run_dir_abs="robotui/runs/far", pid=4242, start_token="1"))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_train(pilot, app)
        await wait_until(
            pilot, lambda: cell(screen, "far", "status") == "unreachable", "the host to be tried"
        )
        expected = "127.0.0.1 refused the connection on port 1: is sshd running there, is the port right?"
        assert any(expected in n for n in notifications(app))
        await wait_until(pilot, lambda: expected in text_of(screen, "#train-summary"), "the detail pane")
        assert cell(screen, "far", "where") == "127.0.0.1:1"
        await pilot.press("slash", *"fetch far", "enter")  # the host is needed again: refused as one line
        assert screen.query_one(CommandBar).history == ["/fetch far"]
        await wait_until(
            pilot, lambda: "checkpoint not fetched" in text_of(screen, "#train-summary"), "the fetch"
        )
        told = notifications(app)
        assert any(n.startswith("far: checkpoint not fetched: 127.0.0.1 refused") for n in told), told
        await pilot.press("n")
        assert screen.form_shown


async def test_a_local_training_job_from_the_form_to_rollout(dataset: Path) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_train(pilot, app)
        await pilot.press("n")
        fill(screen, name="tiny", dataset=str(dataset), steps="1000", batch_size="2", extra=TINY_RUN)
        screen.query_one(f"#{field_id('device')}", Select).value = "cpu"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: not screen.starting, "the job to start")
        assert "tiny" in screen.records, text_of(screen, "#train-message")
        assert not screen.form_shown and screen.selected == "tiny"
        await wait_until(pilot, lambda: cell(screen, "tiny", "status") == "running", "the first status check")
        assert cell(screen, "tiny", "where") == "local"
        pgid = screen.records["tiny"].pid
    try:
        assert live(pgid)  # robotui has exited: the job runs on

        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_train(pilot, app)
            await wait_until(pilot, lambda: screen.selected == "tiny", "the job from the registry")
            await wait_until(pilot, lambda: "checkpoint saved" in log_text(screen), "the first checkpoint")
            assert "step:1 smpl:2" in log_text(screen) and "step:2 smpl:4" in log_text(screen)

            await wait_until(pilot, lambda: cell(screen, "tiny", "loss") != "-", "the list to show the loss")
            assert math.isfinite(float(cell(screen, "tiny", "loss")))
            step, total = cell(screen, "tiny", "step").split("/")
            assert int(step) >= 2 and total == "1000"
            assert cell(screen, "tiny", "status") == "running" and cell(screen, "tiny", "ETA") != "-"
            loss = screen.query_one("#train-loss", CurvePlot)
            lr = screen.query_one("#train-lr", CurvePlot)
            await wait_until(pilot, lambda: len(loss.steps) >= 2, "the loss curve")
            assert loss.steps[:2] == [1.0, 2.0] and all(math.isfinite(v) and v > 0 for v in loss.values)
            assert lr.steps[:2] == [1.0, 2.0] and set(lr.values) == {1e-5}
            def summary_step() -> int:
                found = re.search(r"step (\d+)/1000", text_of(screen, "#train-summary"))
                return int(found.group(1)) if found else -1

            await wait_until(pilot, lambda: summary_step() >= 2, "the summary to show the step")

            await pilot.press("f")
            await wait_until(pilot, lambda: "tiny" in screen.fetched, "the fetch")
            checkpoint = screen.fetched["tiny"]
            assert (checkpoint / "model.safetensors").is_file() and (checkpoint / "config.json").is_file()
            assert checkpoint.name == "pretrained_model" and checkpoint.parent.parent.name == "checkpoints"
            assert str(checkpoint) in text_of(screen, "#train-summary")

            screen.launcher.cancel_grace_s = 3
            await pilot.press("c")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmCancel), "the confirmation")
            await pilot.click("#confirm-cancel")
            await wait_until(pilot, lambda: "tiny cancelled" in notifications(app), "the cancel")
            assert cell(screen, "tiny", "status") == "cancelled"
            assert live_group_members(pgid) == []

            await pilot.press("o")
            await wait_until(pilot, lambda: isinstance(app.screen, RolloutScreen), "the rollout screen")
            await pilot.pause()
            policy = app.screen.query_one(f"#{rollout_field('policy')}", Input)
            assert policy.value == str(checkpoint)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)  # never leave a trainer behind, whatever failed above
