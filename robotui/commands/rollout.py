"""`robotui rollout`: run a policy on the arm headless, steered by slash commands typed on stdin (a terminal, a
pipe or a script), the twin of the Rollout screen.

It starts PAUSED: nothing moves until `/action` (or `--start`). Each stdin line is one command from the app's
command table (`/action [task|seconds]`, `/pause`, `/takeover`, `/resume`, `/save`, `/redo`, `/subtask`,
`/stop`, `/help`), echoed with what was understood; a bad one gets a one-line error with the closest command.
End of input stops the run unless `--duration` is given, so `printf '/action\\n' | robotui rollout ...
--duration 30` runs the policy for 30 s. A progress line is printed about once a second.

Exit codes as `robotui record`: 0 done, 1 failed (what was recorded is kept), 2 unusable command line or
policy (nothing moved), 130/143 stopped by Ctrl-C/SIGTERM (everything saved, torque released).
"""

from __future__ import annotations

import argparse
import queue
import sys
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from engine.dataset.writer import DatasetMismatchError
from engine.profile import Profile, ProfileError
from engine.rollout import STRATEGIES, PreflightError, Rollout, RolloutSettings, RolloutSnapshot
from engine.session import Session
from policies.base import Policy
from robotui.command_table import TABLE, CommandError
from robotui.commands.record import (
    EXIT_FAILED,
    EXIT_USAGE,
    PROGRESS_INTERVAL_S,
    SETUP_ERRORS,
    SignalStop,
    UsageError,
    add_profile_flags,
    check_root,
    require_calibrated,
    resolve_profile,
)

