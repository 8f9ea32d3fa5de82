"""`robotui find-port`: tell which serial port is the arm by watching it disappear when its cable is pulled.

Unlike LeRobot's version it polls instead of waiting for Enter, so it also runs with stdin not a terminal
(scripts, tmux send-keys, tests), and it waits for the replug to confirm the port comes back (and under which
name: Linux hands out a new one if the old one is still held open).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from drivers.ports import PortInfo, PortWatcher, find_brltty, list_ports, port_paths, port_problems


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "find-port",
        help="find the arm's serial port: unplug its USB cable when asked",
        description="List serial ports, then unplug the arm's USB cable: the port that disappears is the arm's.",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for the unplug, and again for the replug"
    )
    parser.add_argument(
        "--extra-dir",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="also treat the entries of DIR as ports (the emulator's own directory is always included)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the result as JSON (messages go to stderr)"
    )
    parser.set_defaults(func=run)


def ports_table(ports: list[PortInfo]) -> Table:
    with_ids = any(p.by_id_name for p in ports)
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("port", no_wrap=True)  # a path must stay copy-pasteable
    table.add_column("device", overflow="fold")
    table.add_column("access", no_wrap=True)
    if with_ids:
        table.add_column("stable name (by-id)", overflow="fold")
    for p in ports:
        device = " ".join(x for x in (p.description, p.vid_pid and f"[{p.vid_pid}]") if x) or "-"
        access = "[green]read/write[/]" if p.usable else f"[red]no access[/] (group {p.owner_group})"
        table.add_row(p.path, device, access, *([p.by_id_name or "-"] if with_ids else []))
    return table


def _hardware_hints(listed: bool = True) -> str:
    advice = (
        "try another cable (some only charge) or USB port, check the board's power, and look at `dmesg | tail` "
        "right after plugging in."
    )
    if listed:
        hints = "If the arm's port was not in the list, it was never detected: " + advice
    else:
        hints = "Not detected? " + advice[0].upper() + advice[1:]
    if find_brltty():
        hints += (
            " brltty is installed and can steal CH340/CP210x adapters: sudo apt remove brltty, then replug."
        )
    return hints


def run(args: argparse.Namespace) -> int:
    console = Console(highlight=False, soft_wrap=True, stderr=args.json)
    result: dict[str, object] = {"port": None, "by_id": None, "replugged": False, "port_after_replug": None}

    def finish(code: int, error: str | None = None) -> int:
        if args.json:
            print(json.dumps({**result, "error": error}, indent=2))
        return code

    ports = list_ports(args.extra_dir)
    if not ports:
        console.print("No serial ports found. Plug the arm's controller board in and run this again.")
        console.print(_hardware_hints(listed=False))
        console.print("No arm? robotui --sim runs an emulated one.")
        return finish(1, "no-ports")
    console.print(ports_table(ports))
    for problem in port_problems(ports):
        console.print(f"[yellow]![/] {problem.detail}\n  fix: {problem.fix}")

    watcher = PortWatcher(lambda: port_paths(args.extra_dir))
    console.print(
        f"\n[bold]Unplug the arm's USB cable now[/] (no need to press Enter). Waiting up to {args.timeout:g} s…"
    )
    removed = watcher.wait_removed(args.timeout)
    if not removed:
        console.print(f"[red]No port disappeared within {args.timeout:g} s.[/] {_hardware_hints()}")
        return finish(1, "timeout")
    if len(removed) > 1:
        console.print(
            f"[red]{len(removed)} ports disappeared at once[/] ({', '.join(removed)}): the cable you pulled carries "
            "several ports (a USB hub, or a board with two adapters). Unplug only the arm's own cable and run again."
        )
        return finish(1, "several-ports")

    port = removed[0]
    info = next((p for p in ports if p.path == port), None)
    result["port"] = port
    result["by_id"] = info.by_id_path if info else None
    console.print(f"[bold green]The arm's port is {port}[/]")
    if info and info.by_id_path:
        console.print(f"Its stable name, which survives reboots and replugs: {info.by_id_path}")

    console.print(f"\n[bold]Plug the cable back in.[/] Waiting up to {args.timeout:g} s…")
    added = watcher.wait_added(args.timeout)
    if port in added:
        result.update(replugged=True, port_after_replug=port)
        console.print(f"[green]✓[/] {port} is back: use it as the arm's port.")
    elif added:
        result.update(replugged=True, port_after_replug=added[0])
        console.print(
            f"[yellow]![/] It came back as {', '.join(added)}, not {port} (the old name was still held open by "
            "a program). Use the new name now, or the by-id name, which never changes."
        )
    else:
        console.print(
            f"[yellow]![/] {port} did not come back within {args.timeout:g} s: check that the cable is seated."
        )
    return finish(0)
