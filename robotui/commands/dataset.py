"""`robotui dataset info|check|push`: look at, validate (and repair) and publish a LeRobotDataset v3.0.

These work on any v3.0 dataset, LeRobot's included, so they double as the answer to "will LeRobot load
this?" before an hour of training finds out. Exit status 1 means there is something to fix.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import av
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from engine.dataset.hub import CARD_PATH, DatasetInvalidError, HubError, push_dataset, upload_plan
from engine.dataset.reader import DatasetError, LeRobotDatasetReader
from engine.dataset.validate import Problem, check, repair_and_check

STYLE = {"error": ("✗", "bold red"), "warning": ("!", "yellow")}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dataset",
        help="inspect, check (and repair) or push a LeRobot v3.0 dataset",
        description="Work with a LeRobotDataset v3.0 on disk (robotui's or LeRobot's).",
    )
    parser.set_defaults(func=run, dataset_command=None)
    sub = parser.add_subparsers(dest="dataset_command", metavar="ACTION")

    info = sub.add_parser(
        "info", help="episodes, frames, tasks, cameras, size", description="Summarize a dataset."
    )
    info.add_argument("root", help="dataset folder, or a Hub repo id (read from the local cache)")
    info.add_argument("--revision", default=None, help="Hub revision for a repo id (default: the v3.0 tag)")
    info.add_argument("--json", action="store_true", help="print the summary as JSON")

    chk = sub.add_parser(
        "check",
        help="validate everything LeRobot relies on; exit 1 on errors",
        description="Validate a dataset read-only and print each problem with its fix. Exit status 1 on errors.",
    )
    chk.add_argument("root", type=Path, help="dataset folder")
    chk.add_argument(
        "--repair", action="store_true", help="recover an interrupted recording first, then check"
    )
    chk.add_argument("--strict", action="store_true", help="warnings also give exit status 1")
    chk.add_argument(
        "--no-decode", action="store_true", help="skip decoding each episode's first and last frame"
    )
    chk.add_argument("--json", action="store_true", help="print the problems as JSON")

    push = sub.add_parser(
        "push",
        help="validate, then upload to the Hugging Face Hub with card and v3.0 tag",
        description="Validate the dataset, upload it to the Hub as a dataset repo, write its card, tag it v3.0.",
    )
    push.add_argument("root", type=Path, help="dataset folder")
    push.add_argument("--repo-id", required=True, help="owner/name on the Hub")
    push.add_argument("--private", action="store_true", help="create the repo private")
    push.add_argument("--tag", action="append", default=[], metavar="TAG", help="extra card tag (repeatable)")
    push.add_argument("--dry-run", action="store_true", help="validate and list what would be uploaded")


def run(args: argparse.Namespace) -> int:
    action = {"info": run_info, "check": run_check, "push": run_push}.get(args.dataset_command or "")
    if action is None:
        Console(stderr=True).print("usage: robotui dataset {info,check,push} ROOT (see --help)")
        return 2
    return action(args)


# --- info


def _human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _human_duration(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs:.0f} s" if minutes else f"{secs:.1f} s"


def _probe_codec(reader: LeRobotDatasetReader, key: str) -> str | None:
    """The stream's codec when info.json has no video block (it is filled only after the first episode)."""
    if not reader.episode_indices:
        return None
    path = reader.video_path(key, reader.episode_indices[0])
    try:
        with av.open(str(path)) as container:
            return container.streams.video[0].codec_context.codec.canonical_name
    except (OSError, av.FFmpegError, IndexError):
        return None


def summarize(reader: LeRobotDatasetReader) -> dict[str, Any]:
    cameras = []
    for key in reader.camera_keys:
        ft = reader.features[key]
        block = ft.get("info") or {}
        codec = block.get("video.codec") or (_probe_codec(reader, key) if ft["dtype"] == "video" else "png")
        h, w = ft["shape"][:2]
        cameras.append({"key": key, "height": h, "width": w, "storage": ft["dtype"], "codec": codec})
    size = sum(p.stat().st_size for p in reader.root.rglob("*") if p.is_file())
    return {
        "root": str(reader.root),
        "repo_id": reader.repo_id,
        "codebase_version": reader.codebase_version,
        "robot_type": reader.robot_type,
        "fps": reader.fps,
        "episodes": reader.total_episodes,
        "frames": reader.total_frames,
        "duration_s": reader.total_frames / reader.fps if reader.fps else 0.0,
        "tasks": list(reader.tasks.values()),
        "cameras": cameras,
        "features": {k: {"dtype": ft["dtype"], "shape": ft["shape"]} for k, ft in reader.features.items()},
        "size_bytes": size,
    }


