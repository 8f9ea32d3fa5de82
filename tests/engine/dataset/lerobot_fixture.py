"""A tiny LeRobotDataset v3.0 written the way LeRobot 0.4.x writes it, without LeRobot and without robotui's
writer, so the reader and validator are tested against LeRobot's files rather than against our own output.

Followed field by field from reference/lerobot-interop.md §5 (v0.4.x flavour): info.json with the v0.4.x key
order and video info block; tasks.parquet from a pandas DataFrame (index named `task`, or unnamed as before
v0.4.4 → `__index_level_0__`); data parquet written per episode through one ParquetWriter (one row group per
episode) carrying the `huggingface` schema metadata; episodes parquet built with `pa.Table.from_pydict` from
plain lists (so int64 / double / list<string> / list<double> / nested (3,1,1) image stats); one mp4 per
camera per file with episodes encoded separately and stream-copied together through the concat demuxer.

`camera_storage="image"` writes cameras as LeRobot does with `--dataset.video=false`: PNG bytes embedded in
the data parquet as the `datasets.Image` struct {bytes, path}, and no videos.

Values are deterministic so tests can check every one: see `state_value`, `action_value` and `colour`.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import av
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

MOTORS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
JOINT_NAMES = [f"{m}.pos" for m in MOTORS]
STAT_NAMES = ("min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99")
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
DEFAULT_TASK = "pick up the cube"
IMAGE_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])  # datasets.Image storage


def state_value(episode: int, frame: int, joint: int) -> float:
    """observation.state of one joint; exact in float32 (multiples of 1/8)."""
    return episode * 100.0 + frame + joint / 8.0


def action_value(episode: int, frame: int, joint: int) -> float:
    return state_value(episode, frame, joint) + 0.5


def colour(camera_rank: int, episode: int, frame: int) -> tuple[int, int, int]:
    """A solid RGB colour per (camera, episode, frame), far enough from its neighbours (>= 24 per channel step)
    that decoding the wrong frame is caught even after yuv420p + crf 30."""
    return (24 + (28 * frame) % 216, 40 + (72 * episode) % 180, 60 + 120 * (camera_rank % 2))


@dataclass
class LeRobotStyleDataset:
    """What the fixture wrote, for tests to compare against."""

    root: Path
    fps: int
    lengths: list[int]
    cameras: dict[str, tuple[int, int]]
    task_list: list[str]
    episode_tasks: list[str]
    robot_type: str
    camera_storage: str = "video"
    video_files: dict[str, list[Path]] = field(default_factory=dict)
    data_files: list[Path] = field(default_factory=list)

    @property
    def total_frames(self) -> int:
        return sum(self.lengths)

    @property
    def camera_keys(self) -> list[str]:
        return [f"observation.images.{name}" for name in self.cameras]

    @property
    def video_keys(self) -> list[str]:
        return self.camera_keys if self.camera_storage == "video" else []

    def image(self, key: str, episode: int, frame: int) -> np.ndarray:
        h, w = self.cameras[key.removeprefix("observation.images.")]
        image = np.empty((h, w, 3), dtype=np.uint8)
        image[:] = self.colour(key, episode, frame)
        return image

    def state(self, episode: int) -> np.ndarray:
        return _vector(state_value, episode, self.lengths[episode])

    def action(self, episode: int) -> np.ndarray:
        return _vector(action_value, episode, self.lengths[episode])

    def colour(self, camera_key: str, episode: int, frame: int) -> tuple[int, int, int]:
        return colour(self.camera_keys.index(camera_key), episode, frame)

    def episode_start(self, episode: int) -> int:
        return sum(self.lengths[:episode])


def _vector(fn, episode: int, length: int) -> np.ndarray:
    return np.array(
        [[fn(episode, f, j) for j in range(len(JOINT_NAMES))] for f in range(length)], dtype=np.float32
    )


def write_lerobot_style_dataset(
    root: Path,
    episodes: Sequence[int] = (5, 7),
    cameras: Mapping[str, tuple[int, int]] | None = None,
    fps: int = 30,
    tasks_index_variant: Literal["task", "__index_level_0__"] = "task",
    vcodec: str = "libx264",
    *,
    episode_tasks: Sequence[str] | None = None,
    episodes_per_file: int | None = None,
    robot_type: str = "so101_follower",
    camera_storage: Literal["video", "image"] = "video",
) -> LeRobotStyleDataset:
    """Write the dataset under `root` (created; must not exist) and return what was written.

    `episodes` are the episode lengths. `cameras` maps a camera name to (height, width); default one 32x48
    camera "front". `episode_tasks` gives each episode's task (default: all the same). `episodes_per_file`
    rotates data and video files every N episodes (LeRobot rotates by size; the layout is the same).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=False)
    cams = dict(cameras) if cameras is not None else {"front": (32, 48)}
    lengths = [int(n) for n in episodes]
    ep_tasks = list(episode_tasks) if episode_tasks is not None else [DEFAULT_TASK] * len(lengths)
    if len(ep_tasks) != len(lengths):
        raise ValueError("episode_tasks needs one task per episode")
    task_list = list(dict.fromkeys(ep_tasks))  # first-seen order, as LeRobot assigns task_index
    spec = LeRobotStyleDataset(root, fps, lengths, cams, task_list, ep_tasks, robot_type, camera_storage)
    per_file = episodes_per_file or max(1, len(lengths))

    features = _features(cams, camera_storage)
    _write_tasks(root, task_list, tasks_index_variant)

    episode_rows: list[dict] = []
    video_cursor: dict[str, float] = {}
    data_writer: pq.ParquetWriter | None = None
    data_file_index = -1
    start = 0
    try:
        for ep, length in enumerate(lengths):
            file_index = ep // per_file
            row: dict = {"episode_index": ep, "tasks": [ep_tasks[ep]], "length": length}
            if file_index != data_file_index:
                if data_writer is not None:
                    data_writer.close()
                path = root / DATA_PATH.format(chunk_index=0, file_index=file_index)
                path.parent.mkdir(parents=True, exist_ok=True)
                data_writer = pq.ParquetWriter(
                    path, schema=_data_schema(features), compression="snappy", use_dictionary=True
                )
                data_file_index = file_index
                spec.data_files.append(path)
                video_cursor = {}
            columns = _episode_columns(spec, ep, start, task_list.index(ep_tasks[ep]))
            data_writer.write_table(pa.table(columns, schema=_data_schema(features)))
            row |= {
                "data/chunk_index": 0,
                "data/file_index": file_index,
                "dataset_from_index": start,
                "dataset_to_index": start + length,
            }
            for key in spec.video_keys:
                path = root / VIDEO_PATH.format(video_key=key, chunk_index=0, file_index=file_index)
                from_ts = video_cursor.get(key, 0.0)
                duration = _append_episode_video(spec, key, ep, path, vcodec)
                video_cursor[key] = from_ts + duration
                if path not in spec.video_files.setdefault(key, []):
                    spec.video_files[key].append(path)
                row |= {
                    f"videos/{key}/chunk_index": 0,
                    f"videos/{key}/file_index": file_index,
                    f"videos/{key}/from_timestamp": from_ts,
                    f"videos/{key}/to_timestamp": from_ts + duration,
                }
            row |= _episode_stats(spec, ep, columns, features)
            row |= {"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0}
            episode_rows.append(row)
            if ep == 0 and spec.video_keys:
                _fill_video_info(root, features, spec.video_keys)
            start += length
    finally:
        if data_writer is not None:
            data_writer.close()

    _write_episodes(root, episode_rows)
    _write_stats(root, episode_rows, features)
    _write_info(root, spec, features)
    return spec


# --- features and info.json


def _features(cams: Mapping[str, tuple[int, int]], storage: str) -> dict[str, dict]:
    """Feature order as lerobot-record builds it: action, observation.state, cameras, then the defaults."""
    features: dict[str, dict] = {
        "action": {"dtype": "float32", "shape": [len(JOINT_NAMES)], "names": list(JOINT_NAMES)},
        "observation.state": {"dtype": "float32", "shape": [len(JOINT_NAMES)], "names": list(JOINT_NAMES)},
    }
    for name, (h, w) in cams.items():
        features[f"observation.images.{name}"] = {
            "dtype": storage,
            "shape": [h, w, 3],
            "names": ["height", "width", "channels"],
        }
    for key, dtype in (
        ("timestamp", "float32"),
        ("frame_index", "int64"),
        ("episode_index", "int64"),
        ("index", "int64"),
        ("task_index", "int64"),
    ):
        features[key] = {"dtype": dtype, "shape": [1], "names": None}
    return features


def _fill_video_info(root: Path, features: dict[str, dict], video_keys: list[str]) -> None:
    """v0.4.x `get_video_info` on chunk-000/file-000 after episode 0: stream fields plus `has_audio`."""
    for key in video_keys:
        path = root / VIDEO_PATH.format(video_key=key, chunk_index=0, file_index=0)
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            features[key]["info"] = {
                "video.height": stream.height,
                "video.width": stream.width,
                "video.codec": stream.codec_context.codec.canonical_name,
                "video.pix_fmt": stream.pix_fmt,
                "video.is_depth_map": False,
                "video.fps": int(stream.base_rate),
                "video.channels": 3,
                "has_audio": bool(container.streams.audio),
            }


def _write_info(root: Path, spec: LeRobotStyleDataset, features: dict[str, dict]) -> None:
    info = {  # v0.4.x key order
        "codebase_version": "v3.0",
        "robot_type": spec.robot_type,
        "total_episodes": len(spec.lengths),
        "total_frames": spec.total_frames,
        "total_tasks": len(spec.task_list),
        "chunks_size": 1000,
        "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 200,
        "fps": spec.fps,
        "splits": {"train": f"0:{len(spec.lengths)}"},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if spec.video_keys else None,
        "features": features,
    }
    _write_json(root / "meta" / "info.json", info)


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f, indent=4, ensure_ascii=False)


