"""LeRobotDataset v3.0 on-disk format: paths, default sizes, feature dicts, arrow schemas, atomic file writes.

Both the writer and the reader import these definitions, so a dataset robotui writes is laid out exactly as
LeRobot 0.4.x writes it (reference: lerobot-interop.md §5) and the two sides can never drift apart.
Writes go through temp file + fsync + `os.replace` + directory fsync, because a half-written info.json or
parquet file bricks a dataset (a lesson LeRobot learned the hard way).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from engine.dataset import language

CODEBASE_VERSION = "v3.0"

DEFAULT_CHUNK_SIZE = 1000  # files per chunk directory
DEFAULT_DATA_FILE_SIZE_IN_MB = 100
DEFAULT_VIDEO_FILE_SIZE_IN_MB = 200

CHUNK_FILE_PATTERN = "chunk-{chunk_index:03d}/file-{file_index:03d}"
DEFAULT_DATA_PATH = "data/" + CHUNK_FILE_PATTERN + ".parquet"
DEFAULT_VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE_PATTERN + ".mp4"
DEFAULT_EPISODES_PATH = "meta/episodes/" + CHUNK_FILE_PATTERN + ".parquet"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"

# Leftovers robotui may leave after a crash; neither ends in .parquet/.mp4, so no reader ever globs them.
TEMP_SUFFIX = ".robotui-tmp"
STAGING_DIR = ".robotui-staging"  # per-episode encoder output while an episode is being recorded
LOCK_FILE = ".robotui.lock"  # held by the one process writing or repairing the dataset

STATE_KEY = "observation.state"
ACTION_KEY = "action"
IMAGES_PREFIX = "observation.images."

DEFAULT_FEATURES: dict[str, dict[str, Any]] = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
INTERVENTION_FEATURE: dict[str, Any] = {"dtype": "bool", "shape": [1], "names": None}

STAT_NAMES = ("min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99")
QUANTILES: dict[str, float] = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}

_ARROW_TYPES: dict[str, pa.DataType] = {
    "bool": pa.bool_(),
    "int8": pa.int8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "uint8": pa.uint8(),
    "uint16": pa.uint16(),
    "uint32": pa.uint32(),
    "uint64": pa.uint64(),
    "float16": pa.float16(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "string": pa.string(),
}


# --------------------------------------------------------------------------------------------- features


def build_features(
    robot_features: Mapping[str, Any] | Sequence[str],
    cameras: Mapping[str, tuple[int, int]],
    *,
    video: bool = True,
    action_features: Mapping[str, Any] | Sequence[str] | None = None,
    extra: Mapping[str, Mapping[str, Any]] | None = None,
    language_events: bool = False,
) -> dict[str, dict[str, Any]]:
    """LeRobot's features dict for a robot: `action`, `observation.state`, one entry per camera, extras, defaults.

    `robot_features` is a robot's `observation_features` (joint keys mapped to `float`; image entries are
    ignored here because cameras come separately) or just the joint keys. Joints become ONE float32 vector
    per side, named by the joint keys, as `lerobot-record` stores them. `action_features` defaults to the same
    joints. `extra` adds features such as `{"intervention": INTERVENTION_FEATURE}` before the defaults.
    `language_events` appends LeRobot's `language_events` column after them (as LeRobot's annotation tools
    add it), so questions asked while recording travel with the data; LeRobot 0.4.x cannot load a dataset
    with a `language` feature, so it is off unless asked for.
    """
    state_names = _joint_names(robot_features)
    action_names = _joint_names(action_features) if action_features is not None else state_names
    if not state_names or not action_names:
        raise ValueError("a dataset needs at least one joint for observation.state and action")
    features: dict[str, dict[str, Any]] = {
        ACTION_KEY: {"dtype": "float32", "shape": [len(action_names)], "names": list(action_names)},
        STATE_KEY: {"dtype": "float32", "shape": [len(state_names)], "names": list(state_names)},
    }
    for cam, (height, width) in cameras.items():
        features[IMAGES_PREFIX + cam] = {
            "dtype": "video" if video else "image",
            "shape": [int(height), int(width), 3],
            "names": ["height", "width", "channels"],
            "info": {"is_depth_map": False},
        }
    for key, ft in (extra or {}).items():
        if key in features or key in DEFAULT_FEATURES:
            raise ValueError(f"extra feature '{key}' clashes with a built-in feature")
        features[key] = {"dtype": ft["dtype"], "shape": list(ft["shape"]), "names": ft.get("names")}
    for key, ft in DEFAULT_FEATURES.items():
        features[key] = dict(ft)
    if language_events:
        features[language.LANGUAGE_EVENTS] = dict(language.LANGUAGE_FEATURE)
    check_features(features)
    return features


def _joint_names(spec: Mapping[str, Any] | Sequence[str]) -> list[str]:
    if isinstance(spec, Mapping):
        return [k for k, v in spec.items() if not isinstance(v, tuple)]
    return [str(k) for k in spec]


def check_features(features: Mapping[str, Mapping[str, Any]]) -> None:
    """Reject what LeRobot cannot load: `/` in names, unknown dtypes, missing default features."""
    for key, ft in features.items():
        if "/" in key:
            raise ValueError(f"feature name '{key}' contains '/', which LeRobot forbids")
        dtype = ft.get("dtype")
        if dtype == "language":
            if key not in language.LANGUAGE_COLUMNS or list(ft.get("shape") or []) != [1]:
                raise ValueError(
                    f"feature '{key}': dtype 'language' is only for {' and '.join(language.LANGUAGE_COLUMNS)}"
                    " with shape [1]"
                )
            continue
        if dtype not in ("video", "image") and dtype not in _ARROW_TYPES:
            raise ValueError(f"feature '{key}' has unsupported dtype {dtype!r}")
        shape = ft.get("shape")
        if not isinstance(shape, list | tuple) or not shape or not all(int(s) > 0 for s in shape):
            raise ValueError(f"feature '{key}' has an invalid shape {shape!r}")
        if dtype not in ("video", "image") and len(shape) != 1:
            raise ValueError(f"feature '{key}': only scalar or 1-D numeric features are supported")
    missing = [k for k in DEFAULT_FEATURES if k not in features]
    if missing:
        raise ValueError(f"features lack the default features {missing}")


def video_keys(features: Mapping[str, Mapping[str, Any]]) -> list[str]:
    return [k for k, ft in features.items() if ft["dtype"] == "video"]


def image_keys(features: Mapping[str, Mapping[str, Any]]) -> list[str]:
    return [k for k, ft in features.items() if ft["dtype"] == "image"]


def data_keys(features: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Columns of the data parquet: every feature but the videos, in features order."""
    return [k for k, ft in features.items() if ft["dtype"] != "video"]


