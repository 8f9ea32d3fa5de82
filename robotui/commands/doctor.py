"""`robotui doctor`: run the environment checks, show each with its fix, exit 1 if anything blocks use."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from engine.doctor import CHECKS, Check, run_checks

STYLE = {"ok": ("✓", "green"), "warn": ("!", "yellow"), "fail": ("✗", "bold red")}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check ports, cameras, encoders, torch, Hub token, rendering and disk",
        description="Check what robotui needs and print the fix for each problem. Exit status 1 if a check fails.",
    )
    parser.add_argument("--json", action="store_true", help="print the checks as JSON for scripts")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=list(CHECKS),
        metavar="CHECK",
        help=f"leave a check out (repeatable): {', '.join(CHECKS)}",
    )
    parser.set_defaults(func=run)


def render(checks: list[Check], console: Console) -> None:
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("", width=1)
    table.add_column("check")
    table.add_column("result", overflow="fold")
    for check in checks:
        mark, style = STYLE[check.status]
        table.add_row(f"[{style}]{mark}[/]", check.name, check.detail)
    console.print(table)
    todo = [c for c in checks if c.status != "ok" and c.fix]
    if todo:
        console.print()
        console.print("[bold]To fix:[/]")
        for check in todo:
            _, style = STYLE[check.status]
            console.print(f"  [{style}]{check.name}[/]: {check.fix}")


def run(args: argparse.Namespace) -> int:
    checks = run_checks(skip=args.skip)
    failed = [c for c in checks if c.status == "fail"]
    if args.json:
        print(json.dumps({"ok": not failed, "checks": [c.as_dict() for c in checks]}, indent=2))
    else:
        console = Console(highlight=False, soft_wrap=True)
        render(checks, console)
        warned = sum(c.status == "warn" for c in checks)
        summary = f"{len(checks)} checks: {len(failed)} failed, {warned} warnings"
        console.print(f"\n[{'bold red' if failed else 'green'}]{summary}[/]")
    return 1 if failed else 0
