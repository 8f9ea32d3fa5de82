"""`robotui calibrate`: the headless twin of the Calibrate screen, on the same `CalibrationProcedure`.

Interactive (default): Enter on stdin moves from step to step (use the existing file or recalibrate, middle
pose, ranges) while a MIN / POS / MAX table is redrawn in place. `--non-interactive` takes the current
pose as the middle and records ranges for `--range-seconds`, for scripted rigs. With `--sim` a factory-
fresh virtual SO-101 is started in this process and the virtual hand moves the arm, so both modes run
with no hardware.

Exit status: 0 calibrated (or the existing file used), 1 the calibration failed (port, motor, a joint
that never moved), 2 the command line is wrong (unknown type, missing port).
"""

from __future__ import annotations

import argparse
import os
import select
import sys
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    from drivers.robots.base import Arm
    from drivers.sim.virtual_robot import ArmRole, VirtualSO101
    from engine.calibration import CalibrationProcedure

SAMPLE_HZ = 30.0
USAGE_ERROR = 2
FAILED = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "calibrate",
        help="calibrate an arm: homing offsets and each joint's range (LeRobot calibration JSON)",
        description=(
            "Calibrate a follower (or, with --teleop, a leader): move every joint to the middle of its range, "
            "then through its whole range; the result is saved as LeRobot's calibration JSON."
        ),
        epilog="Exit status: 0 saved (or the existing file used), 1 calibration failed, 2 bad arguments.",
    )
    parser.add_argument("--robot-type", dest="arm_type", metavar="TYPE",
                        help="so101_follower, koch_follower... (with --teleop: so101_leader, koch_leader...)")
    parser.add_argument("--port", dest="arm_port", metavar="PORT", help="the arm's serial port (robotui find-port)")
    parser.add_argument("--id", dest="arm_id", metavar="ID", help="the arm's id: names the calibration file")
    parser.add_argument("--teleop", action="store_true",
                        help="calibrate the leader (teleoperator) arm; implied by a leader --robot-type")
    parser.add_argument("--sim", dest="calibrate_sim", action="store_true",
                        help="calibrate the virtual SO-101 (factory-fresh servos; the virtual hand moves it)")
    parser.add_argument("--non-interactive", action="store_true",
                        help="no prompts: the current pose is the middle, ranges are recorded for --range-seconds")
    parser.add_argument("--range-seconds", type=float, default=None, metavar="N",
                        help="seconds of range recording with --non-interactive (default 15); with --sim, how "
                             "long the virtual hand's sweep takes")
    parser.add_argument("--calibration-dir", type=Path, default=None, metavar="DIR",
                        help="folder for the file instead of LeRobot's calibration folder")
    parser.set_defaults(func=run)


class UsageError(ValueError):
    """The command line cannot work; the message says which flag to change."""