# --- tasks.parquet


def _write_tasks(root: Path, task_list: list[str], variant: str) -> None:
    # dtype=object is what pandas 2.x (LeRobot's pin) gives a list of str: arrow `string`, not `large_string`.
    if variant == "task":
        index = pd.Index(task_list, name="task", dtype=object)
    elif variant == "__index_level_0__":
        index = pd.Index(task_list, dtype=object)
    else:
        raise ValueError(f"unknown tasks_index_variant {variant!r}")
    df = pd.DataFrame({"task_index": np.arange(len(task_list), dtype=np.int64)}, index=index)
    path = root / "meta" / "tasks.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path)


# --- data parquet


def _hf_feature(feature: dict) -> dict:
    if feature["dtype"] == "image":
        return {"_type": "Image"}
    value = {"dtype": feature["dtype"], "_type": "Value"}
    if list(feature["shape"]) == [1]:
        return value
    return {"feature": value, "length": int(feature["shape"][0]), "_type": "List"}  # datasets 4.x spelling


def _data_schema(features: dict[str, dict]) -> pa.Schema:
    fields = []
    hf: dict[str, dict] = {}
    for key, ft in features.items():
        if ft["dtype"] == "video":
            continue
        if ft["dtype"] == "image":
            fields.append(pa.field(key, IMAGE_STRUCT))
            hf[key] = _hf_feature(ft)
            continue
        scalar = pa.from_numpy_dtype(np.dtype(ft["dtype"]))
        if list(ft["shape"]) == [1]:
            fields.append(pa.field(key, scalar))
        else:
            fields.append(pa.field(key, pa.list_(scalar, int(ft["shape"][0]))))
        hf[key] = _hf_feature(ft)
    return pa.schema(fields, metadata={"huggingface": json.dumps({"info": {"features": hf}})})


