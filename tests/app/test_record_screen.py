"""The Record screen on the virtual SO-101 (real drivers, sim cameras, real dataset writer), driven by keys
under Pilot: episodes saved early with →, redone with ←, a task changed between episodes, Esc mid-episode,
leaving the screen mid-episode, and the form's refusals. Every dataset is then read back and validated."""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Checkbox, Input, Select, Static

from engine.dataset.reader import LeRobotDatasetReader
from engine.dataset.validate import check, has_errors
from engine.recorder import Phase, RecorderSnapshot, open_dataset
from robotui.app import RobotuiApp, choose_profile
from robotui.command_table import TABLE
from screens.home import HomeScreen
from screens.record import RecordScreen, TaskInput
from screens.widgets.record_form import FormError, check_root, default_repo_id, field_id, parse_form
from tests.app.pilot_helpers import settle

SIZE = (120, 40)
FPS = 30
TIMEOUT = 90.0  # a safety net for a loaded machine, never a timing claim
EPISODE_S = 3  # long enough that a key sent "during the episode" lands in it even when the UI loop is slow


def make_app() -> RobotuiApp:
    profile, store, error = choose_profile(argparse.Namespace(sim=True))
    return RobotuiApp(profile, store=store, store_error=error, hotkeys=False)


def screen_text(app: RobotuiApp) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def notifications(app: RobotuiApp) -> list[str]:
    return [n.message for n in app._notifications]


async def wait_until(pilot: Any, condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what} ({where(pilot.app)})"
        await pilot.pause(0.02)


def where(app: RobotuiApp) -> str:
    """What the screen shows, for a timeout's message."""
    screen = app.screen
    if not isinstance(screen, RecordScreen):
        return f"on {type(screen).__name__}"
    state = f"state {screen.state}, form says {form_error(screen)!r}, notices {notifications(app)[-3:]}"
    return state + (f", recorder {snap(screen)}" if screen.recorder is not None else "")


def snap(screen: RecordScreen) -> RecorderSnapshot:
    assert screen.recorder is not None
    return screen.recorder.snapshot()


def recording(screen: RecordScreen, *, recorded: int, frames: int = 3) -> bool:
    """Episode `recorded` (0-based in this session) is being recorded and has `frames` frames."""
    if screen.state != "recording" or screen.recorder is None:
        return False
    s = snap(screen)
    return s.phase is Phase.RECORDING and s.recorded == recorded and not s.saving and s.frames >= frames


async def open_record(pilot: Any, app: RobotuiApp) -> RecordScreen:
    await settle(pilot, app)
    await pilot.press(TABLE["record"].key or "")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, RecordScreen)
    return screen


def fill(screen: RecordScreen, **values: str) -> None:
    for name, value in values.items():
        if name == "vcodec":
            screen.query_one(f"#{field_id(name)}", Select).value = value
        elif name == "resume":
            screen.query_one(f"#{field_id(name)}", Checkbox).value = value == "1"
        else:
            screen.query_one(f"#{field_id(name)}", Input).value = value


def start_answered(screen: RecordScreen) -> bool:
    """The start worker has answered: back on the form (refused) or recording."""
    return screen.state != "starting" and not screen.query_one("#record-start").disabled


def form_error(screen: RecordScreen) -> str:
    return str(screen.query_one("#form-error", Static).render())


# ------------------------------------------------------------------------------------------- the form


def test_parse_form_names_the_field_and_the_fix(tmp_path: Path) -> None:
    good = {
        "repo_id": "alice/pick",
        "root": "~/ds",
        "task": " pick ",
        "episodes": "2",
        "episode_time": "1.5",
        "reset_time": "0",
        "vcodec": "libx264",
    }
    request = parse_form(good, resume=False)
    assert request.root == Path("~/ds").expanduser() and request.settings.task == "pick"
    assert request.settings.num_episodes == 2 and request.settings.episode_time_s == 1.5
    cases = [
        ({"repo_id": "pick"}, "repo_id", "repo id must look like user/name"),
        ({"root": " "}, "root", "choose a folder"),
        ({"task": ""}, "task", "a task description is required"),
        ({"episodes": "0"}, "episodes", "whole number ≥ 1, got '0'"),
        ({"episodes": "two"}, "episodes", "got 'two'"),
        ({"episodes": "²"}, "episodes", "got '²'"),
        ({"episode_time": "soon"}, "episode_time", "episode time must be a number of seconds, got 'soon'"),
        ({"episode_time": "0"}, "episode_time", "more than 0 seconds"),
        ({"reset_time": "-1"}, "reset_time", "cannot be negative"),
        ({"vcodec": "mpeg2"}, "vcodec", "one of libsvtav1, libx264, auto"),
    ]
    for change, field, message in cases:
        with pytest.raises(FormError, match=message) as info:
            parse_form(good | change, resume=False)
        assert info.value.field == field


