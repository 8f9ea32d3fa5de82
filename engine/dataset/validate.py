"""Read-only validation of a LeRobotDataset v3.0: everything LeRobot relies on when it loads and trains.

LeRobot fails late and cryptically on a broken dataset (a `FrameTimestampError` in a dataloader worker an
hour into training, a `CastError` on load, a Hub repo that cannot be resolved without its tag). `check`
finds those defects up front and says, for each, where it is, what is wrong and how to fix it.
Severity "error" means LeRobot cannot load or train on the dataset as is; "warning" means it can, but
something is off (leftover temp files, a missing quantile, an unreferenced file).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from engine.dataset import language
from engine.dataset.format import (
    DEFAULT_FEATURES,
    INFO_PATH,
    STAGING_DIR,
    STAT_NAMES,
    STATS_PATH,
    TEMP_SUFFIX,
)
from engine.dataset.reader import (
    CONVERT_V21_HINT,
    EPISODE_COLUMNS,
    EPISODES_DIR,
    TIMESTAMP_TOLERANCE_S,
    DatasetError,
    decode_video_frames,
    episode_files,
    read_tasks,
    video_frame_times,
)

Severity = Literal["error", "warning"]
MAX_PER_CODE = 20  # one defect repeated on every episode should not bury the others
REPAIR_FIX = "run `robotui dataset check --repair` (rebuilds metadata from the files on disk)"
DELETE_EPISODES_FIX = (
    "restore the file from a backup or the Hub copy; otherwise delete the affected episodes "
    "(`lerobot-edit-dataset --operation.type delete_episodes`) or re-record them"
)
_REQUIRED_STATS = ("min", "max", "mean", "std", "count")
_NUMERIC_DTYPES = {
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
}
_KNOWN_DTYPES = _NUMERIC_DTYPES | {"video", "image", "string", "language"}


@dataclass(frozen=True)
class Problem:
    severity: Severity
    code: str  # stable kind, e.g. "video-missing", for scripts and tests
    where: str  # file relative to the root, plus the episode when there is one
    what: str
    fix: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.severity}: {self.where}: {self.what} (fix: {self.fix})"


def has_errors(problems: Iterable[Problem]) -> bool:
    return any(p.severity == "error" for p in problems)


def check(root: str | Path, *, repair: bool = False, decode: bool = True) -> list[Problem]:
    """Every problem found under `root` (empty when LeRobot will load and train on it).

    `repair=True` first runs the writer's crash recovery (`engine.dataset.recovery.recover`), then checks.
    `decode=False` skips decoding the first and last frame of each episode (the pts checks still run).
    """
    if repair:
        return repair_and_check(root, decode=decode)[1]
    return _Checker(Path(root), decode=decode).run()


def repair_and_check(root: str | Path, *, decode: bool = True) -> tuple[Any, list[Problem]]:
    """(the writer's RecoveryReport, the problems left after recovery). Imported lazily: checking alone must
    not pull in the writer."""
    from engine.dataset.recovery import recover

    report = recover(Path(root))
    return report, _Checker(Path(root), decode=decode).run()


def _ep_where(rel: str, episode: int | None) -> str:
    return rel if episode is None else f"{rel}, episode {episode}"


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Checker:
    def __init__(self, root: Path, *, decode: bool) -> None:
        self.root = root
        self.decode = decode
        self.problems: list[Problem] = []
        self.counts: Counter[str] = Counter()
        self.info: dict[str, Any] = {}
        self.features: dict[str, dict[str, Any]] = {}
        self.fps = 0
        self.tasks: dict[int, str] | None = None
        self.episodes: list[dict[str, Any]] = []

    def add(self, severity: Severity, code: str, where: str, what: str, fix: str) -> None:
        self.counts[code] += 1
        if self.counts[code] <= MAX_PER_CODE:
            self.problems.append(Problem(severity, code, where, what, fix))

    def rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def run(self) -> list[Problem]:
        if not self.root.is_dir():
            self.add(
                "error",
                "root-missing",
                str(self.root),
                "the dataset directory does not exist",
                "check the path",
            )
            return self.problems
        if self.check_info():
            self.check_tasks()
            if self.check_episodes():
                self.check_data()
                self.check_videos()
                self.check_stats()
        self.check_leftovers()
        for code, n in self.counts.items():
            if n > MAX_PER_CODE:
                first = next(p for p in self.problems if p.code == code)
                self.problems.append(
                    Problem(
                        first.severity,
                        code,
                        "(dataset)",
                        f"{n - MAX_PER_CODE} more '{code}' problems",
                        first.fix,
                    )
                )
        return self.problems

    # --- meta/info.json

    def check_info(self) -> bool:
        path = self.root / INFO_PATH
        if not path.is_file():
            self.add(
                "error",
                "info-missing",
                INFO_PATH,
                "meta/info.json is missing, so nothing else can be read",
                "if recording crashed before the first episode was saved, delete the directory and record again; "
                "otherwise restore meta/info.json from a backup or the Hub copy",
            )
            return False
        try:
            info = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            self.add("error", "info-invalid", INFO_PATH, f"not valid JSON ({exc})", REPAIR_FIX)
            return False
        if not isinstance(info, dict):
            self.add("error", "info-invalid", INFO_PATH, "must hold a JSON object", REPAIR_FIX)
            return False
        self.info = info
        ok = self._check_version(info.get("codebase_version"))
        fps = info.get("fps")
        if not _int(fps) or fps <= 0:
            self.add(
                "error",
                "info-field",
                INFO_PATH,
                f"fps is {fps!r}, not a positive integer",
                "set fps to the recording rate",
            )
            ok = False
        else:
            self.fps = fps
        features = info.get("features")
        if not isinstance(features, dict) or not features:
            self.add(
                "error", "info-field", INFO_PATH, "features is missing or empty", "restore the features block"
            )
            return False
        self.features = features
        ok = self._check_features(features) and ok
        for key in ("total_episodes", "total_frames", "total_tasks", "chunks_size"):
            value = info.get(key)
            if not _int(value) or value < (1 if key == "chunks_size" else 0):
                self.add(
                    "error", "info-field", INFO_PATH, f"{key} is {value!r}, not a valid count", REPAIR_FIX
                )
        ok = self._check_path_template("data_path", ("{chunk_index", "{file_index"), required=True) and ok
        has_video = any(ft.get("dtype") == "video" for ft in features.values())
        ok = (
            self._check_path_template(
                "video_path", ("{video_key", "{chunk_index", "{file_index"), required=has_video
            )
            and ok
        )
        if not info.get("robot_type"):
            self.add(
                "warning",
                "info-field",
                INFO_PATH,
                "robot_type is not set",
                "set robot_type (e.g. so101_follower): LeRobot compares it when resuming or merging",
            )
        return ok

    def _check_version(self, version: Any) -> bool:
        match = re.match(r"^v(\d+)\.(\d+)$", str(version or ""))
        if not match:
            self.add(
                "error",
                "info-version",
                INFO_PATH,
                f"codebase_version is {version!r}, expected 'v3.0'",
                "set codebase_version to 'v3.0' if the files follow the v3.0 layout",
            )
            return False
        if int(match.group(1)) != 3:
            self.add(
                "error",
                "info-version",
                INFO_PATH,
                f"codebase_version {version} is not v3.x: the files are laid out differently",
                f"convert it with `{CONVERT_V21_HINT}`" if int(match.group(1)) < 3 else "use a newer robotui",
            )
            return False
        return True

    def _check_features(self, features: dict[str, Any]) -> bool:
        ok = True
        for key, ft in features.items():
            if "/" in key:
                self.add(
                    "error", "feature", INFO_PATH, f"feature name {key!r} contains '/'", "rename the feature"
                )
                ok = False
            if not isinstance(ft, dict):
                self.add(
                    "error", "feature", INFO_PATH, f"feature {key!r} is not an object", "restore its entry"
                )
                ok = False
                continue
            dtype, shape = ft.get("dtype"), ft.get("shape")
            if dtype not in _KNOWN_DTYPES:
                self.add(
                    "error",
                    "feature",
                    INFO_PATH,
                    f"feature {key!r} has unknown dtype {dtype!r}",
                    "fix its dtype",
                )
                ok = False
            if not isinstance(shape, list) or not shape or not all(_int(s) and s > 0 for s in shape):
                self.add(
                    "error",
                    "feature",
                    INFO_PATH,
                    f"feature {key!r} has invalid shape {shape!r}",
                    "fix its shape",
                )
                ok = False
            elif dtype == "language" and key not in language.LANGUAGE_COLUMNS:
                self.add(
                    "error",
                    "feature",
                    INFO_PATH,
                    f"feature {key!r} has dtype 'language', which LeRobot reserves for "
                    f"{' and '.join(language.LANGUAGE_COLUMNS)}",
                    "rename the feature or fix its dtype",
                )
                ok = False
            elif dtype in ("video", "image") and (len(shape) != 3 or shape[2] not in (1, 3)):
                self.add(
                    "error",
                    "feature",
                    INFO_PATH,
                    f"camera {key!r} shape {shape} is not [height, width, channels]",
                    "set shape to [height, width, 3]",
                )
                ok = False
        for key, expected in DEFAULT_FEATURES.items():
            ft = features.get(key)
            if not isinstance(ft, dict):
                self.add(
                    "error",
                    "feature",
                    INFO_PATH,
                    f"default feature {key!r} is missing",
                    f"add {json.dumps(expected)}",
                )
                ok = False
            elif ft.get("dtype") != expected["dtype"]:
                self.add(
                    "error",
                    "feature",
                    INFO_PATH,
                    f"{key} has dtype {ft.get('dtype')!r}, LeRobot uses {expected['dtype']!r}",
                    f"set its dtype to {expected['dtype']!r} (and the column type to match)",
                )
                ok = False
        return ok

    def _check_path_template(self, key: str, fields: tuple[str, ...], *, required: bool) -> bool:
        value = self.info.get(key)
        if value is None and not required:
            return True
        if not isinstance(value, str) or not all(f in value for f in fields):
            self.add(
                "error",
                "info-field",
                INFO_PATH,
                f"{key} is {value!r}, it needs the placeholders {', '.join(f + '}' for f in fields)}",
                f"restore the default {key}",
            )
            return False
        return True

    # --- meta/tasks.parquet

    def check_tasks(self) -> None:
        try:
            self.tasks = read_tasks(self.root)
        except DatasetError as exc:
            self.add("error", "tasks", "meta/tasks.parquet", str(exc), REPAIR_FIX)
            return
        if list(self.tasks) != list(range(len(self.tasks))):
            self.add(
                "error",
                "tasks",
                "meta/tasks.parquet",
                f"task_index values are {list(self.tasks)[:10]}, not 0..{len(self.tasks) - 1}: LeRobot looks tasks up by position",
                "renumber task_index 0..N-1 in tasks.parquet and in the data files",
            )
        total = self.info.get("total_tasks")
        if _int(total) and total != len(self.tasks):
            self.add(
                "error",
                "info-totals",
                INFO_PATH,
                f"total_tasks is {total} but tasks.parquet has {len(self.tasks)} tasks",
                f"set total_tasks to {len(self.tasks)} ({REPAIR_FIX})",
            )

    # --- meta/episodes

    def check_episodes(self) -> bool:
        files = episode_files(self.root)
        if not files:
            empty = self.info.get("total_episodes") == 0
            what = "the dataset has no saved episode yet" if empty else "no episodes parquet file"
            fix = "record and save at least one episode" if empty else REPAIR_FIX
            self.add("error", "episodes-missing", EPISODES_DIR, what, fix)
            return False
        tables = []
        for path in files:
            try:
                table = pq.read_table(path)
            except (OSError, pa.ArrowException) as exc:
                self.add(
                    "error",
                    "episodes-unreadable",
                    self.rel(path),
                    f"cannot be read ({exc}); an episodes file without a parquet footer means recording was not finalized",
                    REPAIR_FIX,
                )
                continue
            missing = [c for c in EPISODE_COLUMNS if c not in table.column_names]
            if missing:
                self.add("error", "episodes-columns", self.rel(path), f"lacks columns {missing}", REPAIR_FIX)
                continue
            match = re.search(r"chunk-(\d+)/file-(\d+)\.parquet$", path.as_posix())
            for row in table.to_pylist():
                row["_file"] = path
                if match and "meta/episodes/chunk_index" in row:
                    stated = (row.get("meta/episodes/chunk_index"), row.get("meta/episodes/file_index"))
                    if stated != (int(match.group(1)), int(match.group(2))):
                        self.add(
                            "warning",
                            "episodes-location",
                            _ep_where(self.rel(path), row["episode_index"]),
                            f"meta/episodes/chunk_index,file_index say {stated} but the row is in this file",
                            REPAIR_FIX,
                        )
                tables.append(row)
        if not tables:
            return False
        rows = sorted(tables, key=lambda r: (r["episode_index"] is None, r["episode_index"] or 0))
        indices = [r["episode_index"] for r in rows]
        dupes = sorted(i for i, n in Counter(indices).items() if n > 1)
        if dupes:
            self.add(
                "error",
                "episode-index",
                EPISODES_DIR,
                f"episode_index {dupes[:10]} appear more than once",
                REPAIR_FIX,
            )
        if sorted(set(indices)) != list(range(len(set(indices)))):
            self.add(
                "error",
                "episode-index",
                EPISODES_DIR,
                f"episode_index is not contiguous from 0 (found {self._ranges(indices)})",
                "renumber episodes 0..E-1 (episode_index in meta/episodes and the data files)",
            )
        self.episodes = rows
        expected_from = 0
        total_frames = 0
        for row in rows:
            where = _ep_where(self.rel(row["_file"]), row["episode_index"])
            length, start, stop = row["length"], row["dataset_from_index"], row["dataset_to_index"]
            if not all(_int(v) for v in (length, start, stop)):
                self.add(
                    "error",
                    "episode-range",
                    where,
                    "length / dataset_from_index / dataset_to_index are empty",
                    REPAIR_FIX,
                )
                continue
            total_frames += length
            if length <= 0:
                self.add("error", "episode-length", where, f"length is {length}", "delete the empty episode")
            if stop - start != length:
                self.add(
                    "error",
                    "episode-length",
                    where,
                    f"dataset_to_index - dataset_from_index = {stop - start} but length is {length}",
                    REPAIR_FIX,
                )
            if start != expected_from:
                self.add(
                    "error",
                    "global-index",
                    where,
                    f"dataset_from_index is {start}, expected {expected_from} (the previous episode ends there)",
                    REPAIR_FIX,
                )
            expected_from = stop
            if self.tasks is not None:
                unknown = [t for t in row.get("tasks") or [] if t not in self.tasks.values()]
                if unknown:
                    self.add(
                        "error",
                        "task-unknown",
                        where,
                        f"tasks {unknown} are not in meta/tasks.parquet",
                        "add the tasks to tasks.parquet or fix the episode's tasks",
                    )
        for key, actual in (("total_episodes", len(rows)), ("total_frames", total_frames)):
            stated = self.info.get(key)
            if _int(stated) and stated != actual:
                self.add(
                    "error",
                    "info-totals",
                    INFO_PATH,
                    f"{key} is {stated} but meta/episodes adds up to {actual}",
                    f"set {key} to {actual} ({REPAIR_FIX})",
                )
        splits = self.info.get("splits")
        if splits != {"train": f"0:{len(rows)}"}:
            self.add(
                "warning",
                "info-field",
                INFO_PATH,
                f"splits is {splits!r}",
                f'set splits to {{"train": "0:{len(rows)}"}}',
            )
        return True

    @staticmethod
    def _ranges(values: list[Any]) -> str:
        nums = sorted(v for v in set(values) if _int(v))
        parts: list[str] = []
        for v in nums:
            if parts and v == int(parts[-1].split("..")[-1]) + 1:
                parts[-1] = f"{parts[-1].split('..')[0]}..{v}"
            else:
                parts.append(str(v))
        return ", ".join(parts[:8]) + (" ..." if len(parts) > 8 else "")

    # --- data parquet

    def _file_path(self, template_key: str, row: dict[str, Any], prefix: str, **kw: str) -> Path | None:
        chunk, file = row.get(f"{prefix}/chunk_index"), row.get(f"{prefix}/file_index")
        if not (_int(chunk) and _int(file)):
            return None
        return self.root / self.info[template_key].format(chunk_index=chunk, file_index=file, **kw)

    def check_data(self) -> None:
        by_file: dict[Path, list[dict[str, Any]]] = defaultdict(list)
        for row in self.episodes:
            path = self._file_path("data_path", row, "data")
            if path is None:
                self.add(
                    "error",
                    "data-index",
                    _ep_where(EPISODES_DIR, row["episode_index"]),
                    "data/chunk_index or data/file_index is empty",
                    REPAIR_FIX,
                )
                continue
            by_file[path].append(row)
        index_columns: list[tuple[Path, np.ndarray]] = []
        for path in sorted(by_file):
            rows = by_file[path]
            eps = [r["episode_index"] for r in rows]
            if not path.is_file():
                self.add(
                    "error",
                    "data-missing",
                    self.rel(path),
                    f"data file is missing (episodes {self._ranges(eps)})",
                    DELETE_EPISODES_FIX,
                )
                continue
            try:
                schema = pq.read_schema(path)
            except (OSError, pa.ArrowException) as exc:
                self.add(
                    "error",
                    "data-unreadable",
                    self.rel(path),
                    f"cannot be read ({exc}); a data file without a parquet footer means recording was not finalized",
                    REPAIR_FIX,
                )
                continue
            self._check_schema(path, schema)
            wanted = [
                c
                for c in ("episode_index", "frame_index", "index", "timestamp", "task_index")
                if c in schema.names
            ]
            table = pq.read_table(path, columns=wanted)
            self._check_rows(path, table, rows)
            if language.LANGUAGE_EVENTS in schema.names and self.features.get(language.LANGUAGE_EVENTS):
                self._check_language_events(path)
            if "index" in table.column_names:
                index_columns.append((path, table["index"].to_numpy()))
        self._check_global_index(index_columns)

    def _check_schema(self, path: Path, schema: pa.Schema) -> None:
        expected = [k for k, ft in self.features.items() if ft.get("dtype") != "video"]
        missing = [k for k in expected if k not in schema.names]
        extra = [c for c in schema.names if c not in self.features and c != "__index_level_0__"]
        if missing:
            self.add(
                "error",
                "schema",
                self.rel(path),
                f"columns {missing} from info.json features are missing",
                "the data and info.json disagree: restore the columns or remove the features from info.json",
            )
        if extra:
            self.add(
                "error",
                "schema",
                self.rel(path),
                f"columns {extra} are not in info.json features (LeRobot raises a CastError)",
                "add the features to info.json or drop the columns",
            )
        for key in expected:
            if key in schema.names:
                problem = _type_mismatch(schema.field(key).type, self.features[key], key)
                if problem:
                    self.add(
                        "error",
                        "schema",
                        self.rel(path),
                        f"column {key}: {problem}",
                        "rewrite the column with the type info.json declares",
                    )

    def _check_rows(self, path: Path, table: pa.Table, rows: list[dict[str, Any]]) -> None:
        rel = self.rel(path)
        if "episode_index" not in table.column_names:
            return
        cols = {c: table[c].to_numpy() for c in table.column_names}
        episode_col = cols["episode_index"]
        claimed = {r["episode_index"] for r in rows}
        orphans = sorted(set(np.unique(episode_col).tolist()) - claimed)
        if orphans:
            self.add(
                "error",
                "data-orphan-rows",
                rel,
                f"holds rows of episodes {orphans[:10]} that meta/episodes does not place in this file",
                f"{REPAIR_FIX}; an interrupted episode leaves such rows behind",
            )
        for row in rows:
            ep, length = row["episode_index"], row["length"]
            where = _ep_where(rel, ep)
            positions = np.nonzero(episode_col == ep)[0]
            if len(positions) != length:
                self.add(
                    "error",
                    "episode-length",
                    where,
                    f"the file has {len(positions)} rows of this episode but meta/episodes says length {length}",
                    REPAIR_FIX,
                )
            if not len(positions) or not _int(length):
                continue
            n = min(len(positions), length)
            frame_index = cols.get("frame_index")
            if frame_index is not None and not np.array_equal(frame_index[positions][:n], np.arange(n)):
                bad = int(np.argmax(frame_index[positions][:n] != np.arange(n)))
                self.add(
                    "error",
                    "frame-index",
                    where,
                    f"frame_index at row {bad} is {int(frame_index[positions][bad])}, expected {bad} (0..length-1 in order)",
                    REPAIR_FIX,
                )
            index = cols.get("index")
            start = row["dataset_from_index"]
            if index is not None and _int(start):
                want = np.arange(start, start + n)
                got = index[positions][:n]
                if not np.array_equal(got, want):
                    bad = int(np.argmax(got != want))
                    self.add(
                        "error",
                        "global-index",
                        where,
                        f"index at frame {bad} is {int(got[bad])}, expected {int(want[bad])} (dataset_from_index + frame)",
                        REPAIR_FIX,
                    )
            ts = cols.get("timestamp")
            if ts is not None and self.fps:
                expected = np.arange(n) / self.fps
                err = np.abs(ts[positions][:n].astype(np.float64) - expected)
                if err.max(initial=0.0) > TIMESTAMP_TOLERANCE_S:
                    bad = int(np.argmax(err > TIMESTAMP_TOLERANCE_S))
                    self.add(
                        "error",
                        "timestamps",
                        where,
                        f"timestamp at frame {bad} is {float(ts[positions][bad]):.6f}, expected frame_index/fps = "
                        f"{expected[bad]:.6f} (LeRobot decodes video at these times)",
                        "rewrite timestamp as frame_index / fps (wall-clock timestamps are not allowed)",
                    )
            task_index = cols.get("task_index")
            if task_index is not None and self.tasks is not None:
                used = sorted(set(np.unique(task_index[positions]).tolist()))
                unknown = [t for t in used if t not in self.tasks]
                if unknown:
                    self.add(
                        "error",
                        "task-index",
                        where,
                        f"task_index {unknown} not in meta/tasks.parquet (which has 0..{len(self.tasks) - 1})",
                        "add the missing tasks to tasks.parquet or fix task_index",
                    )
                elif row.get("tasks") is not None and sorted(self.tasks[t] for t in used) != sorted(
                    row["tasks"]
                ):
                    self.add(
                        "warning",
                        "task-mismatch",
                        where,
                        f"frames use tasks {[self.tasks[t] for t in used]} but meta/episodes lists {row['tasks']}",
                        REPAIR_FIX,
                    )

    def _check_language_events(self, path: Path) -> None:
        """Each event row as LeRobot's resolvers need it: a known style, and a camera exactly when the style
        is view-dependent (`vqa`, `trace`), naming one of this dataset's cameras."""
        cameras = {k for k, ft in self.features.items() if ft.get("dtype") in ("video", "image")}
        table = pq.read_table(path, columns=["episode_index", "frame_index", language.LANGUAGE_EVENTS])
        if language.type_problem(language.LANGUAGE_EVENTS, table.schema.field(language.LANGUAGE_EVENTS).type):
            return  # reported by the schema check
        cells = table[language.LANGUAGE_EVENTS].to_pylist()
        places = zip(table["episode_index"].to_pylist(), table["frame_index"].to_pylist(), strict=True)
        for (ep, frame), cell in zip(places, cells, strict=True):
            for row in cell or []:
                style, camera = row.get("style"), row.get("camera")
                what = None
                if style is not None and style not in language.EVENT_STYLES:
                    what = f"style {style!r} is not an event style ({', '.join(sorted(language.EVENT_STYLES))})"
                elif style in language.VIEW_DEPENDENT_STYLES and camera not in cameras:
                    what = f"a {style!r} row needs the camera it is about, one of {sorted(cameras)}; got {camera!r}"
                elif style not in language.VIEW_DEPENDENT_STYLES and camera is not None:
                    what = f"a {style!r} row must not name a camera (got {camera!r})"
                elif not row.get("role"):
                    what = "a row has no role"
                if what:
                    self.add(
                        "error",
                        "language-row",
                        f"{_ep_where(self.rel(path), ep)}, frame {frame}",
                        f"{language.LANGUAGE_EVENTS}: {what}",
                        "fix or drop the row (LeRobot's language resolvers reject it)",
                    )

    def _check_global_index(self, columns: list[tuple[Path, np.ndarray]]) -> None:
        """LeRobot concatenates the data files in path order and looks frames up by position = index."""
        position = 0
        for path, index in columns:
            want = np.arange(position, position + len(index))
            if not np.array_equal(index, want):
                bad = int(np.argmax(index != want))
                self.add(
                    "error",
                    "global-index",
                    self.rel(path),
                    f"row {bad} has index {int(index[bad])}, but it is frame {int(want[bad])} of the dataset "
                    "(data files in order must hold index 0, 1, 2, ... without gaps)",
                    REPAIR_FIX,
                )
                return
            position += len(index)

    # --- videos

    def check_videos(self) -> None:
        for key, ft in self.features.items():
            if ft.get("dtype") == "video":
                self._check_video_key(key, ft)

    def _check_video_key(self, key: str, ft: dict[str, Any]) -> None:
        columns = [
            f"videos/{key}/{c}" for c in ("chunk_index", "file_index", "from_timestamp", "to_timestamp")
        ]
        by_file: dict[Path, list[dict[str, Any]]] = defaultdict(list)
        for row in self.episodes:
            if any(row.get(c) is None for c in columns):
                self.add(
                    "error",
                    "video-index",
                    _ep_where(EPISODES_DIR, row["episode_index"]),
                    f"{key}: video columns are missing or empty",
                    REPAIR_FIX,
                )
                continue
            path = self._file_path("video_path", row, f"videos/{key}", video_key=key)
            if path is not None:
                by_file[path].append(row)
        for path in sorted(by_file):
            self._check_video_file(key, ft, path, by_file[path])
        on_disk = set((self.root / "videos" / key).glob("chunk-*/file-*.mp4"))
        for path in sorted(on_disk - set(by_file)):
            self.add(
                "warning",
                "video-orphan",
                self.rel(path),
                "no episode refers to this video file",
                "delete it, or run --repair if an episode was being saved when recording stopped",
            )

    def _check_video_file(self, key: str, ft: dict[str, Any], path: Path, rows: list[dict[str, Any]]) -> None:
        rel = self.rel(path)
        eps = [r["episode_index"] for r in rows]
        if not path.is_file():
            self.add(
                "error",
                "video-missing",
                rel,
                f"video file is missing (episodes {self._ranges(eps)})",
                DELETE_EPISODES_FIX,
            )
            return
        try:
            times = np.asarray(video_frame_times(path))
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                width, height = stream.codec_context.width, stream.codec_context.height
                codec = stream.codec_context.codec.canonical_name
                rate = stream.average_rate
        except Exception as exc:  # any demuxer failure is the same finding: LeRobot cannot read it either
            self.add("error", "video-unreadable", rel, f"cannot be opened ({exc})", DELETE_EPISODES_FIX)
            return
        shape = ft.get("shape") or [0, 0, 0]
        if [height, width] != list(shape[:2]):
            self.add(
                "error",
                "video-size",
                rel,
                f"frames are {height}x{width} but info.json says {shape[0]}x{shape[1]}",
                "fix the feature shape in info.json (all episodes of a camera must share one size)",
            )
        stated_codec = (ft.get("info") or {}).get("video.codec")
        if stated_codec and stated_codec != codec:
            self.add(
                "warning", "video-codec", rel, f"codec is {codec}, info.json says {stated_codec}", REPAIR_FIX
            )
        if rate and self.fps and abs(float(rate) - self.fps) > 0.01:
            self.add(
                "error",
                "video-fps",
                rel,
                f"video runs at {float(rate):.3f} fps but the dataset is {self.fps} fps",
                "re-encode the video at the dataset fps",
            )
        previous_end: float | None = None
        for row in sorted(rows, key=lambda r: r[f"videos/{key}/from_timestamp"]):
            ep, where = row["episode_index"], _ep_where(rel, row["episode_index"])
            start, stop = float(row[f"videos/{key}/from_timestamp"]), float(row[f"videos/{key}/to_timestamp"])
            if previous_end is not None and start < previous_end - TIMESTAMP_TOLERANCE_S:
                self.add(
                    "error",
                    "video-overlap",
                    where,
                    f"starts at {start:.6f} s, before the previous episode ends ({previous_end:.6f} s)",
                    REPAIR_FIX,
                )
            previous_end = stop
            self._check_video_episode(path, where, ep, row["length"], start, stop, times)

    def _check_video_episode(
        self, path: Path, where: str, ep: int, length: int, start: float, stop: float, times: np.ndarray
    ) -> None:
        if not self.fps or not _int(length) or length <= 0:
            return
        tol = TIMESTAMP_TOLERANCE_S
        if abs((stop - start) - length / self.fps) > 0.5 / self.fps:
            self.add(
                "error",
                "video-duration",
                where,
                f"[from_timestamp, to_timestamp) = [{start:.6f}, {stop:.6f}) spans {stop - start:.4f} s, but {length} "
                f"frames at {self.fps} fps need {length / self.fps:.4f} s",
                REPAIR_FIX,
            )
        expected = start + np.arange(length) / self.fps
        inside = int(np.count_nonzero((times >= start - tol) & (times < stop - tol)))
        if len(times):
            pos = (
                np.clip(np.searchsorted(times, expected), 1, len(times) - 1)
                if len(times) > 1
                else np.zeros(length, int)
            )
            nearest = np.minimum(
                np.abs(times[pos] - expected), np.abs(times[np.maximum(pos - 1, 0)] - expected)
            )
            missing = np.nonzero(nearest > tol)[0]
        else:
            missing = np.arange(length)
        if len(missing) or inside != length:
            detail = (
                f"no frame at {expected[missing[0]]:.6f} s (frame {int(missing[0])}); {len(missing)} of {length} frames missing"
                if len(missing)
                else f"holds {inside} frames in its time range, expected {length}"
            )
            self.add(
                "error",
                "video-frames",
                where,
                f"the video does not cover the episode at {self.fps} fps: {detail} "
                "(LeRobot raises FrameTimestampError when it reads these frames)",
                "re-encode the episode's video at constant fps from pts 0, or delete the episode; "
                "dropped frames while recording point to an overloaded encoder",
            )
            return
        if self.decode:
            try:
                decode_video_frames(path, [float(expected[0]), float(expected[-1])])
            except DatasetError as exc:
                self.add(
                    "error",
                    "video-decode",
                    where,
                    f"first/last frame cannot be decoded: {exc}",
                    DELETE_EPISODES_FIX,
                )

    # --- stats

    def check_stats(self) -> None:
        path = self.root / STATS_PATH
        if not path.is_file():
            self.add(
                "error",
                "stats-missing",
                STATS_PATH,
                "meta/stats.json is missing: training normalizes with these statistics",
                f"recompute it ({REPAIR_FIX})",
            )
            return
        try:
            stats = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            self.add(
                "error",
                "stats-invalid",
                STATS_PATH,
                f"not valid JSON ({exc})",
                f"recompute it ({REPAIR_FIX})",
            )
            return
        if not isinstance(stats, dict):
            self.add(
                "error",
                "stats-invalid",
                STATS_PATH,
                "must hold a JSON object",
                f"recompute it ({REPAIR_FIX})",
            )
            return
        for key, ft in self.features.items():
            if ft.get("dtype") in ("string", "language"):
                continue
            entry = stats.get(key)
            if not isinstance(entry, dict):
                self.add(
                    "error",
                    "stats-missing",
                    STATS_PATH,
                    f"no statistics for feature {key!r}",
                    f"recompute them ({REPAIR_FIX})",
                )
                continue
            absent = [s for s in _REQUIRED_STATS if s not in entry]
            if absent:
                self.add(
                    "error",
                    "stats-missing",
                    STATS_PATH,
                    f"{key}: lacks {absent}",
                    f"recompute them ({REPAIR_FIX})",
                )
            quantiles = [s for s in STAT_NAMES if s not in _REQUIRED_STATS and s not in entry]
            if quantiles:
                self.add(
                    "warning",
                    "stats-quantiles",
                    STATS_PATH,
                    f"{key}: lacks {quantiles}",
                    f"needed only for QUANTILES normalization; recompute ({REPAIR_FIX})",
                )
            self._check_stat_shapes(key, ft, entry)
        present = set()
        for row in self.episodes:
            present.update(k.split("/")[1] for k in row if k.startswith("stats/") and len(k.split("/")) >= 3)
        no_episode_stats = [
            k
            for k in self.features
            if k not in present and self.features[k].get("dtype") not in ("string", "language")
        ]
        if self.episodes and no_episode_stats:
            self.add(
                "warning",
                "episode-stats",
                EPISODES_DIR,
                f"no per-episode stats/* columns for {no_episode_stats[:6]} (used when merging or editing datasets)",
                REPAIR_FIX,
            )

    def _check_stat_shapes(self, key: str, ft: dict[str, Any], entry: dict[str, Any]) -> None:
        if ft.get("dtype") in ("video", "image"):
            want: tuple[int, ...] = (int((ft.get("shape") or [0, 0, 3])[-1]), 1, 1)
        else:
            shape = ft.get("shape") or [1]
            want = (int(np.prod(shape)),) if len(shape) == 1 else tuple(int(s) for s in shape)
        for name in STAT_NAMES:
            if name not in entry:
                continue
            try:
                value = np.asarray(entry[name], dtype=np.float64)
            except (TypeError, ValueError):
                self.add(
                    "error",
                    "stats-invalid",
                    STATS_PATH,
                    f"{key}/{name} is not numeric",
                    f"recompute ({REPAIR_FIX})",
                )
                continue
            expected = (1,) if name == "count" else want
            if value.shape != expected:
                self.add(
                    "error",
                    "stats-shape",
                    STATS_PATH,
                    f"{key}/{name} has shape {value.shape}, expected {expected}",
                    f"recompute ({REPAIR_FIX})",
                )
            elif not np.all(np.isfinite(value)):
                self.add(
                    "error",
                    "stats-invalid",
                    STATS_PATH,
                    f"{key}/{name} holds NaN or inf",
                    f"recompute ({REPAIR_FIX})",
                )

    # --- leftovers

    def check_leftovers(self) -> None:
        images = self.root / "images"
        if images.is_dir() and any(p.is_file() for p in images.rglob("*")):
            self.add(
                "warning",
                "leftover-images",
                "images/",
                "temporary frame images from an interrupted recording (never uploaded, but they take space)",
                "delete images/ once no recording is running",
            )
        temps = [p for p in self.root.rglob(f"*{TEMP_SUFFIX}")]
        staging = self.root / STAGING_DIR
        if temps or (staging.is_dir() and any(staging.iterdir())):
            shown = ", ".join(self.rel(p) for p in temps[:3]) or STAGING_DIR
            self.add(
                "warning", "leftover-temp", shown, "temporary files from an interrupted write", REPAIR_FIX
            )


def _type_mismatch(actual: pa.DataType, ft: dict[str, Any], key: str) -> str | None:
    """Why an arrow column type cannot hold the feature, or None when it can."""
    dtype, shape = ft.get("dtype"), list(ft.get("shape") or [1])
    if dtype == "language":
        return language.type_problem(key, actual)
    if dtype == "image":
        ok = pa.types.is_struct(actual) and actual.get_field_index("bytes") >= 0
        return None if ok else f"type {actual} is not the image struct {{bytes, path}}"
    if dtype not in _NUMERIC_DTYPES:
        return None
    leaf = pa.from_numpy_dtype(np.dtype(dtype))
    if shape == [1]:
        return None if actual == leaf else f"type {actual}, expected {leaf} for dtype {dtype} shape [1]"
    if pa.types.is_fixed_size_list(actual):
        if actual.value_type == leaf and actual.list_size == int(np.prod(shape)):
            return None
    elif (pa.types.is_list(actual) or pa.types.is_large_list(actual)) and actual.value_type == leaf:
        return None
    return f"type {actual}, expected fixed_size_list<{leaf}>[{int(np.prod(shape))}] for shape {shape}"