CONTEXT = "rollout"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rollout",
        help="run a policy on the arm; pause, take over, hand back (slash commands on stdin)",
        description=(
            "Run a policy (a checkpoint folder or a Hub id) on the follower. It starts paused; type /action "
            "to run it, /pause, /takeover, /resume, /save, /redo, /stop (one command per line on stdin). "
            "dagger and highlight record into a LeRobot v3.0 dataset."
        ),
    )
    parser.add_argument("--policy", required=True, metavar="PATH_OR_ID",
                        help="pretrained_model folder (or its checkpoint folder) or a Hub repo id")
    parser.add_argument("--strategy", choices=STRATEGIES, default="base",
                        help="base: no recording; dagger: record takeovers; highlight: ring buffer, /save keeps it")
    parser.add_argument("--task", default="", help="the task (language policies are conditioned on it)")
    parser.add_argument("--duration", type=float, default=None, metavar="S",
                        help="stop after S seconds (default: at the end of stdin, /stop or Ctrl-C)")
    parser.add_argument("--start", action="store_true", help="start running the policy at once (as /action)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, mps (default cpu)")
    parser.add_argument("--dataset-root", dest="record_root", metavar="DIR",
                        help="dataset folder for dagger / highlight")
    parser.add_argument("--repo-id", metavar="OWNER/NAME", help="Hub repo id stored with the dataset")
    parser.add_argument("--resume", action="store_true", help="append to the existing dataset")
    parser.add_argument("--vcodec", default=None, metavar="C", help="video codec (default libsvtav1)")
    parser.add_argument("--record-autonomous", action="store_true",
                        help="dagger: record every frame with the intervention column (default: takeovers only)")
    parser.add_argument("--episode-time", type=float, default=60.0, metavar="S",
                        help="dagger --record-autonomous: seconds per episode (default 60)")
    parser.add_argument("--ring-seconds", type=float, default=10.0, metavar="S",
                        help="highlight: seconds kept in the ring buffer (default 10)")
    parser.add_argument("--fps", type=int, default=None, metavar="F", help="control rate (default: profile)")
    slow = parser.add_argument_group("slow policies and corrections")
    slow.add_argument("--rtc", action="store_true",
                      help="real-time chunking: each chunk continues the leftover of the previous one (SmolVLA)")
    slow.add_argument("--blend", type=int, default=0, metavar="TICKS",
                      help="fade each new chunk in over this many ticks (smooths the seams of any policy)")
    slow.add_argument("--residual", metavar="PATH", help="a residual policy checkpoint to stack on the policy")
    slow.add_argument("--residual-scale", type=float, default=1.0, metavar="S",
                      help="scale of the residual correction (default 1)")
    add_profile_flags(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        profile = resolve_profile(args)
        root = _dataset_root(args)
        if root is not None:
            check_root(root, args.resume)
        if args.duration is not None and args.duration <= 0:
            raise UsageError(f"--duration must be positive seconds, got {args.duration:g}")
        settings = RolloutSettings(
            strategy=args.strategy,
            task=args.task.strip(),
            fps=args.fps or profile.record_fps,
            record_autonomous=args.record_autonomous,
            episode_time_s=args.episode_time,
            ring_buffer_s=args.ring_seconds,
            blend_ticks=args.blend,
        )
    except (ProfileError, UsageError, ValueError) as e:
        err.print(f"[bold red]robotui rollout:[/] {escape(str(e))}")
        return EXIT_USAGE
    from policies import load_policy  # torch: imported only when a rollout really starts

    out.print(f"loading policy {escape(args.policy)} on {args.device}…")
    try:
        extra: dict[str, object] = {"rtc": True} if args.rtc else {}
        if args.residual:
            extra.update(residual=args.residual, residual_scale=args.residual_scale)
        policy = load_policy(args.policy, device=args.device, **extra)
    except Exception as e:  # the checkpoint layer's errors say what is wrong with the files and what to do
        err.print(f"[bold red]robotui rollout: cannot load the policy:[/] {escape(str(e))}")
        return EXIT_USAGE
    return _rollout(args, profile, policy, settings, root, out, err)


def _dataset_root(args: argparse.Namespace) -> Path | None:
    if args.strategy == "base":
        if args.record_root:
            raise UsageError("the base strategy records nothing: drop --dataset-root, or use --strategy dagger "
                             "or highlight")
        return None
    if not args.record_root:
        raise UsageError(f"--strategy {args.strategy} records: give it --dataset-root DIR")
    return Path(args.record_root).expanduser()


def _rollout(args: argparse.Namespace, profile: Profile, policy: Policy, settings: RolloutSettings,
             root: Path | None, out: Console, err: Console) -> int:
    stop = SignalStop()
    session = Session(profile)
    try:
        try:
            session.start()
            session.connect()
            require_calibrated(session.robot)
            require_calibrated(session.leader)
            rollout = session.start_rollout(policy, settings, root, resume=args.resume,
                                            vcodec=args.vcodec if args.resume else (args.vcodec or "libsvtav1"),
                                            repo_id=args.repo_id)
        except (PreflightError, DatasetMismatchError) as e:
            err.print(f"[bold red]robotui rollout: refused:[/] {escape(str(e))}")
            return EXIT_USAGE
        except SETUP_ERRORS as e:
            err.print(f"[bold red]robotui rollout: cannot start:[/] {escape(str(e))}")
            return EXIT_FAILED
        stop.install()
        for line in rollout.snapshot().preflight:
            out.print(f"preflight: {escape(line)}")
        out.print(f"ready, paused ({settings.strategy}); task: {escape(settings.task or '(none)')}. "
                  + escape("Commands: /action [task|seconds], /pause, /takeover, /resume, /save, /redo, /stop, /help"))
        if args.start:
            out.print(f"> /action: {rollout.action()}")
        ended = _steer(rollout, args.duration, stop, out)
        if stop.event.is_set():
            out.print("stopping: saving what is recorded…")
        session.stop_rollout()
        snap = rollout.snapshot()
        _summary(out, snap, root)
        if snap.error:
            err.print(f"[bold red]rollout stopped:[/] {escape(snap.error)}")
            return EXIT_FAILED
        return stop.exit_code if stop.event.is_set() and not ended else 0
    finally:
        stop.restore()
        session.close()


def _steer(rollout: Rollout, duration: float | None, stop: SignalStop, out: Console) -> bool:
    """Apply stdin commands and print progress until /stop, end of input (without --duration), the duration,
    a signal or a failure. True when it ended by itself (not by a signal)."""
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_read_lines, args=(lines,), name="stdin", daemon=True).start()
    deadline = time.monotonic() + duration if duration is not None else None
    next_progress = time.monotonic() + PROGRESS_INTERVAL_S
    seen = _Seen()
    while not stop.event.is_set():
        if rollout.finished or (deadline is not None and time.monotonic() >= deadline):
            return True
        try:
            line = lines.get(timeout=0.1)
        except queue.Empty:
            line = ""
        if line is None:
            if deadline is None:
                out.print("end of input: stopping")
                return True
            lines.put(None)  # keep reporting EOF without spinning
            time.sleep(0.1)
        elif line.strip() and not execute(rollout, line, out):
            return True
        snap = rollout.snapshot()
        seen.report(snap, out)
        if time.monotonic() >= next_progress:
            next_progress += PROGRESS_INTERVAL_S
            out.print(progress_line(snap))
    return False


