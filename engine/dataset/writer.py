"""DatasetWriter: records LeRobotDataset v3.0 episodes with video encoded during capture and crash-safe saves.

Per frame (control thread): numeric values are buffered and each camera image goes to its camera's
`StreamingEncoder` queue, so `add_frame` costs a few copies and never waits on an encoder.

Crash safety. LeRobot keeps its parquet writers open until `finalize()`, so a crash leaves footer-less,
unreadable files. Here a committed file is never open for writing: each save builds the new version of the
current data file and of each camera's current video file in a temp file, fsyncs it and renames it over the
old one. The episodes parquet is the commit point: an episode exists once its row is there, and that row is
written after the videos and data rows it points to. A kill at any moment therefore leaves, at worst, temp
files or tails beyond the last committed episode, which `recover` removes.

Zero-wait saves. Rebuilding a large file at save time would make saves slow as files grow, so the rebuild
starts when the episode begins: background threads copy what the current files already hold into their
temp files while the episode is recorded. `save_episode` then only flushes the encoders' tails, appends
the episode's own packets and rows, and writes the small metadata files.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from engine.dataset import format as fmt
from engine.dataset import language
from engine.dataset.recovery import RecoveryReport, load_episode_rows, recover, recover_locked

__all__ = [
    "CameraStatus",
    "DatasetMismatchError",
    "DatasetWriter",
    "EpisodeInfo",
    "EpisodeRefused",
    "LanguageAnchor",
    "recover",
]
from engine.dataset.stats import (
    FeatureStats,
    aggregate_stats,
    flatten_stats,
    numeric_stats,
    stats_from_json,
    stats_to_json,
)
from engine.dataset.video import (
    EncodedEpisode,
    EncoderError,
    Segment,
    StreamingEncoder,
    VideoAppender,
    VideoEncoding,
    video_info_block,
)

log = logging.getLogger(__name__)

MB = 1024 * 1024
# Each episode re-copies its camera's current video file and the current data file in the background; this
# caps that work (files rotate earlier than the info.json limits when those are larger).
DEFAULT_MAX_REWRITE_MB = 64.0
DEFAULT_QUEUE_CAP_S = 2.0

# Tests set this to kill the process at named points of a save (see tests/engine/dataset/test_writer.py).
fault_hook: Callable[[str], None] | None = None


def _checkpoint(name: str) -> None:
    if fault_hook is not None:
        fault_hook(name)


class DatasetMismatchError(ValueError):
    """Resuming a dataset with a different fps, robot type, features or video codec."""


class EpisodeRefused(RuntimeError):
    """The episode cannot be saved consistently (encoder fell behind or failed); it was discarded."""


@dataclass(frozen=True)
class EpisodeInfo:
    episode_index: int
    length: int
    duration_s: float
    tasks: tuple[str, ...]
    dataset_from_index: int
    dataset_to_index: int
    save_latency_s: float  # the whole save_episode call
    flush_s: float  # of which: waiting for the encoders' tails


@dataclass(frozen=True)
class CameraStatus:
    key: str
    queue_depth: int
    queue_cap: int
    max_depth: int
    frames_fed: int
    frames_encoded: int
    lag_s: float
    broken: bool


class _ParquetAppender:
    """Writes a data file's existing row groups into its temp file on a thread while the episode is
    recorded; `append` adds the episode's row group and closes the file (footer and all)."""

    def __init__(self, path: Path, schema: pa.Schema, base: list[pa.Table]) -> None:
        self.tmp = fmt.temp_path(path)
        self.tmp.parent.mkdir(parents=True, exist_ok=True)
        self._schema = schema
        self._base = base
        self._writer: pq.ParquetWriter | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._prepare, name="data-appender", daemon=True)
        self._thread.start()

    def _prepare(self) -> None:
        try:
            self._writer = pq.ParquetWriter(self.tmp, self._schema, compression="snappy", use_dictionary=True)
            for table in self._base:
                self._writer.write_table(table, row_group_size=table.num_rows)
            if self._base:
                fmt.fsync_file(self.tmp)  # flush the copy now, so the commit's fsync is short
        except BaseException as exc:
            self._error = exc

    def append(self, table: pa.Table) -> Path:
        self._thread.join()
        if self._error is not None or self._writer is None:
            raise RuntimeError(f"could not rebuild {self.tmp.name}: {self._error!r}") from self._error
        self._writer.write_table(table, row_group_size=table.num_rows)
        self._writer.close()
        self._writer = None
        return self.tmp

    def cancel(self) -> None:
        self._thread.join()
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
            self._writer = None
        self.tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class LanguageAnchor:
    """A frame of an episode in progress that language events can be attached to later (e.g. the frame a
    question was asked on, once the answer arrives)."""

    episode_index: int
    frame_index: int


