"""The serial-port table of the Ports screen: each port with its stable by-id name, what the USB adapter
says it is, and whether this user may open it (or why not).

It renders from plain data handed in on the UI thread; the listing itself happens in a worker. Emulated
ports show no device node: their /dev/pts number changes every run and tells the operator nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from drivers.ports import PortInfo, PortProblem


def describe_device(port: PortInfo) -> str:
    """`USB Single Serial [1a86:55d3]`, or `-` when the adapter tells nothing."""
    parts = [p for p in (port.description, port.vid_pid and f"[{port.vid_pid}]") if p]
    return " ".join(parts) or "-"


def port_status(port: PortInfo, problem: PortProblem | None) -> Text:
    """`✓ usable`, or what stops this user from opening it (the fix is in the problems panel)."""
    if problem is not None:
        what = "log in again" if problem.kind == "relogin" else "no access"
        return Text.assemble(("✗ ", "bold red"), (what, "red"), " (fix below)")
    if port.usable:
        return Text.assemble(("✓ ", "bold green"), "usable")
    return Text.assemble(("✗ ", "bold red"), ("no access", "red"), f" (group {port.owner_group})")


class PortList(Static):
    """A table of ports; `show()` replaces its contents. `marks` tags a port path with a label such as
    `robot port`, so the operator sees at once which entry the profile uses."""

    DEFAULT_CSS = """
    PortList { height: auto; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(Text("listing ports…", style="dim"), id=id)
        self.ports: list[PortInfo] = []

    def show(
        self,
        ports: Sequence[PortInfo],
        problems: Iterable[PortProblem] = (),
        marks: Mapping[str, str] | None = None,
    ) -> None:
        self.ports = list(ports)
        if not self.ports:
            self.update(
                Text(
                    "No serial ports found. Plug in the arm's controller board (and its power supply); "
                    "a port that never appears may be taken by brltty or the cable may be charge-only.",
                    style="yellow",
                )
            )
            return
        by_port = {p.port: p for p in problems if p.port}
        marks = marks or {}
        table = Table(box=None, header_style="bold", pad_edge=False, expand=True)
        table.add_column("port", no_wrap=True)  # a path must stay whole: it gets copied into profiles
        with_ids = any(p.by_id_name for p in self.ports)  # no room taken by a column of dashes
        table.add_column("by-id name", overflow="fold", ratio=1 if with_ids else None, min_width=10)
        table.add_column("device", overflow="fold", ratio=1, min_width=24)
        table.add_column("status", no_wrap=True)
        for port in self.ports:
            status = port_status(port, by_port.get(port.path))
            mark = marks.get(port.path) or (marks.get(port.by_id_path) if port.by_id_path else None)
            if mark:
                status.append(f" ← {mark}", style="bold cyan")
            table.add_row(port.path, port.by_id_name or Text("—", style="dim"), describe_device(port), status)
        self.update(table)
