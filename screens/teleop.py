"""The Teleop workflow: the follower follows the leader arm at the profile's rate, or keyboard jogging moves
it one step per key press when the profile has no leader.

It opens idle: the arms are connected (so camera previews and a missing calibration show up at once) but
nothing moves until the operator presses the engage key. The live table is redrawn from the engine's
`TeleopSnapshot` on a 10 Hz timer; connecting, starting and stopping (bus I/O) run in thread workers. A
failed tick (lost port, motor error) has already stopped the loop and released torque in the engine; the
screen shows why and disconnects, so the next start reconnects cleanly. Leaving the screen stops teleop
and releases torque.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Header, Static
from textual.worker import get_current_worker

from engine.profile import KEYBOARD
from engine.teleop import JogSource, Teleop, TeleopSnapshot
from screens.base import RobotuiScreen
from screens.widgets.camera_preview import CameraPreview
from screens.widgets.joint_table import JointTable

if TYPE_CHECKING:
    from engine.session import Session

log = logging.getLogger(__name__)


class TeleopNotReady(RuntimeError):
    """The arms connected but teleop cannot start (no calibration); the message names the file and fix."""


def calibration_problems(session: Session, calibrate_key: str) -> list[str]:
    """One actionable line per connected arm that has no usable calibration."""
    return [
        f"{arm.label} has no calibration: no file at {arm.calibration_fpath}. Calibrate it first "
        f"(Calibrate workflow, key {calibrate_key}), or set the id of a calibrated arm in the profile"
        for arm in (session.robot, session.leader)
        if arm is not None and not arm.is_calibrated
    ]


def _release_torque(session: Session) -> bool:
    """Stop teleop and leave the follower limp (it holds torque from the moment it connects). False when
    the follower could not be reached (its port went away): then it may still hold its last goal."""
    session.stop_teleop()
    robot = session.robot
    if robot is None:
        return True
    if not robot.is_connected:
        return False
    try:
        robot.set_torque(False)
    except Exception as e:  # the bus may be gone; the session's close tries again
        log.warning("could not release torque on %s: %s", robot.label, e)
        return False
    return True


def _tile_id(name: str) -> str:
    return "camera-" + re.sub(r"[^A-Za-z0-9_-]", "_", name)


class TeleopScreen(RobotuiScreen):
    COMMAND_CONTEXT: ClassVar[str] = "teleop"

    DEFAULT_CSS = """
    TeleopScreen #teleop-body { height: 1fr; }
    TeleopScreen #teleop-left { width: 64; height: 1fr; }
    TeleopScreen #teleop-status, TeleopScreen #teleop-loop, TeleopScreen #teleop-jog {
        height: auto;
        border: round $primary-darken-1;
        border-title-color: $text;
        padding: 0 1;
    }
    TeleopScreen #teleop-status.-running { border: round $success; }
    TeleopScreen #teleop-status.-error { border: round $error; }
    TeleopScreen #teleop-cameras { width: 1fr; height: 1fr; }
    TeleopScreen #no-cameras {
        border: round $primary-darken-1;
        color: $text-muted;
        padding: 0 1;
        height: 1fr;
    }
    """

    refresh_interval: ClassVar[float] = 0.1
    auto_connect: ClassVar[bool] = True
    """Connect the arms when the screen opens (previews and calibration problems show before start); when
    False, the engage key connects."""

    def __init__(self) -> None:
        super().__init__()
        self.teleop: Teleop | None = None
        """The teleop this screen started (kept after a stop or failure, so its last rows stay shown)."""
        self.state = "idle"  # idle | connecting | ready | starting | running | stopping | stopped | error
        self.message = ""
        self._joint = 0
        self._step_index = 2  # into JogSource.steps
        self._reported: Teleop | None = None  # the teleop whose failure was already shown
        self._keys: dict[str, str] = {}

    # ------------------------------------------------------------------------------------ layout
    @property
    def session(self) -> Session:
        return self.app.session  # type: ignore[attr-defined,no-any-return]

    def compose(self) -> ComposeResult:
        profile = self.session.profile
        yield Header()
        with Horizontal(id="teleop-body"):
            with Vertical(id="teleop-left"):
                yield Static(id="teleop-status")
                yield JointTable(id="joints")
                yield Static(id="teleop-loop")
                yield Static(id="teleop-jog")
            with Vertical(id="teleop-cameras"):
                mode = getattr(self.app, "preview_mode", "halfblock")
                for name in profile.cameras:
                    yield CameraPreview(None, label=name, mode=mode, id=_tile_id(name))
                if not profile.cameras:
                    yield Static(
                        f"No cameras in this profile (add them with {self._key('profile')} on the home screen).",
                        id="no-cameras",
                    )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#teleop-status", Static).border_title = "Teleop"
        self.query_one("#teleop-loop", Static).border_title = "Control loop"
        self.query_one("#teleop-jog", Static).border_title = "Jog"
        self.set_interval(self.refresh_interval, self._refresh_live)
        self._key("calibrate")  # cached here: the connect workers read it from their thread
        robot = self.session.robot
        if robot is not None:
            self.query_one(JointTable).set_joints(list(robot.motors))
        if self.auto_connect:
            self._set_state("connecting", "connecting the arms…")
            self.call_after_refresh(self._connect)  # after the first paint: the screen shows at once
        else:
            self._set_state("idle", "not connected")

    def on_unmount(self) -> None:
        """Leaving the screen: stop teleop (and the sim demo) and release torque, on an app worker so it
        runs to the end even though this screen is gone."""
        session = self.session

        def release() -> None:
            if session.sim is not None:
                session.sim.stop_demo()
            _release_torque(session)

        try:
            self.app.run_worker(
                release, thread=True, group="teleop-release", exit_on_error=False,
                description="releasing the follower's torque",
            )
        except Exception as e:  # the app is shutting down: its on_unmount closes the session
            log.debug("teleop release left to the session close: %s", e)

    # ------------------------------------------------------------------------------------ display
    def _key(self, command: str) -> str:
        """The key the command table binds to `command`, from the app's bindings (screens cannot import
        the table itself)."""
        if command not in self._keys:
            action = f"command({command!r})"
            bindings = [b for b in getattr(self.app, "BINDINGS", ()) if isinstance(b, Binding) and b.action == action]
            self._keys[command] = self.app.get_key_display(bindings[0]) if bindings else "?"
        return self._keys[command]

    @property
    def keyboard(self) -> bool:
        return self.session.profile.teleop.type == KEYBOARD

    def _set_state(self, state: str, message: str = "") -> None:
        self.state = state
        self.message = message
        status = self.query_one("#teleop-status", Static)
        status.set_class(state == "running", "-running")
        status.set_class(state == "error", "-error")
        self._show_status()
        self._show_jog()

    def _show_status(self) -> None:
        profile = self.session.profile
        source = "keyboard jogging" if self.keyboard else f"leader {profile.teleop.type}"
        text = Text.assemble(
            (source, "bold"), " → ", ("follower ", ""), (profile.robot.type, "bold"),
            f" at {profile.teleop_fps} Hz\n",
        )
        styles = {"running": "bold green", "error": "bold red", "stopped": "yellow"}
        label = {"running": "RUNNING", "error": "STOPPED (error)"}.get(self.state, self.state)
        text.append(f"● {label}", style=styles.get(self.state, "bold"))
        if self.message:
            text.append(f" — {self.message}")
        if self.state in ("ready", "stopped", "idle", "error"):
            text.append(f"\npress {self._key('engage')} to start; {self._key('release')} stops and releases torque",
                        style="dim")
        sim = self.session.sim
        if sim is not None:
            demo = sim.scripted_leader
            phase = f"on ({demo.status.phase})" if demo.running else "off"
            text.append(f"\nsim demo: {phase}  [{self._key('demo')}]", style="dim")
        self.query_one("#teleop-status", Static).update(text)

    def _show_loop(self, snap: TeleopSnapshot | None) -> None:
        loop = snap.loop if snap is not None else None
        widget = self.query_one("#teleop-loop", Static)
        if loop is None or loop.ticks < 2:
            widget.update(Text(f"rate —  (target {self.session.profile.teleop_fps} Hz)   p99 period —   overruns —",
                               style="dim"))
            return
        clamps = self.teleop.robot.clamp_count if self.teleop is not None else 0
        assert snap is not None
        widget.update(
            f"rate {loop.achieved_hz:5.1f} Hz (target {loop.fps:g})   p99 period {loop.period_p99_ms:5.1f} ms   "
            f"overruns {loop.overruns}   clamped {clamps}\nservo bus: {snap.bus.line()}"
        )

    def _jog_joints(self) -> list[str]:
        return self.query_one(JointTable).joints

    def _show_jog(self) -> None:
        joints = self._jog_joints()
        table = self.query_one(JointTable)
        jog_widget = self.query_one("#teleop-jog", Static)
        sim_leader = self.session.sim is not None and not self.keyboard
        if not (self.keyboard or sim_leader):
            table.selected = None
            jog_widget.update(Text("the leader arm drives the follower; jog keys are for keyboard teleop",
                                   style="dim"))
            return
        joint = joints[self._joint % len(joints)] if joints else None
        table.selected = joint
        target = "follower" if self.keyboard else "virtual leader"
        keys = (
            f"{self._key('prev-joint')}/{self._key('next-joint')} joint   "
            f"{self._key('jog-minus')}/{self._key('jog-plus')} jog   "
            f"{self._key('step-down')}/{self._key('step-up')} step"
        )
        jog_widget.update(
            Text.assemble(
                (f"{joint or '—'}", "bold"), f"  step {JogSource.steps[self._step_index]:g}  → moves the {target}\n",
                (keys, "dim"),
            )
        )

    def _refresh_live(self) -> None:
        """The 10 Hz timer: copy the engine's snapshot into the widgets (no bus I/O here)."""
        teleop = self.teleop
        snap = teleop.snapshot() if teleop is not None else None
        if snap is not None:
            self.query_one(JointTable).show(snap.rows)
            if snap.error is not None and self._reported is not teleop:
                self._reported = teleop
                self._failed(snap.error)
            elif self.state == "running" and not snap.running:
                self._set_state("stopped", "teleop ended")
        self._show_loop(snap)
        self._show_status()

    def _failed(self, error: str) -> None:
        self._set_state("error", error)
        self._close_after_failure(error)

    def _closed_after_failure(self, error: str, released: bool) -> None:
        for tile in self.query(CameraPreview):
            tile.camera = None
        engage, release = self._key("engage"), self._key("release")
        torque = (
            "Torque released."
            if released
            else "The follower did not answer, so its torque could not be switched off: it may still hold its "
            f"pose (cut its power, or replug it and press {engage} then {release})."
        )
        message = f"{error} {torque} Fix the cause, then press {engage} to reconnect and start."
        self._set_state("error", message)
        self.notify(message, title="teleop stopped", severity="error", timeout=15)

    # ------------------------------------------------------------------------------------ workers
    @work(thread=True, exclusive=True, group="teleop", exit_on_error=False, description="connecting the arms")
    def _connect(self) -> None:
        session = self.session
        try:
            session.connect()
        except Exception as e:
            self.app.call_from_thread(self._set_state, "error", str(e))
            raise
        if get_current_worker().is_cancelled:  # the screen closed while connecting
            _release_torque(session)
            return
        problems = calibration_problems(session, self._key("calibrate"))
        self.app.call_from_thread(self._connected, problems)

    def _attach_arms(self) -> None:
        """Joint names and camera tiles from the connected follower."""
        robot = self.session.robot
        if robot is None:
            return
        self.query_one(JointTable).set_joints(list(robot.motors))
        self._show_jog()
        for name, camera in robot.cameras.items():
            tiles = self.query(f"#{_tile_id(name)}")
            if tiles:
                tiles.first(CameraPreview).camera = camera

    def _connected(self, problems: list[str]) -> None:
        self._attach_arms()
        if problems:
            self._set_state("error", " ".join(problems))
            self.notify(" ".join(problems), title="not calibrated", severity="error", timeout=15)
        else:
            self._set_state("ready", "connected; the follower holds its pose")

    @work(thread=True, exclusive=True, group="teleop", exit_on_error=False, description="starting teleop")
    def _start(self) -> None:
        session = self.session
        try:
            session.connect()
            problems = calibration_problems(session, self._key("calibrate"))
            if problems:
                session.disconnect()  # an uncalibrated follower must not hold torque in unknown units
                raise TeleopNotReady(" ".join(problems))
            self.app.call_from_thread(self._attach_arms)
            teleop = session.start_teleop()
        except Exception as e:
            self.app.call_from_thread(self._set_state, "error", str(e))
            raise
        if get_current_worker().is_cancelled:  # stopped, or the screen closed, while starting
            _release_torque(session)
            return
        self.app.call_from_thread(self._started, teleop)

    def _started(self, teleop: Teleop) -> None:
        self.teleop = teleop
        self._sync_jog()
        self._set_state("running", "the follower follows " + ("your keys" if self.keyboard else "the leader"))

    @work(thread=True, exclusive=True, group="teleop", exit_on_error=False, description="stopping teleop")
    def _stop(self) -> None:
        _release_torque(self.session)
        self.app.call_from_thread(self._set_state, "stopped", "torque released")

    @work(thread=True, exclusive=True, group="teleop", exit_on_error=False, description="closing the arms")
    def _close_after_failure(self, error: str) -> None:
        """Release what still answers, then close both arms so the next start reconnects from scratch."""
        released = _release_torque(self.session)
        self.session.disconnect()
        self.app.call_from_thread(self._closed_after_failure, error, released)

    @work(thread=True, exclusive=True, group="teleop-demo", exit_on_error=False, description="sim demo")
    def _demo(self, on: bool) -> None:
        sim = self.session.sim
        if sim is None:
            return
        if on:
            sim.start_demo(loop=True)
        else:
            sim.stop_demo()

    # ------------------------------------------------------------------------------------ commands
    def action_engage(self) -> None:
        if self.state in ("connecting", "starting", "stopping"):
            return
        if self.state == "running":
            self.action_release()
            return
        self._set_state("starting", "connecting and starting…")
        self._start()

    def action_release(self) -> None:
        """Stop (also while starting: the start worker sees it is cancelled) and release torque, also when
        idle: a connected follower holds its pose until released."""
        if self.state in ("stopping", "connecting"):
            return
        self._set_state("stopping", "stopping…")
        self._stop()

    def _sync_jog(self) -> None:
        """Hand the screen's joint and step choice to the engine's jog source."""
        jog = self.teleop.jog if self.teleop is not None else None
        joints = self._jog_joints()
        if jog is None or not joints:
            return
        jog.select(joints[self._joint % len(joints)])
        jog.change_step(self._step_index - jog.steps.index(jog.step))

    def action_next_joint(self, offset: int = 1) -> None:
        joints = self._jog_joints()
        if joints:
            self._joint = (self._joint + offset) % len(joints)
            self._sync_jog()
            self._show_jog()

    def action_prev_joint(self) -> None:
        self.action_next_joint(-1)

    def action_change_step(self, offset: int) -> None:
        self._step_index = min(max(self._step_index + offset, 0), len(JogSource.steps) - 1)
        self._sync_jog()
        self._show_jog()

    def action_jog(self, direction: int) -> None:
        joints = self._jog_joints()
        if not joints:
            self.notify("Connect first: the joints are listed once the arms are connected.", timeout=4)
            return
        joint = joints[self._joint % len(joints)]
        step = JogSource.steps[self._step_index]
        jog = self.teleop.jog if self.teleop is not None else None
        if self.keyboard:
            if jog is None or self.state != "running":
                self.notify(f"Press {self._key('engage')} to start first: jogging moves the follower.",
                            severity="warning", timeout=4)
                return
            jog.jog(direction, joint)
        elif self.session.sim is not None:
            self.session.sim.jog(joint, direction * step)  # the virtual leader; the follower tracks it
        else:
            self.notify("The leader arm drives the follower; jog keys work with teleop type keyboard.",
                        timeout=4)

    def action_toggle_demo(self) -> None:
        sim = self.session.sim
        if sim is None:
            self.notify("The scripted demo needs the simulated robot (robotui --sim).", severity="warning")
            return
        on = not sim.scripted_leader.running
        if on and self.keyboard:
            self.notify("The demo moves the virtual leader; with keyboard teleop the follower will not follow.",
                        severity="warning", timeout=5)
        self._demo(on)