@dataclass
class _Episode:
    index: int
    task: str
    encoders: dict[str, StreamingEncoder]
    columns: dict[str, list[np.ndarray]]
    data: _ParquetAppender
    videos: dict[str, VideoAppender]
    frame_tasks: list[str] = field(default_factory=list)
    events: dict[int, list[language.LanguageRow]] = field(default_factory=dict)  # frame index -> rows

    @property
    def length(self) -> int:
        return len(self.frame_tasks)

    def cancel(self) -> None:
        for enc in self.encoders.values():
            enc.cancel()
        for app in self.videos.values():
            app.cancel()
        self.data.cancel()


@dataclass
class _FileCursor:
    """The file new rows/segments go to, and what it already holds (kept in memory, rewritten per save)."""

    chunk: int = 0
    file: int = 0
    size: int = 0  # bytes on disk
    units: int = 0  # rows (data, episodes) or frames (video) already in the file
    tables: list[pa.Table] = field(default_factory=list)  # data/episodes files: their content
    last_bytes: int = 0  # what the last episode added: the estimate for the next one

    def rotate_if_full(self, limit: float, chunks_size: int) -> None:
        if self.units and self.size + self.last_bytes >= limit:
            self.advance(chunks_size)

    def advance(self, chunks_size: int) -> None:
        self.chunk, self.file = fmt.next_chunk_file(self.chunk, self.file, chunks_size)
        self.size = self.units = 0
        self.tables = []


