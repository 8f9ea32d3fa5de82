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
    "robotui.commands.setup_motors",
    "robotui.commands.calibrate",
    "robotui.commands.teleop",
    "robotui.commands.record",
    "robotui.commands.replay",
    "robotui.commands.rollout",
    "robotui.commands.ask",
    "robotui.commands.dataset",
    "robotui.commands.train",
    "robotui.commands.jobs",
    "robotui.commands.sim",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robotui",
        allow_abbrev=False,  # else `--teleop` after a subcommand is taken as a prefix of --teleop-type/...
        description="The terminal cockpit for robot learning. Run with no command to open the app.",
    )
    parser.add_argument("--version", action="version", version=f"robotui {__version__}")
    parser.add_argument("--sim", action="store_true", help="use the simulated SO-101 (no hardware needed)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--profile", metavar="NAME", help="open this saved profile instead of the active one")
    parser.add_argument("--preview", choices=["auto", "halfblock", "kitty", "sixel", "off"], default="auto",
                        help="camera preview mode (half-block works in any truecolor terminal)")
    parser.add_argument("--no-hotkeys", dest="hotkeys", action="store_false",
                        help="no desktop-wide hotkeys (pynput)")
    over = parser.add_argument_group("profile overrides (this run only)")
    for flag in ("--robot-type", "--robot-port", "--robot-id", "--teleop-type", "--teleop-port", "--teleop-id",
                 "--dataset-root"):
        over.add_argument(flag)
    over.add_argument("--teleop-fps", type=int)
    over.add_argument("--record-fps", type=int)
    over.add_argument("--max-relative-target", help="degrees per tick, or JSON per motor")
    over.add_argument("--cameras", help='JSON, e.g. {"front": {"type": "opencv", "index_or_path": 0}}')
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
