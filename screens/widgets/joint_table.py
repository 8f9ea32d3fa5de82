"""The live joint table of teleoperation (and later record/rollout): per joint the leader's position, the
follower's, the goal actually sent and whether it was clamped by `max_relative_target`.

It only renders what it is given (rows from `TeleopSnapshot`, read on the screen's timer): no bus I/O, so
it costs one small Rich table per refresh. The selected jog joint is marked, because keyboard jogging
moves only that one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from rich.table import Table
from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

NO_VALUE = "—"


class Row(Protocol):
    """One joint (engine.teleop.JointRow has these)."""

    @property
    def name(self) -> str: ...
    @property
    def leader(self) -> float | None: ...
    @property
    def follower(self) -> float: ...
    @property
    def goal(self) -> float | None: ...
    @property
    def clamped(self) -> bool: ...


def _value(value: float | None) -> Text:
    if value is None:
        return Text(NO_VALUE, style="dim", justify="right")
    return Text(f"{value:7.1f}", justify="right")


class JointTable(Static):
    """Give it the joint names first (`set_joints`, from the profile's arm) so the idle screen already
    shows every joint; `show(rows)` fills in the live values."""

    DEFAULT_CSS = """
    JointTable {
        height: auto;
        border: round $primary-darken-1;
        border-title-color: $text;
        padding: 0 1;
    }
    """

    selected: reactive[str | None] = reactive(None)
    leader_label: reactive[str] = reactive("leader")

    def __init__(self, joints: Sequence[str] = (), *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.joints: list[str] = list(joints)
        self.rows: tuple[Row, ...] = ()
        """The rows on screen now (tests and other widgets read them)."""
        self.border_title = "Joints"

    def set_joints(self, joints: Sequence[str]) -> None:
        self.joints = list(joints)
        self.refresh(layout=True)

    def show(self, rows: Sequence[Row]) -> None:
        """Show a new snapshot's rows (no-op when they are the very same objects)."""
        rows = tuple(rows)
        if rows == self.rows:
            return
        self.rows = rows
        if rows and [r.name for r in rows] != self.joints:
            self.joints = [r.name for r in rows]
        self.refresh(layout=True)

    def row(self, joint: str) -> Row | None:
        return next((r for r in self.rows if r.name == joint), None)

    def watch_selected(self) -> None:
        self.refresh()

    def watch_leader_label(self) -> None:
        self.refresh()

    def render(self) -> Table | Text:
        if not self.joints:
            return Text("The joints are listed once the arms are connected.", style="dim")
        table = Table(box=None, pad_edge=False, expand=True, header_style="bold")
        table.add_column("", width=1, no_wrap=True)
        table.add_column("joint", no_wrap=True, ratio=2)
        table.add_column(self.leader_label, justify="right", no_wrap=True, ratio=1)
        table.add_column("follower", justify="right", no_wrap=True, ratio=1)
        table.add_column("goal", justify="right", no_wrap=True, ratio=1)
        table.add_column("clamped", justify="center", no_wrap=True, width=7)
        by_name = {r.name: r for r in self.rows}
        for joint in self.joints:
            marker = Text("▶", style="bold cyan") if joint == self.selected else Text("")
            name = Text(joint, style="bold reverse" if joint == self.selected else "")
            row = by_name.get(joint)
            if row is None:
                table.add_row(marker, name, _value(None), _value(None), _value(None), Text(NO_VALUE, style="dim"))
                continue
            clamped = Text("yes", style="bold yellow") if row.clamped else Text("·", style="dim")
            table.add_row(marker, name, _value(row.leader), _value(row.follower), _value(row.goal), clamped)
        return table