def run_info(args: argparse.Namespace) -> int:
    console = Console(highlight=False, soft_wrap=True)
    try:
        summary = summarize(LeRobotDatasetReader.open(args.root, revision=args.revision))
    except (DatasetError, OSError) as exc:
        Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]error:[/] {escape(str(exc))}")
        return 1
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    tasks = summary["tasks"]
    cams = [f"{c['key']} {c['width']}x{c['height']} {c['codec'] or '?'}" for c in summary["cameras"]]
    rows = [
        ("dataset", summary["root"] + (f"  ({summary['repo_id']})" if summary["repo_id"] else "")),
        ("format", f"LeRobotDataset {summary['codebase_version']}"),
        ("robot type", str(summary["robot_type"] or "unknown")),
        ("fps", str(summary["fps"])),
        ("episodes", str(summary["episodes"])),
        ("frames", f"{summary['frames']} ({_human_duration(summary['duration_s'])})"),
        ("tasks", f"{len(tasks)}: " + "; ".join(tasks[:5]) + (" ..." if len(tasks) > 5 else "")),
        ("cameras", "\n".join(cams) or "none"),
        ("size on disk", _human_size(summary["size_bytes"])),
    ]
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, value in rows:
        table.add_row(name, escape(value))
    console.print(table)
    return 0


# --- check


def render_problems(problems: list[Problem], console: Console) -> None:
    """One block per problem (where, what, fix): paths are long and terminals narrow, so no table."""
    for p in problems:
        mark, style = STYLE[p.severity]
        console.print(f"[{style}]{mark} {p.severity}[/] [bold]{escape(p.where)}[/]")
        console.print(f"    {escape(p.what)} [dim]\\[{p.code}][/]")
        console.print(f"    [dim]fix:[/] {escape(p.fix)}")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _report_dict(report: Any) -> Any:
    if report is None:
        return None
    if dataclasses.is_dataclass(report) and not isinstance(report, type):
        return json.loads(json.dumps(dataclasses.asdict(report), default=str))
    return str(report)


def run_check(args: argparse.Namespace) -> int:
    console = Console(highlight=False, soft_wrap=True)
    report = None
    try:
        if args.repair:
            report, problems = repair_and_check(args.root, decode=not args.no_decode)
        else:
            problems = check(args.root, decode=not args.no_decode)
    except (DatasetError, OSError, ValueError) as exc:
        Console(stderr=True, highlight=False, soft_wrap=True).print(f"[bold red]error:[/] {escape(str(exc))}")
        return 1
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    failed = errors > 0 or (args.strict and warnings > 0)
    if args.json:
        out = {
            "ok": not failed,
            "errors": errors,
            "warnings": warnings,
            "problems": [p.as_dict() for p in problems],
        }
        if args.repair:
            out["repair"] = _report_dict(report)
        print(json.dumps(out, indent=2))
        return 1 if failed else 0
    if args.repair:
        text = report.summary() if hasattr(report, "summary") else str(report)
        console.print(f"[bold]repair:[/] {escape(text)}")
    if problems:
        render_problems(problems, console)
        console.print()
    summary = (
        f"{args.root}: {_plural(errors, 'error')}, {_plural(warnings, 'warning')}"
        if problems
        else f"{args.root}: no problems found"
    )
    console.print(f"[{'bold red' if failed else 'green'}]{escape(summary)}[/]")
    return 1 if failed else 0


# --- push


def run_push(args: argparse.Namespace) -> int:
    console = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if args.dry_run:
        problems = check(args.root)
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            render_problems(errors, err)
            err.print(f"[bold red]{_plural(len(errors), 'error')}: nothing would be uploaded[/]")
            return 1
        plan = upload_plan(args.root)
        size = sum((args.root / f).stat().st_size for f in plan if f != CARD_PATH)
        for f in plan:
            console.print(f"  {escape(f)}" + ("  (generated dataset card)" if f == CARD_PATH else ""))
        console.print(
            f"would upload {len(plan)} files ({_human_size(size)}) to datasets/{args.repo_id}"
            f"{' (private)' if args.private else ''} and tag it v3.0"
        )
        return 0
    try:
        result = push_dataset(
            args.root,
            args.repo_id,
            private=args.private,
            tags=args.tag,
            on_step=lambda m: console.print(f"… {escape(m)}"),
        )
    except DatasetInvalidError as exc:
        render_problems(exc.problems, err)
        err.print(
            f"[bold red]{_plural(len(exc.problems), 'error')}: nothing was uploaded[/] (run `robotui dataset check`)"
        )
        return 1
    except (HubError, DatasetError) as exc:
        err.print(f"[bold red]push failed:[/] {escape(str(exc))}")
        return 1
    console.print(f"[green]pushed {len(result.files)} files to {escape(result.url)} (tag {result.tag})[/]")
    return 0
