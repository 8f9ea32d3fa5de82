"""Bring a dataset back to its last committed episode after a crash, kill or power cut.

The writer commits an episode by writing its row into the episodes parquet, after the video segments, data
rows and tasks it points to. So whatever was interrupted is beyond the last committed row: temp files, a
staging directory, a video tail or data rows that no episode references, a task nobody used, stale totals.
`recover` removes those and rewrites info.json and stats.json from the episodes parquet; every committed
episode is left byte-for-byte as it was (a file is only ever replaced atomically by a trimmed copy).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from engine.dataset import format as fmt
from engine.dataset.stats import (
    FeatureStats,
    aggregate_stats,
    stats_from_json,
    stats_to_json,
    unflatten_stats,
)
from engine.dataset.video import Segment, remux, video_frames, video_info_block

log = logging.getLogger(__name__)

UNREADABLE_SUFFIX = ".unreadable"


@dataclass
class RecoveryReport:
    root: Path
    episodes: int = 0
    frames: int = 0
    removed: list[str] = field(default_factory=list)  # paths relative to root
    truncated: list[str] = field(default_factory=list)
    set_aside: list[str] = field(default_factory=list)  # unreadable files renamed with UNREADABLE_SUFFIX
    dropped_episodes: list[int] = field(default_factory=list)
    dropped_tasks: list[str] = field(default_factory=list)
    rewrote: list[str] = field(default_factory=list)  # metadata files rewritten

    @property
    def changed(self) -> bool:
        return bool(self.removed or self.truncated or self.set_aside or self.dropped_episodes or self.rewrote)

    def summary(self) -> str:
        if not self.changed:
            return f"dataset consistent: {self.episodes} episodes, {self.frames} frames"
        parts = [f"recovered to {self.episodes} episodes, {self.frames} frames"]
        if self.dropped_episodes:
            parts.append(f"dropped incomplete episodes {self.dropped_episodes}")
        if self.removed:
            parts.append(f"removed {len(self.removed)} leftover files")
        if self.truncated:
            parts.append(f"trimmed {', '.join(self.truncated)}")
        if self.set_aside:
            parts.append(f"set aside unreadable {', '.join(self.set_aside)}")
        if self.dropped_tasks:
            parts.append(f"dropped unused tasks {self.dropped_tasks}")
        if self.rewrote:
            parts.append(f"rewrote {', '.join(self.rewrote)}")
        return "; ".join(parts)


def _rel(root: Path, path: Path) -> str:
    return str(path.relative_to(root))


def _chunk_file(path: Path) -> tuple[int, int]:
    """(chunk, file) from `.../chunk-XXX/file-YYY.ext`."""
    return int(path.parent.name.split("-")[1]), int(path.stem.split("-")[1])


def _listed(root: Path, pattern: str) -> list[Path]:
    return sorted(p for p in root.glob(pattern) if p.is_file())


def load_episode_rows(root: Path, *, with_stats: bool = True) -> list[dict[str, Any]]:
    """Every row of the episodes parquet files, ordered by episode_index."""
    rows: list[dict[str, Any]] = []
    for path in _listed(root, "meta/episodes/chunk-*/file-*.parquet"):
        table = pq.read_table(path)
        if not with_stats:
            table = table.select([c for c in table.column_names if not c.startswith("stats/")])
        rows.extend(table.to_pylist())
    rows.sort(key=lambda r: int(r["episode_index"]))
    return rows


def recover(root: str | Path) -> RecoveryReport:
    """Remove what an interrupted episode left behind and make the metadata match the committed episodes.

    Raises DatasetBusyError while another process is recording into the dataset: its temp files are not
    leftovers yet.
    """
    root = Path(root)
    if not (root / fmt.INFO_PATH).is_file():
        raise FileNotFoundError(f"{root} is not a dataset (no {fmt.INFO_PATH})")
    with fmt.DatasetLock(root):
        return recover_locked(root)


def recover_locked(root: Path) -> RecoveryReport:
    """`recover` for a caller that already holds the dataset's lock (the writer, when resuming)."""
    info_path = root / fmt.INFO_PATH
    if not info_path.is_file():
        raise FileNotFoundError(f"{root} is not a dataset (no {fmt.INFO_PATH})")
    report = RecoveryReport(root)
    info = fmt.read_json(info_path)
    fps = int(info["fps"])
    features = info["features"]
    vkeys = fmt.video_keys(features)

    for tmp in sorted(root.rglob("*" + fmt.TEMP_SUFFIX)):
        tmp.unlink()
        report.removed.append(_rel(root, tmp))
    staging = root / fmt.STAGING_DIR
    if staging.exists():
        report.removed.extend(_rel(root, p) for p in sorted(staging.rglob("*")) if p.is_file())
        report.removed.append(fmt.STAGING_DIR + "/")
        shutil.rmtree(staging)

    rows = _readable_episode_rows(root, report)
    rows = _contiguous_prefix(rows, report)
    while rows and not _episode_intact(root, rows[-1], fps, vkeys):
        report.dropped_episodes.append(int(rows[-1]["episode_index"]))
        rows.pop()
    _rewrite_episode_files(root, rows, report)
    _trim_data(root, rows, report)
    for key in vkeys:
        _trim_videos(root, key, rows, fps, report)
    tasks = _trim_tasks(root, rows, report)
    _rewrite_metadata(root, info, rows, tasks, report)
    report.episodes = len(rows)
    report.frames = sum(int(r["length"]) for r in rows)
    if report.changed:
        log.warning("%s: %s", root, report.summary())
    return report


