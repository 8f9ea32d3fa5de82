"""`robotui setup-motors`: give each motor of a new arm its id and the bus baud rate, one motor at a time,
gripper first — the headless twin of the motor-setup wizard.

At a terminal it waits for Enter between motors (s skips, q stops). With stdin not interactive (a pipe that
ends, /dev/null) it cannot wait for a key, says so, and gives the operator `--wait` seconds to swap the
motor instead. With --sim the virtual arm's bus stands in: it holds one factory-fresh motor at a time, so
the whole procedure runs without hardware, and the arm is put back afterwards.

Exit status: 0 when every motor asked for was set up (or skipped on purpose), 1 when one failed or the run
stopped early, 2 for arguments that cannot work (unknown type, no such port).
"""

from __future__ import annotations

import argparse
import difflib
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.markup import escape

from drivers.robots.base import Arm
from drivers.robots.registry import ROBOT_TYPES, TELEOPERATOR_TYPES, UnknownTypeError, make_arm
from engine.motor_setup import MotorSetupError, MotorSetupProcedure, SetupStep
from engine.profile import ProfileError, load_profiles, sim_profile
from engine.session import Role, Session

if TYPE_CHECKING:
    from screens.motor_setup import SimMotorAid

DEFAULT_WAIT_S = 10.0


class SetupArgumentError(ValueError):
    """Arguments that cannot work; the message names the fix (exit status 2)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "setup-motors",
        help="give each motor of a new arm its id and baud rate, one motor at a time",
        description=(
            "Set up an arm's motors (id and baud rate), gripper first: connect only the motor named, press "
            "Enter, repeat. Without --robot-type/--port, the active profile's arm is used."
        ),
    )
    # SUPPRESS: `robotui --sim setup-motors` (the global flags) must not be undone by these defaults.
    parser.add_argument(
        "--robot-type",
        default=argparse.SUPPRESS,
        metavar="TYPE",
        help="the arm's type, a follower or a leader (so101_follower, so101_leader, koch_follower, ...)",
    )
    parser.add_argument("--port", help="the arm's serial port (robotui find-port names it)")
    # `--teleop` only parses once the top-level parser stops abbreviating (it reads as --teleop-type/-port...).
    parser.add_argument(
        "--leader",
        "--teleop",
        dest="teleop",
        action="store_true",
        help="the leader (teleop) arm: the profile's, or the virtual one with --sim",
    )
    parser.add_argument(
        "--sim", action="store_true", default=argparse.SUPPRESS,
        help="the simulated SO-101: one factory-fresh motor at a time on its virtual bus",
    )
    parser.add_argument("--motor", help="set up this one motor only (e.g. a replaced one)")
    parser.add_argument(
        "--wait",
        type=float,
        default=DEFAULT_WAIT_S,
        metavar="S",
        help=f"with stdin not interactive: seconds to swap motors between two setups (default {DEFAULT_WAIT_S:g})",
    )
    parser.set_defaults(func=run)


# ------------------------------------------------------------------------------------------ arguments


def _check_type(arm_type: str, teleop: bool) -> Role:
    """The role an arm type plays; unknown types get the closest match."""
    if arm_type in TELEOPERATOR_TYPES:
        return "teleop"
    if arm_type in ROBOT_TYPES:
        if teleop:
            leader = arm_type.replace("_follower", "_leader")
            raise SetupArgumentError(
                f"--leader sets up the leader (teleop) arm, but '{arm_type}' is a follower type"
                + (f" (the leader is '{leader}')" if leader in TELEOPERATOR_TYPES else "")
            )
        return "robot"
    valid = sorted(ROBOT_TYPES) + sorted(TELEOPERATOR_TYPES)
    close = difflib.get_close_matches(arm_type, valid, n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise SetupArgumentError(f"unknown arm type '{arm_type}'.{hint} Valid: {', '.join(valid)}")


def _profile_arm(role: Role) -> tuple[str, str]:
    """(type, port) of the active profile's arm for `role`."""
    try:
        profile = load_profiles().active_profile
    except ProfileError as e:
        raise SetupArgumentError(f"{e} (or pass --robot-type and --port)") from e
    arm = profile.robot if role == "robot" else profile.teleop
    if not arm.has_bus:
        raise SetupArgumentError(
            f"the profile {profile.name!r} teleoperates with the keyboard: pass --robot-type and --port of the arm"
        )
    return arm.type, arm.port


def _check_port(port: str) -> None:
    if sys.platform != "win32" and not Path(port).exists():
        raise SetupArgumentError(
            f"port {port} does not exist — is the arm's controller board plugged in (USB) and powered? "
            "`robotui find-port` names the port; use --sim for the simulated arm"
        )


# ------------------------------------------------------------------------------------------ prompting


class Prompter:
    """Enter between motors at a terminal or from a pipe; once stdin ends, timed waits instead."""

    def __init__(self, console: Console, stdin: TextIO, wait_s: float) -> None:
        self.console = console
        self.stdin = stdin
        self.wait_s = wait_s
        self.interactive = True

    def ask(self, question: str, *, first: bool) -> str:
        """'' to go on, 's' to skip, 'q' to stop. Without an interactive stdin: wait, then go on."""
        if self.interactive:
            self.console.print(f"{question} [dim](Enter: go on · s: skip · q: stop)[/]")
            line = self.stdin.readline()
            if line:
                return line.strip().lower()[:1]
            self.interactive = False
            self.console.print(
                f"[yellow]stdin is not interactive:[/] not waiting for Enter; {self.wait_s:g} s between motors "
                "to swap them (--wait)."
            )
        if not first and self.wait_s > 0:
            self.console.print(f"Going on in {self.wait_s:g} s…")
            time.sleep(self.wait_s)
        return ""


