"""The Ports workflow: which serial port is which arm, and why a port cannot be used.

A live list of the serial ports (polled in a worker) with their stable /dev/serial/by-id names and access
problems (not in 'dialout', a login session older than the group change, brltty stealing the adapter),
each with its fix. "Find the port" asks the operator to unplug one arm's USB cable and names the port the
moment it disappears (no Enter), then waits for the replug to confirm it and offers to put it into the
profile; the app owns the profiles file, so the screen only posts `AssignPort`.

With --sim, the virtual arms' ports are listed like USB ones, and two simulation-aid keys pull and re-seat
a virtual arm's cable, so the same flow runs without hardware. The motor-setup wizard opens from here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Header, Static

from drivers.ports import (
    BrlttyFinding,
    PortInfo,
    PortProblem,
    PortWatcher,
    UserIdentity,
    find_brltty,
    list_ports,
    port_paths,
    port_problems,
)
from screens.base import RobotuiScreen
from screens.motor_setup import MotorSetupScreen, command_key
from screens.widgets.port_list import PortList

if TYPE_CHECKING:
    from engine.session import Role, Session

ARM_NAMES = {"robot": "follower", "teleop": "leader"}
SIM_ROLES: dict[str, Literal["follower", "leader"]] = {"robot": "follower", "teleop": "leader"}


@dataclass(frozen=True)
class PortScanner:
    """Whose access to check and what brltty looks like. The defaults are this user and the real system;
    tests pass another user or a brltty finding (drivers.ports' injectable inputs). The folders come from
    drivers.ports (DEV_DIR, BY_ID_DIR), read at each call."""

    user: UserIdentity | None = None
    brltty: BrlttyFinding | None = None

    def ports(self) -> list[PortInfo]:
        return list_ports()

    def paths(self) -> set[str]:
        return port_paths()

    def problems(self, ports: list[PortInfo], brltty: BrlttyFinding) -> list[PortProblem]:
        return port_problems(ports, user=self.user, brltty=self.brltty if self.brltty is not None else brltty)


Stage = Literal["unplug", "replug", "done", "failed"]


@dataclass(frozen=True)
class FindState:
    """Where the find-the-port flow is for one arm."""

    role: Role
    stage: Stage
    port: str = ""  # the port that disappeared: the arm's
    by_id: str | None = None  # its stable /dev/serial/by-id path, when there is one
    back_as: str = ""  # the name it came back under after the replug
    message: str = ""

    @property
    def arm(self) -> str:
        return ARM_NAMES[self.role]

    @property
    def assignable(self) -> str:
        """The port to put into the profile: the by-id path (it survives replugs and reboots) if known."""
        return self.by_id or self.back_as or self.port


class PortsScreen(RobotuiScreen):
    COMMAND_CONTEXT: ClassVar[str] = "ports"

    DEFAULT_CSS = """
    PortsScreen #ports-body { height: 1fr; }
    PortsScreen #port-list, PortsScreen #port-problems, PortsScreen #find-port, PortsScreen #ports-profile {
        border: round $primary-darken-1;
        border-title-color: $text;
        padding: 0 1;
        height: auto;
    }
    PortsScreen #port-problems { border: round $warning; }
    PortsScreen #find-port.-active { border: round $accent; }
    PortsScreen #find-port.-done { border: round $success; }
    PortsScreen #find-port.-failed { border: round $error; }
    """

    scanner: ClassVar[PortScanner] = PortScanner()
    scan_interval: ClassVar[float] = 1.0
    find_timeout_s: ClassVar[float] = 120.0

    class AssignPort(Message):
        """Set `port` as the `role` arm's port in the profile. The app owns the profiles file and handles it
        (`on_ports_screen_assign_port`)."""

        def __init__(self, role: Role, port: str) -> None:
            super().__init__()
            self.role: Role = role
            self.port = port

    class _Scanned(Message):
        def __init__(self, ports: list[PortInfo], problems: list[PortProblem]) -> None:
            super().__init__()
            self.ports, self.problems = ports, problems

    class _FindUpdate(Message):
        def __init__(self, state: FindState, stop: threading.Event) -> None:
            super().__init__()
            self.state, self.stop = state, stop

    def __init__(self) -> None:
        super().__init__()
        self.role: Role = "robot"  # the arm that find, the sim cable keys and motor setup act on
        self.find: FindState | None = None
        self.ports: list[PortInfo] = []
        self.problems: list[PortProblem] = []
        self._find_stop = threading.Event()
        self._brltty: BrlttyFinding | None = None

    @property
    def session(self) -> Session:
        return self.app.session  # type: ignore[attr-defined,no-any-return]

    # ------------------------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="ports-body"):
            yield PortList(id="port-list")
            yield Static(id="port-problems")
            yield Static(id="find-port")
            yield Static(id="ports-profile")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#port-list", PortList).border_title = "Serial ports"
        self.query_one("#port-problems", Static).border_title = "Problems"
        self.query_one("#port-problems", Static).display = False
        self.query_one("#ports-profile", Static).border_title = "Ports in the profile"
        self._render_find()
        self._render_profile()
        self._scan()
        self.set_interval(self.scan_interval, self._scan)

    def on_screen_resume(self) -> None:
        self._render_find()
        self._render_profile()

    def on_unmount(self) -> None:
        self._find_stop.set()  # the watcher returns within one poll

    # ------------------------------------------------------------------------------------ port list
    def _scan(self) -> None:
        if self.is_mounted:
            self._scan_ports()

    @work(thread=True, exclusive=True, group="port-scan", exit_on_error=False, description="listing serial ports")
    def _scan_ports(self) -> None:
        ports = self.scanner.ports()
        if self._brltty is None:
            self._brltty = find_brltty() if self.scanner.brltty is None else self.scanner.brltty
        self.post_message(self._Scanned(ports, self.scanner.problems(ports, self._brltty)))

    @on(_Scanned)
    def _scanned(self, message: _Scanned) -> None:
        self.ports, self.problems = message.ports, message.problems
        self.query_one("#port-list", PortList).show(self.ports, self.problems, self._marks())
        panel = self.query_one("#port-problems", Static)
        panel.display = bool(self.problems)
        if self.problems:
            panel.update(self._problems_text(self.problems))
        self._render_profile()

    def _marks(self) -> dict[str, str]:
        profile = self.session.profile
        marks = {arm.port: role for role, arm in (("robot", profile.robot), ("teleop", profile.teleop))
                 if arm.has_bus and arm.port}
        if self.find is not None and self.find.stage == "done":
            marks.setdefault(self.find.back_as, f"found: {self.find.arm}")
        return marks

    @staticmethod
    def _problems_text(problems: list[PortProblem]) -> Group:
        lines: list[Text] = []
        for problem in problems:
            lines.append(Text.assemble(("✗ ", "bold red"), problem.detail))
            lines.append(Text.assemble("  fix: ", (problem.fix, "bold")))
        return Group(*lines)

    # ------------------------------------------------------------------------------------ find the port
    def action_find_port(self, role: Role) -> None:
        """Start over for `role`: wait for its cable to be pulled, then for the replug."""
        if role not in ARM_NAMES:
            self.notify(f"no arm called {role!r}: use robot or teleop", severity="warning")
            return
        arm = self.session.profile.robot if role == "robot" else self.session.profile.teleop
        if not arm.has_bus:
            self.notify("The teleop is the keyboard in this profile: it has no port.", severity="warning")
            return
        self._find_stop.set()
        self._find_stop = threading.Event()
        self.role = role
        # The baseline is taken now, before the operator can pull the cable.
        watcher = PortWatcher(self.scanner.paths, stop=self._find_stop)
        self.find = FindState(role, "unplug")
        self._render_find()
        self._watch(role, watcher, {p.path: p for p in self.ports})

    @work(thread=True, exclusive=True, group="find-port", exit_on_error=False, description="finding the arm's port")
    def _watch(self, role: Role, watcher: PortWatcher, known: dict[str, PortInfo]) -> None:
        stop, timeout, arm = watcher.stop, self.find_timeout_s, ARM_NAMES[role]

        def post(state: FindState) -> None:
            if not stop.is_set():
                self.post_message(self._FindUpdate(state, stop))

        removed = watcher.wait_removed(timeout)
        if stop.is_set():
            return
        if not removed:
            post(FindState(role, "failed", message=(
                f"No port disappeared within {timeout:g} s. If the {arm}'s port is not in the list above, it was "
                "never detected: try another cable (some only charge) or USB socket, check the board's power, "
                "and look at `dmesg | tail` right after plugging in.")))
            return
        if len(removed) > 1:
            post(FindState(role, "failed", message=(
                f"{len(removed)} ports disappeared at once ({', '.join(removed)}): that cable carries several "
                f"ports (a USB hub, or a board with two adapters). Unplug only the {arm}'s own cable.")))
            return
        port = removed[0]
        info = known.get(port)
        post(FindState(role, "replug", port, info.by_id_path if info else None))
        added = watcher.wait_added(timeout)
        if stop.is_set():
            return
        if not added:
            post(FindState(role, "failed", port, info.by_id_path if info else None, message=(
                f"{port} did not come back within {timeout:g} s: check that the cable is seated, then find it "
                "again.")))
            return
        back_as = port if port in added else added[0]
        now = next((p for p in self.scanner.ports() if p.path == back_as), None)
        by_id = now.by_id_path if now else None
        message = "" if back_as == port else (
            f"It came back as {back_as}, not {port}: the old name was still held open by a program.")
        post(FindState(role, "done", port, by_id, back_as, message))

    @on(_FindUpdate)
    def _find_update(self, message: _FindUpdate) -> None:
        if message.stop is not self._find_stop:
            return  # from a flow that was restarted
        self.find = message.state
        self._render_find()
        self.query_one("#port-list", PortList).show(self.ports, self.problems, self._marks())

    def action_assign(self) -> None:
        """Put the port just found into the profile (the by-id name when there is one)."""
        find = self.find
        if find is None or not find.port:
            self.notify(
                f"Nothing to assign yet: press {self._key('find-robot', 'r')} (or "
                f"{self._key('find-teleop', 't')}) and unplug the arm's cable first.",
                severity="warning",
            )
            return
        self.post_message(self.AssignPort(find.role, find.assignable))

    # ------------------------------------------------------------------------------------ sim aids
    def action_sim_unplug(self) -> None:
        """Simulation aid: pull the chosen virtual arm's USB cable."""
        self._sim_cable(plug=False)

    def action_sim_replug(self) -> None:
        """Simulation aid: plug the chosen virtual arm's USB cable back in."""
        self._sim_cable(plug=True)

    def _sim_cable(self, plug: bool) -> None:
        sim = self.session.sim
        if sim is None:
            self.notify(
                "Simulation aid only (robotui --sim): with a real arm, pull or plug its USB cable yourself.",
                severity="warning",
            )
            return
        self._move_sim_cable(SIM_ROLES[self.role], plug)

    @work(thread=True, exclusive=True, group="sim-cable", exit_on_error=False, description="moving the virtual cable")
    def _move_sim_cable(self, arm: Literal["follower", "leader"], plug: bool) -> None:
        sim = self.session.sim
        if sim is not None:
            (sim.replug if plug else sim.unplug)(arm)

    # ------------------------------------------------------------------------------------ motor setup
    def action_motor_setup(self, role: str | None = None) -> None:
        """Open the motor-setup wizard for the chosen arm (or `role`)."""
        chosen = role or self.role
        if chosen not in ARM_NAMES:
            self.notify(f"no arm called {chosen!r}: use robot or teleop", severity="warning")
            return
        self._find_stop.set()  # the wizard needs the port; a pending find flow would misread its replugs
        if self.find is not None and self.find.stage in ("unplug", "replug"):
            self.find = None
            self._render_find()
        self.app.push_screen(MotorSetupScreen(chosen))  # type: ignore[arg-type]

    # ------------------------------------------------------------------------------------ display
    def _key(self, command: str, fallback: str = "?") -> str:
        return command_key(self.app, command, fallback)

    def _render_find(self) -> None:
        panel = self.query_one("#find-port", Static)
        panel.remove_class("-active", "-done", "-failed")
        find = self.find
        lines: list[Text] = []
        if find is None:
            panel.border_title = "Find an arm's port"
            lines.append(Text.assemble(
                "Press ", (self._key("find-robot", "r"), "bold"), " to find the follower's (robot) port, ",
                (self._key("find-teleop", "t"), "bold"), " for the leader's (teleop). ",
                "Then unplug that arm's USB cable: its port is named as soon as it disappears.",
            ))
        else:
            panel.border_title = f"Find the {find.arm}'s port"
            panel.add_class({"unplug": "-active", "replug": "-active", "done": "-done", "failed": "-failed"}[find.stage])
            lines += self._find_lines(find)
        if self.session.sim is not None and (find is None or find.stage in ("unplug", "replug")):
            arm = ARM_NAMES[find.role if find else self.role]
            lines += [Text(""), Text(
                f"Simulation aid: press {self._key('unplug', 'u')} to pull the virtual {arm}'s USB cable, "
                f"{self._key('replug', 'p')} to plug it back in.", style="dim")]
        lines.append(Text(
            f"{self._key('motors', 'm')}: set up the {ARM_NAMES[self.role]}'s motors (ids and baud rate, one motor "
            "at a time)", style="dim"))
        panel.update(Group(*lines))

    def _find_lines(self, find: FindState) -> list[Text]:
        if find.stage == "unplug":
            return [Text.assemble(
                ("Unplug the ", "bold"), (f"{find.arm}'s", "bold cyan"), (" USB cable now", "bold"),
                " — no need to press anything; waiting for its port to disappear…")]
        if find.stage == "replug":
            return [
                Text.assemble(("✓ ", "bold green"), f"The {find.arm}'s port is ", (find.port, "bold")),
                Text.assemble(("Plug the cable back in", "bold"), " to confirm…"),
            ]
        if find.stage == "failed":
            lines = [Text.assemble(("✗ ", "bold red"), find.message)]
            lines.append(Text(f"Press {self._key('find-' + find.role, '?')} to try again.", style="dim"))
            return lines
        lines = [Text.assemble(("✓ ", "bold green"), f"The {find.arm}'s port is ", (find.back_as, "bold"),
                               " (confirmed: it came back when you plugged the cable in).")]
        if find.message:
            lines.append(Text(find.message, style="yellow"))
        if find.by_id:
            lines.append(Text.assemble(
                "Stable name: ", (find.by_id, "bold"), " — use it: /dev/ttyACM*/ttyUSB* numbers change when "
                "cables are replugged or the machine reboots."))
        lines.append(Text.assemble(
            "Press ", (self._key("assign", "a"), "bold"), f" to set {find.assignable} as the {find.role} port "
            "in the profile."))
        return lines

    def _render_profile(self) -> None:
        profile = self.session.profile
        present: set[str] = set()
        for p in self.ports:
            present.update(x for x in (p.path, p.target, p.by_id_path) if x)
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column(ratio=1)
        for role, arm in (("robot", profile.robot), ("teleop", profile.teleop)):
            if not arm.has_bus:
                table.add_row(role, arm.type, Text("keyboard — no port", style="dim"), "")
            elif not arm.port:
                table.add_row(role, arm.type, Text("not set — find it above", style="yellow"), "")
            elif arm.port in present:
                table.add_row(role, arm.type, arm.port, Text("✓ present", style="green"))
            else:
                table.add_row(role, arm.type, arm.port, Text("✗ not found — plugged in?", style="red"))
        if profile.sim:
            table.add_row("", "", Text("simulated arms: virtual ports, made afresh each run", style="dim"), "")
        self.query_one("#ports-profile", Static).update(table)
