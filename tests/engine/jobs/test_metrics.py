"""Parsers on real-format lines: LeRobot's console line (§7.1), tqdm's bar, robotui's metrics.jsonl."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.jobs.follow import LineSplitter, LogLine
from engine.jobs.metrics import (
    JobProgress,
    Series,
    parse_console_line,
    parse_metrics_record,
    parse_tqdm_line,
    read_metrics_jsonl,
)
from policies.train.metrics import LogRecord

LEROBOT_LINE = (
    "INFO 2026-08-20 10:00:00 ot_train.py:769 step:200 smpl:2K ep:5 epch:0.08 loss:2.345 grdn:45.678 "
    "lr:1.0e-05 "
    "data_s:0.010 prep_s:0.002 updt_s:0.150 step_s:0.170 smp/s:47 mem_gb:3.21 l1_loss:0.412 kld_loss:0.193"
)


def test_lerobot_console_line() -> None:
    assert parse_console_line(LEROBOT_LINE) == {
        "step": 200,
        "samples": 2000,
        "episodes": 5,
        "epoch": 0.08,
        "loss": 2.345,
        "grad_norm": 45.678,
        "lr": 1e-05,
        "data_s": 0.01,
        "prep_s": 0.002,
        "update_s": 0.15,
        "step_s": 0.17,
        "samples_per_s": 47,
        "mem_gb": 3.21,
        "l1_loss": 0.412,
        "kld_loss": 0.193,
    }


@pytest.mark.parametrize(
    ("token", "value"),
    [("step:12K", 12_000), ("step:3M", 3e6), ("step:2B", 2e9), ("step:999", 999), ("step:1.5K", 1500)],
)
def test_big_number_suffixes(token: str, value: float) -> None:
    assert parse_console_line(f"INFO 2026-08-20 10:00:00   ot_train.py:9 {token} loss:0.500")["step"] == value


def test_robotui_trainers_line_reads_the_same() -> None:
    """robotui's trainer prints LeRobot's line (policies/train/metrics.py); the names match its JSONL keys."""
    record = LogRecord(
        step=1200,
        total_steps=5000,
        samples=9600,
        episodes=12.0,
        epoch=0.4,
        loss=0.25,
        grad_norm=3.5,
        lr=1e-5,
        data_s=0.01,
        prep_s=0.002,
        update_s=0.2,
        step_s=0.21,
        samples_per_s=38.0,
        parts={"l1_loss": 0.2, "kld_loss": 0.005},
    )
    parsed = parse_console_line(f"INFO 2026-08-20 10:00:00 loop.py:240 {record.console_line()}")
    assert parsed is not None and parsed["step"] == 1000  # "1K": rounded, as LeRobot prints it
    exact = {k: v for k, v in record.to_json().items() if k in parsed and k not in ("step", "samples")}
    assert {k: parsed[k] for k in exact} == pytest.approx(exact, abs=1e-3)


@pytest.mark.parametrize(
    ("line", "step", "total", "elapsed", "remaining", "rate"),
    [
        ("Training:  12%|█▏        | 1200/10000 [01:23<10:11, 14.40it/s]", 1200, 10000, 83, 611, 14.4),
        ("Training:   0%|          | 0/10000 [00:00<?, ?it/s]", 0, 10000, 0, None, None),
        ("Training:  50%|█████     | 5/10 [1:02:03<1:00:00,  2.50s/it]", 5, 10, 3723, 3600, 0.4),
        ("\x1b[ATraining: 100%|██████████| 10/10 [00:04<00:00,  2.31it/s]", 10, 10, 4, 0, 2.31),
    ],
)
def test_tqdm_bar(
    line: str, step: int, total: int, elapsed: float, remaining: float | None, rate: float | None
) -> None:
    bar = parse_tqdm_line(line)
    assert bar is not None
    assert (bar.step, bar.total, bar.elapsed_s, bar.remaining_s) == (step, total, elapsed, remaining)
    assert bar.its_per_s == (pytest.approx(rate) if rate else None)


@pytest.mark.parametrize(
    "line",
    [
        "",
        "INFO 2026-08-20 10:00:00 ot_train.py:120 Creating dataset",
        "WARNING 2026-08-20 10:00:00 ot_train.py:1 step: the checkpoint was not saved",
        "step:200 loss:nope lr:1e-5",
        "step:abc",
        "the step:200 came early",
        "Epoch 3: 100%|done",
        "{not json",
        '{"loss": 1.0}',
        '["step", 1]',
        "Traceback (most recent call last):",
    ],
)
def test_garbage_is_ignored(line: str) -> None:
    progress = JobProgress()
    assert not progress.feed_line(line)
    assert parse_console_line(line) is None and parse_tqdm_line(line) is None
    assert progress.step is None and progress.series == {}


def test_metrics_record_keeps_numbers_only() -> None:
    record = parse_metrics_record(
        '{"step": 10, "loss": 0.5, "lr": null, "note": "x", "ok": true, "l1_loss": 1}'
    )
    assert record == {"step": 10, "loss": 0.5, "l1_loss": 1}


def test_progress_prefers_the_exact_step_and_tqdm_eta() -> None:
    progress = JobProgress(total=None)
    progress.feed_line("Training:  21%|██        | 2100/10000 [02:00<07:31, 17.50it/s]")
    progress.feed_line(LEROBOT_LINE.replace("step:200", "step:2K"))
    assert (progress.step, progress.total, progress.eta_s) == (2100, 10000, 451)  # "2K" does not step back
    assert (progress.loss, progress.lr, progress.samples_per_s) == (2.345, 1e-05, 47)
    assert progress.fraction == pytest.approx(0.21)
    assert progress.series["loss"].steps == [2000] and progress.series["grad_norm"].values == [45.678]


def test_progress_eta_from_step_time_without_a_bar() -> None:
    progress = JobProgress(total=1000)
    progress.feed_record({"step": 400, "loss": 1.0, "step_s": 0.5, "time": 1.7e9})
    assert progress.eta_s == 300 and "time" not in progress.series


def test_series_memory_is_bounded_and_even() -> None:
    series = Series(max_points=100)
    for step in range(10_000):
        series.append(step, float(step))
    assert 50 <= len(series) <= 100
    gaps = {b - a for a, b in zip(series.steps, series.steps[1:], strict=False)}
    assert series.steps[0] == 0 and len(gaps) == 1


def test_read_metrics_jsonl_skips_a_cut_line(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 2.0, "total_steps": 3}\n{"step": 2, "loss": 1.0}\n{"step": 3, "lo')
    progress = read_metrics_jsonl(path)
    assert (progress.step, progress.loss, progress.total) == (2, 1.0, 3)
    assert progress.series["loss"].values == [2.0, 1.0]


def test_line_splitter_offsets_and_line_ends() -> None:
    splitter = LineSplitter()
    data = b"one\r\ntwo\rthree\nfour"
    got: list[LogLine] = []
    for i in range(len(data)):  # byte by byte: "\r\n" arrives split
        got += splitter.feed(data[i : i + 1])
    assert got == [LogLine("one"), LogLine("two", overwrite=True), LogLine("three")]
    assert splitter.consumed == len(b"one\r\ntwo\rthree\n")
    assert splitter.flush() == [LogLine("four")] and splitter.consumed == len(data)
    assert LineSplitter().feed("é\n".encode()[:1] + b"\n") == [LogLine("\ufffd")]