# ------------------------------------------------------------------------------------------ running


def _open_arm(args: argparse.Namespace, stack: ExitStack) -> tuple[Arm, SimMotorAid | None]:
    """The arm to set up, and the sim aid with --sim. Raises SetupArgumentError for unusable arguments."""
    arm_type: str | None = getattr(args, "robot_type", None)
    role: Role = "teleop" if args.teleop else "robot"
    if arm_type is not None:
        role = _check_type(arm_type, args.teleop)
    if getattr(args, "sim", False):
        from screens.motor_setup import SimMotorAid

        if arm_type is not None and not arm_type.startswith("so"):
            raise SetupArgumentError(f"the simulated arm is an SO-101; '{arm_type}' cannot run on it (drop --sim)")
        session = Session(sim_profile()).start()
        stack.callback(session.close)
        arm = session.build_robot() if role == "robot" else session.build_leader()
        assert arm is not None  # the sim profile has a leader arm
        aid = SimMotorAid.for_port(session.sim, arm.config.port)
        if aid is not None:
            stack.callback(aid.restore)
        return arm, aid
    if arm_type is None or not args.port:
        profile_type, profile_port = _profile_arm(role)
        arm_type = arm_type or profile_type
        port = args.port or profile_port
    else:
        port = args.port
    if not port:
        raise SetupArgumentError(
            f"no port for the {role} arm: pass --port (`robotui find-port` names it), or use --sim"
        )
    _check_port(port)
    try:
        return make_arm(arm_type, port=port), None
    except UnknownTypeError as e:
        raise SetupArgumentError(str(e)) from e


def run(args: argparse.Namespace) -> int:
    console = Console(highlight=False, soft_wrap=True)
    with ExitStack() as stack:
        try:
            arm, aid = _open_arm(args, stack)
            procedure = stack.enter_context(MotorSetupProcedure(arm))
            steps = procedure.steps
            if args.motor:
                try:
                    steps = [procedure.go_to(args.motor)]
                except KeyError as e:
                    raise SetupArgumentError(str(e.args[0])) from e
        except SetupArgumentError as e:
            console.print(f"[bold red]robotui setup-motors:[/] {escape(str(e))}")
            return 2
        console.print(
            f"Motor setup for {arm.config.type} on {arm.config.port}: {len(steps)} motor(s), "
            f"{' → '.join(s.motor for s in steps)}."
        )
        if aid is not None:
            console.print("[cyan]sim:[/] the virtual arm's bus holds one factory-fresh motor at a time; the arm "
                          "is put back at the end.")
        return _walk(console, procedure, steps, Prompter(console, sys.stdin, args.wait), aid)


def _walk(
    console: Console,
    procedure: MotorSetupProcedure,
    steps: list[SetupStep],
    prompter: Prompter,
    aid: SimMotorAid | None,
) -> int:
    """Set up `steps` in order; returns the exit status."""
    from screens.motor_setup import FACTORY_ID, advice  # shared with the wizard; textual only when running

    skipped: list[str] = []
    stopped = failed = False
    for n, step in enumerate(steps):
        procedure.go_to(step.motor)
        console.print(f"\n[bold]{n + 1}/{len(steps)}[/] {escape(step.prompt)}")
        first = True
        while True:
            if aid is not None:
                aid.present(step.model)
                console.print(f"[cyan]sim:[/] a factory-fresh '{step.motor}' motor (id {FACTORY_ID}) is now the "
                              "only one on the virtual bus.")
                answer = ""
            else:
                answer = prompter.ask(f"Connect only the '{step.motor}' motor.", first=n == 0 and first)
            if answer == "q":
                stopped = True
                break
            if answer == "s":
                skipped.append(step.motor)
                console.print(f"[yellow]–[/] '{step.motor}' skipped")
                break
            try:
                result = procedure.setup_current()
            except MotorSetupError as e:
                console.print(f"[bold red]✗[/] {escape(str(e))}")
                if e.reason == "port" or aid is not None or not prompter.interactive:
                    console.print(f"  {escape(advice(e))}")
                    failed = True  # nobody can fix it between two tries
                    break
                console.print(f"  {escape(advice(e, 'Then press Enter to try again.'))}")
                first = False
                continue
            console.print(f"[green]✓[/] {escape(result.describe())}")
            break
        if stopped or failed:
            break
    done = [s.motor for s in steps if s.motor in procedure.results]
    console.print(f"\n[bold]{len(done)} of {len(steps)} motor(s) set up.[/]", end=" ")
    if skipped:
        console.print(f"[yellow]Skipped: {', '.join(skipped)}.[/]", end=" ")
    if failed or stopped:
        left = [s.motor for s in steps if s.motor not in procedure.results and s.motor not in skipped]
        console.print(f"[red]Not done: {', '.join(left)}.[/] Run again with --motor NAME for one motor.")
        return 1
    console.print("Next: chain the motors together and calibrate the arm." if not skipped else "")
    return 0
