"""The home screen: the active robot profile, whether each arm is ready (port present, calibration file
found, connected), and one key per workflow. It answers "can I start?" before the operator picks a
workflow, and says which workflow fixes what is missing.

Screens cannot import the app shell (robotui), so the profile and the command rows arrive as plain
objects that match the Protocols below; the edit-profile form gets its fields and a `submit` callback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Button, Footer, Header, Input, Label, Select, Static

from screens.base import RobotuiModal, RobotuiScreen
from screens.help import CommandInfo

log = logging.getLogger(__name__)


class ArmInfo(Protocol):
    @property
    def type(self) -> str: ...
    @property
    def port(self) -> str: ...
    @property
    def id(self) -> str: ...
    @property
    def has_bus(self) -> bool: ...
    @property
    def calibration_key(self) -> tuple[str, str] | None: ...


class ProfileInfo(Protocol):
    """What home shows of a profile (engine.profile.Profile has these)."""

    @property
    def name(self) -> str: ...
    @property
    def robot(self) -> ArmInfo: ...
    @property
    def teleop(self) -> ArmInfo: ...
    @property
    def cameras(self) -> Mapping[str, Mapping[str, Any]]: ...
    @property
    def teleop_fps(self) -> int: ...
    @property
    def record_fps(self) -> int: ...
    @property
    def max_relative_target(self) -> float | Mapping[str, float] | None: ...
    @property
    def sim(self) -> bool: ...
    def dataset_root_path(self) -> Path: ...


def _home_relative(path: Path | str) -> str:
    text = str(path)
    home = str(Path.home())
    return "~" + text[len(home) :] if text == home or text.startswith(home + "/") else text


def describe_camera(config: Mapping[str, Any]) -> str:
    """`sim 320×240@30`, `opencv /dev/video0 640×480@30`: one camera in a few words."""
    parts = [str(config.get("type", "?"))]
    source = config.get("index_or_path", config.get("path"))
    if source is not None:
        parts.append(str(source))
    if config.get("width") and config.get("height"):
        size = f"{config['width']}×{config['height']}"
        parts.append(f"{size}@{config['fps']:g}" if config.get("fps") else size)
    return " ".join(parts)


# ------------------------------------------------------------------------------------------ arm status


@dataclass(frozen=True)
class ArmCheck:
    """Result of the blocking checks for one arm, made in a worker thread."""

    port: str  # the text to show
    port_ok: bool | None  # None: nothing to check (keyboard, sim)
    calibration: str
    calibration_ok: bool | None


def check_arm(arm: ArmInfo, present_ports: set[str], sim: bool, hints: Mapping[str, str]) -> ArmCheck:
    """Is the arm's port there and is its calibration file found? Pure apart from the file lookup."""
    from drivers.calibration import find_calibration

    if not arm.has_bus:
        return ArmCheck("keyboard — no port needed", None, "not needed", None)
    if sim:
        port, port_ok = "virtual (servo emulator, made on connect)", None
    elif not arm.port:
        port, port_ok = f"not set — {hints['ports']} to find it", False
    elif arm.port in present_ports:
        port, port_ok = f"{arm.port} present", True
    else:
        port, port_ok = f"{arm.port} not found — plugged in? {hints['ports']} to find it", False
    key = arm.calibration_key
    if key is None:
        return ArmCheck(port, port_ok, f"unknown arm type {arm.type!r}", False)
    kind, name = key
    found = find_calibration(kind, name, arm.id)  # type: ignore[arg-type]
    if found is not None:
        return ArmCheck(port, port_ok, _home_relative(found), True)
    return ArmCheck(port, port_ok, f"none for {name}/{arm.id} — {hints['calibrate']}", False)


def _mark(ok: bool | None) -> Text:
    if ok is None:
        return Text("•", style="dim")
    return Text("✓", style="bold green") if ok else Text("✗", style="bold red")


class ArmStatus(Static):
    """Readiness of one arm. `connection` is set by the session once it connects."""

    connection: reactive[str] = reactive("not connected", layout=True)
    check: reactive[ArmCheck | None] = reactive(None, layout=True)

    def __init__(self, title: str, arm: ArmInfo, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="arm-status")
        self.arm = arm
        self.border_title = title

    def render(self) -> Table:
        table = Table.grid(padding=(0, 1))
        table.add_column(width=1)
        table.add_column(style="bold", width=12)
        table.add_column(ratio=1)
        arm = self.arm
        table.add_row("", "type", f"{arm.type}" + (f"  id {arm.id}" if arm.has_bus else ""))
        check = self.check
        if check is None:
            table.add_row(_mark(None), "port", Text("checking…", style="dim"))
            table.add_row(_mark(None), "calibration", Text("checking…", style="dim"))
        else:
            table.add_row(_mark(check.port_ok), "port", check.port)
            table.add_row(_mark(check.calibration_ok), "calibration", check.calibration)
        connected = self.connection.startswith("connected")
        table.add_row(_mark(True if connected else None), "connection", self.connection)
        return table


