"""`robotui jobs list|start|tail|cancel|fetch`: training runs (or any command) detached, here or over SSH.

A job keeps running when robotui exits or the SSH connection drops; robotui finds it again through the job
registry in the user data dir. `start` takes a preset (lerobot-train for act, diffusion, pi0, pi05, smolvla,
or robotui's own trainer) plus the hyperparameters to change, or any command after `--`.
Exit status: 0 done, 1 the operation failed (the message says why and what to do), 2 bad command line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from engine.jobs import (
    PRESETS,
    Hyperparameters,
    JobError,
    JobLauncher,
    JobSnapshot,
    JobSpec,
    LogLine,
    plan_training_job,
)
from engine.jobs.follow import LineSplitter

EXIT_FAILED = 1
EXIT_USAGE = 2
TAIL_BYTES = 65536


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "jobs",
        help="start, watch, cancel training jobs here or on a GPU box over SSH; fetch checkpoints",
        description="Training jobs that outlive robotui, locally or on an SSH host.",
    )
    parser.set_defaults(func=run, jobs_command=None)
    sub = parser.add_subparsers(dest="jobs_command", metavar="ACTION")

    ls = sub.add_parser("list", help="every job: where, state, step, loss, ETA", description="List the jobs.")
    ls.add_argument("--json", action="store_true", help="print the jobs as JSON")

    start = sub.add_parser(
        "start",
        help="start a training run (preset) or any command (after --), detached",
        description=(
            "Start a job detached from this terminal. With --preset, build the training command from the "
            "preset and the hyperparameters given; arguments after `--` are appended to it. Without a "
            "preset, the arguments after `--` are the command. With --host, the dataset folder is copied "
            "to the host first (rsync; unchanged files are skipped)."
        ),
        epilog="presets: " + "; ".join(f"{p.name}: {p.summary}" for p in PRESETS.values()),
    )
    start.add_argument("--name", help="job name (default: PRESET-YYYYMMDD-HHMMSS)")
    start.add_argument(
        "--host", metavar="[USER@]HOST[:PORT]", help="run over SSH there (default: this machine)"
    )
    start.add_argument("--identity", metavar="FILE", help="SSH private key (default: ssh's own choice)")
    start.add_argument(
        "--ssh-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra ssh -o option (repeatable), e.g. StrictHostKeyChecking=accept-new",
    )
    start.add_argument("--preset", choices=list(PRESETS), help="training preset")
    start.add_argument(
        "--dataset", metavar="FOLDER_OR_REPO_ID", help="dataset folder (copied to the host) or Hub id"
    )
    start.add_argument("--repo-id", help="dataset repo id lerobot-train records (default: local/FOLDER_NAME)")
    start.add_argument(
        "--remote-dataset",
        metavar="PATH",
        help="where the dataset goes on the host (default: robotui/datasets/NAME under home)",
    )
    start.add_argument(
        "--run-dir", metavar="DIR", help="the job's folder: log, pid, exit code, training output"
    )
    start.add_argument(
        "--output-dir", metavar="DIR", help="raw command: where it writes checkpoints/ (for fetch)"
    )
    start.add_argument("--total-steps", type=int, metavar="N", help="raw command: its number of steps")
    start.add_argument(
        "--program", metavar="PATH", help="trainer executable (e.g. full path to lerobot-train)"
    )
    hp = start.add_argument_group("hyperparameters (default: the preset's)")
    hp.add_argument("--steps", type=int)
    hp.add_argument("--batch-size", type=int)
    hp.add_argument("--lr", type=float, help="learning rate (policy.optimizer_lr)")
    hp.add_argument("--chunk-size", type=int, help="actions predicted per inference (diffusion: horizon)")
    hp.add_argument("--n-action-steps", type=int, help="of which executed before the next inference")
    hp.add_argument("--pretrained", metavar="PATH_OR_ID", help="fine-tune from this policy (--policy.path)")
    hp.add_argument("--freeze-vision-encoder", action=argparse.BooleanOptionalAction, default=None)
    hp.add_argument("--train-expert-only", action=argparse.BooleanOptionalAction, default=None)
    hp.add_argument("--save-freq", type=int, metavar="STEPS")
    hp.add_argument("--log-freq", type=int, metavar="STEPS")
    hp.add_argument("--device", help="cuda, cpu, mps")
    start.add_argument(
        "rest",
        nargs="*",
        metavar="-- ARGS",
        help="extra arguments for the preset's command, or the whole command without a preset",
    )

    tail = sub.add_parser(
        "tail",
        help="print a job's log; --follow streams it until the job ends",
        description="Print the end of a job's log, and with --follow keep streaming it.",
    )
    tail.add_argument("name")
    tail.add_argument("-n", "--lines", type=int, default=40, help="lines from the end to print first")
    tail.add_argument(
        "-f", "--follow", action="store_true", help="stream until the job ends (Ctrl-C to stop)"
    )

    cancel = sub.add_parser(
        "cancel",
        help="stop a job (its whole process group, here or on the host)",
        description="SIGTERM to the job's process group, SIGKILL 10 s later if needed.",
    )
    cancel.add_argument("name")

    fetch = sub.add_parser(
        "fetch",
        help="copy a checkpoint's pretrained_model folder here",
        description="Copy OUTPUT_DIR/checkpoints/CHECKPOINT/pretrained_model here; prints the path.",
    )
    fetch.add_argument("name")
    fetch.add_argument("--checkpoint", default="last", help="'last' (default) or a step folder, e.g. 020000")
    fetch.add_argument(
        "--dest",
        metavar="DIR",
        help="local folder (default: <data dir>/robotui/checkpoints/NAME/STEP/pretrained_model)",
    )


def run(args: argparse.Namespace) -> int:
    action = {
        "list": run_list,
        "start": run_start,
        "tail": run_tail,
        "cancel": run_cancel,
        "fetch": run_fetch,
    }.get(args.jobs_command or "")
    if action is None:
        print("usage: robotui jobs {list,start,tail,cancel,fetch} (see --help)", file=sys.stderr)
        return EXIT_USAGE
    launcher = JobLauncher()
    try:
        return action(args, launcher)
    except JobError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if launcher.registry.warning:
            print(f"warning: {launcher.registry.warning}", file=sys.stderr)


# --- list


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _row(snap: JobSnapshot) -> dict[str, object]:
    rec, prog = snap.record, snap.progress
    state = rec.state.value
    if rec.exit_code not in (None, 0):
        state += f" (exit {rec.exit_code})"
    return {
        "name": rec.name,
        "where": rec.spec.where,
        "state": state + ("?" if snap.problem else ""),
        "step": prog.step,
        "total": prog.total,
        "loss": prog.loss,
        "eta_s": None if rec.state.done else prog.eta_s,
        "run_dir": rec.run_dir_abs,
        "problem": snap.problem or rec.detail or None,
    }


def run_list(args: argparse.Namespace, launcher: JobLauncher) -> int:
    rows = [_row(snap) for snap in launcher.snapshots()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no jobs yet: start one with `robotui jobs start --preset act --dataset FOLDER [--host HOST]`")
        return 0
    table = [("NAME", "WHERE", "STATE", "STEP", "LOSS", "ETA")]
    for r in rows:
        step = "-" if r["step"] is None else f"{r['step']}" + (f"/{r['total']}" if r["total"] else "")
        loss = "-" if r["loss"] is None else f"{r['loss']:.4g}"
        table.append((str(r["name"]), str(r["where"]), str(r["state"]), step, loss, _duration(r["eta_s"])))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    for r in rows:
        if r["problem"]:
            print(f"{r['name']}: {r['problem']}", file=sys.stderr)
    return 0


# --- start


def run_start(args: argparse.Namespace, launcher: JobLauncher) -> int:
    extra = args.rest[1:] if args.rest[:1] == ["--"] else list(args.rest)
    hyper = Hyperparameters(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        chunk_size=args.chunk_size,
        n_action_steps=args.n_action_steps,
        pretrained=args.pretrained,
        freeze_vision_encoder=args.freeze_vision_encoder,
        train_expert_only=args.train_expert_only,
        save_freq=args.save_freq,
        log_freq=args.log_freq,
        device=args.device,
    )
    name = args.name or f"{args.preset or 'job'}-{time.strftime('%Y%m%d-%H%M%S')}"
    if args.preset:
        if not args.dataset:
            print("error: --preset needs --dataset FOLDER_OR_REPO_ID", file=sys.stderr)
            return EXIT_USAGE
        if args.output_dir or args.total_steps:
            print(
                "error: --output-dir and --total-steps are for a raw command; a preset sets them",
                file=sys.stderr,
            )
            return EXIT_USAGE
        spec = plan_training_job(
            name,
            args.preset,
            hyper,
            args.dataset,
            host=args.host,
            identity=args.identity,
            ssh_options=args.ssh_option,
            repo_id=args.repo_id,
            run_dir=args.run_dir,
            remote_dataset=args.remote_dataset,
            program=args.program,
            extra=extra,
        )
    else:
        if hyper != Hyperparameters() or args.program or args.repo_id:
            print("error: hyperparameters, --program and --repo-id need --preset", file=sys.stderr)
            return EXIT_USAGE
        if not extra:
            print("error: give --preset or a command after `--`", file=sys.stderr)
            return EXIT_USAGE
        spec = JobSpec.create(
            name,
            extra,
            host=args.host,
            identity=args.identity,
            ssh_options=args.ssh_option,
            run_dir=args.run_dir,
            dataset=args.dataset,
            remote_dataset=args.remote_dataset,
            output_dir=args.output_dir,
            total_steps=args.total_steps,
        )
    record = launcher.start(spec, on_status=lambda message: print(message, file=sys.stderr))
    print(f"started {record.name} on {spec.where} (pid {record.pid}) in {record.run_dir_abs}")
    print(f"follow it: robotui jobs tail {record.name} --follow")
    return 0


# --- tail


class _Printer:
    """Log lines to stdout; a tqdm redraw ("\\r" line) is drawn in place on a terminal, skipped in a pipe."""

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()
        self.pending: LogLine | None = None

    def line(self, line: LogLine) -> None:
        if line.overwrite:
            self.pending = line
            if self.tty:
                sys.stdout.write(f"\r{line.text}\x1b[K")
                sys.stdout.flush()
            return
        if self.tty and self.pending is not None:
            sys.stdout.write("\r\x1b[K")
        self.pending = None
        sys.stdout.write(line.text + "\n")
        sys.stdout.flush()

    def close(self) -> None:
        """A redraw left last stays visible (e.g. the final progress bar)."""
        if self.pending is not None:
            sys.stdout.write(("\r" if self.tty else "") + self.pending.text + "\n")
            self.pending = None
        sys.stdout.flush()


def run_tail(args: argparse.Namespace, launcher: JobLauncher) -> int:
    start, data = launcher.read_log(args.name, -TAIL_BYTES)
    splitter = LineSplitter()
    lines = splitter.feed(data)
    if start > 0 and lines:
        lines = lines[1:]  # began mid-line
    printer = _Printer()
    shown = [ln for i, ln in enumerate(lines) if not ln.overwrite or i == len(lines) - 1]
    for line in shown[max(0, len(shown) - max(0, args.lines)) :]:
        printer.line(line)
    if not args.follow:
        for line in splitter.flush():
            printer.line(line)
        printer.close()
        return 0
    follower = launcher.follow(
        args.name,
        start + splitter.consumed,
        on_reconnect=lambda why: print(f"[connection lost: {why}; reconnecting]", file=sys.stderr),
    )
    stream = iter(follower)
    try:
        for line in stream:
            printer.line(line)
    finally:
        follower.stop()
        stream.close()  # type: ignore[attr-defined]
        printer.close()
    snap = launcher.snapshot(args.name)
    print(f"[{_describe(snap)}]", file=sys.stderr)
    return 0


def _describe(snap: JobSnapshot) -> str:
    rec = snap.record
    text = f"job {rec.name} {rec.state.value}"
    if rec.exit_code is not None:
        text += f" (exit {rec.exit_code})"
    if rec.detail:
        text += f": {rec.detail}"
    return text


# --- cancel / fetch


def run_cancel(args: argparse.Namespace, launcher: JobLauncher) -> int:
    record = launcher.cancel(args.name)
    print(f"job {record.name} {record.state.value}")
    return 0


def run_fetch(args: argparse.Namespace, launcher: JobLauncher) -> int:
    path = launcher.fetch(args.name, checkpoint=args.checkpoint, dest=Path(args.dest) if args.dest else None)
    print(path)
    return 0