def _read_lines(lines: queue.Queue[str | None]) -> None:
    for line in sys.stdin:
        lines.put(line)
    lines.put(None)


def execute(rollout: Rollout, line: str, out: Console) -> bool:
    """Run one typed command; False when it asks to stop."""
    try:
        command, argument = TABLE.parse(line, CONTEXT)
        name = command.name
        if name == "stop":
            out.print("> /stop: stopping the run")
            return False
        if name == "help":
            for c in TABLE.in_context(CONTEXT):
                if c.namespace == "screen":
                    out.print(escape(f"  {c.usage:<28} {c.help}"))
            return True
        handlers = {
            "action": lambda: rollout.action(argument),
            "pause": rollout.pause,
            "pause-resume": lambda: rollout.resume() if rollout.mode.value == "paused" else rollout.pause(),
            "takeover": rollout.takeover,
            "resume": rollout.resume,
            "save": rollout.save,
            "redo": rollout.redo,
            "subtask": lambda: rollout.set_subtask(argument) if argument else
            f"subtask: {rollout.snapshot().subtask or '(none: the policy follows the task)'}",
        }
        handler = handlers.get(name)
        if handler is None:
            raise CommandError(f"/{name} is not available in a headless rollout")
        out.print(f"> /{name}: {escape(handler())}")
    except (CommandError, ValueError) as e:
        out.print(f"[bold red]robotui rollout:[/] {escape(str(e))}")
    return True


class _Seen:
    def __init__(self) -> None:
        self.mode = ""
        self.saved = 0
        self.message: str | None = None

    def report(self, snap: RolloutSnapshot, out: Console) -> None:
        if snap.mode.value != self.mode:
            out.print(f"mode: {snap.mode.value}")
            self.mode = snap.mode.value
        for ep in snap.saved[self.saved:]:
            out.print(f"✓ saved episode {ep.index}: {ep.length} frames ({ep.duration_s:.1f} s)")
        self.saved = len(snap.saved)
        if snap.message and snap.message != self.message:
            out.print(f"note: {escape(snap.message)}")
        self.message = snap.message


def progress_line(snap: RolloutSnapshot) -> str:
    loop = snap.loop
    rate = f"{loop.achieved_hz:.1f} Hz p99 {loop.period_p99_ms:.1f} ms" if loop and loop.ticks > 1 else "starting"
    inf = snap.inference
    burst = f" ({snap.burst_left_s:.1f} s left)" if snap.burst_left_s is not None else ""
    return (f"  {snap.mode.value}{burst} | queue {snap.queue_depth} dispatched {snap.actions_dispatched} "
            f"starved {snap.starved_ticks} | inference {inf.last_ms:.0f} ms (p99 {inf.p99_ms:.0f}) | loop {rate} | "
            f"takeovers {snap.interventions} ({snap.intervention_s:.1f} s)")


def _summary(out: Console, snap: RolloutSnapshot, root: Path | None) -> None:
    out.print(f"dispatched {snap.actions_dispatched} actions, {snap.inference.inferences} inferences "
              f"(mean {snap.inference.mean_ms:.0f} ms), {snap.interventions} takeovers")
    if root is not None:
        frames = sum(e.length for e in snap.saved)
        out.print(f"saved {len(snap.saved)} episode(s), {frames} frames, into {escape(str(root))}")