def test_check_root_says_resume_or_another_folder(tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("x")
    with pytest.raises(
        FormError, match="exists and is not empty: tick resume to append to it, or choose another"
    ):
        check_root(full, resume=False)
    with pytest.raises(FormError, match=r"is not a LeRobot dataset .*untick resume"):
        check_root(full, resume=True)
    with pytest.raises(FormError, match="does not exist: untick resume"):
        check_root(tmp_path / "nothing", resume=True)
    check_root(tmp_path / "new", resume=False)
    (tmp_path / "empty").mkdir()
    check_root(tmp_path / "empty", resume=False)


def test_default_repo_id_never_points_at_an_earlier_recording(tmp_path: Path) -> None:
    assert default_repo_id("sim", tmp_path, env={}) == "local/sim-record"
    (tmp_path / "local" / "sim-record").mkdir(parents=True)
    assert default_repo_id("sim", tmp_path, env={"HF_USER": "alice"}) == "alice/sim-record"
    assert default_repo_id("sim", tmp_path, env={}) == "local/sim-record-2"


async def test_the_form_refuses_what_would_fail_and_says_what_to_do(tmp_path: Path) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_record(pilot, app)
        root = screen.query_one(f"#{field_id('root')}", Input)
        datasets = app.session.profile.dataset_root_path()
        assert root.value == str(datasets / "local/sim-record")  # LeRobot's <HF_LEROBOT_HOME>/<repo id>
        fill(screen, repo_id="alice/cubes")
        await pilot.pause()
        assert root.value == str(datasets / "alice/cubes")  # follows the repo id until edited by hand

        await pilot.press("ctrl+s")  # the task is still empty
        await pilot.pause()
        assert "a task description is required" in form_error(screen)
        assert app.focused is screen.query_one(f"#{field_id('task')}", Input)
        assert screen.state == "setup"

        assert await app.execute("/save")  # the run commands say what to do first instead of doing nothing
        await pilot.pause()
        assert notifications(app)[-1] == "Not recording yet: fill in the form and start (^s)."

        full = tmp_path / "full"
        full.mkdir()
        (full / "notes.txt").write_text("mine")
        fill(screen, task="pick the cube", root=str(full))
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: start_answered(screen), "the non-empty folder refusal")
        assert form_error(screen) == (
            f"{full} exists and is not empty: tick resume to append to it, or choose another folder"
        )
        assert screen.state == "setup" and (full / "notes.txt").read_text() == "mine"

        # A dataset recorded at 15 fps cannot take episodes at the profile's 30 fps: the writer's diff shows.
        other = tmp_path / "at15"
        robot = app.session.build_robot()
        open_dataset(robot, other, 15, vcodec="libx264").finalize()
        fill(screen, root=str(other), resume="1")
        await pilot.click("#record-start")
        await wait_until(pilot, lambda: start_answered(screen), "the resume mismatch")
        error = form_error(screen)
        assert f"cannot resume {other}:" in error and "fps: dataset 15, now 30" in error
        assert "untick resume" in error
        assert screen.state == "setup" and app.session.recorder is None

        await pilot.press("escape")  # on the form, esc goes home
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)


# ------------------------------------------------------------------------------------------- recording


async def test_record_two_episodes_with_next_redo_and_a_new_task(tmp_path: Path) -> None:
    root = tmp_path / "cubes"
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_record(pilot, app)
        fill(
            screen,
            repo_id="alice/cubes",
            root=str(root),
            task="pick the cube",
            episodes="2",
            episode_time=str(EPISODE_S),
            reset_time="0.3",
            vcodec="libx264",
        )
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: recording(screen, recorded=0), "episode 0 recording")
        assert [p.id for p in screen.query("CameraPreview")] == ["preview-front", "preview-wrist"]
        await pilot.press("right")  # end episode 0 early: it is saved
        await wait_until(pilot, lambda: recording(screen, recorded=1), "episode 1 recording")
        assert snap(screen).saved[0].length < EPISODE_S * FPS  # ended by →, before its timer

        assert await app.execute("/task place the cube")  # the episode in progress keeps its task
        await pilot.press("left")  # drop episode 1: it is recorded again, with the new task
        await pilot.pause()
        assert any(
            n.startswith("Task set to 'place the cube' from the next episode on") for n in notifications(app)
        )
        await wait_until(
            pilot,
            lambda: "episode 1 discarded: it will be recorded again" in notifications(app),
            "the redo notice",
        )
        await wait_until(pilot, lambda: screen.state == "done", "the end of the recording")
        await pilot.pause()
        summary = screen.summary
        assert summary is not None and summary.error is None
        assert summary.recorded == 2 and summary.total_episodes == 2 and summary.root == root
        text = screen_text(app)
        assert "Recording finished — 2 episodes saved this session" in text
        assert f"robotui dataset check {root}" in text
        assert not screen.query("CameraPreview")  # previews (and their threads) are gone

    assert not has_errors(check(root))
    ds = LeRobotDatasetReader.open(root)
    assert ds.total_episodes == 2 and ds.episode_indices == [0, 1]
    assert ds.episode(1)["length"] == EPISODE_S * FPS  # the redone episode ran its full time
    assert ds.episode(0)["dataset_to_index"] == ds.episode(1)["dataset_from_index"]  # contiguous
    assert ds.episode_tasks(0) == ["pick the cube"] and ds.episode_tasks(1) == ["place the cube"]
    assert sorted(ds.tasks.values()) == ["pick the cube", "place the cube"]


