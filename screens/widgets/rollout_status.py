"""The rollout status panel: who is in control, what the policy is told, and whether inference keeps up.

The figures are the ones that tell an operator something is wrong before the arm does: inference time
against the control period, queue depth and starved ticks (the arm held because no action was ready),
actions dispatched (proof actions reach the robot), and the age of the observation behind the actions now
executing.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from engine.recorder import SavedEpisode
from engine.rollout import Mode, RolloutSnapshot

MODE_STYLE = {
    Mode.PAUSED: ("PAUSED — the arm holds", "bold black on yellow"),
    Mode.AUTONOMOUS: ("AUTONOMOUS — the policy drives", "bold white on dark_green"),
    Mode.TAKEOVER: ("TAKEOVER — you drive with the leader", "bold white on dark_red"),
}


def mode_banner(snap: RolloutSnapshot) -> Text:
    label, style = MODE_STYLE[snap.mode]
    if snap.mode is Mode.PAUSED and snap.handover:
        label = "PAUSED — the leader moves to the follower's pose"
    if snap.takeover_pending:
        label += " (takeover next)"
    if snap.burst_left_s is not None:
        label += f" · {snap.burst_left_s:.1f} s left"
    return Text(f" {label} ", style=style)


def status_table(snap: RolloutSnapshot) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    grid.add_row("task", snap.task or Text("(none: /action <task>)", style="dim"))
    if snap.subtask:
        grid.add_row("subtask", snap.subtask)
    inf = snap.inference
    period_ms = 1000.0 / snap.loop.fps if snap.loop is not None else 0.0
    slow = inf.p99_ms > period_ms * 5 if inf.inferences else False
    grid.add_row("inference", Text(f"{inf.last_ms:.0f} ms (mean {inf.mean_ms:.0f}, p99 {inf.p99_ms:.0f}) · "
                                   f"{inf.inferences} runs", style="yellow" if slow else ""))
    if inf.errors:
        grid.add_row("errors", Text(f"{inf.errors}: {inf.last_error}", style="red"))
    age = f"{snap.chunk_age_s:.2f} s" if snap.chunk_age_s is not None else "-"
    grid.add_row("queue", f"{snap.queue_depth} planned · chunk age {age}")
    starved = Text(f"{snap.actions_dispatched} dispatched · {snap.starved_ticks} starved · "
                   f"{snap.stale_actions} late", style="yellow" if snap.starved_ticks else "")
    grid.add_row("actions", starved)
    loop = snap.loop
    if loop is not None and loop.ticks > 1:
        grid.add_row("loop", f"{loop.achieved_hz:.1f}/{loop.fps:g} Hz · p99 {loop.period_p99_ms:.1f} ms · "
                             f"{loop.overruns} overruns")
    grid.add_row("takeovers", f"{snap.interventions} · {snap.intervention_s:.1f} s")
    if snap.strategy != "base":
        rec = f"recording · {snap.episode_frames} frames" if snap.recording else "not recording"
        grid.add_row("dataset", f"{snap.strategy}: {rec} · {len(snap.saved)} saved")
        worst = max(snap.cameras, key=lambda c: c.queue_depth, default=None)
        if worst is not None:
            grid.add_row("encoders", f"queue {worst.queue_depth}/{worst.queue_cap}")
    grid.add_row("cameras", f"stale {snap.stale_frames} · dropped {snap.dropped_frames}")
    grid.add_row("servo bus", Text(snap.bus.line(), style="" if snap.bus.clean else "yellow"))
    return grid


def episodes_table(saved: Sequence[SavedEpisode]) -> RenderableType:
    if not saved:
        return Text("no episode saved yet", style="dim")
    table = Table.grid(padding=(0, 2))
    for column in ("#", "frames", "s"):
        table.add_column(column, justify="right")
    for ep in saved[-8:]:
        table.add_row(str(ep.index), str(ep.length), f"{ep.duration_s:.1f}")
    return table


class RolloutStatus(Static):
    def show(self, snap: RolloutSnapshot) -> None:
        parts: list[RenderableType] = [mode_banner(snap), status_table(snap)]
        if snap.preflight:
            parts.append(Text("\n".join(snap.preflight), style="dim"))
        if snap.strategy != "base":
            parts.append(Text("saved episodes", style="bold"))
            parts.append(episodes_table(snap.saved))
        self.update(Group(*parts))
