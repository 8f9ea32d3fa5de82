"""`robotui teleop`: the headless twin of the Teleop screen — the follower follows the leader arm (or the
arrow keys) until --duration, Ctrl-C or SIGTERM, with a one-line status (loop rate, p99 period, overruns).

It goes through the same engine Session as the app, so every exit path (duration, signal, a failed tick,
an exception) ends in `Session.close()`: teleop stopped, torque off, ports closed. Cameras are not opened
unless --cameras is given: nothing here shows them, and a missing camera must not stop a teleop session.

Exit codes: 0 ended as asked, 1 the arms could not be brought up or a tick failed, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import os
import select
import signal
import sys
import termios
import threading
import time
import tty
from collections.abc import Iterator
from types import FrameType
from typing import TYPE_CHECKING, TextIO

from engine.profile import KEYBOARD, Profile, ProfileError, robot_types, teleop_types

if TYPE_CHECKING:  # the engine (and MuJoCo behind it) loads when the command runs, not for `robotui --help`
    from engine.session import Session
    from engine.teleop import JogSource, Teleop, TeleopSnapshot

STATUS_INTERVAL_S = 0.25  # on a terminal the status line is rewritten in place
LOG_INTERVAL_S = 1.0  # otherwise (pipe, file) one line per second


class TeleopSetupError(RuntimeError):
    """The arms are up but teleop cannot start (e.g. no calibration); the message says what to do."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "teleop",
        help="teleoperate: the follower follows the leader arm (or arrow keys) until Ctrl-C",
        description=(
            "Drive the follower from the leader arm at the profile's rate (default 60 Hz), or with the arrow "
            "keys when --teleop-type is keyboard (↑/↓ joint, ←/→ jog, +/- step, q quit). Prints the loop "
            "rate and p99 period; Ctrl-C, SIGTERM or --duration stop it and always release the torque."
        ),
        epilog="exit codes: 0 ended as asked, 1 arms not ready or a tick failed, 2 bad arguments",
    )
    # SUPPRESS: a flag not given here leaves what the global flags before the subcommand set.
    quiet = argparse.SUPPRESS
    parser.add_argument("--sim", action="store_true", default=quiet, help="use the simulated SO-101")
    for role in ("robot", "teleop"):
        parser.add_argument(f"--{role}-type", default=quiet, metavar="TYPE", help=f"{role} type")
        parser.add_argument(f"--{role}-port", default=quiet, metavar="PORT", help=f"{role} serial port")
        parser.add_argument(f"--{role}-id", default=quiet, metavar="ID", help=f"{role} id (calibration file)")
    parser.add_argument("--fps", dest="teleop_fps", type=int, default=quiet, help="loop rate (default 60)")
    parser.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    parser.add_argument("--demo", action="store_true", help="with --sim: the scripted demonstrator moves the leader")
    parser.set_defaults(func=run)


# ------------------------------------------------------------------------------------------- checks


def check_type(value: str | None, valid: tuple[str, ...], flag: str) -> None:
    """Refuse an unknown arm type with the closest valid one (typos are the common case)."""
    if value is None or value in valid:
        return
    close = difflib.get_close_matches(value, valid, n=1, cutoff=0.5)
    hint = f" — did you mean '{close[0]}'?" if close else ""
    raise ProfileError(f"{flag} '{value}' is not a known type{hint} (valid: {', '.join(valid)})")


def require_calibrated(session: Session) -> None:
    """Teleop needs both arms calibrated; name the missing file and the fix rather than fail on a tick."""
    problems = []
    for arm in (session.robot, session.leader):
        if arm is None or arm.is_calibrated:
            continue
        config = arm.config
        problems.append(
            f"{arm.label} has no calibration: no file at {arm.calibration_fpath}. Calibrate it first with "
            f"`robotui calibrate --robot-type {config.type} --port {config.port} --id {config.id}` (or the app's "
            "Calibrate workflow), or pass the id of an arm that is calibrated"
        )
    if problems:
        raise TeleopSetupError("; ".join(problems))


@dataclasses.dataclass
class RunState:
    connected: bool = False  # the arms came up: from then on the follower may hold torque
    torque_stuck: bool = False  # a tick failed and the follower's torque could not be switched off


