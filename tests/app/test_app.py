"""The app shell under Pilot: home with the sim profile, the command table driving keys, palette, help and
slash commands, the edit-profile form, worker errors, hotkeys and `run_app`'s refusal of a broken file."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import types
from collections.abc import Callable
from typing import Any, ClassVar

import pytest
from textual.app import ComposeResult
from textual.command import CommandList, CommandPalette
from textual.widgets import Footer, Input, Static
from textual.worker import Worker, WorkerState

from engine.profile import ProfileError, load_profiles, profiles_path, sim_profile
from robotui import app as app_module
from robotui.app import RobotuiApp, choose_profile, describe_error, run_app
from robotui.command_table import TABLE, WORKFLOWS
from robotui.hotkeys import start_hotkeys, unavailable_reason
from screens.base import RobotuiScreen
from screens.help import HelpScreen
from screens.home import ArmStatus, EditProfileModal, HomeScreen
from screens.widgets.log_pane import LogPane
from tests.app.pilot_helpers import settle

SIZE = (120, 40)


def screen_text(app: RobotuiApp) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def notifications(app: RobotuiApp) -> list[str]:
    return [n.message for n in app._notifications]


async def finished(pilot: Any, worker: Worker[Any]) -> None:
    """Wait for a worker that is meant to fail (wait_for_complete would re-raise its error)."""
    for _ in range(100):
        if worker.is_finished:
            break
        await pilot.pause(0.05)
    assert worker.state is WorkerState.ERROR
    await pilot.pause(0.1)


class FakeRecordScreen(RobotuiScreen):
    """Stands in for the record workflow: implements the record commands and remembers the calls."""

    COMMAND_CONTEXT: ClassVar[str] = "record"
    calls: ClassVar[list[tuple[str, object]]] = []

    def compose(self) -> ComposeResult:
        yield Footer()

    def action_pause(self) -> None:
        self.calls.append(("pause", None))

    def action_stop(self) -> None:
        self.calls.append(("stop", None))

    def action_subtask(self, text: str | None = None) -> None:
        self.calls.append(("subtask", text))


class FakeTeleopScreen(RobotuiScreen):
    COMMAND_CONTEXT: ClassVar[str] = "teleop"


@pytest.fixture
def workflow_screens(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, object]]:
    monkeypatch.setitem(app_module.WORKFLOW_SCREENS, "record", f"{__name__}:FakeRecordScreen")
    monkeypatch.setitem(app_module.WORKFLOW_SCREENS, "teleop", f"{__name__}:FakeTeleopScreen")
    monkeypatch.setitem(app_module.WORKFLOW_SCREENS, "train", "screens.no_such_screen_module:TrainScreen")
    FakeRecordScreen.calls = []
    return FakeRecordScreen.calls


def make_app(**kwargs: Any) -> RobotuiApp:
    profile, store, error = choose_profile(argparse.Namespace(sim=True, verbose=False))
    return RobotuiApp(profile, store=store, store_error=error, hotkeys=False, **kwargs)


async def test_sim_opens_straight_on_home_with_the_sim_profile() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        assert isinstance(app.screen, HomeScreen)
        text = screen_text(app)
        assert "Profile: sim  (simulated)" in text
        assert "so101_follower  virtual  id sim_follower" in text
        assert "front: sim 320×240@30" in text
        robot = app.screen.query_one("#robot-status", ArmStatus)
        assert robot.connection == "not connected"
        # The session started the virtual arms and wrote their calibration: home finds the file.
        assert app.session.sim is not None
        assert robot.check is not None and robot.check.calibration_ok is True
        assert "sim_follower.json" in robot.check.calibration
        for workflow in WORKFLOWS:  # one key per workflow, from the table
            assert f"{TABLE[workflow].key}  {workflow.capitalize()}" in text
        assert not profiles_path().exists()  # --sim asks nothing and writes nothing


async def test_sim_opens_even_when_the_profiles_file_is_broken() -> None:
    path = profiles_path()
    path.parent.mkdir(parents=True)
    path.write_text("[profiles.x\n", encoding="utf-8")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        assert isinstance(app.screen, HomeScreen)
        assert any(f"{path}, line 1" in message for message in notifications(app))


async def test_calibration_found_shows_the_file() -> None:
    """A hardware profile: the follower has a calibration file, the leader has none."""
    from drivers.calibration import calibration_path
    from engine.profile import ArmConfig, Profile

    path = calibration_path("robots", "so_follower", "lab")
    path.parent.mkdir(parents=True)
    path.write_text("{}", encoding="utf-8")
    profile = Profile(
        name="lab",
        robot=ArmConfig("so101_follower", "/dev/ttyACM0", "lab"),
        teleop=ArmConfig("so101_leader", "/dev/ttyACM1", "lab_leader"),
    )
    app = RobotuiApp(profile, hotkeys=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        assert app.session.sim is None
        check = app.screen.query_one("#robot-status", ArmStatus).check
        assert check is not None and check.calibration_ok is True
        assert check.calibration.endswith("robots/so_follower/lab.json")
        leader = app.screen.query_one("#teleop-status", ArmStatus).check
        assert leader is not None and leader.calibration_ok is False
        assert "press 2 (Calibrate)" in leader.calibration


async def test_help_screen_lists_every_command_from_the_table() -> None:
    app = make_app()
    async with app.run_test(size=(120, 200)) as pilot:  # tall enough to show the whole table unscrolled
        await settle(pilot, app)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        for command in TABLE:
            assert command.usage in text, command.name
            for alias in command.aliases:
                assert f"/{alias}" in text
        assert "/action [task|seconds]" in text and "/question <text>" in text and "/q /vqa" in text
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)


async def test_slash_help_with_a_command_highlights_it() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        assert await app.execute("/help pause")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen) and app.screen.focus_command == "pause"


async def test_command_palette_offers_the_workflows() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("ctrl+p")
        await pilot.pause(0.3)
        assert isinstance(app.screen, CommandPalette)
        options = app.screen.query_one(CommandList)
        prompts = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        for workflow in WORKFLOWS:
            assert any(p.startswith(workflow.capitalize()) for p in prompts), (workflow, prompts)
        assert not any(p.startswith("Pause") for p in prompts)  # record commands do not apply on home
        await pilot.press(*"rollout")
        await pilot.pause(0.5)
        options = app.screen.query_one(CommandList)
        first = str(options.get_option_at_index(0).prompt)
        assert first.startswith("Rollout"), first


async def test_keys_and_slash_commands_follow_the_screen(workflow_screens: list[tuple[str, object]]) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("space")  # /pause does not apply on home: nothing happens
        assert workflow_screens == []
        await pilot.press(TABLE["record"].key or "")
        await pilot.pause()
        assert isinstance(app.screen, FakeRecordScreen)
        footer = screen_text(app).splitlines()[-1]
        assert "esc Stop" in footer and "Profile" not in footer
        assert "Save" not in footer  # in the table for record, but this screen has no handler
        assert await app.execute("/pause")  # typed: /pause has no key on record (space is rollout's toggle)
        await pilot.press("escape")  # on record, escape stops the run instead of going home
        await pilot.pause()
        assert workflow_screens == [("pause", None), ("stop", None)]
        assert isinstance(app.screen, FakeRecordScreen)
        assert await app.execute("/subtask grasp the cube")
        assert not await app.execute("/pasue")
        assert not await app.execute("/takeover")
        assert not await app.execute("/save")  # applies on record, but this screen has no handler
        await pilot.pause()
        assert workflow_screens[-1] == ("subtask", "grasp the cube")
        assert notifications(app) == [
            "unknown command /pasue — did you mean /pause?",
            "/takeover works on the rollout screen, not on record",
            "/save is not available on this screen",
        ]
        # another workflow replaces this one instead of stacking; escape goes home from there
        await pilot.press(TABLE["teleop"].key or "")
        await pilot.pause()
        assert isinstance(app.screen, FakeTeleopScreen) and len(app.screen_stack) == 2
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)
        await pilot.press(TABLE["train"].key or "")
        await pilot.pause()
        assert notifications(app)[-1] == "The train workflow is not in this build yet."


async def test_log_pane_toggles_and_shows_records() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        assert not app.screen.query(LogPane)
        logger = logging.getLogger("engine.test_app_log")
        logger.addHandler(app.log_handler)
        try:
            logger.warning("bus voltage low")
            await pilot.press("ctrl+l")
            await pilot.pause(0.3)
            pane = app.screen.query_one(LogPane)
            assert pane.display
            assert any("bus voltage low" in strip.text for strip in pane.lines)
            await pilot.press("ctrl+l")
            await pilot.pause()
            assert not pane.display
        finally:
            logger.removeHandler(app.log_handler)


async def test_edit_profile_modal_validates_and_saves() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("e")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, EditProfileModal)
        fps = modal.query_one("#field-teleop_fps", Input)
        fps.value = "0"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is modal  # invalid: the form stays open, says why, and focuses the field
        assert "teleop_fps must be a whole number" in str(modal.query_one("#form-error", Static).render())
        assert app.focused is fps
        fps.value = "50"
        modal.query_one("#field-max_relative_target", Input).value = "12"
        port = modal.query_one("#field-robot-port", Input)
        port.value = ""
        port.focus()
        await pilot.press(*"/dev/ttyUSB7")
        await pilot.click("#save")
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)
        saved = load_profiles().active_profile
        assert saved.name == "sim" and saved.teleop_fps == 50 and saved.max_relative_target == 12.0
        assert saved.robot.port == "/dev/ttyUSB7"
        assert app.profile == saved
        assert "12° per tick" in screen_text(app)
        assert "Profile 'sim' saved." in notifications(app)


async def test_worker_failures_become_one_actionable_notification() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)

        def open_bus() -> None:
            raise PermissionError(13, "Permission denied", "/dev/ttyACM0")

        worker = app.screen.run_worker(
            open_bus, thread=True, exit_on_error=False, description="connecting the follower"
        )
        await finished(pilot, worker)
        (toast,) = list(app._notifications)
        assert toast.title == "connecting the follower failed" and toast.severity == "error"
        assert "/dev/ttyACM0" in toast.message and "dialout" in toast.message

        def bad_config() -> None:
            raise ValueError("camera 'front': fps 90 is not offered by /dev/video0; it offers 30, 60")

        worker = app.run_worker(bad_config, thread=True, exit_on_error=False, description="opening cameras")
        await finished(pilot, worker)
        assert (
            notifications(app)[-1] == "camera 'front': fps 90 is not offered by /dev/video0; it offers 30, 60"
        )


def test_describe_error() -> None:
    assert describe_error(None) == "failed without an error message"
    assert describe_error(RuntimeError()) == "RuntimeError"
    assert describe_error(FileNotFoundError(2, "No such file", "/dev/ttyACM9")).endswith("is the path right?")


def test_hotkeys_are_off_without_a_display(caplog: pytest.LogCaptureFixture) -> None:
    assert unavailable_reason({}, "linux") == "no X display (SSH or headless)"
    assert unavailable_reason({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, "linux") is not None
    assert unavailable_reason({"DISPLAY": ":0"}, "linux") is None
    assert unavailable_reason({}, "darwin") is None
    with caplog.at_level(logging.INFO, logger="robotui.hotkeys"):
        assert start_hotkeys(types.SimpleNamespace(post_message=lambda m: True), TABLE, env={}) is None
    assert [r.getMessage() for r in caplog.records] == [
        "global hotkeys off: no X display (SSH or headless) — keys inside the terminal work as usual"
    ]


class FakeGlobalHotKeys:
    """pynput.keyboard.GlobalHotKeys stand-in: keeps the combos so the test can 'press' them."""

    instances: ClassVar[list[FakeGlobalHotKeys]] = []

    def __init__(self, combos: dict[str, Callable[[], None]]) -> None:
        self.combos = combos
        self.daemon = False
        self.running = False
        self.instances.append(self)

    def start(self) -> None:
        self.running = True

    def stop(self) -> None:
        self.running = False


async def test_global_hotkeys_run_table_commands(
    monkeypatch: pytest.MonkeyPatch, workflow_screens: list[tuple[str, object]]
) -> None:
    fake = types.ModuleType("pynput")
    fake.keyboard = types.SimpleNamespace(GlobalHotKeys=FakeGlobalHotKeys)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynput", fake)
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("XDG_SESSION_TYPE", raising=False)
    FakeGlobalHotKeys.instances = []
    profile = sim_profile()
    app = RobotuiApp(profile, hotkeys=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        (listener,) = FakeGlobalHotKeys.instances
        assert listener.running and listener.daemon
        pause = listener.combos[TABLE["pause"].hotkey or ""]
        threading.Thread(target=pause).start()  # pynput calls back from its own thread
        await pilot.pause(0.2)
        assert workflow_screens == []  # /pause does not apply on home
        await pilot.press(TABLE["record"].key or "")
        await pilot.pause()
        thread = threading.Thread(target=pause)
        thread.start()
        thread.join()
        await pilot.pause(0.2)
        assert workflow_screens == [("pause", None)]
    assert not listener.running  # stopped with the app


def test_run_app_refuses_a_broken_profiles_file(capsys: pytest.CaptureFixture[str]) -> None:
    path = profiles_path()
    path.parent.mkdir(parents=True)
    path.write_text('active = "a"\n[profiles.a]\nteleop_fps = "fast"\n', encoding="utf-8")
    code = run_app(argparse.Namespace(sim=False, verbose=False, preview="halfblock"))
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"robotui: {path}, line 3: ")


def test_choose_profile_prefers_a_saved_sim_profile() -> None:
    store = load_profiles()
    custom = sim_profile()
    custom = type(custom)(**{**custom.__dict__, "record_fps": 15})
    store.put(custom, activate=False)
    store.save()
    profile, _, error = choose_profile(argparse.Namespace(sim=True, record_fps=None))
    assert profile.record_fps == 15 and error is None
    profile, _, _ = choose_profile(argparse.Namespace(sim=False))
    assert profile.name == "default"
    profile, _, _ = choose_profile(argparse.Namespace(sim=False, profile="sim"))
    assert profile.name == "sim" and profile.record_fps == 15
    with pytest.raises(ProfileError, match=r"no profile called 'lab' \(profiles: default, sim\)"):
        choose_profile(argparse.Namespace(sim=False, profile="lab"))
