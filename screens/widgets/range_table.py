"""The live MIN / POS / MAX table of range recording: one row per motor, raw ticks in the homed frame.

The operator watches MIN fall and MAX rise as each joint is moved; a bar shows the recorded span and the
current position on the encoder's turn, and a joint that has not moved far enough yet says so, before
finishing would fail on it. Full-turn joints (wrist_roll) are not recorded: they get the whole turn.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from engine.calibration import RangeRow

BAR_WIDTH = 40
RESOLUTION = 4096


def range_bar(row: RangeRow, resolution: int = RESOLUTION, width: int = BAR_WIDTH) -> Text:
    """`····━━━━━━●━━━━·····`: the recorded span over the encoder's turn, and where the joint is now."""

    def cell(ticks: int) -> int:
        return min(width - 1, max(0, ticks * width // resolution))

    low, high = (0, resolution - 1) if row.full_turn else (row.min, row.max)
    bar = Text()
    lo_cell, hi_cell, pos_cell = cell(low), cell(high), cell(row.pos)
    for i in range(width):
        if i == pos_cell:
            bar.append("●", style="bold")
        elif lo_cell <= i <= hi_cell:
            bar.append("━", style="dim cyan" if row.full_turn else "cyan")
        else:
            bar.append("·", style="dim")
    return bar


def ranges_table(
    motors: Sequence[str], rows: Sequence[RangeRow], min_travel: int | None = None, *, bar: bool = True
) -> Table:
    """The table for `rows` (recorded so far); motors with no reading yet show dashes. `min_travel` marks
    the joints not yet moved far enough; `bar=False` leaves the bar out (narrow terminals, logs)."""
    table = Table(box=None, header_style="bold", pad_edge=False, expand=False)
    table.add_column("motor", no_wrap=True, min_width=14)
    for name in ("MIN", "POS", "MAX", "range"):
        table.add_column(name, justify="right", no_wrap=True, min_width=5)
    if bar:
        table.add_column("", no_wrap=True)
    table.add_column("", no_wrap=True)  # note
    by_motor = {row.motor: row for row in rows}
    for motor in motors:
        row = by_motor.get(motor)
        if row is None:
            table.add_row(motor, "—", "—", "—", "—", *([""] if bar else []), "")
            continue
        if row.full_turn:
            note = Text("full turn: gets 0..4095, not recorded", style="dim")
            table.add_row(motor, Text("0", style="dim"), str(row.pos), Text("4095", style="dim"),
                          Text("full", style="dim"), *([range_bar(row)] if bar else []), note)
            continue
        short = min_travel is not None and row.travel < min_travel
        note = Text("move it through its range", style="yellow") if short else Text("")
        table.add_row(motor, str(row.min), str(row.pos), str(row.max),
                      Text(str(row.travel), style="yellow" if short else ""), *([range_bar(row)] if bar else []),
                      note)
    return table


class RangeTable(Static):
    """Shows the latest rows; the screen calls `show` from its refresh timer with an immutable snapshot."""

    DEFAULT_CSS = """
    RangeTable {
        height: auto;
        padding: 0 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.motors: tuple[str, ...] = ()
        self.rows: tuple[RangeRow, ...] = ()
        self.min_travel: int | None = None
        self._drawn = False

    def show(self, motors: Sequence[str], rows: Sequence[RangeRow], min_travel: int | None = None) -> None:
        """Redraw only when something changed (the timer calls this 15 times a second)."""
        motors, rows = tuple(motors), tuple(rows)
        if (motors, rows, min_travel) == (self.motors, self.rows, self.min_travel) and self._drawn:
            return
        self._drawn = True
        self.motors, self.rows, self.min_travel = motors, rows, min_travel
        self.update(ranges_table(motors, rows, min_travel))
