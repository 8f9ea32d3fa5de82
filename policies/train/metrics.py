"""Training metrics: windowed averages, LeRobot's console line and robotui's metrics.jsonl.

The console line is LeRobot's `MetricsTracker.__str__` token for token (lerobot-interop.md §7.1), e.g.
`step:200 smpl:2K ep:5 epch:0.08 loss:2.345 grdn:45.678 lr:1.0e-05 data_s:0.010 prep_s:0.002 updt_s:0.150
step_s:0.170 smp/s:47 l1_loss:0.412 kld_loss:0.193`, printed after LeRobot's log prefix, so a parser written
for `lerobot-train` output reads robotui's too. The JSONL file carries the same numbers with full precision,
one object per logged step.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

METRICS_FILE = "metrics.jsonl"
LOG_FORMAT = "%(levelname)s %(asctime)s %(location)15s %(message)s"  # LeRobot's init_logging format
LOG_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def format_big_number(num: float, precision: int = 0) -> str:
    """1234 -> '1K', 2_500_000 -> '2M' (LeRobot's K/M/B/T/Q suffixes)."""
    for suffix in ("", "K", "M", "B", "T", "Q"):
        if abs(num) < 1000.0:
            return f"{num:.{precision}f}{suffix}"
        num /= 1000.0
    return f"{num:.{precision}f}Q"


class LeRobotFormatter(logging.Formatter):
    """`INFO 2026-08-20 10:00:00 ot_train.py:769 message`: LeRobot's prefix, whose location is the last 15
    characters of `file:line`."""

    def __init__(self) -> None:
        super().__init__(LOG_FORMAT, datefmt=LOG_DATE_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        record.location = f"{record.filename}:{record.lineno}"[-15:]
        return super().format(record)


def lerobot_log_handler(stream: IO[str]) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(LeRobotFormatter())
    return handler


@dataclass
class WindowStats:
    """Sums over the steps since the last log line; averaged when the line is written."""

    steps: int = 0
    sums: dict[str, float] = field(default_factory=dict)

    def add(self, values: Mapping[str, float]) -> None:
        self.steps += 1
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value)

    def means(self) -> dict[str, float]:
        return {k: v / max(1, self.steps) for k, v in self.sums.items()}

    def reset(self) -> None:
        self.steps = 0
        self.sums.clear()


@dataclass(frozen=True)
class LogRecord:
    """One logged step: the window's averages plus the run's position."""

    step: int
    total_steps: int
    samples: int
    episodes: float
    epoch: float
    loss: float
    grad_norm: float
    lr: float
    data_s: float
    prep_s: float
    update_s: float
    step_s: float
    samples_per_s: float
    parts: Mapping[str, float]  # the policy's own scalars (ACT: l1_loss, kld_loss)
    mem_gb: float | None = None

    def console_line(self) -> str:
        tokens = [
            f"step:{format_big_number(self.step)}",
            f"smpl:{format_big_number(self.samples)}",
            f"ep:{format_big_number(self.episodes)}",
            f"epch:{self.epoch:.2f}",
            f"loss:{self.loss:.3f}",
            f"grdn:{self.grad_norm:.3f}",
            f"lr:{self.lr:0.1e}",
            f"data_s:{self.data_s:.3f}",
            f"prep_s:{self.prep_s:.3f}",
            f"updt_s:{self.update_s:.3f}",
            f"step_s:{self.step_s:.3f}",
            f"smp/s:{self.samples_per_s:.0f}",
        ]
        if self.mem_gb is not None:
            tokens.append(f"mem_gb:{self.mem_gb:.2f}")
        tokens.extend(f"{name}:{value:.3f}" for name, value in self.parts.items())
        return " ".join(tokens)

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "step": self.step,
            "total_steps": self.total_steps,
            "samples": self.samples,
            "episodes": self.episodes,
            "epoch": self.epoch,
            "loss": self.loss,
            **{name: value for name, value in self.parts.items()},
            "grad_norm": self.grad_norm,
            "lr": self.lr,
            "data_s": self.data_s,
            "prep_s": self.prep_s,
            "update_s": self.update_s,
            "step_s": self.step_s,
            "samples_per_s": self.samples_per_s,
            "time": time.time(),
        }
        if self.mem_gb is not None:
            record["mem_gb"] = self.mem_gb
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}


class MetricsFile:
    """Appends one JSON object per line and flushes it, so a tail (local or over SSH) sees each step live."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("a", encoding="utf-8")

    def write(self, record: LogRecord) -> None:
        self._file.write(json.dumps(record.to_json()) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def truncate_after(path: Path, step: int) -> None:
    """Drop records past `step` (written by a run that died after its last checkpoint) before a resume
    appends, so the curve has one value per step. Rewritten atomically."""
    if not path.is_file():
        return
    kept: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record_step = int(json.loads(line).get("step", 0))
        except (ValueError, AttributeError, TypeError):
            continue  # a line cut short by the crash
        if record_step <= step:
            kept.append(line)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(k + "\n" for k in kept), encoding="utf-8")
    os.replace(tmp, path)