def language_keys(features: Mapping[str, Mapping[str, Any]]) -> list[str]:
    return [k for k, ft in features.items() if ft["dtype"] == "language"]


def stats_keys(features: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Features with statistics: all but the language columns (text has no mean)."""
    return [k for k, ft in features.items() if ft["dtype"] != "language"]


def frame_keys(features: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """What a caller hands to `add_frame`: every feature but the defaults and the language columns, which
    the writer fills in (language events arrive through `add_language_event`)."""
    return [k for k, ft in features.items() if k not in DEFAULT_FEATURES and ft["dtype"] != "language"]


def comparable_features(features: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Features without the `info` blocks, shapes as lists: what must match for two sessions to share a dataset."""
    return {
        k: {"dtype": ft["dtype"], "shape": [int(s) for s in ft["shape"]], "names": ft.get("names")}
        for k, ft in features.items()
    }


# ------------------------------------------------------------------------------------------------ paths


def chunk_file_path(template: str, chunk_index: int, file_index: int, **kw: str) -> str:
    return template.format(chunk_index=chunk_index, file_index=file_index, **kw)


def next_chunk_file(chunk_index: int, file_index: int, chunks_size: int) -> tuple[int, int]:
    """The file after (chunk, file): the file index wraps to 0 in a new chunk after `chunks_size` files."""
    if file_index >= chunks_size - 1:
        return chunk_index + 1, 0
    return chunk_index, file_index + 1


# ------------------------------------------------------------------------------------------------ schemas


def _hf_value(dtype: str) -> dict[str, Any]:
    return {"dtype": dtype, "_type": "Value"}


def hf_feature(ft: Mapping[str, Any], key: str = "") -> dict[str, Any]:
    """The `datasets` 4.x feature dict for one LeRobot feature (what the `huggingface` metadata holds)."""
    dtype = ft["dtype"]
    if dtype == "language":
        return language.column_hf_feature(key)
    if dtype == "image":
        return {"_type": "Image"}
    shape = list(ft["shape"])
    if shape == [1]:
        return _hf_value(dtype)
    return {"feature": _hf_value(dtype), "length": int(shape[0]), "_type": "List"}


def arrow_type(ft: Mapping[str, Any], key: str = "") -> pa.DataType:
    dtype = ft["dtype"]
    if dtype == "language":
        return language.column_arrow_type(key)
    if dtype == "image":
        return pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    shape = list(ft["shape"])
    if shape == [1]:
        return _ARROW_TYPES[dtype]
    return pa.list_(_ARROW_TYPES[dtype], int(shape[0]))


def huggingface_metadata(hf_features: Mapping[str, Any]) -> dict[bytes, bytes]:
    return {b"huggingface": json.dumps({"info": {"features": dict(hf_features)}}).encode()}


def data_schema(features: Mapping[str, Mapping[str, Any]]) -> pa.Schema:
    """Arrow schema of `data/chunk-XXX/file-YYY.parquet`, with the `huggingface` metadata `datasets` writes."""
    keys = data_keys(features)
    fields = [pa.field(k, arrow_type(features[k], k)) for k in keys]
    return pa.schema(fields, metadata=huggingface_metadata({k: hf_feature(features[k], k) for k in keys}))


def hf_feature_from_arrow(t: pa.DataType) -> dict[str, Any]:
    """The `datasets` feature dict `datasets` would infer for an arrow type (used for the episodes parquet)."""
    if pa.types.is_fixed_size_list(t):
        return {"feature": hf_feature_from_arrow(t.value_type), "length": t.list_size, "_type": "List"}
    if pa.types.is_list(t):
        return {"feature": hf_feature_from_arrow(t.value_type), "_type": "List"}
    names = {v: k for k, v in _ARROW_TYPES.items()}
    return _hf_value(names[t])


def stat_arrow_type(ft: Mapping[str, Any], stat: str) -> pa.DataType:
    """`list<double>` per stat, `list<int64>` for count, `(3,1,1)` nested lists for images and videos."""
    leaf = pa.int64() if stat == "count" else pa.float64()
    if ft["dtype"] in ("video", "image") and stat != "count":
        return pa.list_(pa.list_(pa.list_(leaf)))
    return pa.list_(leaf)


def episodes_schema(features: Mapping[str, Mapping[str, Any]]) -> pa.Schema:
    """Arrow schema of `meta/episodes/chunk-XXX/file-YYY.parquet`, columns in LeRobot's insertion order."""
    fields: list[pa.Field] = [
        pa.field("episode_index", pa.int64()),
        pa.field("tasks", pa.list_(pa.string())),
        pa.field("length", pa.int64()),
        pa.field("data/chunk_index", pa.int64()),
        pa.field("data/file_index", pa.int64()),
        pa.field("dataset_from_index", pa.int64()),
        pa.field("dataset_to_index", pa.int64()),
    ]
    for key in video_keys(features):
        fields += [
            pa.field(f"videos/{key}/chunk_index", pa.int64()),
            pa.field(f"videos/{key}/file_index", pa.int64()),
            pa.field(f"videos/{key}/from_timestamp", pa.float64()),
            pa.field(f"videos/{key}/to_timestamp", pa.float64()),
        ]
    for key in stats_keys(features):
        fields += [pa.field(f"stats/{key}/{s}", stat_arrow_type(features[key], s)) for s in STAT_NAMES]
    fields += [
        pa.field("meta/episodes/chunk_index", pa.int64()),
        pa.field("meta/episodes/file_index", pa.int64()),
    ]
    meta = huggingface_metadata({f.name: hf_feature_from_arrow(f.type) for f in fields})
    return pa.schema(fields, metadata=meta)


def tasks_table(tasks: Sequence[str]) -> pa.Table:
    """`meta/tasks.parquet` as `df.to_parquet` writes a DataFrame indexed by `task` (LeRobot ≥ 0.4.4)."""
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {
                "name": "task",
                "field_name": "task",
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            },
        ],
        "attributes": {},
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": _pandas_version(),
    }
    schema = pa.schema(
        [pa.field("task_index", pa.int64()), pa.field("task", pa.string())],
        metadata={b"pandas": json.dumps(pandas_meta).encode()},
    )
    return pa.table({"task_index": list(range(len(tasks))), "task": list(tasks)}, schema=schema)