async def test_escape_mid_episode_saves_it_and_the_task_line_does_not_stop(tmp_path: Path) -> None:
    root = tmp_path / "stopped"
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_record(pilot, app)
        fill(
            screen,
            repo_id="alice/stopped",
            root=str(root),
            task="pick the cube",
            episodes="3",
            episode_time="30",
            reset_time="1",
            vcodec="libx264",
        )
        await pilot.press("enter")  # Enter in a field starts too
        await wait_until(pilot, lambda: recording(screen, recorded=0, frames=5), "episode 0 recording")
        task = screen.query_one(TaskInput)
        await pilot.press("t")
        assert app.focused is task
        await pilot.press("escape")  # leaves the task line; the recording goes on
        await pilot.pause()
        assert app.focused is None and screen.state == "recording"
        await pilot.press("t")
        task.value = "stack it"  # (typing it key by key works too, but each Pilot key press waits for idle)
        await pilot.press("enter")
        assert snap(screen).task == "stack it" and app.focused is None

        await pilot.press("escape")
        await wait_until(pilot, lambda: screen.state == "done", "the stop")
        await pilot.pause()
        assert app.session.recorder is None
        sim = app.session.sim
        assert sim is not None  # torque released at the end
        assert all(sim.follower_bus.servo(i).read_register("Torque_Enable") == 0 for i in range(1, 7))
        assert f"{root}  (alice/stopped)" in screen_text(app)
        await pilot.press("escape")  # from the summary, esc goes home
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)

    assert not has_errors(check(root))
    ds = LeRobotDatasetReader.open(root)
    assert ds.total_episodes == 1
    assert 5 <= ds.episode(0)["length"] < 30 * FPS
    assert ds.episode_tasks(0) == ["pick the cube"]


async def test_leaving_the_screen_mid_episode_stops_cleanly_and_resume_appends(tmp_path: Path) -> None:
    root = tmp_path / "left"
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_record(pilot, app)
        fill(
            screen,
            repo_id="alice/left",
            root=str(root),
            task="pick the cube",
            episodes="5",
            episode_time="30",
            reset_time="1",
            vcodec="libx264",
        )
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: recording(screen, recorded=0, frames=5), "episode 0 recording")
        recorder = screen.recorder
        assert recorder is not None
        await app.run_action("go_home")
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)
        await wait_until(pilot, lambda: recorder.finished and app.session.recorder is None, "the stop")
        assert recorder.snapshot().error is None and len(recorder.snapshot().saved) == 1

        # Back on Record: resume appends to the same dataset; quitting mid-episode saves that one too.
        screen = await open_record(pilot, app)
        fill(
            screen,
            repo_id="alice/left",
            root=str(root),
            task="pick it again",
            episodes="5",
            episode_time="30",
            reset_time="1",
            resume="1",
        )
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: recording(screen, recorded=0, frames=5), "the resumed episode")
        assert snap(screen).episode == 1
    # the app exited mid-episode: its shutdown waited for the save, and the screen's threads are done
    for thread in threading.enumerate():
        if thread.name == "record-leave" or thread.name.startswith("preview-"):
            thread.join(timeout=10)
            assert not thread.is_alive(), thread.name

    assert not has_errors(check(root))
    ds = LeRobotDatasetReader.open(root)
    assert ds.episode_indices == [0, 1]
    assert ds.episode_tasks(1) == ["pick it again"]


async def test_a_lost_port_mid_episode_is_reported_and_the_saved_episodes_stay(tmp_path: Path) -> None:
    root = tmp_path / "unplugged"
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_record(pilot, app)
        fill(
            screen,
            repo_id="alice/unplugged",
            root=str(root),
            task="pick the cube",
            episodes="5",
            episode_time="30",
            reset_time="0.3",
            vcodec="libx264",
        )
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: recording(screen, recorded=0), "episode 0 recording")
        await pilot.press("n")  # LeRobot users' key for → (save and go on)
        await wait_until(pilot, lambda: recording(screen, recorded=1, frames=5), "episode 1 recording")
        sim = app.session.sim
        assert sim is not None
        sim.unplug("follower")  # the USB cable comes out mid-episode
        await wait_until(pilot, lambda: screen.state == "done", "the recording to end")
        await pilot.pause()
        summary = screen.summary
        assert summary is not None and summary.error is not None and summary.recorded == 1
        (toast,) = [n for n in app._notifications if n.title == "recording stopped"]
        assert toast.severity == "error" and toast.message == summary.error
        text = screen_text(app)
        assert "Recording stopped — 1 episode saved this session" in text
        assert "■ ended" in text
        assert "ttyEMU-sim-follower" in summary.error  # the driver's message names the port
        sim.replug("follower")

    assert not has_errors(check(root))
    assert LeRobotDatasetReader.open(root).episode_indices == [0]  # the episode cut short is not kept
