"""Read a LeRobotDataset v3.0 from disk or the Hub cache, whether LeRobot or robotui wrote it.

Torch-free on purpose: `robotui dataset info/check`, the record screen's episode browser and the trainer's
data loader all need the same view of the files, and only the trainer wants tensors. Video frames are
decoded with PyAV at `from_timestamp + frame_index / fps`, with LeRobot's 1e-4 s tolerance, so a dataset
this reader accepts is one LeRobot can decode too.
"""

from __future__ import annotations

import bisect
import io
import json
import os
import re
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from engine.dataset.format import CODEBASE_VERSION, INFO_PATH, STATS_PATH, TASKS_PATH
from engine.dataset.language import LANGUAGE_EVENTS, LanguageRow, decode_rows

EPISODES_DIR = "meta/episodes"
TIMESTAMP_TOLERANCE_S = 1e-4
EPISODE_COLUMNS = (
    "episode_index",
    "tasks",
    "length",
    "data/chunk_index",
    "data/file_index",
    "dataset_from_index",
    "dataset_to_index",
)
CONVERT_V21_HINT = "python -m lerobot.scripts.convert_dataset_v21_to_v30 --repo-id=<repo_id>"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_CAMERA_DTYPES = ("video", "image")
_NON_NUMERIC_DTYPES = ("video", "image", "string", "language")


class DatasetError(Exception):
    """Base for everything this module raises about a dataset's files."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """The dataset (or one of its files) is not on disk and cannot be fetched."""


class DatasetFormatError(DatasetError, ValueError):
    """The files are there but do not follow LeRobotDataset v3.0."""


class FrameDecodeError(DatasetError, RuntimeError):
    """A video holds no frame within tolerance of a requested timestamp."""


# --- locations


def lerobot_home() -> Path:
    """LeRobot's HF_LEROBOT_HOME, read now (not at import) so tests and profiles can move it."""
    if os.environ.get("HF_LEROBOT_HOME"):
        return Path(os.environ["HF_LEROBOT_HOME"]).expanduser()
    hf_home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "huggingface"
    )
    return Path(hf_home).expanduser() / "lerobot"


def hub_cache_dir() -> Path:
    """Where LeRobot keeps Hub snapshots of datasets, separate from locally recorded roots."""
    return lerobot_home() / "hub"


def hub_offline() -> bool:
    """True when huggingface_hub will refuse network calls (it reads HF_HUB_OFFLINE at import)."""
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}
    return bool(constants.HF_HUB_OFFLINE) or env


def resolve_dataset(root_or_repo_id: str | Path, *, revision: str | None = None) -> Path:
    """A local dataset root, `$HF_LEROBOT_HOME/<repo_id>`, or a Hub snapshot under `$HF_LEROBOT_HOME/hub`."""
    text = str(root_or_repo_id)
    path = Path(text).expanduser()
    if path.exists():
        if not (path / INFO_PATH).is_file():
            raise DatasetNotFoundError(f"{path} is not a LeRobot dataset: it has no {INFO_PATH}")
        return path
    if not _REPO_ID.match(text) or text.startswith((".", "/", "~")):
        raise DatasetNotFoundError(f"no dataset at {path}: the directory does not exist")
    local = lerobot_home() / text
    if (local / INFO_PATH).is_file():
        return local
    try:
        return _download(text, revision)
    except DatasetNotFoundError as exc:
        raise DatasetNotFoundError(f"{exc} (no local directory {path} exists either)") from exc.__cause__


