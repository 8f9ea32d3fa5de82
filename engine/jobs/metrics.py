"""Training progress from what a run writes: robotui's `metrics.jsonl`, `lerobot-train`'s console lines
(robotui's trainer prints the same) and the tqdm bar, folded into one `JobProgress`.

Console lines look like (lerobot-interop.md §7.1)
`INFO 2026-08-20 10:00:00 ot_train.py:769 step:200 smpl:2K ep:5 epch:0.08 loss:2.345 grdn:45.678 ...`:
`step`, `smpl` and `ep` are rounded with K/M/B/T/Q suffixes, so the tqdm bar (`1200/10000 [01:23<10:11, ...]`)
is the exact step when both are there. Names are mapped to the metrics.jsonl ones (grdn -> grad_norm, ...).
Anything else in the log is ignored.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONSOLE_NAMES = {
    "grdn": "grad_norm",
    "updt_s": "update_s",
    "smp/s": "samples_per_s",
    "epch": "epoch",
    "smpl": "samples",
    "ep": "episodes",
}
NOT_PLOTTED = frozenset({"step", "total_steps", "time"})
_SUFFIX = {"": 1, "K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12, "Q": 1e15}
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)"
_TOKEN = re.compile(rf"(?P<key>[A-Za-z_][\w/]*):(?P<num>{_NUMBER})(?P<suffix>[KMBTQ]?)")
_LOG_PREFIX = re.compile(r"^[A-Z]+ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+\S+\s+")
_TQDM = re.compile(
    r"(?:^|\s)(?P<pct>\d{1,3})%\|[^|]*\|\s*(?P<n>\d+)/(?P<total>\d+)\s*"
    r"\[(?P<elapsed>[\d:]+)<(?P<remaining>[\d:]+|\?),\s*(?P<rate>[\d.]+|\?)\s*(?P<unit>it/s|s/it)\]"
)


def _number(text: str, suffix: str = "") -> float:
    return float(text) * _SUFFIX[suffix]


def parse_console_line(line: str) -> dict[str, float] | None:
    """A `step:… loss:…` line as {name: value} (metrics.jsonl names), else None.

    Every token from `step:` on must be `name:number`, so prose that merely mentions "step:" is not taken.
    """
    text = _LOG_PREFIX.sub("", line.strip(), count=1)
    if not text.startswith("step:"):
        return None
    out: dict[str, float] = {}
    for token in text.split():
        match = _TOKEN.fullmatch(token)
        if match is None:
            return None
        out[CONSOLE_NAMES.get(match["key"], match["key"])] = _number(match["num"], match["suffix"])
    return out


def _seconds(clock: str) -> float | None:
    """tqdm's `MM:SS` or `H:MM:SS` (None for "?")."""
    if not clock or clock == "?":
        return None
    total = 0.0
    for part in clock.split(":"):
        total = total * 60 + int(part)
    return total


@dataclass(frozen=True)
class TqdmProgress:
    step: int
    total: int
    elapsed_s: float | None
    remaining_s: float | None
    its_per_s: float | None


def parse_tqdm_line(line: str) -> TqdmProgress | None:
    match = _TQDM.search(line)
    if match is None:
        return None
    rate: float | None = None
    if match["rate"] != "?":
        value = float(match["rate"])
        rate = value if match["unit"] == "it/s" else (1.0 / value if value else None)
    return TqdmProgress(
        step=int(match["n"]),
        total=int(match["total"]),
        elapsed_s=_seconds(match["elapsed"]),
        remaining_s=_seconds(match["remaining"]),
        its_per_s=rate,
    )


def parse_metrics_record(line: str) -> dict[str, float] | None:
    """One metrics.jsonl line: a JSON object with a numeric `step`; only its numeric values are kept."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict) or not _is_number(obj.get("step")):
        return None
    return {k: float(v) for k, v in obj.items() if _is_number(v)}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class Series:
    """(step, value) points for a plot in bounded memory: past `max_points`, every other point is dropped
    and from then on only every `stride`-th new one is kept, so the whole run stays evenly covered."""

    def __init__(self, max_points: int = 1000) -> None:
        self.max_points = max_points
        self.steps: list[float] = []
        self.values: list[float] = []
        self._stride = 1
        self._count = 0

    def append(self, step: float, value: float) -> None:
        self._count += 1
        if (self._count - 1) % self._stride:
            return
        self.steps.append(step)
        self.values.append(value)
        if len(self.steps) > self.max_points:
            del self.steps[1::2]
            del self.values[1::2]
            self._stride *= 2

    def __len__(self) -> int:
        return len(self.steps)


@dataclass
class JobProgress:
    """The latest figures of a run and its curves. Feed it log lines or metrics records in order."""

    total: int | None = None
    step: int | None = None
    loss: float | None = None
    lr: float | None = None
    samples_per_s: float | None = None
    eta_s: float | None = None
    its_per_s: float | None = None
    latest: dict[str, float] = field(default_factory=dict)
    series: dict[str, Series] = field(default_factory=dict)
    max_points: int = 1000

    def feed_line(self, line: str) -> bool:
        """Take one log line (console, tqdm or a JSON metrics record); whether it said anything."""
        bar = parse_tqdm_line(line)
        if bar is not None:
            self.step, self.total = bar.step, bar.total or self.total
            self.eta_s, self.its_per_s = bar.remaining_s, bar.its_per_s
            return True
        record = parse_console_line(line) or parse_metrics_record(line)
        if record is None:
            return False
        self.feed_record(record, exact_step=False)
        return True

    def feed_record(self, record: dict[str, float], *, exact_step: bool = True) -> None:
        """One set of metrics at a step (metrics.jsonl steps are exact; console steps may be rounded)."""
        step = record.get("step")
        if step is None:
            return
        if record.get("total_steps"):
            self.total = int(record["total_steps"])
        if exact_step or self.step is None or step > self.step:
            self.step = int(step)
        self.latest = dict(record)
        self.loss = record.get("loss", self.loss)
        self.lr = record.get("lr", self.lr)
        self.samples_per_s = record.get("samples_per_s", self.samples_per_s)
        for name, value in record.items():
            if name not in NOT_PLOTTED and math.isfinite(value):
                self.series.setdefault(name, Series(self.max_points)).append(step, value)
        # Without a tqdm bar (its ETA is better), the seconds per step give one.
        step_s = record.get("step_s") or (record.get("data_s", 0.0) + record.get("update_s", 0.0))
        if self.total and step_s and self.its_per_s is None:
            self.eta_s = max(0.0, self.total - step) * step_s

    @property
    def fraction(self) -> float | None:
        if self.step is None or not self.total:
            return None
        return min(1.0, self.step / self.total)


def read_metrics_jsonl(path: Path, progress: JobProgress | None = None) -> JobProgress:
    """Fold a whole metrics.jsonl into `progress` (a new one by default); bad lines are skipped."""
    progress = progress or JobProgress()
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            record = parse_metrics_record(line)
            if record is not None:
                progress.feed_record(record)
    return progress
