"""The Calibrate workflow: one arm at a time (follower or leader), step by step, on
`engine.calibration.CalibrationProcedure`.

    file found?  ->  use it, or recalibrate
    torque off   ->  operator moves every joint to the middle  ->  homing offsets written
    recording    ->  operator moves every joint through its range, the table shows MIN / POS / MAX
    finish       ->  ranges written to the motors, LeRobot's calibration JSON saved (path shown)

The arm stays limp throughout: the operator moves it by hand (in the simulator, the "virtual hand" does).
Every bus call runs in a worker thread under one lock; the range table is drawn from an immutable snapshot
of the rows on a timer. Leaving the screen, switching arms or aborting mid-way closes the procedure, which
releases the bus with torque off.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Protocol, cast

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Header, Static
from textual.worker import Worker, WorkerState, get_current_worker

from drivers.calibration import CalibrationFileError
from drivers.motors.bus import BusError, MotorCalibration
from drivers.robots.base import Arm
from drivers.sim.virtual_robot import ArmRole
from engine.calibration import CalibrationError, CalibrationProcedure, ExistingCalibration, RangeRow, Step
from engine.session import Role, Session
from screens.base import RobotuiScreen
from screens.widgets.range_table import RangeTable

log = logging.getLogger(__name__)

EXPECTED_ERRORS = (CalibrationError, CalibrationFileError, BusError, ValueError, OSError)
"""Failures the operator can fix (they name the port, motor or file): shown on the screen, not as a crash."""

ROLE_TITLES: dict[Role, str] = {"robot": "Follower (robot)", "teleop": "Leader (teleop)"}
SIM_ROLES: dict[Role, ArmRole] = {"robot": "follower", "teleop": "leader"}


class Phase(StrEnum):
    CHECKING = "checking"  # looking for the arm's calibration file
    NO_FILE = "no_file"  # nothing to use: calibrate
    EXISTING = "existing"  # a file: use it or recalibrate
    UNAVAILABLE = "unavailable"  # nothing to calibrate (keyboard teleop) or the arm cannot be built
    MIDDLE = "middle"  # torque off: move every joint to the middle, then set it
    RANGES = "ranges"  # recording each joint's range
    SAVED = "saved"  # done: file written (or the existing one used)


CALIBRATING = (Phase.MIDDLE, Phase.RANGES)


class HasSession(Protocol):
    session: Session


@dataclass(frozen=True)
class ArmFacts:
    """What the screen shows of the arm being calibrated, read in a worker (no I/O on the UI thread)."""

    label: str
    motors: tuple[str, ...]
    save_path: Path
    existing: ExistingCalibration | None
    min_travel: int


def short_path(path: Path | str) -> str:
    text, home = str(path), str(Path.home())
    return "~" + text[len(home) :] if text.startswith(home + "/") else text


def describe_offsets(offsets: dict[str, int]) -> str:
    return ", ".join(f"{motor} {offset:+d}" for motor, offset in offsets.items())


class CalibrateScreen(RobotuiScreen):
    """Calibrate the follower or the leader; `a` switches between them."""

    COMMAND_CONTEXT: ClassVar[str] = "calibrate"
    SAMPLE_HZ: ClassVar[float] = 30.0
    REFRESH_HZ: ClassVar[float] = 15.0
    HAND_SWEEP_SECONDS: ClassVar[float] = 4.0

    DEFAULT_CSS = """
    CalibrateScreen #cal-body { height: 1fr; }
    CalibrateScreen #cal-arms, CalibrateScreen #cal-steps, CalibrateScreen #cal-ranges {
        border: round $primary-darken-1;
        border-title-color: $text;
        padding: 0 1;
        height: auto;
    }
    CalibrateScreen #cal-message { height: auto; padding: 0 2; margin: 0 0 1 0; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.role: Role = "robot"
        self.phase = Phase.CHECKING
        self.facts: ArmFacts | None = None
        self.problem = ""  # why the arm is unavailable
        self.message = Text("")
        self.busy = ""  # what a step worker is doing right now
        self.hand_busy = False
        self.offsets: dict[str, int] = {}
        self.saved_path: Path | None = None
        self.calibration: dict[str, MotorCalibration] | None = None
        self.rows: tuple[RangeRow, ...] = ()  # latest sample, replaced whole by the sampler
        self._proc: CalibrationProcedure | None = None
        self._lock = threading.RLock()  # one procedure call at a time: steps, sampler, close
        self._stop_sampling = threading.Event()
        self._stop_hand = threading.Event()

    # ------------------------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="cal-body"):
            yield Static(id="cal-arms")
            yield Static(id="cal-steps")
            yield Static(id="cal-message")
            yield RangeTable(id="cal-ranges")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#cal-arms").border_title = "Arm"
        self.query_one("#cal-steps").border_title = "Steps"
        self.query_one("#cal-ranges").border_title = "Ranges — raw ticks in the homed frame"
        self.set_interval(1.0 / self.REFRESH_HZ, self._refresh_ranges)
        self._redraw()
        self._check_file()

    def on_screen_resume(self) -> None:
        if self.phase not in CALIBRATING and not self.busy:
            self._recheck()

    def on_unmount(self) -> None:
        """Leaving mid-way: stop sampling and the hand, close the procedure (torque off, bus released)."""
        self._stop_sampling.set()
        self._stop_hand.set()
        if self._lock.acquire(timeout=2.0):
            try:
                self._close_procedure()
            finally:
                self._lock.release()
        sim = self.session.sim
        if sim is not None:
            for role in SIM_ROLES.values():
                sim.release(role)

    @on(Worker.StateChanged)
    def _worker_crashed(self, event: Worker.StateChanged) -> None:
        """An unexpected error (the app shows it): the step is over, so the screen must not stay busy."""
        if event.state is WorkerState.ERROR and event.worker.group.startswith("calibrate-"):
            self.busy = ""
            self.hand_busy = False
            self._redraw()

    # ------------------------------------------------------------------------------------ helpers
    @property
    def session(self) -> Session:
        return cast(HasSession, self.app).session

    @property
    def sim_role(self) -> ArmRole:
        return SIM_ROLES[self.role]

    def _key(self, name: str) -> str:
        """The key the command table binds to `name`, as the footer shows it (or its slash command)."""
        for binding in getattr(self.app, "BINDINGS", []):
            if isinstance(binding, Binding) and binding.action == f"command({name!r})":
                return self.app.get_key_display(binding)
        return f"/{name}"

    def _ui(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn` on the UI thread; a no-op when the app is already gone."""
        try:
            self.app.call_from_thread(fn, *args)
        except RuntimeError:
            pass

    def _arm(self, role: Role) -> Arm | None:
        """The session's arm for `role` (built, not connected). None for keyboard teleop."""
        session = self.session
        session.start()  # with --sim this makes the virtual ports (idempotent)
        return session.build_robot() if role == "robot" else session.build_leader()

    def _take_arm(self, role: Role) -> Arm:
        """The arm, released by whatever held it (teleop loop, session connection): calibration owns the bus."""
        arm = self._arm(role)
        if arm is None:
            raise CalibrationError("the teleop is the keyboard: there is no leader arm to calibrate")
        self.session.stop_teleop()
        if arm.is_connected:
            arm.disconnect()
        return arm

    def _close_procedure(self) -> None:
        """Close the running procedure (call with the lock held). Never raises: a shutdown path."""
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                proc.close()
            except Exception as e:
                log.warning("%s: closing the calibration failed: %s", proc.arm.label, e)

    def _refuse(self, text: str) -> None:
        self.notify(text, severity="warning")

    def _fail(self, text: str) -> None:
        """Show an error (already naming arm and motor) on the screen and as a notification."""
        self.busy = ""
        self.message = Text(text, style="bold red")
        self.notify(text, title="calibration", severity="error", timeout=10)
        log.error("%s", text)
        self._redraw()

    def _recheck(self) -> None:
        self.phase = Phase.CHECKING
        self._redraw()
        self._check_file()

    # ------------------------------------------------------------------------------------ drawing
    def _redraw(self) -> None:
        if not self.is_mounted:
            return
        self.query_one("#cal-arms", Static).update(self._arms_table())
        self.query_one("#cal-steps", Static).update(self._steps_table())
        message = Text(f"… {self.busy}", style="italic") if self.busy else self.message
        self.query_one("#cal-message", Static).update(message)
        self._refresh_ranges()

    def _refresh_ranges(self) -> None:
        facts = self.facts
        rows = self.rows if self.phase in (*CALIBRATING, Phase.SAVED) else ()
        motors = facts.motors if facts else ()
        recording = self.phase is Phase.RANGES
        self.query_one(RangeTable).show(motors, rows, facts.min_travel if facts and recording else None)

    def _arms_table(self) -> Table:
        profile = self.session.profile
        table = Table.grid(padding=(0, 2))
        table.add_column(no_wrap=True)
        table.add_column(ratio=1)
        for role, arm in (("robot", profile.robot), ("teleop", profile.teleop)):
            chosen = role == self.role
            if arm.has_bus:
                port = "virtual" if profile.sim else (arm.port or "port not set")
                detail = f"{arm.type}  id {arm.id or '(none)'}  {port}"
            else:
                detail = f"{arm.type} — nothing to calibrate"
            table.add_row(
                Text.assemble(("▶ " if chosen else "  ", "bold"), (ROLE_TITLES[cast(Role, role)],
                                                                    "bold" if chosen else "dim")),
                Text(detail, style="" if chosen else "dim"),
            )
        table.add_row(Text(f"  {self._key('arm')} switches the arm", style="dim"), "")
        return table

    def _steps_table(self) -> Table:
        phase, facts, key = self.phase, self.facts, self._key
        order = [Phase.EXISTING, Phase.MIDDLE, Phase.RANGES, Phase.SAVED]
        current = {Phase.NO_FILE: Phase.EXISTING, Phase.CHECKING: Phase.EXISTING}.get(phase, phase)
        at = order.index(current) if current in order else 0
        sim = self.session.sim is not None
        hand = f" In the simulator, {key('hand')} makes the virtual hand do it." if sim else ""
        step = key("step")

        if phase is Phase.UNAVAILABLE:
            file_text = Text(self.problem, style="yellow")
        elif phase is Phase.CHECKING or facts is None:
            file_text = Text("Looking for the calibration file…", style="dim")
        elif facts.existing is None:
            file_text = Text(
                f"No calibration file yet; it will be saved to {short_path(facts.save_path)}. "
                f"Press {key('recalibrate')} (or {step}) to start."
            )
        elif facts.existing.error is not None:
            file_text = Text(
                f"{short_path(facts.existing.path)} cannot be used: {facts.existing.error.problem}. "
                f"Press {key('recalibrate')} to recalibrate."
            )
        else:
            legacy = " (an older LeRobot name: using it also saves it under the current one)"
            file_text = Text(
                f"Found {short_path(facts.existing.path)}{legacy if facts.existing.legacy_name else ''}. "
                f"Press {key('use')} (or {step}) to use it, {key('recalibrate')} to recalibrate."
            )
        middle_text = (
            f"Torque is off. Move every joint to the middle of its range, then press {key('middle')} "
            f"(or {step}): homing offsets are written to the motors.{hand}"
        )
        if self.offsets and at > 1:
            middle_text = f"Homing offsets written: {describe_offsets(self.offsets)}."
        ranges_text = (
            "Move every joint through its whole range of motion while the table records MIN and MAX; "
            "wrist_roll turns fully, so it gets 0..4095 and needs no recording. "
            f"Then press {key('finish')} (or {step}) to write the ranges and save the file.{hand}"
        )
        saved_text = (
            f"Saved {short_path(self.saved_path)}"
            if self.saved_path
            else "The calibration is saved as LeRobot's JSON, ready for robotui and LeRobot alike."
        )

        table = Table.grid(padding=(0, 1))
        table.add_column(width=1)
        table.add_column(ratio=1)
        for i, text in enumerate((file_text, middle_text, ranges_text, saved_text)):
            done = i < at or (i == at and phase is Phase.SAVED)
            if done:
                mark, style = Text("✓", style="bold green"), ""
            elif i == at and phase is not Phase.UNAVAILABLE:
                mark, style = Text("▶", style="bold"), "bold"
            else:
                mark, style = Text("·", style="dim"), "dim"
            body = text if isinstance(text, Text) else Text(text)
            if style and not done:
                body.stylize(style)
            table.add_row(mark, body)
        return table

    # ------------------------------------------------------------------------------------ actions
    def action_step(self) -> None:
        """Enter: whatever the current step asks for."""
        existing_ok = self.facts is not None and self.facts.existing is not None and self.facts.existing.error is None
        if self.phase is Phase.EXISTING and existing_ok:
            self.action_use()
        elif self.phase in (Phase.NO_FILE, Phase.EXISTING):
            self.action_recalibrate()
        elif self.phase is Phase.MIDDLE:
            self.action_middle()
        elif self.phase is Phase.RANGES:
            self.action_finish()
        elif self.phase is Phase.SAVED:
            self._refuse(
                f"Done. {self._key('recalibrate')} calibrates this arm again, {self._key('arm')} switches arm."
            )

    def action_arm(self) -> None:
        if self.phase in CALIBRATING or self.busy:
            self._refuse(f"Finish or abort ({self._key('abort')}) this arm's calibration before switching arms.")
            return
        self.role = "teleop" if self.role == "robot" else "robot"
        self.facts, self.offsets, self.saved_path, self.rows = None, {}, None, ()
        self.message = Text("")
        self._recheck()

    def action_use(self) -> None:
        if self.busy:
            self._refuse(f"Wait: {self.busy}")
            return
        facts = self.facts
        if self.phase is not Phase.EXISTING or facts is None or facts.existing is None:
            self._refuse("There is no calibration file to use for this arm: calibrate it.")
            return
        if facts.existing.error is not None:
            self._refuse(f"{short_path(facts.existing.path)} is damaged: recalibrate ({self._key('recalibrate')}).")
            return
        self.busy = "writing the file's calibration to the motors"
        self._redraw()
        self._use_existing(self.role)

    def action_recalibrate(self) -> None:
        if self.busy:
            self._refuse(f"Wait: {self.busy}")
            return
        if self.phase in CALIBRATING:
            self._refuse(f"Already calibrating: {self._key('step')} goes on, {self._key('abort')} aborts.")
            return
        if self.phase in (Phase.CHECKING, Phase.UNAVAILABLE):
            self._refuse(self.problem or "Still looking for the calibration file.")
            return
        self.busy = "switching torque off and clearing the motors' old calibration"
        self.message = Text("")
        self.offsets, self.saved_path, self.rows = {}, None, ()
        self._redraw()
        self._start(self.role)

    def action_middle(self) -> None:
        if self.busy:
            self._refuse(f"Wait: {self.busy}")
            return
        if self.phase not in CALIBRATING:
            self._refuse(f"Start calibrating first ({self._key('recalibrate')}).")
            return
        self.busy = "writing homing offsets"
        self._redraw()
        self._set_middle()

    def action_finish(self) -> None:
        if self.busy:
            self._refuse(f"Wait: {self.busy}")
            return
        if self.phase is not Phase.RANGES:
            self._refuse("Set the middle pose first, then record the ranges.")
            return
        self.busy = "writing the ranges and saving the file"
        self._redraw()
        self._finish()

    def action_abort(self) -> None:
        if self.phase not in CALIBRATING and not self.busy:
            self._refuse("Nothing to abort: no calibration is under way.")
            return
        self._stop_sampling.set()
        self._stop_hand.set()
        self.busy = "aborting: torque off, bus released"
        self._redraw()
        self._abort()

    def action_hand(self) -> None:
        sim = self.session.sim
        if sim is None:
            self._refuse("The virtual hand moves the simulated arm only: move a real arm by hand.")
            return
        if self.hand_busy:
            self._refuse("The virtual hand is still moving the arm.")
            return
        if self.phase not in CALIBRATING or self.busy:
            self._refuse(
                f"The virtual hand helps with the middle pose and the ranges: start calibrating first "
                f"({self._key('recalibrate')})."
            )
            return
        self.hand_busy = True
        self._stop_hand.clear()
        sweep = self.phase is Phase.RANGES
        self.message = Text(
            "Virtual hand: sweeping every joint through its range…" if sweep
            else "Virtual hand: moving every joint to the middle…",
            style="italic",
        )
        self._redraw()
        self._run_hand(self.role, sweep)

    def action_motor_ids(self) -> None:
        if self.phase in CALIBRATING or self.busy:
            self._refuse(f"Abort ({self._key('abort')}) this calibration first: motor setup needs the bus.")
            return
        try:
            from screens.motor_setup import MotorSetupScreen
        except ModuleNotFoundError as e:
            if e.name != "screens.motor_setup":
                raise
            self._refuse("Motor setup is not in this build yet.")
            return
        self.app.push_screen(MotorSetupScreen(self.role))

    # ------------------------------------------------------------------------------------ workers
    @work(thread=True, exclusive=True, group="calibrate-step", exit_on_error=False,
          description="looking for the calibration file")
    def _check_file(self) -> None:
        role = self.role
        try:
            arm = self._arm(role)
        except EXPECTED_ERRORS as e:
            self._ui(self._unavailable, role, f"{ROLE_TITLES[role]}: {e}")
            return
        if arm is None:
            self._ui(self._unavailable, role, "The teleop is the keyboard: there is no leader arm to calibrate.")
            return
        proc = CalibrationProcedure(arm)
        facts = ArmFacts(
            label=arm.label,
            motors=tuple(arm.motors),
            save_path=arm.calibration_fpath,
            existing=proc.existing_calibration(),
            min_travel=proc.min_travel,
        )
        self._ui(self._file_checked, role, facts)

    def _unavailable(self, role: Role, problem: str) -> None:
        if role != self.role:
            return
        self.phase, self.problem, self.facts = Phase.UNAVAILABLE, problem, None
        self._redraw()

    def _file_checked(self, role: Role, facts: ArmFacts) -> None:
        if role != self.role or self.phase is not Phase.CHECKING:
            return
        self.facts, self.problem = facts, ""
        self.phase = Phase.NO_FILE if facts.existing is None else Phase.EXISTING
        self._redraw()

    @work(thread=True, exclusive=True, group="calibrate-step", exit_on_error=False,
          description="using the calibration file")
    def _use_existing(self, role: Role) -> None:
        label = ROLE_TITLES[role]
        try:
            with self._lock:
                self._close_procedure()
                arm = self._take_arm(role)
                label = arm.label
                proc = CalibrationProcedure(arm)
                try:
                    wrote = proc.use_existing()
                    calibration = dict(proc.calibration or {})
                    path = proc.saved_path
                finally:
                    proc.close()
        except EXPECTED_ERRORS as e:
            self._ui(self._fail, f"{label}: {e}")
            return
        self._ui(self._used, path, calibration, wrote)

    def _used(self, path: Path | None, calibration: dict[str, MotorCalibration], wrote: bool) -> None:
        self.busy = ""
        self.phase, self.saved_path, self.calibration, self.rows = Phase.SAVED, path, calibration, ()
        written = "written to the motors" if wrote else "the motors already held it"
        self.message = Text(f"Using {short_path(path or '')} ({written}).", style="green")
        self._redraw()

    @work(thread=True, exclusive=True, group="calibrate-step", exit_on_error=False,
          description="starting the calibration")
    def _start(self, role: Role) -> None:
        label = ROLE_TITLES[role]
        try:
            with self._lock:
                self._close_procedure()
                arm = self._take_arm(role)
                label = arm.label
                proc = CalibrationProcedure(arm)
                self._proc = proc
                try:
                    proc.start()
                except BaseException:
                    self._close_procedure()
                    raise
        except EXPECTED_ERRORS as e:
            self._ui(self._fail, f"{label}: {e}")
            return
        self._ui(self._started, role)

    def _started(self, role: Role) -> None:
        self.busy = ""
        if role != self.role:
            return
        self.phase = Phase.MIDDLE
        self.message = Text("Torque is off: the arm is free to move by hand.", style="green")
        self._redraw()

    @work(thread=True, exclusive=True, group="calibrate-step", exit_on_error=False,
          description="setting the middle pose")
    def _set_middle(self) -> None:
        label = ""
        try:
            with self._lock:
                proc = self._proc
                if proc is None:
                    raise CalibrationError("the calibration was closed: start it again")
                label = proc.arm.label
                offsets = proc.set_middle()
                rows = tuple(proc.rows())
        except EXPECTED_ERRORS as e:
            self._ui(self._fail, f"{label}: {e}" if label else str(e))
            return
        self.rows = rows
        self._ui(self._homed, offsets)

    def _homed(self, offsets: dict[str, int]) -> None:
        self.busy = ""
        self.phase, self.offsets = Phase.RANGES, offsets
        self.message = Text("Homing offsets written. Recording ranges: move every joint.", style="green")
        self._redraw()
        self._stop_sampling.clear()
        self._sample_ranges()

    @work(thread=True, exclusive=True, group="calibrate-sample", exit_on_error=False,
          description="recording joint ranges")
    def _sample_ranges(self) -> None:
        worker = get_current_worker()
        period = 1.0 / self.SAMPLE_HZ
        while not worker.is_cancelled and not self._stop_sampling.is_set():
            error = None
            with self._lock:
                proc = self._proc
                if proc is None or proc.step is not Step.HOMED:
                    return
                try:
                    self.rows = tuple(proc.sample())
                except BusError as e:
                    error = f"{proc.arm.label}: {e}"
            if error is not None:
                self._ui(self._fail, f"{error} — range recording stopped; abort and start again")
                return
            self._stop_sampling.wait(period)

    @work(thread=True, exclusive=True, group="calibrate-step", exit_on_error=False,
          description="finishing the calibration")
    def _finish(self) -> None:
        label = ""
        try:
            with self._lock:
                proc = self._proc
                if proc is None:
                    raise CalibrationError("the calibration was closed: start it again")
                label = proc.arm.label
                self.rows = tuple(proc.sample())  # the pose right now counts too
                calibration = proc.finish()
                path = proc.save()
                self._close_procedure()
        except EXPECTED_ERRORS as e:
            self._ui(self._fail, f"{label}: {e}" if label else str(e))
            return
        self._stop_hand.set()
        sim = self.session.sim
        if sim is not None:
            sim.release(self.sim_role)
        self._ui(self._saved, path, calibration)

    def _saved(self, path: Path, calibration: dict[str, MotorCalibration]) -> None:
        self.busy = ""
        self.phase, self.saved_path, self.calibration = Phase.SAVED, path, calibration
        self.message = Text(f"Calibration saved to {short_path(path)}", style="bold green")
        self.notify(f"Saved {path}", title="calibration")
        self._redraw()

    @work(thread=True, exclusive=True, group="calibrate-step", exit_on_error=False,
          description="aborting the calibration")
    def _abort(self) -> None:
        with self._lock:
            self._close_procedure()
        sim = self.session.sim
        if sim is not None:
            sim.release(self.sim_role)
        self._ui(self._aborted)

    def _aborted(self) -> None:
        self.busy = ""
        self.offsets, self.rows = {}, ()
        self.message = Text(
            "Calibration aborted: torque is off and the bus released. The motors' old calibration was cleared: "
            "use the file again or recalibrate.",
            style="yellow",
        )
        self._recheck()

    @work(thread=True, exclusive=True, group="calibrate-hand", exit_on_error=False,
          description="virtual hand")
    def _run_hand(self, role: Role, sweep: bool) -> None:
        sim = self.session.sim
        try:
            if sim is None:
                return
            if sweep:
                sim.sweep_joints(SIM_ROLES[role], self.HAND_SWEEP_SECONDS, self._stop_hand)
            else:
                sim.move_to_middle(SIM_ROLES[role])
        finally:
            self._ui(self._hand_done, sweep)

    def _hand_done(self, sweep: bool) -> None:
        self.hand_busy = False
        if self.phase in CALIBRATING:
            step, next_key = ("finish and save", self._key("finish")) if sweep else ("set it", self._key("middle"))
            held = "swept every joint and holds the arm at the middle" if sweep else "holds every joint at the middle"
            self.message = Text(f"Virtual hand {held}: press {next_key} to {step}.", style="green")
            self._redraw()