class StdinLines:
    """Lines typed on stdin, without blocking: `poll()` returns a line if one is complete. Reads the file
    descriptor directly so Enter keys piped in ahead are all seen; a stream without one (tests) is read
    line by line."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        try:
            self.fd: int | None = stream.fileno()
        except (AttributeError, OSError, ValueError):
            self.fd = None
        self._buffer = b""
        self.closed = False

    def poll(self, timeout: float = 0.0) -> str | None:
        if b"\n" not in self._buffer and not self.closed:
            if self.fd is None:
                line = self.stream.readline()
                if not line:
                    self.closed = True
                return line.rstrip("\n") if line else None
            ready, _, _ = select.select([self.fd], [], [], timeout)
            if ready:
                chunk = os.read(self.fd, 4096)
                self._buffer += chunk
                self.closed = not chunk
        if b"\n" in self._buffer:
            line, _, self._buffer = self._buffer.partition(b"\n")
            return line.decode(errors="replace").rstrip("\r")
        return None

    def wait(self) -> str:
        """The next line; stdin closing first is an error that says how to run without prompts."""
        while True:
            line = self.poll(0.2)
            if line is not None:
                return line
            if self.closed:
                raise EOFError("stdin closed while waiting for Enter: run with --non-interactive in scripts")


def _wants_leader(args: argparse.Namespace) -> bool:
    """--teleop, or a leader type given as --robot-type (as `lerobot-calibrate --teleop.type=...` would)."""
    from drivers.robots.registry import TELEOPERATOR_TYPES

    return bool(args.teleop or args.arm_type in TELEOPERATOR_TYPES)


def _build_arm(args: argparse.Namespace, virtual: VirtualSO101 | None) -> Arm:
    from drivers.robots.registry import ROBOT_TYPES, UnknownTypeError, make_robot, make_teleoperator
    from drivers.sim.virtual_robot import FOLLOWER_ID, LEADER_ID

    leader = _wants_leader(args)
    arm_type, port, arm_id = args.arm_type, args.arm_port, args.arm_id
    if virtual is not None:
        arm_type = arm_type or ("so101_leader" if leader else "so101_follower")
        port = virtual.leader_port if leader else virtual.follower_port
        arm_id = arm_id or (LEADER_ID if leader else FOLLOWER_ID)
    elif not arm_type or not port:
        missing = " and ".join(f for f, v in (("--robot-type", arm_type), ("--port", port)) if not v)
        raise UsageError(f"{missing} needed (or --sim for the virtual arm); `robotui find-port` finds the port")
    try:
        if leader:
            return make_teleoperator(arm_type, port=port, id=arm_id, calibration_dir=args.calibration_dir)
        return make_robot(arm_type, port=port, id=arm_id, calibration_dir=args.calibration_dir)
    except UnknownTypeError as e:
        hint = " — drop --teleop to calibrate a follower arm" if arm_type in ROBOT_TYPES else ""
        raise UsageError(f"{e}{hint}") from e


def run(args: argparse.Namespace) -> int:
    from drivers.calibration import CalibrationFileError
    from drivers.motors.bus import BusError
    from engine.calibration import CalibrationError, CalibrationProcedure

    console = Console(highlight=False, soft_wrap=True)
    errors = Console(stderr=True, highlight=False, soft_wrap=True)
    sim = bool(args.calibrate_sim or getattr(args, "sim", False))
    seconds = args.range_seconds
    if seconds is not None and not seconds > 0:
        errors.print(f"robotui calibrate: --range-seconds must be a positive number of seconds, got {seconds:g}")
        return USAGE_ERROR
    if sim and args.arm_port:
        errors.print("robotui calibrate: --port is not used with --sim (the virtual arm makes its own port)")

    virtual = None
    arm = None
    proc: CalibrationProcedure | None = None
    try:
        if sim:
            from drivers.sim.virtual_robot import VirtualSO101

            virtual = VirtualSO101(calibrated=False).start()
        arm = _build_arm(args, virtual)
        proc = CalibrationProcedure(arm)
        role: ArmRole = "leader" if _wants_leader(args) else "follower"
        hand = (virtual, role) if virtual is not None else None
        if args.non_interactive:
            path = _non_interactive(proc, console, seconds or 15.0, hand)
        else:
            path = _interactive(proc, console, StdinLines(sys.stdin), seconds or 6.0, hand)
        console.print(f"[green]✓[/] {arm.label}: calibration saved to {path}")
        return 0
    except UsageError as e:
        errors.print(f"robotui calibrate: {e}")
        return USAGE_ERROR
    except (CalibrationError, CalibrationFileError, BusError, OSError, EOFError) as e:
        where = f"{arm.label}: " if arm is not None else ""
        errors.print(f"[red]✗[/] {where}{e}")
        return FAILED
    finally:
        if proc is not None:
            proc.close()  # torque stays off, the port is released
        if virtual is not None:
            virtual.stop()


def _sweep_in_background(hand: tuple[VirtualSO101, ArmRole], seconds: float,
                         stop: threading.Event, repeat: bool) -> threading.Thread:
    virtual, role = hand

    def sweep() -> None:
        while virtual.sweep_joints(role, seconds, stop) and repeat and not stop.is_set():
            pass

    thread = threading.Thread(target=sweep, name="calibrate-hand", daemon=True)
    thread.start()
    return thread


def _non_interactive(proc: CalibrationProcedure, console: Console, seconds: float,
                     hand: tuple[VirtualSO101, ArmRole] | None) -> Path:
    existing = proc.existing_calibration()
    if existing is not None:
        console.print(f"Replacing the calibration in {existing.path}")
    stop = threading.Event()
    sweeper: list[threading.Thread] = []
    if hand is not None:
        hand[0].move_to_middle(hand[1])  # the pose the run homes at

    def on_sample(rows: object) -> None:
        if hand is not None and not sweeper:  # homed: now the hand moves every joint through its range
            sweeper.append(_sweep_in_background(hand, seconds * 0.9, stop, repeat=False))

    console.print(f"Recording ranges for {seconds:g} s{' (virtual hand sweeping)' if hand else ''}…")
    try:
        path = proc.run_non_interactive(seconds, sample_hz=SAMPLE_HZ * 2, on_sample=on_sample)
    finally:
        stop.set()
        for thread in sweeper:
            thread.join(timeout=5.0)
        if hand is not None:
            hand[0].release(hand[1])
    _print_table(proc, console)
    return path


def _print_table(proc: CalibrationProcedure, console: Console) -> None:
    from screens.widgets.range_table import ranges_table

    console.print(ranges_table(proc.motors, proc.rows(), bar=False))


def _interactive(proc: CalibrationProcedure, console: Console, lines: StdinLines, sweep_seconds: float,
                 hand: tuple[VirtualSO101, ArmRole] | None) -> Path:
    from rich.live import Live

    from engine.calibration import CalibrationError
    from screens.widgets.range_table import ranges_table

    label = proc.arm.label
    existing = proc.existing_calibration()
    if existing is not None:
        if existing.error is not None:
            console.print(f"[yellow]![/] {existing.error}\nRecalibrating.")
        else:
            console.print(f"Found {existing.path}.\nPress Enter to use it, or type c and Enter to recalibrate.")
            if lines.wait().strip().lower() != "c":
                wrote = proc.use_existing()
                console.print("Written to the motors." if wrote else "The motors already held it.")
                assert proc.saved_path is not None
                return proc.saved_path
    proc.start()
    console.print(f"Torque is off on {label}.\n[bold]Move every joint to the middle of its range, then press "
                  "Enter.[/]")
    if hand is not None:
        hand[0].move_to_middle(hand[1])
        console.print("(simulator: the virtual hand has put every joint in the middle)")
    lines.wait()
    offsets = proc.set_middle()
    console.print("Homing offsets written: " + ", ".join(f"{m} {o:+d}" for m, o in offsets.items()))
    console.print("[bold]Move every joint through its whole range of motion, then press Enter.[/] "
                  "wrist_roll turns fully: it gets 0..4095 and needs no recording.")
    stop = threading.Event()
    sweeper = None
    if hand is not None:
        console.print(f"(simulator: the virtual hand sweeps every joint, {sweep_seconds:g} s per sweep; "
                      "Enter counts after the first sweep)")
        sweeper = _sweep_in_background(hand, sweep_seconds, stop, repeat=True)
    first_sweep_done = time.monotonic() + (sweep_seconds if hand is not None else 0.0)
    try:
        while True:
            with Live(ranges_table(proc.motors, proc.sample(), proc.min_travel, bar=False), console=console,
                      refresh_per_second=10) as live:
                while True:
                    live.update(ranges_table(proc.motors, proc.sample(), proc.min_travel, bar=False))
                    if time.monotonic() >= first_sweep_done and lines.poll(1.0 / SAMPLE_HZ) is not None:
                        break
                    if lines.closed:
                        raise EOFError("stdin closed while recording ranges: run with --non-interactive in "
                                       "scripts")
                    if time.monotonic() < first_sweep_done:
                        time.sleep(1.0 / SAMPLE_HZ)
            try:
                proc.finish()
                break
            except CalibrationError as e:
                console.print(f"[red]✗[/] {label}: {e}\nKeep moving them, then press Enter again.")
    finally:
        stop.set()
        if sweeper is not None:
            sweeper.join(timeout=5.0)
        if hand is not None:
            hand[0].release(hand[1])
    return proc.save()