# ---------------------------------------------------------------------------------------- home screen


class HomeScreen(RobotuiScreen):
    COMMAND_CONTEXT: ClassVar[str] = "home"

    DEFAULT_CSS = """
    HomeScreen #home-body { height: 1fr; }
    HomeScreen #home-top { height: auto; }
    HomeScreen #profile, HomeScreen #workflows, HomeScreen .arm-status {
        border: round $primary-darken-1;
        border-title-color: $text;
        padding: 0 1;
        height: auto;
    }
    HomeScreen #profile { width: 1fr; }
    HomeScreen #workflows { width: 62; }
    HomeScreen #arms { height: auto; }
    HomeScreen .arm-status { width: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("f5", "recheck", "Re-check", show=False)]

    class EditProfileRequested(Message):
        """The operator asked to edit the profile; the app owns the profile file, so it opens the form."""

    recheck_interval: ClassVar[float] = 5.0

    def __init__(self, profile: ProfileInfo, workflows: Sequence[CommandInfo]) -> None:
        super().__init__()
        self.profile = profile
        self.workflows = list(workflows)

    # --- layout
    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="home-body"):
            with Horizontal(id="home-top"):
                yield Static(id="profile")
                yield Static(id="workflows")
            with Horizontal(id="arms"):
                yield ArmStatus("Follower (robot)", self.profile.robot, id="robot-status")
                yield ArmStatus("Leader (teleop)", self.profile.teleop, id="teleop-status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#workflows", Static).border_title = "Workflows"
        self.show_profile(self.profile)
        self.set_interval(self.recheck_interval, self.action_recheck)

    def on_screen_resume(self) -> None:
        self.action_recheck()

    def _key(self, name: str) -> str:
        command = next((c for c in self.workflows if c.name == name), None)
        if command is None or not command.key:
            return ""
        return self.app.get_key_display(Binding(command.key, ""))

    def _hints(self) -> dict[str, str]:
        return {
            name: (
                f"press {key} ({name.capitalize()})"
                if (key := self._key(name))
                else f"run {name.capitalize()}"
            )
            for name in ("ports", "calibrate")
        }

    def show_profile(self, profile: ProfileInfo) -> None:
        """Show `profile` (after the edit form saved it, or the session switched profiles) and re-check."""
        self.profile = profile
        panel = self.query_one("#profile", Static)
        panel.border_title = f"Profile: {profile.name}" + ("  (simulated)" if profile.sim else "")
        panel.update(self._profile_table(profile))
        self.query_one("#workflows", Static).update(self._workflow_table())
        for widget_id, arm in (("#robot-status", profile.robot), ("#teleop-status", profile.teleop)):
            status = self.query_one(widget_id, ArmStatus)
            status.arm = arm
            status.check = None
            status.refresh()
        self.action_recheck()

    def _profile_table(self, profile: ProfileInfo) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(ratio=1)
        for role, arm in (("robot", profile.robot), ("teleop", profile.teleop)):
            if arm.has_bus:
                port = "virtual" if profile.sim else (arm.port or Text("port not set", style="yellow"))
                table.add_row(role, Text.assemble(arm.type, "  ", port, "  ", f"id {arm.id}"))
            else:
                table.add_row(role, arm.type)
        cameras = profile.cameras
        if cameras:
            table.add_row(
                "cameras", "\n".join(f"{name}: {describe_camera(c)}" for name, c in cameras.items())
            )
        else:
            table.add_row("cameras", Text("none", style="dim"))
        table.add_row("fps", f"teleop {profile.teleop_fps} · record {profile.record_fps}")
        mrt = profile.max_relative_target
        if mrt is None:
            limit: str | Text = Text("none (goals not clamped)", style="dim")
        elif isinstance(mrt, Mapping):
            limit = ", ".join(f"{k} {v:g}°" for k, v in mrt.items())
        else:
            limit = f"{mrt:g}° per tick"
        table.add_row("max step", limit)
        table.add_row("datasets", _home_relative(profile.dataset_root_path()))
        return table

    def _workflow_table(self) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True, justify="right")
        table.add_column(style="bold", no_wrap=True)
        table.add_column(ratio=1)
        for command in self.workflows:
            table.add_row(self._key(command.name), command.name.capitalize(), Text(command.help, style="dim"))
        return table

    # --- checks
    def action_recheck(self) -> None:
        if self.is_mounted:
            self._run_checks(self.profile, self._hints())

    @work(
        thread=True,
        exclusive=True,
        group="home-checks",
        exit_on_error=False,
        description="checking the arms' ports and calibration files",
    )
    def _run_checks(self, profile: ProfileInfo, hints: dict[str, str]) -> None:
        present: set[str] = set()
        if not profile.sim and any(arm.has_bus and arm.port for arm in (profile.robot, profile.teleop)):
            from drivers.ports import list_ports

            for port in list_ports():
                present.update(p for p in (port.path, port.target, port.by_id_path) if p)
        results = (
            check_arm(profile.robot, present, profile.sim, hints),
            check_arm(profile.teleop, present, profile.sim, hints),
        )
        self.app.call_from_thread(self._show_checks, profile, results)

    def _show_checks(self, profile: ProfileInfo, results: tuple[ArmCheck, ArmCheck]) -> None:
        if profile is not self.profile:
            return  # the profile changed while checking; a newer check is on its way
        self.query_one("#robot-status", ArmStatus).check = results[0]
        self.query_one("#teleop-status", ArmStatus).check = results[1]

    def set_connection(self, role: str, status: str) -> None:
        """Called by the session wiring: role is "robot" or "teleop", status e.g. "connected (/dev/ttyACM0)"."""
        for widget in self.query(f"#{role}-status").results(ArmStatus):  # none while the app tears down
            widget.connection = status

    # --- commands
    def action_edit_profile(self) -> None:
        self.post_message(self.EditProfileRequested())


# ------------------------------------------------------------------------------------ edit-profile form


class FieldInfo(Protocol):
    """One form field (engine.profile.FormField has these)."""

    @property
    def key(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def help(self) -> str: ...
    @property
    def choices(self) -> tuple[str, ...]: ...


def _field_id(key: str) -> str:
    return "field-" + key.replace(".", "-")


class EditProfileModal(RobotuiModal[bool]):
    """A form over the profile's fields. `submit(values)` validates and saves, raising ValueError (with an
    optional `.field` naming the form key) to keep the form open with the message; dismisses True once saved."""

    DEFAULT_CSS = """
    EditProfileModal { align: center middle; }
    EditProfileModal > Vertical {
        width: 90;
        max-width: 100%;
        height: auto;
        max-height: 95%;
        border: round $primary;
        background: $surface;
        padding: 0 1;
    }
    EditProfileModal VerticalScroll { height: auto; max-height: 30; }
    EditProfileModal .form-row { height: auto; }
    EditProfileModal .form-row { margin-top: 1; }
    EditProfileModal .form-row > Label { width: 22; padding: 0 1 0 0; text-style: bold; }
    EditProfileModal .form-row > Input, EditProfileModal .form-row > Select { width: 1fr; }
    EditProfileModal .form-row > Input { background: $boost; }
    EditProfileModal .form-row > Input:focus { background: $primary 25%; }
    EditProfileModal .form-help { color: $text-muted; padding-left: 22; height: auto; }
    EditProfileModal #form-error { color: $error; height: auto; padding: 0 0 0 1; }
    EditProfileModal #form-buttons { height: auto; align-horizontal: right; }
    EditProfileModal #form-buttons Button { margin-left: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "save", "Save"),
    ]

    def __init__(
        self, fields: Sequence[FieldInfo], values: Mapping[str, str], submit: Callable[[dict[str, str]], None]
    ) -> None:
        super().__init__()
        self.fields = list(fields)
        self.values = dict(values)
        self.submit = submit

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Edit profile"
            box.border_subtitle = "ctrl+s save · esc cancel"
            with VerticalScroll():
                for field in self.fields:
                    value = self.values.get(field.key, "")
                    with Horizontal(classes="form-row"):
                        yield Label(field.label)
                        if field.choices:
                            options = [(c, c) for c in field.choices]
                            if value and value not in field.choices:
                                options.insert(0, (value, value))
                            yield Select(
                                options,
                                value=value or field.choices[0],
                                allow_blank=False,
                                compact=True,
                                id=_field_id(field.key),
                            )
                        else:
                            yield Input(value, compact=True, id=_field_id(field.key))
                    if field.help:
                        yield Static(field.help, classes="form-help")
            yield Static(id="form-error")
            with Horizontal(id="form-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Save", id="save", variant="primary")

    def current_values(self) -> dict[str, str]:
        values = {}
        for field in self.fields:
            widget = self.query_one(f"#{_field_id(field.key)}")
            raw = widget.value  # type: ignore[attr-defined]
            values[field.key] = "" if raw is Select.BLANK else str(raw)
        return values

    def _field_for(self, error_field: str | None) -> str | None:
        """The form key an error names: exact, or the longest key that prefixes it (cameras.front → cameras)."""
        if not error_field:
            return None
        keys = [f.key for f in self.fields if error_field == f.key or error_field.startswith(f.key + ".")]
        return max(keys, key=len) if keys else None

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        try:
            self.submit(self.current_values())
        except ValueError as e:
            self.query_one("#form-error", Static).update(str(e))
            key = self._field_for(getattr(e, "field", None))
            if key is not None:
                self.query_one(f"#{_field_id(key)}").focus()
            return
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)

    @on(Input.Submitted)
    def _submit_on_enter(self) -> None:
        self.action_save()