def release_follower(session: Session) -> bool:
    """Stop teleop and switch the connected follower's torque off now, to say truthfully whether that
    worked after a failed tick: a follower whose port went away keeps its last goal."""
    robot = session.robot
    if robot is None or not robot.is_connected:
        return False
    session.stop_teleop()
    try:
        robot.set_torque(False)
    except Exception:
        return False
    return True


def build_profile(args: argparse.Namespace) -> Profile:
    """The profile this run uses: the app's choice (saved, --profile, --sim) with the flags on top."""
    from robotui.app import choose_profile  # the app's rules, loaded only when the command runs

    check_type(getattr(args, "robot_type", None), robot_types(), "--robot-type")
    check_type(getattr(args, "teleop_type", None), teleop_types(), "--teleop-type")
    if getattr(args, "duration", None) is not None and not args.duration > 0:
        raise ProfileError(f"--duration must be a positive number of seconds, got {args.duration:g}")
    if args.demo and not getattr(args, "sim", False):
        raise ProfileError("--demo moves the simulated leader: add --sim")
    profile, _store, _error = choose_profile(args)
    if getattr(args, "cameras", None) is None:
        profile = dataclasses.replace(profile, cameras={})
    return profile


# ------------------------------------------------------------------------------------------ keyboard

ARROWS = {"\x1b[A": "up", "\x1b[B": "down", "\x1b[C": "right", "\x1b[D": "left"}


def apply_key(jog: JogSource, key: str) -> bool:
    """One key press on the jog source; False for quit."""
    key = ARROWS.get(key, key)
    if key in ("q", "\x03"):
        return False
    if key in ("up", "down"):
        jog.select_next(-1 if key == "up" else 1)
    elif key in ("left", "right"):
        jog.jog(-1 if key == "left" else 1)
    elif key in ("+", "="):
        jog.change_step(1)
    elif key in ("-", "_"):
        jog.change_step(-1)
    return True


@contextlib.contextmanager
def key_reader(stream: TextIO, jog: JogSource, stop: threading.Event) -> Iterator[bool]:
    """Read jog keys from a terminal in cbreak mode on a thread (yields False when `stream` is no
    terminal: then the follower just holds its pose). The terminal mode is restored on every exit."""
    try:
        fd = stream.fileno()
        interactive = os.isatty(fd)
    except (OSError, ValueError):
        interactive = False
    if not interactive:
        yield False
        return
    saved = termios.tcgetattr(fd)
    done = threading.Event()

    def read_keys() -> None:
        while not done.is_set():
            ready, _, _ = select.select([fd], [], [], 0.05)
            if not ready:
                continue
            data = os.read(fd, 32).decode(errors="ignore")
            while data:
                key = next((seq for seq in ARROWS if data.startswith(seq)), data[0])
                data = data[len(key) :]
                if not apply_key(jog, key):
                    stop.set()
                    return

    tty.setcbreak(fd, termios.TCSANOW)  # keep keys typed while the arms connected
    thread = threading.Thread(target=read_keys, name="teleop-keys", daemon=True)
    thread.start()
    try:
        yield True
    finally:
        done.set()
        thread.join(timeout=1.0)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


# -------------------------------------------------------------------------------------------- status


def status_line(snap: TeleopSnapshot, elapsed: float, fps: float, clamps: int, demo: str | None) -> str:
    loop = snap.loop
    if loop is None or loop.ticks < 2:
        timing = f"starting… (target {fps:g} Hz)"
    else:
        timing = (
            f"{loop.achieved_hz:5.1f} Hz (target {fps:g})  p99 {loop.period_p99_ms:5.1f} ms  "
            f"overruns {loop.overruns}"
        )
    parts = [f"{elapsed:6.1f} s", timing, f"clamped {clamps}"]
    if snap.jog_joint is not None:
        parts.append(f"jog {snap.jog_joint} ±{snap.jog_step:g}")
    if demo:
        parts.append(f"demo {demo}")
    return "  ".join(parts)


class MotionMeter:
    """The largest follower excursion from where it started: proof, in the summary, that it moved."""

    def __init__(self, start: dict[str, float]) -> None:
        self.start = start
        self.largest = (0.0, "")

    def add(self, snap: TeleopSnapshot) -> None:
        for row in snap.rows:
            moved = abs(row.follower - self.start.get(row.name, row.follower))
            if moved > self.largest[0]:
                self.largest = (moved, row.name)


# ----------------------------------------------------------------------------------------------- run