class DatasetWriter:
    """Writes episodes into a LeRobotDataset v3.0 directory; use `create` or `resume`.

    `begin_episode`/`add_frame` run on the control thread, `save_episode`/`discard_episode` on any one other
    thread (not concurrently with each other); the status properties may be read from any thread.
    """

    def __init__(
        self,
        lock: fmt.DatasetLock,
        root: Path,
        info: dict[str, Any],
        *,
        encoding: VideoEncoding | None,
        repo_id: str | None,
        queue_cap_s: float,
        max_rewrite_mb: float,
    ) -> None:
        self._dataset_lock = lock
        self.root = root
        self.info = info
        self.repo_id = repo_id
        self.features: dict[str, dict[str, Any]] = info["features"]
        self.fps = int(info["fps"])
        self.encoding = encoding
        self.queue_cap = max(2, round(queue_cap_s * self.fps))
        self.max_rewrite_mb = max_rewrite_mb
        self.video_keys = fmt.video_keys(self.features)
        self._frame_keys = fmt.frame_keys(self.features)
        self._numeric_keys = [k for k in self._frame_keys if k not in self.video_keys]
        self._data_schema = fmt.data_schema(self.features)
        self._episodes_schema = fmt.episodes_schema(self.features)
        self.tasks: list[str] = []
        self.total_episodes = 0
        self.total_frames = 0
        self.stats: FeatureStats = {}
        self._data = _FileCursor()
        self._meta = _FileCursor()
        self._videos = {k: _FileCursor() for k in self.video_keys}
        self._episode: _Episode | None = None
        self._lock = threading.Lock()
        self._saving = False
        self._closed = False
        self.last_recovery: RecoveryReport | None = None
        # pyarrow imports pandas on its first numpy conversion (~0.4 s); pay that now, not in the first save.
        pa.array(np.zeros(1, dtype=np.float32))

    # ------------------------------------------------------------------------------------ construction

    @classmethod
    def create(
        cls,
        root: str | Path,
        fps: int,
        features: Mapping[str, Mapping[str, Any]],
        robot_type: str | None,
        *,
        vcodec: str = "libsvtav1",
        encoding: VideoEncoding | None = None,
        repo_id: str | None = None,
        chunks_size: int = fmt.DEFAULT_CHUNK_SIZE,
        data_files_size_in_mb: float = fmt.DEFAULT_DATA_FILE_SIZE_IN_MB,
        video_files_size_in_mb: float = fmt.DEFAULT_VIDEO_FILE_SIZE_IN_MB,
        queue_cap_s: float = DEFAULT_QUEUE_CAP_S,
        max_rewrite_mb: float = DEFAULT_MAX_REWRITE_MB,
    ) -> DatasetWriter:
        """Start a new dataset in `root`, which must not exist or be empty.

        `encoding` overrides `vcodec` with full encoder settings; either way the codec is resolved (and
        `auto` picked) now, so a missing encoder fails here rather than in the first episode.
        """
        root = Path(root)
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise FileExistsError(
                f"{root} already exists and is not empty (resume it, or pick a new directory)"
            )
        full = _with_defaults(features)
        _refuse_images(full)
        enc = None
        if fmt.video_keys(full):
            enc = (encoding or VideoEncoding(vcodec=vcodec)).resolved()
        info = fmt.new_info(
            fps=int(fps),
            features=full,
            robot_type=robot_type,
            chunks_size=chunks_size,
            data_files_size_in_mb=data_files_size_in_mb,
            video_files_size_in_mb=video_files_size_in_mb,
        )
        if enc is not None:
            for key in fmt.video_keys(full):
                info["features"][key]["info"] = {"is_depth_map": False, **enc.info_fields()}
        root.mkdir(parents=True, exist_ok=True)
        lock = fmt.DatasetLock(root).acquire()
        try:
            fmt.write_json_atomic(root / fmt.INFO_PATH, info)
        except BaseException:
            lock.release()
            raise
        return cls(
            lock,
            root,
            info,
            encoding=enc,
            repo_id=repo_id,
            queue_cap_s=queue_cap_s,
            max_rewrite_mb=max_rewrite_mb,
        )

    @classmethod
    def resume(
        cls,
        root: str | Path,
        *,
        fps: int,
        features: Mapping[str, Mapping[str, Any]],
        robot_type: str | None,
        vcodec: str | None = None,
        encoding: VideoEncoding | None = None,
        repo_id: str | None = None,
        queue_cap_s: float = DEFAULT_QUEUE_CAP_S,
        max_rewrite_mb: float = DEFAULT_MAX_REWRITE_MB,
    ) -> DatasetWriter:
        """Append to an existing dataset after `recover`ing it; new episodes go to the next file indices.

        Refuses (DatasetMismatchError, one line per difference) when fps, robot type or features differ, or
        when a different video codec is asked for than the one the dataset was recorded with.
        """
        root = Path(root)
        if not (root / fmt.INFO_PATH).is_file():
            raise FileNotFoundError(f"{root} is not a dataset (no {fmt.INFO_PATH})")
        lock = fmt.DatasetLock(root).acquire()
        try:
            report = recover_locked(root)
            info = fmt.read_json(root / fmt.INFO_PATH)
            full = _with_defaults(features)
            diffs = compatibility_diff(info, fps=int(fps), features=full, robot_type=robot_type)
            enc = _resume_encoding(info, vcodec, encoding, diffs) if fmt.video_keys(full) else None
            if diffs:
                raise DatasetMismatchError(f"cannot resume {root}:\n  " + "\n  ".join(diffs))
            writer = cls(
                lock,
                root,
                info,
                encoding=enc,
                repo_id=repo_id,
                queue_cap_s=queue_cap_s,
                max_rewrite_mb=max_rewrite_mb,
            )
            writer._load_state()
        except BaseException:
            lock.release()
            raise
        writer.last_recovery = report
        return writer

    def _load_state(self) -> None:
        rows = load_episode_rows(self.root, with_stats=False)
        chunks = int(self.info.get("chunks_size", fmt.DEFAULT_CHUNK_SIZE))
        self.total_episodes = len(rows)
        self.total_frames = sum(int(r["length"]) for r in rows)
        if (self.root / fmt.TASKS_PATH).is_file():
            self.tasks = fmt.read_tasks(self.root / fmt.TASKS_PATH)
        stats_path = self.root / fmt.STATS_PATH
        if rows and stats_path.is_file():
            self.stats = stats_from_json(fmt.read_json(stats_path))
        if not rows:
            return

        # Existing files are never appended to: each kind of file continues after the highest one in use.
        def after(prefix: str) -> _FileCursor:
            chunk, file = max((int(r[f"{prefix}/chunk_index"]), int(r[f"{prefix}/file_index"])) for r in rows)
            cursor = _FileCursor(chunk, file)
            cursor.advance(chunks)
            return cursor

        self._data = after("data")
        self._meta = after("meta/episodes")
        self._videos = {key: after(f"videos/{key}") for key in self.video_keys}

    # ------------------------------------------------------------------------------------- status (any thread)

    @property
    def recording(self) -> bool:
        return self._episode is not None

    @property
    def records_language(self) -> bool:
        """Whether the dataset has a `language_events` column (declared when it was created)."""
        return language.LANGUAGE_EVENTS in self.features

    @property
    def episode_frames(self) -> int:
        ep = self._episode
        return ep.length if ep is not None else 0

    def camera_status(self) -> list[CameraStatus]:
        ep = self._episode
        if ep is None:
            return []
        return [
            CameraStatus(
                k, e.queue_depth, e.queue_cap, e.max_depth, e.frames_fed, e.frames_encoded, e.lag_s, e.broken
            )
            for k, e in ep.encoders.items()
        ]

    @property
    def encoder_lag_s(self) -> float:
        """The worst camera's backlog in seconds of video (0 when keeping up)."""
        ep = self._episode
        return max((e.lag_s for e in ep.encoders.values()), default=0.0) if ep is not None else 0.0

    @property
    def episode_problem(self) -> str | None:
        """Why the episode in progress can no longer be saved, or None."""
        ep = self._episode
        if ep is None:
            return None
        for key, e in ep.encoders.items():
            if e.overflowed:
                return f"{key}: video encoder fell behind (queue reached {e.queue_cap} frames); redo this episode"
            if e.error is not None:
                return f"{key}: video encoder failed ({e.error}); redo this episode"
        return None

    # --------------------------------------------------------------------------------------- per episode

    def begin_episode(self, task: str) -> None:
        """Start an episode: encoders start, and the current files start being copied into their new versions."""
        self._check_open()
        if not task:
            raise ValueError("an episode needs a task description")
        with self._lock:
            if self._episode is not None:
                raise RuntimeError("an episode is already in progress (save or discard it first)")
            if self._saving:
                raise RuntimeError("the previous episode is still being saved")
            self._episode = self._start_episode(self.total_episodes, task)

    def _start_episode(self, index: int, task: str) -> _Episode:
        chunks = int(self.info["chunks_size"])
        encoders: dict[str, StreamingEncoder] = {}
        videos: dict[str, VideoAppender] = {}
        try:
            for key in self.video_keys:
                assert self.encoding is not None
                h, w = self.features[key]["shape"][:2]
                encoders[key] = StreamingEncoder(
                    self.root / fmt.STAGING_DIR / key / f"episode-{index:06d}.mp4",
                    fps=self.fps,
                    width=w,
                    height=h,
                    encoding=self.encoding,
                    queue_cap=self.queue_cap,
                    name=key,
                )
                cur = self._videos[key]
                cur.rotate_if_full(self._limit("video"), chunks)
                path = self._video_path(key)
                videos[key] = VideoAppender(
                    fmt.temp_path(path), self.fps, Segment(path, cur.units) if cur.units else None
                )
            self._data.rotate_if_full(self._limit("data"), chunks)
            data = _ParquetAppender(self._data_path(), self._data_schema, list(self._data.tables))
        except BaseException:
            for enc in encoders.values():
                enc.cancel()
            for app in videos.values():
                app.cancel()
            raise
        return _Episode(index, task, encoders, {k: [] for k in self._numeric_keys}, data, videos)

    def _data_path(self) -> Path:
        return self.root / fmt.chunk_file_path(fmt.DEFAULT_DATA_PATH, self._data.chunk, self._data.file)

    def _video_path(self, key: str) -> Path:
        cur = self._videos[key]
        return self.root / fmt.chunk_file_path(fmt.DEFAULT_VIDEO_PATH, cur.chunk, cur.file, video_key=key)

    def add_frame(self, frame: Mapping[str, Any]) -> None:
        """Record one frame: every non-default feature (vectors float32, images HxWx3 uint8), optional `task`.

        Never blocks on encoding. Raises ValueError for missing, unexpected or malformed values (and then
        records nothing of this frame).
        """
        with self._lock:
            ep = self._episode
            if ep is None:
                raise RuntimeError("no episode in progress (call begin_episode first)")
            values: dict[str, np.ndarray] = {}
            for key in self._numeric_keys:
                if key not in frame:
                    raise ValueError(f"frame lacks feature '{key}'")
                ft = self.features[key]
                arr = np.asarray(frame[key], dtype=ft["dtype"])
                if arr.size != ft["shape"][0]:
                    raise ValueError(
                        f"feature '{key}': expected {ft['shape'][0]} values, got shape {arr.shape}"
                    )
                values[key] = arr.reshape(ft["shape"])
            for key in self.video_keys:
                if key not in frame:
                    raise ValueError(f"frame lacks camera '{key}'")
            task = frame.get("task", ep.task)
            if len(frame) != len(self._frame_keys) + ("task" in frame):
                unknown = sorted(set(frame) - set(self._frame_keys) - {"task"})
                raise ValueError(
                    f"frame has unexpected keys {unknown} (the writer fills timestamps and indices)"
                )
            for key in self.video_keys:
                ep.encoders[key].put(frame[key])
            for key, arr in values.items():
                ep.columns[key].append(arr)
            ep.frame_tasks.append(str(task))

    def language_anchor(self) -> LanguageAnchor | None:
        """The frame being recorded now (the last one added; frame 0 before any), or None when no episode is
        in progress or the dataset has no `language_events` column."""
        with self._lock:
            ep = self._episode
            if ep is None or not self.records_language:
                return None
            return LanguageAnchor(ep.index, max(ep.length - 1, 0))

    def add_language_event(
        self, rows: language.LanguageRow | list[language.LanguageRow], *, at: LanguageAnchor | None = None
    ) -> bool:
        """Attach `language_events` rows (built with `engine.dataset.language.event_row`) to a frame of the
        episode in progress: `at` (from `language_anchor`), else the frame being recorded now. Safe to call
        from any thread while the control loop adds frames.

        Returns False, recording nothing, when the rows cannot go where they belong: no `language_events`
        column, no episode in progress, or the anchored episode already ended (saved or discarded). Raises
        LanguageRowError for a row LeRobot would reject (e.g. a `vqa` row whose camera is not a camera here).
        """
        batch = [rows] if isinstance(rows, dict) else list(rows)
        for row in batch:
            language.check_camera(row.get("style"), row.get("camera"))
            camera = row.get("camera")
            if camera is not None and camera not in self.video_keys:
                raise language.LanguageRowError(
                    f"camera {camera!r} is not a camera of this dataset ({', '.join(self.video_keys) or 'none'})"
                )
        with self._lock:
            ep = self._episode
            if ep is None or not self.records_language:
                return False
            if at is None:
                frame = max(ep.length - 1, 0)
            elif at.episode_index != ep.index:
                return False
            else:
                frame = at.frame_index
            ep.events.setdefault(frame, []).extend(dict(r) for r in batch)
        return True

    def discard_episode(self) -> None:
        """Drop the episode in progress (redo): encoders cancelled, their files removed, nothing written."""
        with self._lock:
            ep, self._episode = self._episode, None
        if ep is not None:
            ep.cancel()

    def save_episode(self) -> EpisodeInfo:
        """Make the episode in progress durable and return its summary; raises EpisodeRefused if it cannot be."""
        t0 = time.perf_counter()
        self._check_open()
        with self._lock:
            ep, self._episode = self._episode, None
            if ep is None:
                raise RuntimeError("no episode in progress")
            self._saving = True
        try:
            return self._save(ep, t0)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
            raise EpisodeRefused(
                f"the disk holding {self.root} is full, so episode {ep.index} was not saved: free some space "
                "(the episodes saved before are kept)"
            ) from e
        finally:
            self._saving = False

    def _save(self, ep: _Episode, t0: float) -> EpisodeInfo:
        length = ep.length
        if length == 0:
            ep.cancel()
            raise EpisodeRefused("the episode has no frames; nothing was saved")
        for enc in ep.encoders.values():
            enc.request_finish()  # all cameras flush in parallel while the rows are prepared below

        chunks = int(self.info["chunks_size"])
        new_tasks = [t for t in dict.fromkeys(ep.frame_tasks) if t not in self.tasks]
        task_ids = {t: i for i, t in enumerate([*self.tasks, *new_tasks])}
        table, ep_stats = self._episode_table(ep, task_ids)
        data, meta = self._data, self._meta
        data_path = self._data_path()
        video_plan: dict[str, tuple[Path, Path, float]] = {}  # key -> (temp, final path, from_timestamp)
        temps: list[Path] = []
        try:
            t_flush = time.perf_counter()
            encoded = self._finish_encoders(ep, length)
            flush_s = time.perf_counter() - t_flush
            for key, e in encoded.items():
                assert e.stats is not None
                ep_stats[key] = e.stats
                cur, app = self._videos[key], ep.videos[key]
                temps.append(app.output)
                total = app.append(e.path)
                if total != cur.units + length:
                    raise EncoderError(
                        f"{key}: the video file would hold {total} frames, not {cur.units + length}"
                    )
                video_plan[key] = (app.output, self._video_path(key), cur.units / self.fps)
            temps.append(ep.data.append(table))

            # The episodes row (the commit point) goes in last, after everything it points to.
            meta.rotate_if_full(self._limit("data"), chunks)
            row: dict[str, Any] = {
                "episode_index": ep.index,
                "tasks": list(dict.fromkeys(ep.frame_tasks)),
                "length": length,
                "data/chunk_index": data.chunk,
                "data/file_index": data.file,
                "dataset_from_index": self.total_frames,
                "dataset_to_index": self.total_frames + length,
            }
            for key in self.video_keys:
                cur = self._videos[key]
                row |= {
                    f"videos/{key}/chunk_index": cur.chunk,
                    f"videos/{key}/file_index": cur.file,
                    f"videos/{key}/from_timestamp": video_plan[key][2],
                    f"videos/{key}/to_timestamp": (cur.units + length) / self.fps,
                }
            row |= flatten_stats({k: ep_stats[k] for k in fmt.stats_keys(self.features)})
            row |= {"meta/episodes/chunk_index": meta.chunk, "meta/episodes/file_index": meta.file}
            meta_table = pa.Table.from_pylist([row], schema=self._episodes_schema)
            meta_path = self.root / fmt.chunk_file_path(fmt.DEFAULT_EPISODES_PATH, meta.chunk, meta.file)
            temps.append(fmt.write_parquet_temp(meta_path, [*meta.tables, meta_table], self._episodes_schema))
        except BaseException as exc:
            ep.cancel()
            for tmp in temps:
                tmp.unlink(missing_ok=True)
            if isinstance(exc, EncoderError):
                raise EpisodeRefused(
                    f"episode {ep.index} was not saved and has been discarded: {exc}"
                ) from exc
            raise

        # Commit, in an order that leaves only removable leftovers wherever a crash strikes.
        _checkpoint("before_commit")
        for key, (tmp, path, _) in video_plan.items():
            fmt.commit(tmp, path)
            _checkpoint(f"video_committed:{key}")
        fmt.commit(ep.data.tmp, data_path)
        _checkpoint("data_committed")
        if new_tasks:
            tasks = fmt.tasks_table([*self.tasks, *new_tasks])
            fmt.write_parquet_atomic(self.root / fmt.TASKS_PATH, [tasks], tasks.schema)
            _checkpoint("tasks_committed")
        fmt.commit(temps[-1], meta_path)
        _checkpoint("episodes_committed")

        # Committed: bring the in-memory state along, then the derived metadata.
        self.tasks.extend(new_tasks)
        data.tables.append(table)
        data.units += length
        data.size, data.last_bytes = data_path.stat().st_size, data_path.stat().st_size - data.size
        meta.tables.append(meta_table)
        meta.units += 1
        meta.size, meta.last_bytes = meta_path.stat().st_size, meta_path.stat().st_size - meta.size
        for key, (_, path, _) in video_plan.items():
            cur = self._videos[key]
            cur.units += length
            cur.size, cur.last_bytes = path.stat().st_size, path.stat().st_size - cur.size
        from_index = self.total_frames
        self.total_episodes += 1
        self.total_frames += length
        self.stats = aggregate_stats([self.stats, ep_stats]) if self.stats else aggregate_stats([ep_stats])
        for enc in ep.encoders.values():
            enc.path.unlink(missing_ok=True)
        self._write_info(video_plan)
        _checkpoint("info_committed")
        fmt.write_json_atomic(self.root / fmt.STATS_PATH, stats_to_json(self.stats))
        return EpisodeInfo(
            episode_index=ep.index,
            length=length,
            duration_s=length / self.fps,
            tasks=tuple(row["tasks"]),
            dataset_from_index=from_index,
            dataset_to_index=self.total_frames,
            save_latency_s=time.perf_counter() - t0,
            flush_s=flush_s,
        )

    def _finish_encoders(self, ep: _Episode, length: int) -> dict[str, EncodedEpisode]:
        encoded = {key: enc.finish() for key, enc in ep.encoders.items()}
        for key, e in encoded.items():
            if e.frames != length:  # the invariant every timestamp lookup relies on
                raise EncoderError(f"{key}: {e.frames} video frames for {length} data rows")
        return encoded

    def _episode_table(self, ep: _Episode, task_ids: Mapping[str, int]) -> tuple[pa.Table, FeatureStats]:
        length = ep.length
        frame_index = np.arange(length, dtype=np.int64)
        arrays: dict[str, np.ndarray] = {k: np.stack(v) for k, v in ep.columns.items()}
        arrays |= {
            "timestamp": (frame_index / self.fps).astype(np.float32),
            "frame_index": frame_index,
            "episode_index": np.full(length, ep.index, dtype=np.int64),
            "index": self.total_frames + frame_index,
            "task_index": np.array([task_ids[t] for t in ep.frame_tasks], dtype=np.int64),
        }
        columns = {}
        numeric = [k for k in fmt.data_keys(self.features) if self.features[k]["dtype"] != "language"]
        for key in fmt.language_keys(self.features):
            # Events anchored past the last frame (the episode ended first) belong to the last frame.
            per_frame: list[list[language.LanguageRow]] = [[] for _ in range(length)]
            for index, rows in sorted(ep.events.items()):
                per_frame[min(index, length - 1)].extend(rows)
            columns[key] = language.events_column(per_frame)
        for key in numeric:
            arr = arrays[key]
            ft = self.features[key]
            if list(ft["shape"]) == [1]:
                columns[key] = pa.array(arr.reshape(length))
            else:
                columns[key] = pa.FixedSizeListArray.from_arrays(
                    pa.array(arr.reshape(-1)), int(ft["shape"][0])
                )
        table = pa.table(columns, schema=self._data_schema)
        stats = {k: numeric_stats(arrays[k].reshape(length, -1)) for k in numeric}
        return table, stats

    def _limit(self, kind: str) -> float:
        size_mb = self.info["video_files_size_in_mb" if kind == "video" else "data_files_size_in_mb"]
        return min(float(size_mb), self.max_rewrite_mb) * MB

    def _write_info(self, video_plan: Mapping[str, tuple[Path, Path, float]]) -> None:
        for key, (_, path, _) in video_plan.items():
            block = self.info["features"][key].get("info") or {}
            if "video.codec" not in block:
                self.info["features"][key]["info"] = video_info_block(path, block)
        fmt.set_totals(
            self.info, episodes=self.total_episodes, frames=self.total_frames, tasks=len(self.tasks)
        )
        fmt.write_json_atomic(self.root / fmt.INFO_PATH, self.info)

    # --------------------------------------------------------------------------------------------- closing

    def finalize(self) -> None:
        """Close the writer: an unsaved episode is discarded, staging files removed. Saved episodes were
        already complete on disk, so this is cleanup, not a flush."""
        if self._closed:
            return
        if self._episode is not None:
            log.warning("finalize: discarding the unsaved episode %d", self._episode.index)
            self.discard_episode()
        shutil.rmtree(self.root / fmt.STAGING_DIR, ignore_errors=True)
        self._closed = True
        self._dataset_lock.release()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finalize()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the dataset writer is finalized")