def _download(repo_id: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    rev = revision or CODEBASE_VERSION
    cache = hub_cache_dir()
    try:
        return Path(snapshot_download(repo_id, repo_type="dataset", revision=rev, cache_dir=cache))
    except LocalEntryNotFoundError as exc:
        if hub_offline():
            raise DatasetNotFoundError(
                f"dataset {repo_id!r} (revision {rev}) is not cached in {cache}, and HF_HUB_OFFLINE is set, "
                f"so it cannot be downloaded. Download it once with network access (unset HF_HUB_OFFLINE, or "
                f"`hf download {repo_id} --repo-type dataset --revision {rev} --cache-dir {cache}`), "
                "or pass the path of a local copy."
            ) from exc
        raise DatasetNotFoundError(
            f"could not reach the Hugging Face Hub to download {repo_id!r}, and no copy is cached in {cache}: "
            f"{exc}"
        ) from exc
    except GatedRepoError as exc:
        raise DatasetNotFoundError(
            f"dataset {repo_id!r} is gated: accept its conditions on huggingface.co, then log in "
            "with `hf auth login`"
        ) from exc
    except RepositoryNotFoundError as exc:
        raise DatasetNotFoundError(
            f"dataset {repo_id!r} was not found on the Hub (check the id; if it is private, log in with "
            "`hf auth login`)"
        ) from exc
    except RevisionNotFoundError as exc:
        hint = (
            f"it has no git tag {CODEBASE_VERSION}: LeRobot >= 0.4 and robotui tag datasets when pushing, so it "
            f"was probably never pushed that way or is a v2.x dataset (convert with `{CONVERT_V21_HINT}`); "
            "pass revision='main' to read it anyway"
            if revision is None
            else "check the branch, tag or commit"
        )
        raise DatasetNotFoundError(f"dataset {repo_id!r} has no revision {rev!r}: {hint}") from exc
    except (HfHubHTTPError, OSError) as exc:
        raise DatasetNotFoundError(f"could not download dataset {repo_id!r} from the Hub: {exc}") from exc


# --- metadata files


def read_info(root: Path) -> dict[str, Any]:
    """meta/info.json, refusing v1/v2 layouts (their files are elsewhere) with the conversion command."""
    path = Path(root) / INFO_PATH
    if not path.is_file():
        raise DatasetNotFoundError(f"{path} is missing")
    try:
        info = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetFormatError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(info, dict):
        raise DatasetFormatError(f"{path} must hold a JSON object")
    version = str(info.get("codebase_version", ""))
    match = re.match(r"^v(\d+)\.(\d+)", version)
    if not match:
        raise DatasetFormatError(f"{path}: codebase_version {version!r} is not of the form vX.Y")
    if int(match.group(1)) < 3:
        raise DatasetFormatError(
            f"{path}: this is a LeRobotDataset {version}; robotui reads v3.x. Convert it with `{CONVERT_V21_HINT}`"
        )
    return info


def read_tasks(root: Path) -> dict[int, str]:
    """task_index -> task. The task string is the index `task`, or `__index_level_0__` before LeRobot 0.4.5."""
    path = Path(root) / TASKS_PATH
    if not path.is_file():
        raise DatasetNotFoundError(f"{path} is missing")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise DatasetFormatError(f"{path} is not a readable parquet file: {exc}") from exc
    names = table.column_names
    task_col = next((c for c in ("task", "__index_level_0__") if c in names), None)
    if task_col is None:
        pandas_meta = json.loads((table.schema.metadata or {}).get(b"pandas", b"{}"))
        index_cols = [c for c in pandas_meta.get("index_columns", []) if isinstance(c, str) and c in names]
        task_col = index_cols[0] if index_cols else None
    if task_col is None or "task_index" not in names:
        raise DatasetFormatError(f"{path} needs a task_index column and a task index; it has {names}")
    tasks: dict[int, str] = {}
    for idx, task in zip(table["task_index"].to_pylist(), table[task_col].to_pylist(), strict=True):
        if idx is None or task is None:
            raise DatasetFormatError(f"{path} has an empty task or task_index")
        if int(idx) in tasks:
            raise DatasetFormatError(f"{path}: task_index {idx} appears twice")
        tasks[int(idx)] = str(task)
    return dict(sorted(tasks.items()))


def episode_files(root: Path) -> list[Path]:
    return sorted((Path(root) / EPISODES_DIR).glob("chunk-*/file-*.parquet"))


def read_parquet(path: Path, **kwargs: Any) -> pa.Table:
    """pq.read_table with the two common failures named: a missing file and a writer that never closed."""
    if not path.is_file():
        raise DatasetNotFoundError(f"{path} is missing")
    try:
        return pq.read_table(path, **kwargs)
    except (OSError, pa.ArrowException) as exc:
        raise DatasetFormatError(
            f"{path} cannot be read ({exc}); a file without a parquet footer means the recording was not "
            "finalized: run `robotui dataset check --repair`"
        ) from exc


def read_episodes_table(root: Path, *, with_stats: bool = False) -> pa.Table:
    """All rows of meta/episodes/*/*.parquet in file order; stats columns dropped unless asked for."""
    files = episode_files(root)
    if not files:
        raise DatasetNotFoundError(f"{Path(root) / EPISODES_DIR} holds no episodes parquet file")
    tables = []
    for path in files:
        table = read_parquet(path)
        if not with_stats:
            table = table.drop_columns([c for c in table.column_names if c.startswith("stats/")])
        tables.append(table)
    return pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]