def _episode_columns(spec: LeRobotStyleDataset, ep: int, start: int, task_index: int) -> dict[str, pa.Array]:
    length = spec.lengths[ep]
    frames = np.arange(length, dtype=np.int64)
    n = len(JOINT_NAMES)

    def vec(values: np.ndarray) -> pa.Array:
        return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1), pa.float32()), n)

    columns: dict[str, pa.Array] = {
        "action": vec(spec.action(ep)),
        "observation.state": vec(spec.state(ep)),
    }
    for key in spec.camera_keys if spec.camera_storage == "image" else []:
        cells = [{"bytes": _png(spec.image(key, ep, f)), "path": f"frame-{f:06d}.png"} for f in range(length)]
        columns[key] = pa.array(cells, IMAGE_STRUCT)
    return columns | {
        "timestamp": pa.array([f / spec.fps for f in range(length)], pa.float32()),
        "frame_index": pa.array(frames),
        "episode_index": pa.array(np.full(length, ep, dtype=np.int64)),
        "index": pa.array(frames + start),
        "task_index": pa.array(np.full(length, task_index, dtype=np.int64)),
    }


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="png", compress_level=6)
    return buffer.getvalue()


# --- videos


def _encode_episode(spec: LeRobotStyleDataset, key: str, ep: int, path: Path, vcodec: str) -> None:
    """Like LeRobot's `encode_video_frames`: PyAV, frames without explicit pts, g=2, crf=30, yuv420p."""
    h, w = spec.cameras[key.removeprefix("observation.images.")]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(vcodec, spec.fps, options={"g": "2", "crf": "30"})
        stream.pix_fmt = "yuv420p"
        stream.width, stream.height = w, h
        for frame in range(spec.lengths[ep]):
            image = np.empty((h, w, 3), dtype=np.uint8)
            image[:] = spec.colour(key, ep, frame)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _duration_s(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.duration is not None:
            return float(stream.duration * stream.time_base)
        return float(container.duration / av.time_base)


def _concat(inputs: list[Path], output: Path) -> None:
    """Stream-copy `inputs` into `output` through an ffconcat list, as `concatenate_video_files` does."""
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "inputs.ffconcat"
        listing.write_text("ffconcat version 1.0\n" + "".join(f"file '{p.resolve()}'\n" for p in inputs))
        joined = Path(tmp) / "joined.mp4"
        with (
            av.open(str(listing), "r", format="concat", options={"safe": "0"}) as src,
            av.open(str(joined), "w", options={"movflags": "faststart"}) as dst,
        ):
            streams = {}
            for s in src.streams.video:
                streams[s.index] = dst.add_stream_from_template(template=s, opaque=True)
                streams[s.index].time_base = s.time_base
            for packet in src.demux():
                if packet.stream.index not in streams or packet.dts is None:
                    continue
                packet.stream = streams[packet.stream.index]
                dst.mux(packet)
        shutil.move(joined, output)


def _append_episode_video(spec: LeRobotStyleDataset, key: str, ep: int, path: Path, vcodec: str) -> float:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        episode_mp4 = Path(tmp) / f"episode-{ep:06d}.mp4"
        _encode_episode(spec, key, ep, episode_mp4, vcodec)
        duration = _duration_s(episode_mp4)
        if path.exists():
            _concat([path, episode_mp4], path)
        else:
            shutil.move(episode_mp4, path)
    return duration


# --- stats


def _numeric_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    values = values.astype(np.float64).reshape(len(values), -1)
    stats = {
        "min": values.min(axis=0),
        "max": values.max(axis=0),
        "mean": values.mean(axis=0),
        "std": values.std(axis=0),
        "count": np.array([len(values)], dtype=np.int64),
    }
    for name, q in QUANTILES.items():
        stats[name] = np.quantile(values, q, axis=0)
    return {name: stats[name] for name in STAT_NAMES}


def _image_stats(spec: LeRobotStyleDataset, key: str, ep: int) -> dict[str, np.ndarray]:
    """Per channel over every frame (the fixture's frames are solid), in [0, 1], shaped (3, 1, 1)."""
    pixels = np.array([spec.colour(key, ep, f) for f in range(spec.lengths[ep])], dtype=np.float64) / 255.0
    stats = _numeric_stats(pixels)
    out = {name: v.reshape(3, 1, 1) for name, v in stats.items() if name != "count"}
    out["count"] = np.array([spec.lengths[ep]], dtype=np.int64)
    return {name: out[name] for name in STAT_NAMES}


def _episode_stats(
    spec: LeRobotStyleDataset, ep: int, columns: dict[str, pa.Array], features: dict[str, dict]
) -> dict[str, list]:
    row: dict[str, list] = {}
    for key, ft in features.items():
        if ft["dtype"] in ("video", "image"):
            stats = _image_stats(spec, key, ep)
        else:
            column = columns[key]
            if isinstance(column, pa.FixedSizeListArray):
                values = column.flatten().to_numpy().reshape(len(column), -1)
            else:
                values = column.to_numpy()
            stats = _numeric_stats(values)
        for name, value in stats.items():
            row[f"stats/{key}/{name}"] = value.tolist()  # plain lists: from_pydict infers double / int64
    return row


def _aggregate(per_episode: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """§5.8: elementwise min/max, count-weighted mean, parallel variance, low quantiles min, high max."""
    counts = np.array([s["count"][0] for s in per_episode], dtype=np.float64)
    shape = per_episode[0]["mean"].shape
    w = counts.reshape((-1,) + (1,) * len(shape))
    means = np.stack([s["mean"] for s in per_episode])
    stds = np.stack([s["std"] for s in per_episode])
    total = counts.sum()
    mean = (means * w).sum(axis=0) / total
    var = ((stds**2 + (means - mean) ** 2) * w).sum(axis=0) / total
    return {
        "min": np.min(np.stack([s["min"] for s in per_episode]), axis=0),
        "max": np.max(np.stack([s["max"] for s in per_episode]), axis=0),
        "mean": mean,
        "std": np.sqrt(var),
        "count": np.array([int(total)], dtype=np.int64),
        "q01": np.min(np.stack([s["q01"] for s in per_episode]), axis=0),
        "q10": np.min(np.stack([s["q10"] for s in per_episode]), axis=0),
        "q50": np.min(np.stack([s["q50"] for s in per_episode]), axis=0),
        "q90": np.max(np.stack([s["q90"] for s in per_episode]), axis=0),
        "q99": np.max(np.stack([s["q99"] for s in per_episode]), axis=0),
    }


def _write_stats(root: Path, rows: list[dict], features: dict[str, dict]) -> None:
    stats: dict[str, dict[str, list]] = {}
    for key in features:
        per_episode = [{s: np.array(row[f"stats/{key}/{s}"]) for s in STAT_NAMES} for row in rows]
        stats[key] = {name: value.tolist() for name, value in _aggregate(per_episode).items()}
    _write_json(root / "meta" / "stats.json", stats)


# --- episodes parquet


def _write_episodes(root: Path, rows: list[dict]) -> None:
    columns: dict[str, list] = {}
    for row in rows:
        for key, value in row.items():
            columns.setdefault(key, []).append(value)
    table = pa.Table.from_pydict(columns)
    path = root / EPISODES_PATH.format(chunk_index=0, file_index=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(path, schema=table.schema, compression="snappy", use_dictionary=True) as writer:
        writer.write_table(table)