# ------------------------------------------------------------------------------------------------ helpers


def _with_defaults(features: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    full = {k: dict(ft) for k, ft in features.items()}
    for key, ft in fmt.DEFAULT_FEATURES.items():
        full.setdefault(key, dict(ft))
    fmt.check_features(full)
    return full


def _refuse_images(features: Mapping[str, Mapping[str, Any]]) -> None:
    images = fmt.image_keys(features)
    if images:
        raise ValueError(
            f"cameras stored as images ({images}) are not supported by the writer; record them as video"
        )


def compatibility_diff(
    info: Mapping[str, Any], *, fps: int, features: Mapping[str, Mapping[str, Any]], robot_type: str | None
) -> list[str]:
    """Readable differences between a dataset's info.json and a new session (empty when compatible).

    The language columns are left out: a resumed dataset keeps the ones it was created with (the writer
    follows its info.json; `records_language` says whether questions can be recorded into it)."""
    diffs: list[str] = []
    if int(info["fps"]) != fps:
        diffs.append(f"fps: dataset {info['fps']}, now {fps}")
    if info.get("robot_type") != robot_type:
        diffs.append(f"robot_type: dataset {info.get('robot_type')!r}, now {robot_type!r}")
    old = fmt.comparable_features(_without_language(info["features"]))
    new = fmt.comparable_features(_without_language(features))
    for key in new:
        if key not in old:
            diffs.append(f"features: {key} missing in the dataset")
    for key in old:
        if key not in new:
            diffs.append(f"features: {key} is in the dataset but not in this session")
    for key in (k for k in new if k in old):
        for attr in ("dtype", "shape", "names"):
            if old[key][attr] != new[key][attr]:
                diffs.append(f"features: {key} {attr}: dataset {old[key][attr]}, now {new[key][attr]}")
    return diffs


def _without_language(features: Mapping[str, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {k: ft for k, ft in features.items() if k not in language.LANGUAGE_COLUMNS}


def _resume_encoding(
    info: Mapping[str, Any], vcodec: str | None, encoding: VideoEncoding | None, diffs: list[str]
) -> VideoEncoding:
    """The encoder for new episodes: the dataset's own settings unless others are asked for, and then only
    the same codec and pixel format (segments of different streams cannot share a file or an info block)."""
    blocks = [ft.get("info") or {} for ft in info["features"].values() if ft["dtype"] == "video"]
    recorded = next((b for b in blocks if "video.codec" in b), None)
    asked = encoding or (VideoEncoding(vcodec=vcodec) if vcodec else None)
    if recorded is None:  # no episode recorded yet: any codec will do
        return (asked or VideoEncoding()).resolved()
    ours = VideoEncoding.from_info(recorded)
    if asked is None:
        return ours.resolved()
    resolved = asked.resolved()
    if resolved.vcodec != ours.vcodec:
        diffs.append(f"video codec: dataset {recorded['video.codec']} ({ours.vcodec}), now {resolved.vcodec}")
    if resolved.pix_fmt != ours.pix_fmt:
        diffs.append(f"video pix_fmt: dataset {ours.pix_fmt}, now {resolved.pix_fmt}")
    return resolved