def read_stats(root: Path) -> dict[str, dict[str, np.ndarray]] | None:
    """meta/stats.json as arrays, or None when the file is absent (LeRobot tolerates that)."""
    path = Path(root) / STATS_PATH
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetFormatError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise DatasetFormatError(f"{path} must hold a JSON object")
    return {
        key: {name: np.asarray(value) for name, value in stats.items()}
        for key, stats in raw.items()
        if isinstance(stats, dict)
    }


def column_to_numpy(column: pa.ChunkedArray | pa.Array, feature: dict[str, Any]) -> np.ndarray:
    """A parquet column as (rows, *shape) numpy; shape-(1,) features come back as (rows,)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    shape = tuple(int(s) for s in feature.get("shape") or [1])
    dtype = np.dtype(feature["dtype"])
    rows = len(column)
    if pa.types.is_fixed_size_list(column.type):
        flat = column.flatten().to_numpy(zero_copy_only=False)
        return flat.astype(dtype, copy=False).reshape((rows, *shape))
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        return np.asarray(column.to_pylist(), dtype=dtype).reshape((rows, *shape))
    values = column.to_numpy(zero_copy_only=False).astype(dtype, copy=False)
    return values if shape == (1,) else values.reshape((rows, *shape))


# --- video


def video_frame_times(path: Path) -> list[float]:
    """Presentation times (s) of every video frame, from the packets alone (no decoding)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tb = stream.time_base
        times = [float(p.pts * tb) for p in container.demux(stream) if p.pts is not None and p.size]
    return sorted(times)


def decode_video_frames(
    path: Path, timestamps: Sequence[float], *, tolerance_s: float = TIMESTAMP_TOLERANCE_S
) -> np.ndarray:
    """RGB uint8 frames (n, H, W, 3) whose pts is within `tolerance_s` of each timestamp, in the order asked.

    Seeks once to the keyframe at or before the earliest timestamp and decodes forward, so a batch of nearby
    timestamps costs one seek. Raises FrameDecodeError listing every timestamp with no frame.
    """
    wanted = sorted(set(float(t) for t in timestamps))
    if not wanted:
        return np.empty((0, 0, 0, 3), dtype=np.uint8)
    found: dict[float, tuple[float, np.ndarray]] = {}
    decoded: list[float] = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            tb = stream.time_base
            start = max(0, int((wanted[0] - tolerance_s) / tb))
            container.seek(start, stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * tb)
                decoded.append(t)
                if t > wanted[-1] + tolerance_s:
                    break
                lo = bisect.bisect_left(wanted, t - tolerance_s)
                hi = bisect.bisect_right(wanted, t + tolerance_s)
                image = None
                for q in wanted[lo:hi]:
                    if q not in found or abs(t - q) < found[q][0]:
                        image = frame.to_ndarray(format="rgb24") if image is None else image
                        found[q] = (abs(t - q), image)
    except (OSError, av.FFmpegError) as exc:
        raise FrameDecodeError(f"{path}: cannot decode video ({exc})") from exc
    missing = [q for q in wanted if q not in found]
    if missing:
        raise FrameDecodeError(f"{path}: {_describe_missing(missing, decoded, tolerance_s)}")
    return np.stack([found[float(t)][1] for t in timestamps])


def _describe_missing(missing: list[float], decoded: list[float], tolerance_s: float) -> str:
    shown = ", ".join(f"{t:.6f}" for t in missing[:5]) + (" ..." if len(missing) > 5 else "")
    text = f"no frame within {tolerance_s:g} s of timestamp(s) {shown}"
    if not decoded:
        return text + "; nothing could be decoded from there (the file ends before it?)"
    nearest = min(decoded, key=lambda t: abs(t - missing[0]))
    return text + f"; nearest decoded frame to {missing[0]:.6f} is at {nearest:.6f}"


def _decode_image_bytes(value: Any) -> np.ndarray:
    from PIL import Image

    data = value.get("bytes") if isinstance(value, dict) else value
    if not data:
        raise DatasetFormatError("image cell holds no embedded bytes")
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


# --- the reader