def _pandas_version() -> str:
    try:
        return importlib.metadata.version("pandas")
    except importlib.metadata.PackageNotFoundError:
        return "2.2.3"


def read_tasks(path: Path) -> list[str]:
    """Task strings by task_index from tasks.parquet, accepting the old unnamed `__index_level_0__` index too."""
    table = pq.read_table(path)
    names = table.column_names
    task_col = "task" if "task" in names else "__index_level_0__"
    pairs = sorted(
        zip(table.column("task_index").to_pylist(), table.column(task_col).to_pylist(), strict=True)
    )
    if [i for i, _ in pairs] != list(range(len(pairs))):
        raise ValueError(f"{path}: task_index is not 0..{len(pairs) - 1}")
    return [t for _, t in pairs]


# --------------------------------------------------------------------------------------------- info.json


def new_info(
    *,
    fps: int,
    features: Mapping[str, Mapping[str, Any]],
    robot_type: str | None,
    chunks_size: int = DEFAULT_CHUNK_SIZE,
    data_files_size_in_mb: float = DEFAULT_DATA_FILE_SIZE_IN_MB,
    video_files_size_in_mb: float = DEFAULT_VIDEO_FILE_SIZE_IN_MB,
) -> dict[str, Any]:
    """info.json of an empty dataset, keys in the order LeRobot 0.4.x writes them."""
    return {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robot_type,
        "total_episodes": 0,
        "total_frames": 0,
        "total_tasks": 0,
        "chunks_size": chunks_size,
        "data_files_size_in_mb": data_files_size_in_mb,
        "video_files_size_in_mb": video_files_size_in_mb,
        "fps": fps,
        "splits": {},
        "data_path": DEFAULT_DATA_PATH,
        "video_path": DEFAULT_VIDEO_PATH if video_keys(features) else None,
        "features": {k: json.loads(json.dumps(ft)) for k, ft in features.items()},
    }


