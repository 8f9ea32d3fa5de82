"""The Textual app: the home screen, the workflows on top of it, and everything that comes from the one
command table (key bindings, footer hints, command palette, help, slash commands).

The app owns what screens may not import: the profile file, the command table and the log handler. It
hands screens plain objects and reacts to their messages (`HomeScreen.EditProfileRequested`). Failed
workers, the app's and every screen's, end in one `Worker.StateChanged` handler that shows the error's
own (actionable) message.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, ClassVar

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen
from textual.widgets import Footer
from textual.worker import Worker, WorkerState

from engine.profile import (
    Profile,
    ProfileError,
    ProfileStore,
    apply_overrides,
    form_fields,
    load_profiles,
    profile_from_form,
    profile_to_form,
    sim_profile,
)
from engine.session import Session
from robotui.command_table import TABLE, WORKFLOWS, Command, CommandError, CommandTable
from robotui.hotkeys import GlobalHotkeys, HotkeyPressed, start_hotkeys
from screens.help import HelpScreen
from screens.home import EditProfileModal, HomeScreen
from screens.widgets.camera_preview import PreviewMode, detect_preview_mode
from screens.widgets.log_pane import OUR_PACKAGES, LogPane, LogPaneHandler

log = logging.getLogger(__name__)

WORKFLOW_SCREENS: dict[str, str] = {
    "ports": "screens.ports:PortsScreen",
    "calibrate": "screens.calibrate:CalibrateScreen",
    "teleop": "screens.teleop:TeleopScreen",
    "record": "screens.record:RecordScreen",
    "rollout": "screens.rollout:RolloutScreen",
    "train": "screens.train:TrainScreen",
}
"""Workflow name -> "module:Class" of its screen, imported when first opened (built with no arguments;
screens reach the session through `self.app`)."""


def describe_error(error: BaseException | None) -> str:
    """The message to show for a failed worker. Our errors already say what to change; for bare OS errors
    add the usual fix."""
    if error is None:
        return "failed without an error message"
    message = str(error).strip() or type(error).__name__
    if isinstance(error, PermissionError) and error.filename:
        return f"{message} — is your user in the device's group (e.g. dialout)? Log in again after adding it."
    if isinstance(error, FileNotFoundError) and error.filename:
        return f"{message} — is it plugged in, and is the path right?"
    return message


class CommandTableProvider(Provider):
    """Command palette entries from the command table: the commands that apply on the current screen
    and need no argument."""

    def _commands(self) -> list[Command]:
        app = self.app
        assert isinstance(app, RobotuiApp)
        return [c for c in app.table if c.palette and app.command_enabled(c, self.screen)]

    def _label(self, command: Command) -> str:
        key = self.app.get_key_display(Binding(command.key, "")) if command.key else ""
        return f"{command.title}  [{key}]" if key else command.title

    async def discover(self) -> Hits:
        for command in self._commands():
            yield DiscoveryHit(self._label(command), partial(self._run, command), help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self._commands():
            words = " ".join((command.name, *command.aliases, command.help))
            score = max(matcher.match(command.title), matcher.match(words) * 0.8)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(self._label(command)),
                    partial(self._run, command),
                    text=command.title,
                    help=command.help,
                )

    async def _run(self, command: Command) -> None:
        await self.app.run_action(command.action)


def table_bindings(table: CommandTable) -> list[BindingType]:
    """One binding per keyed command; `check_action` decides per screen which are live and shown."""
    return [
        Binding(c.key, f"command({c.name!r})", c.title, show=c.footer, tooltip=c.help)
        for c in table.keyed()
        if c.key
    ]


class RobotuiApp(App[int]):
    TITLE = "robotui"
    CSS_PATH = "app.tcss"
    COMMANDS: ClassVar = App.COMMANDS | {CommandTableProvider}
    BINDINGS: ClassVar[list[BindingType]] = table_bindings(TABLE)

    def __init__(
        self,
        profile: Profile | None = None,
        *,
        store: ProfileStore | None = None,
        store_error: str | None = None,
        preview_mode: PreviewMode = "halfblock",
        log_handler: LogPaneHandler | None = None,
        hotkeys: bool = True,
        table: CommandTable = TABLE,
        session: Session | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        self.store_error = store_error
        self.profile: Profile = profile or (store.active_profile if store else sim_profile())
        self.preview_mode: PreviewMode = preview_mode
        self.log_handler = log_handler or LogPaneHandler()
        self.table = table
        self.show_log = False
        self.session = session or Session(self.profile)
        """The one engine Session: screens reach the robot through `app.session`, never the buses."""
        self._want_hotkeys = hotkeys
        self.hotkeys: GlobalHotkeys | None = None

    # --- screens
    def get_default_screen(self) -> Screen[Any]:
        return HomeScreen(self.profile, [self.table[name] for name in WORKFLOWS])

    @property
    def context(self) -> str:
        """The command context of the screen on top (what `COMMAND_CONTEXT` it declares)."""
        return getattr(self.screen, "COMMAND_CONTEXT", "home")

    def on_mount(self) -> None:
        if self.store_error:
            self.notify(self.store_error, title="profiles file not loaded", severity="error", timeout=15)
        if self._want_hotkeys:
            self.hotkeys = start_hotkeys(self, self.table)
        self._start_session()
        self.set_interval(1.0, self._show_connections)

    def on_unmount(self) -> None:
        if self.hotkeys is not None:
            self.hotkeys.stop()
            self.hotkeys = None
        self.session.close()  # every exit path of the app: workflow stopped, torque off, sim stopped

    # --- session
    @work(thread=True, exclusive=True, group="session", exit_on_error=False, description="starting the session")
    def _start_session(self) -> None:
        self.session.start()
        self.call_from_thread(self._session_started)

    def _session_started(self) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, HomeScreen):
                screen.action_recheck()

    def _show_connections(self) -> None:
        """Home's connection lines follow the session's arms (no bus I/O: flags only)."""
        home = next((s for s in self.screen_stack if isinstance(s, HomeScreen)), None)
        if home is None or not home.is_mounted:
            return
        for role, arm in (("robot", self.session.robot), ("teleop", self.session.leader)):
            home.set_connection(role, f"connected ({arm.config.port})" if arm and arm.is_connected else "not connected")

    def action_open_screen(self, name: str) -> None:
        """Open a workflow screen on top of home (replacing another workflow, never stacking them)."""
        spec = WORKFLOW_SCREENS.get(name)
        if spec is None:
            self.notify(f"no workflow called {name!r}", severity="error")
            return
        if self.context == name:
            return
        module_name, _, class_name = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name != module_name:
                raise
            self.notify(f"The {name} workflow is not in this build yet.", severity="warning")
            return
        screen = getattr(module, class_name)()
        if len(self.screen_stack) > 1:
            self.switch_screen(screen)
        else:
            self.push_screen(screen)
        self.call_after_refresh(self._apply_log_pane)

    def open_rollout(self, policy: str) -> None:
        """Open the Rollout screen with its policy field filled in (the Train screen's fetched checkpoint).
        The new screen composes its form from `values` only after this returns."""
        self.action_open_screen("rollout")
        values = getattr(self.screen, "values", None)
        if self.context == "rollout" and isinstance(values, dict):
            values["policy"] = policy

    def action_go_home(self) -> None:
        while len(self.screen_stack) > 1:
            self.pop_screen()
        self.call_after_refresh(self._apply_log_pane)

    def action_help(self, command: str | None = None) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(list(self.table), self.context, focus=command))

    # --- log pane
    def action_toggle_log(self) -> None:
        self.show_log = not self.show_log
        self._apply_log_pane()

    def _apply_log_pane(self) -> None:
        screen = self.screen
        panes = screen.query(LogPane)
        if panes:
            for pane in panes:
                pane.display = self.show_log
        elif self.show_log:
            footers = screen.query(Footer)
            pane = LogPane(self.log_handler, id="log-pane")
            if footers:
                screen.mount(pane, before=footers.first())
            else:
                screen.mount(pane)

    # --- the command table
    def command_enabled(self, command: Command, screen: Screen[Any] | None = None) -> bool:
        """Does `command` apply on `screen` (default: the top one) and is its handler there?"""
        screen = screen or self.screen
        context = getattr(screen, "COMMAND_CONTEXT", "home")
        if not command.applies_in(context):
            return False
        if command.key and self.table.key_owner(command.key, context) is not command:
            return False  # this key does something more specific on this screen
        if command.name == "home" and len(self.screen_stack) <= 1:
            return False
        if command.namespace == "screen":
            return hasattr(screen, f"action_{command.action_name}")
        return True

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "command" and parameters:
            command = self.table.get(str(parameters[0]))
            return command is not None and self.command_enabled(command)
        return True

    async def action_command(self, name: str) -> None:
        await self.run_action(self.table[name].action)

    async def execute(self, text: str, on_error: Callable[[str], None] | None = None) -> bool:
        """Run a typed slash command on the current screen. Problems are one line: a notification, or given
        to `on_error` (a screen's conversation pane)."""
        try:
            command, argument = self.table.parse(text, self.context)
            if not self.command_enabled(command) and command.namespace == "screen":
                raise CommandError(f"/{command.name} is not available on this screen")
            action = command.action_with(argument)
        except CommandError as e:
            if on_error is not None:
                on_error(str(e))
            else:
                self.notify(str(e), severity="warning")
            return False
        log.debug("command %s", text.strip())
        await self.run_action(action)
        return True

    @on(HotkeyPressed)
    async def _hotkey(self, event: HotkeyPressed) -> None:
        command = self.table[event.command]
        if self.command_enabled(command):
            await self.run_action(command.action)
        else:
            log.debug("hotkey for /%s ignored on the %s screen", command.name, self.context)

    def get_system_commands(self, screen: Screen[Any]) -> Iterator[SystemCommand]:
        # Textual's own Quit would duplicate the table's /quit (which also stops the robot first).
        for command in super().get_system_commands(screen):
            if command.title != "Quit":
                yield command

    # --- profile
    @on(HomeScreen.EditProfileRequested)
    def _edit_profile(self) -> None:
        self.push_screen(
            EditProfileModal(form_fields(), profile_to_form(self.profile), self._save_profile),
            self._profile_form_closed,
        )

    def _save_profile(self, values: dict[str, str]) -> None:
        """Validate and write the edited profile; raising ProfileError keeps the form open."""
        if self.store_error:
            raise ProfileError(
                f"not saved: fix or remove the broken profiles file first ({self.store_error})"
            )
        profile = profile_from_form(self.profile, values)
        store = self.store or load_profiles()
        if profile.name != self.profile.name and profile.name in store.profiles:
            raise ProfileError(f"a profile called {profile.name!r} exists already", field="name")
        store.put(profile)
        store.save()
        self.store = store
        self.profile = profile
        self.session.set_profile(profile)
        log.info("profile %r saved to %s", profile.name, store.path)

    def _profile_form_closed(self, saved: bool | None) -> None:
        if saved:
            for screen in self.screen_stack:
                if isinstance(screen, HomeScreen):
                    screen.show_profile(self.profile)
            self.notify(f"Profile {self.profile.name!r} saved.")

    def on_ports_screen_assign_port(self, message: Any) -> None:
        """The Ports screen found an arm's port (`PortsScreen.AssignPort`, matched by handler name so the app
        need not import the screen): put it into the profile. Sim ports are made afresh each run, so a sim
        profile takes it for this session only; otherwise the profiles file is saved."""
        values = profile_to_form(self.profile)
        values[f"{message.role}.port"] = message.port
        try:
            if self.profile.sim:
                self.profile = profile_from_form(self.profile, values)
                self.session.set_profile(self.profile)
            else:
                self._save_profile(values)
        except ProfileError as e:
            self.notify(str(e), title="port not set", severity="error", timeout=10)
            return
        for screen in self.screen_stack:
            if isinstance(screen, HomeScreen):
                screen.show_profile(self.profile)
        where = "for this session (sim)" if self.profile.sim else f"in profile {self.profile.name!r}"
        self.notify(f"{message.role} port set to {message.port} {where}.")

    # --- errors
    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        if event.state is not WorkerState.ERROR:
            return
        worker = event.worker
        what = worker.description or worker.name or "background task"
        error = worker.error
        log.error("%s failed: %s", what, error, exc_info=error if isinstance(error, BaseException) else None)
        self.notify(describe_error(error), title=f"{what} failed", severity="error", timeout=10)


# ------------------------------------------------------------------------------------------- running


@contextlib.contextmanager
def capture_logging(handler: LogPaneHandler, verbose: bool = False) -> Iterator[LogPaneHandler]:
    """Route all logging into the log pane while the app owns the terminal: console handlers would write
    over the TUI. Our loggers log at INFO (DEBUG with -v); everyone else's from WARNING up."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    ours = [logging.getLogger(name) for name in OUR_PACKAGES]
    saved_ours = [logger.level for logger in ours]
    for existing in saved_handlers:
        if isinstance(existing, logging.StreamHandler) and not isinstance(existing, logging.FileHandler):
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    for logger in ours:
        logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.captureWarnings(True)
    try:
        yield handler
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        for existing in saved_handlers:
            if existing not in root.handlers:
                root.addHandler(existing)
        root.setLevel(saved_level)
        for logger, level in zip(ours, saved_ours, strict=True):
            logger.setLevel(level)


def choose_profile(args: argparse.Namespace) -> tuple[Profile, ProfileStore | None, str | None]:
    """The profile to open (`--profile NAME`, else the active one; with --sim the saved "sim" profile or
    the built-in one), the store it came from, and a load error to show: --sim must open even when the
    profiles file is broken. Otherwise a broken file or an unknown name raises ProfileError."""
    sim = bool(getattr(args, "sim", False))
    name = getattr(args, "profile", None)
    try:
        store: ProfileStore | None = load_profiles()
    except ProfileError as e:
        if not sim:
            raise
        store, error = None, str(e)
    else:
        error = None
    if name is not None:
        if store is None or name not in store.profiles:
            known = ", ".join(store.profiles) if store else "none readable"
            raise ProfileError(f"no profile called {name!r} (profiles: {known})")
        profile = store.profiles[name]
    elif sim:
        saved = store.profiles.get("sim") if store else None
        profile = saved if saved is not None and saved.sim else sim_profile()
    else:
        assert store is not None
        profile = store.active_profile
    return apply_overrides(profile, args), store, error


def run_app(args: argparse.Namespace) -> int:
    """`robotui` with no subcommand. Exit code 2 for a profile that cannot be used."""
    try:
        profile, store, store_error = choose_profile(args)
        preview = detect_preview_mode(getattr(args, "preview", None) or "auto")
    except (ProfileError, ValueError) as e:
        print(f"robotui: {e}", file=sys.stderr)
        return 2
    handler = LogPaneHandler()
    app = RobotuiApp(
        profile,
        store=store,
        store_error=store_error,
        preview_mode=preview,
        log_handler=handler,
        hotkeys=getattr(args, "hotkeys", True),
    )
    try:
        with capture_logging(handler, verbose=bool(getattr(args, "verbose", False))):
            result = app.run()
    finally:
        app.session.close()  # also when the app itself crashed
    return int(app.return_code or result or 0)