class LeRobotDatasetReader:
    """Read-only view of one dataset root. Cheap to open: metadata only; frames load per episode."""

    def __init__(self, root: Path, *, repo_id: str | None = None) -> None:
        self.root = Path(root)
        self.repo_id = repo_id
        self.info = read_info(self.root)
        self.tasks: dict[int, str] = read_tasks(self.root)
        table = read_episodes_table(self.root)
        missing = [c for c in EPISODE_COLUMNS if c not in table.column_names]
        if missing:
            raise DatasetFormatError(f"{self.root / EPISODES_DIR}: episodes parquet lacks columns {missing}")
        rows = sorted(table.to_pylist(), key=lambda r: r["episode_index"])
        self._episodes: dict[int, dict[str, Any]] = {int(r["episode_index"]): r for r in rows}
        self._starts = [int(r["dataset_from_index"]) for r in rows]
        self._order = [int(r["episode_index"]) for r in rows]
        self._frames_cache: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()
        self._stats: dict[str, dict[str, np.ndarray]] | None = None
        self._stats_loaded = False

    @classmethod
    def open(cls, root_or_repo_id: str | Path, *, revision: str | None = None) -> LeRobotDatasetReader:
        """A local root, or a repo id looked up in $HF_LEROBOT_HOME, then the Hub (cached under .../hub)."""
        root = resolve_dataset(root_or_repo_id, revision=revision)
        text = str(root_or_repo_id)
        repo_id = text if _REPO_ID.match(text) and not Path(text).expanduser().exists() else None
        return cls(root, repo_id=repo_id)

    # metadata

    @property
    def codebase_version(self) -> str:
        return str(self.info["codebase_version"])

    @property
    def fps(self) -> int:
        return int(self.info["fps"])

    @property
    def robot_type(self) -> str | None:
        return self.info.get("robot_type")

    @property
    def features(self) -> dict[str, dict[str, Any]]:
        return self.info["features"]

    @property
    def camera_keys(self) -> list[str]:
        return [k for k, ft in self.features.items() if ft.get("dtype") in _CAMERA_DTYPES]

    @property
    def video_keys(self) -> list[str]:
        return [k for k, ft in self.features.items() if ft.get("dtype") == "video"]

    @property
    def total_episodes(self) -> int:
        return int(self.info["total_episodes"])

    @property
    def total_frames(self) -> int:
        return int(self.info["total_frames"])

    @property
    def episode_indices(self) -> list[int]:
        return list(self._order)

    @property
    def stats(self) -> dict[str, dict[str, np.ndarray]] | None:
        if not self._stats_loaded:
            self._stats = read_stats(self.root)
            self._stats_loaded = True
        return self._stats

    def episode(self, episode_index: int) -> dict[str, Any]:
        """The episode's row of meta/episodes (without the stats/* columns)."""
        try:
            return dict(self._episodes[int(episode_index)])
        except KeyError:
            raise IndexError(
                f"episode {episode_index} is not in {self.root} (episodes {self._range_text()})"
            ) from None

    def episode_tasks(self, episode_index: int) -> list[str]:
        return list(self.episode(episode_index).get("tasks") or [])

    def data_path(self, episode_index: int) -> Path:
        ep = self.episode(episode_index)
        rel = self.info["data_path"].format(
            chunk_index=ep["data/chunk_index"], file_index=ep["data/file_index"]
        )
        return self.root / rel

    def video_path(self, camera_key: str, episode_index: int) -> Path:
        self._require_video_key(camera_key)
        ep = self.episode(episode_index)
        rel = self.info["video_path"].format(
            video_key=camera_key,
            chunk_index=ep[f"videos/{camera_key}/chunk_index"],
            file_index=ep[f"videos/{camera_key}/file_index"],
        )
        return self.root / rel

    # frames

    def frames(self, episode_index: int) -> dict[str, np.ndarray]:
        """Every numeric column of the episode as numpy, ordered by frame_index (vectors as (L, N))."""
        cached = self._frames_cache.get(int(episode_index))
        if cached is not None:
            self._frames_cache.move_to_end(int(episode_index))
            return cached
        ep = self.episode(episode_index)
        keys = [k for k, ft in self.features.items() if ft.get("dtype") not in _NON_NUMERIC_DTYPES]
        table = self._episode_table(int(episode_index), keys)
        out = {k: column_to_numpy(table[k], self.features[k]) for k in keys if k in table.column_names}
        if len(table) != int(ep["length"]):
            raise DatasetFormatError(
                f"{self.data_path(episode_index)}: episode {episode_index} has {len(table)} rows, "
                f"but meta/episodes says length {ep['length']}"
            )
        self._frames_cache[int(episode_index)] = out
        while len(self._frames_cache) > 8:
            self._frames_cache.popitem(last=False)
        return out

    def language_events(self, episode_index: int) -> dict[int, list[LanguageRow]]:
        """frame_index -> the `language_events` rows emitted on that frame (frames without events left out;
        empty when the dataset has no such column). Tool calls come back parsed from JSON."""
        self.episode(episode_index)  # IndexError for an unknown episode
        if LANGUAGE_EVENTS not in self.features:
            return {}
        table = self._episode_table(int(episode_index), [LANGUAGE_EVENTS, "frame_index"])
        if LANGUAGE_EVENTS not in table.column_names:
            return {}
        frames = table["frame_index"].to_pylist()
        cells = table[LANGUAGE_EVENTS].to_pylist()
        return {int(f): decode_rows(c) for f, c in zip(frames, cells, strict=True) if c}

    def _episode_table(self, episode_index: int, keys: list[str]) -> pa.Table:
        path = self.data_path(episode_index)
        present = set(pq.read_schema(path).names) if path.is_file() else set()
        columns = [k for k in keys if k in present]
        table = read_parquet(path, columns=columns, filters=[("episode_index", "=", episode_index)])
        if "frame_index" in table.column_names:
            table = table.sort_by("frame_index")
        return table

    def decode_frames(self, camera_key: str, episode_index: int, frame_indices: Sequence[int]) -> np.ndarray:
        """Frames (n, H, W, 3) uint8 of one camera: decoded at from_timestamp + frame_index / fps for videos,
        or from the embedded PNG bytes for image features."""
        if camera_key not in self.camera_keys:
            raise KeyError(f"{camera_key!r} is not a camera of this dataset ({', '.join(self.camera_keys)})")
        ep = self.episode(episode_index)
        length = int(ep["length"])
        indices = [int(i) for i in frame_indices]
        bad = [i for i in indices if not 0 <= i < length]
        if bad:
            raise IndexError(f"frame(s) {bad} out of range for episode {episode_index} (length {length})")
        if self.features[camera_key]["dtype"] == "image":
            table = self._episode_table(int(episode_index), [camera_key, "frame_index"])
            cells = table[camera_key].to_pylist()
            return np.stack([_decode_image_bytes(cells[i]) for i in indices])
        path = self.video_path(camera_key, episode_index)
        start = float(ep[f"videos/{camera_key}/from_timestamp"])
        timestamps = [start + i / self.fps for i in indices]
        where = f"episode {episode_index}, camera {camera_key}, frames {indices[:5]}"
        if not path.is_file():
            raise FrameDecodeError(f"{path}: video file missing ({where})")
        try:
            return decode_video_frames(path, timestamps)
        except FrameDecodeError as exc:
            raise FrameDecodeError(f"{exc} ({where}, from_timestamp {start:.6f})") from exc

    # LeRobot-like item access

    def __len__(self) -> int:
        return self.total_frames

    def __getitem__(self, index: int) -> dict[str, Any]:
        """The frame with global `index`: numeric features, camera images (HWC uint8) and the task string."""
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for {n} frames")
        pos = bisect.bisect_right(self._starts, index) - 1
        episode_index = self._order[pos]
        ep = self._episodes[episode_index]
        row = index - int(ep["dataset_from_index"])
        if row >= int(ep["length"]):
            raise DatasetFormatError(f"global index {index} falls in no episode's [from, to) range")
        columns = self.frames(episode_index)
        item: dict[str, Any] = {key: values[row] for key, values in columns.items()}
        for key in self.camera_keys:
            item[key] = self.decode_frames(key, episode_index, [row])[0]
        if "task_index" in item:
            item["task"] = self.tasks.get(int(item["task_index"]), "")
        return item

    def _require_video_key(self, key: str) -> None:
        if key not in self.video_keys:
            raise KeyError(f"{key!r} is not a video feature of this dataset ({', '.join(self.video_keys)})")

    def _range_text(self) -> str:
        return f"{self._order[0]}..{self._order[-1]}" if self._order else "none"
