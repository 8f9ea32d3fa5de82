"""The motor-setup wizard: give each factory-fresh motor of one arm its id and the bus baud rate, one motor
at a time, gripper first (`engine.motor_setup.MotorSetupProcedure`).

New servos all answer as id 1, so they are set up alone on the cable: "connect only the gripper motor,
press Enter" → the wizard shows what it found (baud rate, id) and what it set, or what went wrong (no motor,
several, the wrong model) with what to do. Skip and back keys move between motors; a summary ends it.

With --sim the virtual arm's bus holds all six motors already. `SimMotorAid` stands in for the operator's
hands: it takes the arm's motors off the emulated bus and connects one factory-fresh motor, so the whole
wizard runs end to end on the simulator; closing the wizard puts the arm back as it was.

The search (every baud rate, a broadcast ping each) takes seconds, so it runs in a thread worker; the
procedure's bus is closed and the sim arm restored on every way out of the screen.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Header, Static

from drivers.emulator import EmulatedBus, EmulatedServo
from drivers.sim.virtual_robot import ArmRole, VirtualSO101
from engine.motor_setup import MotorSetupError, MotorSetupProcedure, SetupResult
from screens.base import RobotuiScreen

if TYPE_CHECKING:
    from engine.session import Role, Session

log = logging.getLogger(__name__)

FACTORY_ID = 1
"""Every new Feetech/Dynamixel servo ships answering as id 1."""


def command_key(app: Any, command: str, fallback: str = "?") -> str:
    """The key the command table binds to `command`, read from the app's bindings (screens cannot import
    the table), so on-screen instructions name the key that really works."""
    action = f"command({command!r})"
    for binding in getattr(app, "BINDINGS", ()):
        if isinstance(binding, Binding) and binding.action == action:
            return "Enter" if binding.key == "enter" else str(app.get_key_display(binding))  # not ⏎ in prose
    return fallback


# ------------------------------------------------------------------------------------------- sim aid


class SimMotorAid:
    """Simulation aid: on a virtual arm's emulated bus, connect only one factory-fresh motor (id 1 at the
    bus's baud rate), as an operator does with a real cable. The arm's own motors are set aside, not
    discarded: the physics keeps driving them, and `restore()` puts exactly them back."""

    def __init__(self, bus: EmulatedBus) -> None:
        self.bus = bus
        self._set_aside: list[EmulatedServo] | None = None
        self._fresh: EmulatedServo | None = None

    @classmethod
    def for_port(cls, sim: VirtualSO101 | None, port: str) -> SimMotorAid | None:
        """The aid for the virtual arm behind `port`, or None when `port` is not a virtual arm's."""
        if sim is None:
            return None
        roles: tuple[ArmRole, ...] = ("follower", "leader")
        for role in roles:
            bus = sim.bus(role)
            if bus.port == port:
                return cls(bus)
        return None

    @property
    def active(self) -> bool:
        """True while the arm's motors are set aside."""
        return self._set_aside is not None

    def present(self, model: str) -> EmulatedServo:
        """Take every motor off the bus and connect one factory-fresh `model` motor in their place."""
        with self.bus.lock:
            if self._set_aside is None:
                self._set_aside = [self.bus.remove_motor(i) for i in sorted(self.bus.servos)]
            for motor_id in sorted(self.bus.servos):  # the previous fresh motor, wherever setup left it
                self.bus.remove_motor(motor_id)
            self._fresh = self.bus.add_motor(FACTORY_ID, model)
            return self._fresh

    def unplug(self) -> None:
        """Leave the bus with no motor at all (a loose cable, an unpowered board)."""
        with self.bus.lock:
            if self._set_aside is None:
                self._set_aside = [self.bus.remove_motor(i) for i in sorted(self.bus.servos)]
            for motor_id in sorted(self.bus.servos):
                self.bus.remove_motor(motor_id)
            self._fresh = None

    def restore(self) -> None:
        """Put the arm's own motors back (the fresh ones go). Idempotent."""
        with self.bus.lock:
            if self._set_aside is None:
                return
            for motor_id in sorted(self.bus.servos):
                self.bus.remove_motor(motor_id)
            # EmulatedBus can only create motors; the physics holds these very objects, so they go back as
            # they are (drivers/emulator has no public way to re-insert a motor yet).
            self.bus._servos.extend(self._set_aside)
            self._set_aside = None
            self._fresh = None


