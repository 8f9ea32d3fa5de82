"""The job list and the selected job's summary, drawn from the launcher's records and snapshots.

A row exists from the moment the registry lists a job; its status says "checking" until the job's host has
answered once, and "unreachable" while the host cannot be asked (the last known figures stay).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.widgets import DataTable

from engine.jobs import JobProgress, JobRecord, JobSnapshot, JobState

COLUMNS: tuple[str, ...] = ("name", "where", "status", "step", "loss", "ETA")
STATUS_STYLE = {
    "running": "bold green",
    "finished": "bold",
    "failed": "bold red",
    "cancelled": "yellow",
    "unreachable": "bold red",
    "checking": "dim",
}


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def status(record: JobRecord, snap: JobSnapshot | None) -> str:
    """running / finished / failed (exit N) / cancelled, "unreachable" when the host cannot be asked about a
    job that was running, "checking" before its host first answered."""
    if snap is not None and snap.problem and not record.state.done:
        return "unreachable"
    if snap is None and not record.state.done:
        return "checking"
    if record.state is JobState.FAILED and record.exit_code not in (None, 0):
        return f"failed (exit {record.exit_code})"
    return record.state.value


def step_text(progress: JobProgress | None) -> str:
    if progress is None or progress.step is None:
        return "-"
    return f"{progress.step}/{progress.total}" if progress.total else str(progress.step)


def loss_text(progress: JobProgress | None) -> str:
    return "-" if progress is None or progress.loss is None else f"{progress.loss:.4g}"


def job_cells(record: JobRecord, snap: JobSnapshot | None) -> tuple[Text, ...]:
    progress = snap.progress if snap is not None else None
    state = status(record, snap)
    eta = duration(progress.eta_s) if progress is not None and not record.state.done else "-"
    return (
        Text(record.name),
        Text(record.spec.where),
        Text(state, style=STATUS_STYLE.get(state.split(" ")[0], "")),
        Text(step_text(progress), justify="right"),
        Text(loss_text(progress), justify="right"),
        Text(eta, justify="right"),
    )


class JobTable(DataTable[Text]):
    """One row per job (keyed by name), updated in place so the cursor stays on its job."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        for column in COLUMNS:
            self.add_column(column, key=column)

    def show(self, rows: Sequence[tuple[str, tuple[Text, ...]]]) -> None:
        """`rows` in display order: (job name, its cells). Jobs no longer listed are removed."""
        names = [name for name, _ in rows]
        for key in list(self.rows):
            if key.value not in names:
                self.remove_row(key)
        for name, cells in rows:
            if name not in self.rows:
                self.add_row(*cells, key=name)
                continue
            for column, cell in zip(COLUMNS, cells, strict=True):
                if self.get_cell(name, column) != cell:
                    self.update_cell(name, column, cell, update_width=True)

    def names(self) -> list[str]:
        return [str(row.key.value) for row in self.ordered_rows]


def summary(
    record: JobRecord,
    snap: JobSnapshot | None,
    progress: JobProgress | None,
    *,
    fetched: Path | None = None,
    doing: str | None = None,
    problem: str | None = None,
) -> RenderableType:
    """The selected job in a few lines: state, figures, where its files are, what is being done to it
    (`doing`) and what went wrong."""
    state = status(record, snap)
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    grid.add_row("status", Text(state, style=STATUS_STYLE.get(state.split(" ")[0], "")))
    grid.add_row("where", Text(f"{record.spec.where} · {record.run_dir_abs or record.spec.run_dir}"))
    figures = f"step {step_text(progress)}"
    if progress is not None and progress.loss is not None:
        figures += f" · loss {progress.loss:.4g}"
    if progress is not None and progress.lr is not None:
        figures += f" · lr {progress.lr:.3g}"
    if progress is not None and progress.samples_per_s:
        figures += f" · {progress.samples_per_s:.3g} samples/s"
    grid.add_row("progress", Text(figures))
    if progress is not None and progress.eta_s is not None and not record.state.done:
        grid.add_row("ETA", Text(duration(progress.eta_s)))
    grid.add_row("command", Text(" ".join(record.spec.argv), style="dim", overflow="ellipsis", no_wrap=True))
    if fetched is not None:
        grid.add_row("checkpoint", Text(f"{fetched}  (o opens it in Rollout)", style="green"))
    parts: list[RenderableType] = [grid]
    if doing:
        parts.append(Text(doing, style="yellow"))
    for line in (snap.problem if snap is not None else None, record.detail or None, problem):
        if line:
            parts.append(Text(line, style="bold red"))
    return Group(*parts)