def _readable_episode_rows(root: Path, report: RecoveryReport) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in _listed(root, "meta/episodes/chunk-*/file-*.parquet"):
        try:
            rows.extend(pq.read_table(path).to_pylist())
        except (OSError, pa.ArrowException) as exc:  # e.g. a footer-less file from an unfinalized LeRobot run
            log.error("%s is unreadable (%s); setting it aside", path, exc)
            path.rename(path.with_name(path.name + UNREADABLE_SUFFIX))
            report.set_aside.append(_rel(root, path))
    rows.sort(key=lambda r: int(r["episode_index"]))
    return rows


def _contiguous_prefix(rows: list[dict[str, Any]], report: RecoveryReport) -> list[dict[str, Any]]:
    """Episodes 0..E-1 with contiguous global indices; anything after the first gap cannot be trusted."""
    kept: list[dict[str, Any]] = []
    for row in rows:
        expected_from = int(kept[-1]["dataset_to_index"]) if kept else 0
        ok = (
            int(row["episode_index"]) == len(kept)
            and int(row["dataset_from_index"]) == expected_from
            and int(row["dataset_to_index"]) - expected_from == int(row["length"]) > 0
        )
        if not ok:
            report.dropped_episodes.extend(int(r["episode_index"]) for r in rows[len(kept) :])
            break
        kept.append(row)
    return kept


def _data_path(root: Path, row: dict[str, Any]) -> Path:
    return root / fmt.chunk_file_path(
        fmt.DEFAULT_DATA_PATH, int(row["data/chunk_index"]), int(row["data/file_index"])
    )


def _video_path(root: Path, key: str, row: dict[str, Any]) -> Path:
    c, f = int(row[f"videos/{key}/chunk_index"]), int(row[f"videos/{key}/file_index"])
    return root / fmt.chunk_file_path(fmt.DEFAULT_VIDEO_PATH, c, f, video_key=key)


def _episode_intact(root: Path, row: dict[str, Any], fps: int, vkeys: Iterable[str]) -> bool:
    """Whether the data rows and video frames an episode points to are all on disk."""
    ep, start, stop = int(row["episode_index"]), int(row["dataset_from_index"]), int(row["dataset_to_index"])
    try:
        table = pq.read_table(_data_path(root, row), columns=["episode_index", "index"])
        mine = table.filter(pc.equal(table["episode_index"], ep))
        if mine.column("index").to_pylist() != list(range(start, stop)):
            return False
        for key in vkeys:
            frames, _ = video_frames(_video_path(root, key, row))
            if frames < round(float(row[f"videos/{key}/to_timestamp"]) * fps):
                return False
    except Exception as exc:  # missing or unreadable file: the episode cannot be used
        log.error("episode %d is incomplete: %s", ep, exc)
        return False
    return True


def _rewrite_episode_files(root: Path, rows: list[dict[str, Any]], report: RecoveryReport) -> None:
    """Drop rows of dropped episodes from the episodes files that hold them (and files left empty)."""
    kept = {int(r["episode_index"]) for r in rows}
    for path in _listed(root, "meta/episodes/chunk-*/file-*.parquet"):
        table = pq.read_table(path)
        eps = table.column("episode_index").to_pylist()
        if all(e in kept for e in eps):
            continue
        mask = pa.array([e in kept for e in eps])
        remaining = table.filter(mask)
        if remaining.num_rows == 0:
            path.unlink()
            report.removed.append(_rel(root, path))
        else:
            fmt.write_parquet_atomic(
                path, [remaining.slice(i, 1) for i in range(remaining.num_rows)], table.schema
            )
            report.rewrote.append(_rel(root, path))