def set_totals(info: dict[str, Any], *, episodes: int, frames: int, tasks: int) -> None:
    info["total_episodes"] = episodes
    info["total_frames"] = frames
    info["total_tasks"] = tasks
    info["splits"] = {"train": f"0:{episodes}"} if episodes else {}


# ------------------------------------------------------------------------------------------- atomic files


def temp_path(path: Path) -> Path:
    return path.with_name(path.name + TEMP_SUFFIX)


def fsync_dir(path: Path) -> None:
    """Make a rename inside `path` durable (a power cut could otherwise forget it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(tmp: Path, path: Path) -> None:
    """fsync `tmp`, then atomically put it in place of `path` and fsync the directory."""
    fsync_file(tmp)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_json_atomic(path: Path, obj: Any) -> None:
    """JSON like LeRobot's `write_json` (indent 4, UTF-8 kept), never half-written."""
    write_bytes_atomic(path, json.dumps(obj, indent=4, ensure_ascii=False).encode())


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_parquet_temp(path: Path, tables: Iterable[pa.Table], schema: pa.Schema) -> Path:
    """Write `tables` (one row group each, snappy, dictionary on) to the temp sibling of `path`; not committed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    with pq.ParquetWriter(tmp, schema, compression="snappy", use_dictionary=True) as writer:
        for table in tables:
            if table.num_rows:
                writer.write_table(table.cast(schema), row_group_size=table.num_rows)
    return tmp


def write_parquet_atomic(path: Path, tables: Iterable[pa.Table], schema: pa.Schema) -> None:
    commit(write_parquet_temp(path, tables, schema), path)


# ------------------------------------------------------------------------------------------------- locking


class DatasetBusyError(RuntimeError):
    """Another process is writing into (or repairing) this dataset."""


class DatasetLock:
    """An exclusive, non-blocking `flock` on `<root>/.robotui.lock`, so two writers (or a repair during a
    recording) never touch one dataset at once. The file is removed on release; acquisition re-checks that
    the locked file is still the one at the path, so a release racing an acquisition cannot hand the lock
    to two processes. A no-op where `fcntl` does not exist (Windows)."""

    def __init__(self, root: Path) -> None:
        self.path = Path(root) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> DatasetLock:
        if sys.platform == "win32":
            return self
        import fcntl

        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                owner = self.path.read_text().strip() if self.path.exists() else "?"
                raise DatasetBusyError(
                    f"{self.path.parent} is in use by another robotui process (pid {owner or '?'})"
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, str(os.getpid()).encode())
                self._fd = fd
                return self
            os.close(fd)  # released and removed meanwhile: take the new file instead

    def release(self) -> None:
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> DatasetLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