def run(args: argparse.Namespace) -> int:
    try:
        profile = build_profile(args)
    except (ProfileError, ValueError) as e:
        print(f"robotui teleop: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()
    previous: dict[int, object] = {}
    if threading.current_thread() is threading.main_thread():

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    from engine.session import Session

    session = Session(profile)
    state = RunState()
    try:
        return _teleoperate(session, profile, args, stop, state)
    except Exception as e:  # the layer that failed wrote the actionable message (port, motor, file)
        print(f"robotui teleop: {e}", file=sys.stderr)
        return 1
    finally:
        session.close()  # teleop stopped, torque off, ports closed, simulator stopped
        for sig, handler in previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        if state.torque_stuck:
            print(
                "teleop ended, but the follower did not answer, so its torque could not be switched off: it may "
                "still hold its pose. Cut its power, or reconnect it and run teleop again to release it.",
                file=sys.stderr, flush=True,
            )
        elif state.connected:
            print("teleop ended: follower torque released, ports closed", file=sys.stderr, flush=True)


def _teleoperate(
    session: Session, profile: Profile, args: argparse.Namespace, stop: threading.Event, state: RunState
) -> int:
    from engine.teleop import JogSource

    session.start()
    profile = session.profile  # with --sim, the virtual ports are filled in now
    session.connect()
    state.connected = True
    require_calibrated(session)
    assert session.robot is not None
    meter = MotionMeter(session.robot.read_positions())
    teleop = session.start_teleop()
    source = (
        "keyboard (↑/↓ joint, ←/→ jog, +/- step, q quit)"
        if teleop.jog is not None
        else f"leader {profile.teleop.type} on {profile.teleop.port}"
    )
    print(f"teleop: {source} → follower {profile.robot.type} on {profile.robot.port} at {teleop.fps:g} Hz",
          flush=True)
    if args.demo and session.sim is not None:
        if profile.teleop.type == KEYBOARD:
            print("note: --demo moves the virtual leader, but this run jogs with the keyboard", flush=True)
        session.sim.start_demo(loop=True)
    jog = teleop.jog or JogSource(list(session.robot.motors))  # leader mode: only q (quit) matters
    with key_reader(sys.stdin, jog, stop) as interactive:
        if teleop.jog is not None and not interactive:
            print("note: stdin is not a terminal, so no jog keys: the follower holds its pose", flush=True)
        code = _watch(session, teleop, meter, args.duration, stop)
    if code != 0:
        state.torque_stuck = not release_follower(session)
    return code


def _watch(
    session: Session, teleop: Teleop, meter: MotionMeter, duration: float | None, stop: threading.Event
) -> int:
    """Print the status until the duration, a signal, `q` or a failed tick; then stop and summarise."""
    tty_out = sys.stdout.isatty()
    started = time.monotonic()
    interval = STATUS_INTERVAL_S if tty_out else LOG_INTERVAL_S
    last_print = 0.0
    code = 0
    while True:
        finished = stop.wait(0.05)
        elapsed = time.monotonic() - started
        snap = teleop.snapshot()
        meter.add(snap)
        if snap.error is not None and not stop.is_set():  # on a signal the safety hook closed the bus first
            print(f"{chr(10) if tty_out else ''}robotui teleop: stopped — {snap.error}", file=sys.stderr, flush=True)
            code = 1
            break
        if duration is not None and elapsed >= duration:
            finished = True
        if finished or elapsed - last_print >= interval:
            last_print = elapsed
            sim = session.sim
            demo = sim.scripted_leader.status.phase if sim is not None and sim.scripted_leader.running else None
            line = status_line(snap, elapsed, teleop.fps, teleop.robot.clamp_count, demo)
            print(f"\r\x1b[2K{line}" if tty_out else line, end="" if tty_out else "\n", flush=True)
        if finished:
            break
    if tty_out:
        print()
    session.stop_teleop()
    loop = snap.loop
    moved, joint = meter.largest
    if loop is not None:
        print(
            f"summary: {loop.ticks} ticks in {time.monotonic() - started:.1f} s, {loop.achieved_hz:.1f} Hz "
            f"(target {loop.fps:g}), p99 period {loop.period_p99_ms:.1f} ms, overruns {loop.overruns}, "
            f"largest follower motion {moved:.1f} ({joint or 'none'})",
            flush=True,
        )
    return code