def _trim_data(root: Path, rows: list[dict[str, Any]], report: RecoveryReport) -> None:
    """Each data file keeps exactly the rows of the episodes that point to it; others are removed."""
    wanted: dict[Path, set[int]] = {}
    for row in rows:
        wanted.setdefault(_data_path(root, row).resolve(), set()).add(int(row["episode_index"]))
    for path in _listed(root, "data/chunk-*/file-*.parquet"):
        eps = wanted.get(path.resolve())
        if eps is None:
            path.unlink()
            report.removed.append(_rel(root, path))
            continue
        pf = pq.ParquetFile(path)
        column = pf.read(columns=["episode_index"]).column("episode_index").to_pylist()
        if set(column) <= eps:
            continue
        groups = []
        for i in range(pf.num_row_groups):  # one row group per episode; keep the structure
            group = pf.read_row_group(i)
            mask = pc.is_in(group["episode_index"], value_set=pa.array(sorted(eps), type=pa.int64()))
            group = group.filter(mask)
            if group.num_rows:
                groups.append(group)
        fmt.write_parquet_atomic(path, groups, pf.schema_arrow)
        report.truncated.append(_rel(root, path))


def _trim_videos(root: Path, key: str, rows: list[dict[str, Any]], fps: int, report: RecoveryReport) -> None:
    """Each video file keeps the frames up to its last episode's `to_timestamp`; unreferenced files go."""
    frames_needed: dict[Path, int] = {}
    for row in rows:
        path = _video_path(root, key, row).resolve()
        end = round(float(row[f"videos/{key}/to_timestamp"]) * fps)
        frames_needed[path] = max(frames_needed.get(path, 0), end)
    for path in _listed(root, f"videos/{key}/chunk-*/file-*.mp4"):
        needed = frames_needed.get(path.resolve())
        if needed is None:
            path.unlink()
            report.removed.append(_rel(root, path))
            continue
        frames, _ = video_frames(path)
        if frames > needed:
            tmp = fmt.temp_path(path)
            remux([Segment(path, needed)], tmp, fps)
            fmt.commit(tmp, path)
            report.truncated.append(_rel(root, path))


def _trim_tasks(root: Path, rows: list[dict[str, Any]], report: RecoveryReport) -> list[str]:
    path = root / fmt.TASKS_PATH
    if not path.is_file():
        return []
    tasks = fmt.read_tasks(path)
    used = {t for r in rows for t in r["tasks"]}
    keep = len(tasks)
    while keep and tasks[keep - 1] not in used:  # tasks are numbered in first-seen order: leftovers trail
        keep -= 1
    if keep == len(tasks):
        return tasks
    report.dropped_tasks.extend(tasks[keep:])
    tasks = tasks[:keep]
    if tasks:
        table = fmt.tasks_table(tasks)
        fmt.write_parquet_atomic(path, [table], table.schema)
        report.rewrote.append(fmt.TASKS_PATH)
    else:
        path.unlink()
        report.removed.append(fmt.TASKS_PATH)
    return tasks


def _rewrite_metadata(
    root: Path, info: dict[str, Any], rows: list[dict[str, Any]], tasks: list[str], report: RecoveryReport
) -> None:
    before = fmt.read_json(root / fmt.INFO_PATH)
    fmt.set_totals(info, episodes=len(rows), frames=sum(int(r["length"]) for r in rows), tasks=len(tasks))
    if rows:
        for key in fmt.video_keys(info["features"]):
            block = info["features"][key].get("info") or {}
            if "video.codec" not in block:
                info["features"][key]["info"] = video_info_block(_video_path(root, key, rows[0]), block)
    if info != before:
        fmt.write_json_atomic(root / fmt.INFO_PATH, info)
        report.rewrote.append(fmt.INFO_PATH)

    stats_path = root / fmt.STATS_PATH
    if rows:
        stats = aggregate_stats(unflatten_stats(r) for r in rows)
        if not _same_stats(stats_path, stats):
            fmt.write_json_atomic(stats_path, stats_to_json(stats))
            report.rewrote.append(fmt.STATS_PATH)
    elif stats_path.is_file():
        stats_path.unlink()
        report.removed.append(fmt.STATS_PATH)


def _same_stats(path: Path, stats: FeatureStats) -> bool:
    """Whether stats.json already says `stats` (to rounding: another writer may sum in another order)."""
    try:
        old = stats_from_json(fmt.read_json(path))
        return set(old) == set(stats) and all(
            set(old[k]) == set(st)
            and all(np.allclose(old[k][s], v, rtol=1e-9, atol=1e-12) for s, v in st.items())
            for k, st in stats.items()
        )
    except (OSError, ValueError, TypeError):
        return False
