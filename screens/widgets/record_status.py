"""What the operator watches while recording: episode and phase with a countdown, loop timing, camera frame
health, encoder queues, disk space and the saved episodes; then the summary with what to do next.

Everything renders from a `RecorderSnapshot` the screen reads on its timer: these widgets do no I/O, so a
refresh costs two small Rich tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from engine.dataset.format import IMAGES_PREFIX
from engine.recorder import Phase, RecorderSnapshot, SavedEpisode

LOW_DISK_BYTES = 2 * 1024**3
"""Below this much free space the disk line turns red: an hour of two 640×480 AV1 streams is ~1-2 GB."""

PHASE_STYLE = {
    Phase.IDLE: ("○ starting", "dim"),
    Phase.RECORDING: ("● recording", "bold red"),
    Phase.RESET: ("◌ reset the scene", "bold yellow"),
    Phase.DONE: ("■ finishing", "bold"),
}


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def current_episode(snap: RecorderSnapshot) -> int:
    """1-based number, in this session, of the episode being recorded (or recorded next, during the reset);
    an episode whose save is still in flight counts as recorded."""
    return min(snap.num_episodes, snap.recorded + int(snap.saving) + 1)


def _grid() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(ratio=1)
    return table


def status_table(snap: RecorderSnapshot, *, stopping: bool = False, ended: bool = False) -> Table:
    """`stopping`: the stop key was pressed and the last save is in flight; `ended`: all is on disk."""
    table = _grid()
    number = current_episode(snap)
    episode = Text(f"{number} / {snap.num_episodes}")
    if snap.phase is Phase.RECORDING and not snap.saving:
        episode.append(f"   (dataset episode_index {snap.episode})", style="dim")
    table.add_row("episode", episode)
    label, style = PHASE_STYLE[snap.phase]
    phase = Text(label, style=style)
    if ended:
        phase = Text("■ ended" if snap.error else "■ done: the dataset is closed", style="bold")
    elif stopping:
        phase = Text("■ stopping: saving what is recorded, closing the dataset…", style="bold")
    elif snap.phase in (Phase.RECORDING, Phase.RESET):
        phase.append(f"   {snap.time_left_s:4.1f} s left")
        if snap.phase is Phase.RECORDING:
            phase.append(f"   {snap.frames} frames", style="dim")
    if snap.saving and not (stopping or ended):
        phase.append("   saving…", style="cyan")
    table.add_row("phase", phase)
    table.add_row("task", snap.task)
    loop = snap.loop
    if loop is None:
        table.add_row("loop", Text("—", style="dim"))
    else:
        slow = loop.achieved_hz < loop.fps * 0.95 and loop.ticks > loop.fps
        table.add_row(
            "loop",
            Text.assemble(
                (f"{loop.achieved_hz:.1f} Hz", "yellow" if slow else ""),
                f" of {loop.fps:g} · p99 period {loop.period_p99_ms:.1f} ms · {loop.overruns} overruns",
            ),
        )
    frames = Text(f"stale {snap.stale_frames} · dropped {snap.dropped_frames}")
    table.add_row("camera frames", frames)
    table.add_row("servo bus", Text(snap.bus.line(), style="" if snap.bus.clean else "yellow"))
    cameras = Text()
    for i, cam in enumerate(snap.cameras):
        if i:
            cameras.append(" · ")
        name = cam.key.removeprefix(IMAGES_PREFIX)
        full = cam.broken or cam.queue_depth >= cam.queue_cap * 0.8
        cameras.append(
            f"{name} {cam.queue_depth}/{cam.queue_cap} ({cam.lag_s:.2f} s)", style="bold red" if full else ""
        )
    table.add_row("encoder queue", cameras if snap.cameras else Text("— (between episodes)", style="dim"))
    low = snap.disk_free_bytes < LOW_DISK_BYTES
    table.add_row("disk free", Text(human_bytes(snap.disk_free_bytes), style="bold red" if low else ""))
    if snap.error:
        table.add_row(Text("error", style="bold red"), Text(snap.error, style="red"))
    elif snap.message:
        table.add_row("notice", Text(snap.message, style="yellow"))
    return table


def saved_table(saved: Sequence[SavedEpisode]) -> RenderableType:
    if not saved:
        return Text("none yet: an episode is saved when its timer ends or on →", style="dim")
    table = Table(box=None, padding=(0, 1), show_edge=False, header_style="bold")
    for name in ("episode", "frames", "duration", "save"):
        table.add_column(name, justify="right")
    for ep in reversed(saved):  # newest first: it is the one just saved
        table.add_row(
            str(ep.index), str(ep.length), f"{ep.duration_s:.1f} s", f"{ep.save_latency_s * 1000:.0f} ms"
        )
    return table


class RecordStatus(Static):
    """The live status panel."""

    def show(self, snap: RecorderSnapshot, *, stopping: bool = False, ended: bool = False) -> None:
        self.update(status_table(snap, stopping=stopping, ended=ended))


class SavedEpisodes(Static):
    """Episodes saved in this session (index, length, duration, save latency)."""

    def show(self, saved: Sequence[SavedEpisode]) -> None:
        self.update(saved_table(saved))


@dataclass(frozen=True)
class Summary:
    """The end of a recording, for the summary panel."""

    root: Path
    repo_id: str
    recorded: int  # episodes saved in this session
    frames: int  # frames saved in this session
    total_episodes: int  # in the dataset, earlier sessions included
    total_frames: int
    fps: int
    error: str | None


def summary_renderable(summary: Summary, *, train_key: str = "", start_key: str = "") -> RenderableType:
    """What was recorded, where it is, and the commands to check, push and train on it."""
    s = summary
    seconds = s.frames / s.fps if s.fps else 0.0
    head = Text.assemble(
        ("Recording finished" if s.error is None else "Recording stopped", "bold"),
        f" — {s.recorded} episode{'s' if s.recorded != 1 else ''} saved this session "
        f"({s.frames} frames, {seconds:.1f} s)",
    )
    facts = _grid()
    facts.add_row("dataset", f"{s.root}  ({s.repo_id})")
    facts.add_row("", f"{s.total_episodes} episodes · {s.total_frames} frames in total · {s.fps} fps")
    if s.error:
        facts.add_row(Text("error", style="bold red"), Text(s.error, style="red"))
    steps = _grid()
    steps.add_row("check it", f"robotui dataset check {s.root}")
    steps.add_row("inspect it", f"robotui dataset info {s.root}")
    steps.add_row("push it", f"robotui dataset push {s.root} --repo-id {s.repo_id}")
    train = f"press {train_key} (Train), or " if train_key else ""
    steps.add_row(
        "train on it",
        f"{train}lerobot-train --dataset.repo_id={s.repo_id} --dataset.root={s.root} --policy.type=act",
    )
    if start_key:
        steps.add_row(
            "record more", f"{start_key}: the form again, with resume ticked to append to this dataset"
        )
    return Group(head, Text(), facts, Text(), Text("Next", style="bold underline"), steps)
