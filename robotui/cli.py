"""The `robotui` console script: no subcommand opens the app; subcommands are the headless twins."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from robotui import __version__

# Order is the order `robotui --help` lists them.
COMMAND_MODULES = [
    "robotui.commands.doctor",
    "robotui.commands.find_port",
    "robotui.commands.find_cameras",
    "robotui.commands.sim",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robotui",
        description="The terminal cockpit for robot learning. Run with no command to open the app.",
    )
    parser.add_argument("--version", action="version", version=f"robotui {__version__}")
    parser.add_argument("--sim", action="store_true", help="use the simulated SO-101 (no hardware needed)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        from robotui.app import run_app

        return run_app(args)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