# ------------------------------------------------------------------------------------------- advice

ADVICE = {
    "no_motor": (
        "Check that the '{motor}' motor's 3-pin cable is seated at both ends and that the controller board has "
        "power from its own supply (USB alone does not power the motors)."
    ),
    "several_motors": "Unplug every motor but '{motor}' from the board (pull the cable to the next motor in the chain).",
    "wrong_model": (
        "This is not the motor the arm's type expects there: connect the '{motor}' motor, or check the arm type "
        "(robot/teleop type in the profile)."
    ),
    "port": "Check the USB cable and that this is the arm's port (`robotui find-port` or the Ports screen names it).",
    "other": "If it keeps failing, switch the board's power off and on.",
}


def advice(error: MotorSetupError, then: str = "") -> str:
    """What the operator should do after `error`, by the picture the engine gave it; `then` is the next step
    (e.g. "Then press Enter to try again.") where trying again is possible."""
    text = ADVICE.get(error.reason, ADVICE["other"]).format(motor=error.motor)
    return f"{text} {then}" if then else text


# -------------------------------------------------------------------------------------------- screen


class MotorSetupScreen(RobotuiScreen):
    """The wizard for one arm: `MotorSetupScreen("robot")` or `MotorSetupScreen("teleop")`. Escape closes
    it and returns to the screen that opened it (Ports or Calibrate)."""

    COMMAND_CONTEXT: ClassVar[str] = "ports"
    """The table has no context of its own for the wizard: its rows live with the Ports screen's and are
    live here only, because only this screen has their handlers."""

    DEFAULT_CSS = """
    MotorSetupScreen #setup-body { height: 1fr; }
    MotorSetupScreen #setup-steps, MotorSetupScreen #setup-current {
        border: round $primary-darken-1;
        border-title-color: $text;
        padding: 0 1;
        height: auto;
    }
    MotorSetupScreen #setup-current.-error { border: round $error; }
    MotorSetupScreen #setup-current.-done { border: round $success; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]

    class _Prepared(Message):
        def __init__(self, procedure: MotorSetupProcedure | None, aid: SimMotorAid | None, error: str) -> None:
            super().__init__()
            self.procedure, self.aid, self.error = procedure, aid, error

    class _StepDone(Message):
        def __init__(self, result: SetupResult | None, error: MotorSetupError | None) -> None:
            super().__init__()
            self.result, self.error = result, error

    def __init__(self, role: Role = "robot") -> None:
        super().__init__()
        if role not in ("robot", "teleop"):
            raise ValueError(f"role must be 'robot' or 'teleop', not {role!r}")
        self.role: Role = role
        self.procedure: MotorSetupProcedure | None = None
        self.aid: SimMotorAid | None = None
        self.arm_label = ""
        self.problem = ""  # why the wizard cannot run at all (no port set, keyboard teleop)
        self.status: Text = Text("")
        self.skipped: list[str] = []
        self.busy = False
        self._gone = False
        self._lock = threading.Lock()  # busy/closed hand-over between the UI thread and the worker

    @property
    def session(self) -> Session:
        return self.app.session  # type: ignore[attr-defined,no-any-return]

    @property
    def arm_name(self) -> str:
        return "follower (robot)" if self.role == "robot" else "leader (teleop)"

    # ------------------------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="setup-body"):
            yield Static(id="setup-steps")
            yield Static(id="setup-current")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#setup-steps", Static).border_title = f"Motor setup: {self.arm_name}"
        self.status = Text("Opening the arm…", style="dim")
        self._redraw()
        self._prepare()

    def on_unmount(self) -> None:
        with self._lock:
            self._gone = True
            busy = self.busy
        if not busy:  # a running search finishes first; its worker then cleans up
            self._cleanup()

    def _cleanup(self) -> None:
        """Close the port and give the sim arm its own motors back (every way out of the wizard)."""
        procedure, aid = self.procedure, self.aid
        self.procedure = self.aid = None
        try:
            if procedure is not None:
                procedure.close()
        finally:
            if aid is not None:
                aid.restore()

    # ------------------------------------------------------------------------------------ workers
    @work(thread=True, exclusive=True, group="motor-setup", exit_on_error=False, description="opening the arm")
    def _prepare(self) -> None:
        session = self.session
        session.disconnect()  # setup needs the bus to itself: no teleop, no open connection
        try:
            arm = session.build_robot() if self.role == "robot" else session.build_leader()
        except ValueError as e:  # no port set, unknown type: the message says what to do
            self.post_message(self._Prepared(None, None, str(e)))
            return
        if arm is None:
            self.post_message(
                self._Prepared(None, None, "The teleop is the keyboard in this profile: it has no motors to set up.")
            )
            return
        aid = SimMotorAid.for_port(session.sim, arm.config.port)
        self.arm_label = f"{arm.config.type} on {arm.config.port}"
        self.post_message(self._Prepared(MotorSetupProcedure(arm), aid, ""))

    @work(thread=True, exclusive=True, group="motor-setup", exit_on_error=False, description="setting up a motor")
    def _setup_current(self, procedure: MotorSetupProcedure) -> None:
        result: SetupResult | None = None
        error: MotorSetupError | None = None
        try:
            result = procedure.setup_current()
        except MotorSetupError as e:
            error = e
        finally:
            with self._lock:
                self.busy = False
                closed = self._gone
            if closed:
                self._cleanup()
        if not closed:
            self.post_message(self._StepDone(result, error))

    @on(_Prepared)
    def _prepared(self, message: _Prepared) -> None:
        if message.error:
            self.problem = message.error
            self.status = Text("")
        else:
            self.procedure, self.aid = message.procedure, message.aid
            self.status = Text("")
        self._redraw()

    @on(_StepDone)
    def _step_done(self, message: _StepDone) -> None:
        if message.result is not None:
            if message.result.motor in self.skipped:
                self.skipped.remove(message.result.motor)
            self.status = Text.assemble(("✓ ", "bold green"), message.result.describe())
        elif message.error is not None:
            error = message.error
            self.status = Text.assemble(
                ("✗ ", "bold red"), (str(error), "red"), "\n",
                advice(error, f"Then press {self._key('setup', 'Enter')} to try again."),
            )
        self._redraw()

    # ------------------------------------------------------------------------------------ commands
    def _ready(self) -> MotorSetupProcedure | None:
        if self.busy:
            self.notify("Still looking for the motor; wait for the result.", severity="warning")
            return None
        if self.procedure is None:
            self.notify(self.problem or "The arm is not open yet.", severity="warning")
            return None
        return self.procedure

    def action_setup_motor(self) -> None:
        """Find the one connected motor and give it the current step's id and the default baud rate."""
        procedure = self._ready()
        if procedure is None:
            return
        step = procedure.current
        if step is None:
            self.notify("Every motor has been handled; go back to redo one, or close the wizard.")
            return
        with self._lock:
            self.busy = True
        self.status = Text(
            f"Looking for the '{step.motor}' motor at every baud rate (this can take a few seconds)…", style="bold"
        )
        self._redraw()
        self._setup_current(procedure)

    def action_skip_motor(self) -> None:
        """Leave this motor as it is and go to the next one."""
        procedure = self._ready()
        if procedure is None or procedure.current is None:
            return
        motor = procedure.current.motor
        if motor not in procedure.results and motor not in self.skipped:
            self.skipped.append(motor)
        procedure.skip()
        self.status = Text(f"Skipped '{motor}'.", style="yellow")
        self._redraw()

    def action_back_motor(self) -> None:
        """Go back one motor, to set it up again."""
        procedure = self._ready()
        if procedure is None:
            return
        if procedure.index == 0:
            self.notify("This is the first motor.", severity="warning")
            return
        step = procedure.go_to(procedure.steps[procedure.index - 1].motor)
        self.status = Text(f"Back to '{step.motor}'.", style="dim")
        self._redraw()

    def action_sim_motor(self) -> None:
        """Sim aid: the virtual bus holds only this step's motor, factory-fresh (id 1)."""
        procedure = self._ready()
        if procedure is None:
            return
        if self.aid is None:
            self.notify(
                "Simulation aid only: with a real arm, connect the motor's cable yourself.", severity="warning"
            )
            return
        step = procedure.current
        if step is None:
            self.notify("Every motor has been handled.")
            return
        self.aid.present(step.model)
        self.status = Text(
            f"Sim: only a factory-fresh '{step.motor}' motor ({step.model}, id {FACTORY_ID}) is connected now.",
            style="cyan",
        )
        self._redraw()

    def action_close(self) -> None:
        self.dismiss()

    # ------------------------------------------------------------------------------------ display
    def _key(self, command: str, fallback: str = "?") -> str:
        return command_key(self.app, command, fallback)

    def _redraw(self) -> None:
        steps = self.query_one("#setup-steps", Static)
        current = self.query_one("#setup-current", Static)
        current.remove_class("-error", "-done")
        procedure = self.procedure
        if procedure is None:
            steps.update(self.problem or self.status)
            if self.problem:
                current.border_title = "Cannot set up the motors"
                current.add_class("-error")
                current.update(Text(self.problem, style="red"))
            else:
                current.update("")
            return
        steps.border_subtitle = self.arm_label
        steps.update(self._steps_table(procedure))
        if procedure.done:
            current.border_title = "Summary"
            current.add_class("-done")
            current.update(self._summary(procedure))
            return
        step = procedure.current
        assert step is not None
        current.border_title = f"Motor {procedure.index + 1} of {len(procedure.steps)}: {step.motor}"
        if self.status.plain.startswith("✗"):
            current.add_class("-error")
        enter = self._key("setup", "Enter")
        lines: list[Text] = [
            Text.assemble(
                "Connect ", ("only", "bold"), f" the '{step.motor}' motor ({step.model}) to the controller "
                "board, with no other motor on the cable, then press ", (enter, "bold"), ". ",
                f"It will get id {step.id}.",
            )
        ]
        if self.status.plain:
            lines += [Text(""), self.status]
        if self.aid is not None:
            lines += [
                Text(""),
                Text(
                    f"Simulation aid: press {self._key('sim-motor', 'f')} to connect only a factory-fresh "
                    f"'{step.motor}' motor to the virtual arm (the arm is put back when the wizard closes).",
                    style="dim",
                ),
            ]
        lines.append(
            Text(
                f"{self._key('skip', 's')} skip this motor · {self._key('back', 'b')} back one motor · "
                "esc close",
                style="dim",
            )
        )
        current.update(Group(*lines))

    def _steps_table(self, procedure: MotorSetupProcedure) -> Table:
        table = Table(box=None, header_style="bold", pad_edge=False, expand=True)
        table.add_column("", width=1)
        table.add_column("motor", no_wrap=True, width=16)
        table.add_column("model", no_wrap=True, width=12)
        table.add_column("id", justify="right", width=3)
        table.add_column("result", ratio=1)
        for i, step in enumerate(procedure.steps):
            result = procedure.results.get(step.motor)
            if i == procedure.index:
                mark, what = Text("▶", style="bold cyan"), Text("now", style="bold cyan")
            elif result is not None:
                mark, what = Text("✓", style="bold green"), Text(result.describe())
            elif step.motor in self.skipped:
                mark, what = Text("–", style="yellow"), Text("skipped", style="yellow")
            else:
                mark, what = Text("·", style="dim"), Text("")
            table.add_row(mark, step.motor, step.model, str(step.id), what)
        return table

    def _summary(self, procedure: MotorSetupProcedure) -> Group:
        done = [s.motor for s in procedure.steps if s.motor in procedure.results]
        skipped = [s.motor for s in procedure.steps if s.motor not in procedure.results]
        head = Text.assemble(
            (f"{len(done)} of {len(procedure.steps)} motors set up", "bold green" if not skipped else "bold"),
            (f"; skipped: {', '.join(skipped)}" if skipped else "", "yellow"),
        )
        lines = [head]
        if self.status.plain:
            lines.append(self.status)
        if skipped:
            lines.append(Text(f"Press {self._key('back', 'b')} to go back to a skipped motor.", style="dim"))
        else:
            lines.append(
                Text(
                    "Now chain all the motors together, connect the board, and calibrate the arm "
                    "(Calibrate workflow). Press esc to close.",
                )
            )
        return Group(*lines)
