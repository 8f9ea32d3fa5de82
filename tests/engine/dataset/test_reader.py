"""The reader against datasets laid out exactly as LeRobot 0.4.x writes them (see lerobot_fixture.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.dataset.reader import (
    DatasetFormatError,
    DatasetNotFoundError,
    FrameDecodeError,
    LeRobotDatasetReader,
    decode_video_frames,
    lerobot_home,
)
from tests.engine.dataset.lerobot_fixture import JOINT_NAMES, LeRobotStyleDataset, write_lerobot_style_dataset

CAMERAS = {"front": (32, 48), "wrist": (16, 32)}
LENGTHS = [5, 7, 4]
TASKS = ["pick up the cube", "stack the cubes", "pick up the cube"]


@pytest.fixture(scope="module", params=["task", "__index_level_0__"])
def lerobot_ds(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> LeRobotStyleDataset:
    """Three episodes of two tasks, two cameras, all episodes concatenated in one mp4 per camera."""
    root = tmp_path_factory.mktemp("lerobot") / "ds"
    return write_lerobot_style_dataset(
        root, LENGTHS, CAMERAS, fps=30, tasks_index_variant=request.param, episode_tasks=TASKS
    )


@pytest.fixture(scope="module")
def rotated_ds(tmp_path_factory: pytest.TempPathFactory) -> LeRobotStyleDataset:
    """Data and video files rotate every 2 episodes: episode 2 lives in file-001 starting at t=0."""
    root = tmp_path_factory.mktemp("rotated") / "ds"
    return write_lerobot_style_dataset(root, [3, 4, 5], {"front": (16, 16)}, fps=15, episodes_per_file=2)


def copy_of(ds: LeRobotStyleDataset, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(ds.root, dst)
    return dst


def assert_colour(
    frame: np.ndarray, expected: tuple[int, int, int], candidates: list[tuple[int, int, int]]
) -> None:
    """Within yuv420p/crf30 error of the expected solid colour, and nearer to it than to any other frame's."""
    mean = frame.reshape(-1, 3).mean(axis=0)
    assert np.abs(mean - expected).max() < 10, (mean, expected)
    distances = [np.abs(mean - np.array(c)).sum() for c in candidates]
    assert candidates[int(np.argmin(distances))] == expected


def test_metadata(lerobot_ds: LeRobotStyleDataset) -> None:
    r = LeRobotDatasetReader.open(lerobot_ds.root)
    assert r.codebase_version == "v3.0"
    assert r.fps == 30
    assert r.robot_type == "so101_follower"
    assert list(r.features)[:4] == ["action", "observation.state", *lerobot_ds.video_keys]
    assert r.features["action"]["names"] == JOINT_NAMES
    assert r.camera_keys == r.video_keys == ["observation.images.front", "observation.images.wrist"]
    assert (r.total_episodes, r.total_frames, len(r)) == (3, 16, 16)
    assert r.tasks == {0: "pick up the cube", 1: "stack the cubes"}
    assert r.episode_indices == [0, 1, 2]
    assert r.stats is not None and r.stats["action"]["mean"].shape == (6,)
    assert r.stats["observation.images.front"]["mean"].shape == (3, 1, 1)


def test_episode_rows(lerobot_ds: LeRobotStyleDataset) -> None:
    r = LeRobotDatasetReader.open(lerobot_ds.root)
    starts = [0, 5, 12]
    for ep, length in enumerate(LENGTHS):
        row = r.episode(ep)
        assert row["episode_index"] == ep and row["length"] == length
        assert (row["dataset_from_index"], row["dataset_to_index"]) == (starts[ep], starts[ep] + length)
        assert row["tasks"] == [TASKS[ep]] and r.episode_tasks(ep) == [TASKS[ep]]
        assert not any(k.startswith("stats/") for k in row)
    # several episodes per mp4: segments follow each other in one file
    key = "observation.images.front"
    assert len(lerobot_ds.video_files[key]) == 1
    assert r.episode(0)[f"videos/{key}/from_timestamp"] == 0.0
    for ep in (1, 2):
        assert (
            r.episode(ep)[f"videos/{key}/from_timestamp"] == r.episode(ep - 1)[f"videos/{key}/to_timestamp"]
        )
        assert r.video_path(key, ep) == lerobot_ds.video_files[key][0]
    with pytest.raises(IndexError, match="episode 3 is not in"):
        r.episode(3)


def test_frames_match_every_written_value(lerobot_ds: LeRobotStyleDataset) -> None:
    r = LeRobotDatasetReader.open(lerobot_ds.root)
    for ep, length in enumerate(LENGTHS):
        f = r.frames(ep)
        assert set(f) == {
            "action",
            "observation.state",
            "timestamp",
            "frame_index",
            "episode_index",
            "index",
            "task_index",
        }
        np.testing.assert_array_equal(f["observation.state"], lerobot_ds.state(ep))
        np.testing.assert_array_equal(f["action"], lerobot_ds.action(ep))
        assert f["action"].dtype == np.float32 and f["action"].shape == (length, 6)
        np.testing.assert_array_equal(f["frame_index"], np.arange(length))
        np.testing.assert_array_equal(f["index"], np.arange(length) + lerobot_ds.episode_start(ep))
        np.testing.assert_array_equal(f["episode_index"], np.full(length, ep))
        np.testing.assert_array_equal(f["timestamp"], (np.arange(length) / 30).astype(np.float32))
        np.testing.assert_array_equal(f["task_index"], np.full(length, [0, 1, 0][ep]))


def test_decoded_frames_are_the_written_colours(lerobot_ds: LeRobotStyleDataset) -> None:
    r = LeRobotDatasetReader.open(lerobot_ds.root)
    for key in lerobot_ds.video_keys:
        h, w = CAMERAS[key.removeprefix("observation.images.")]
        for ep, length in enumerate(LENGTHS):
            frames = r.decode_frames(key, ep, list(range(length)))
            assert frames.shape == (length, h, w, 3) and frames.dtype == np.uint8
            candidates = [lerobot_ds.colour(key, ep, f) for f in range(length)]
            for fi in range(length):
                assert_colour(frames[fi], lerobot_ds.colour(key, ep, fi), candidates)


def test_decode_in_requested_order_with_repeats(lerobot_ds: LeRobotStyleDataset) -> None:
    r = LeRobotDatasetReader.open(lerobot_ds.root)
    key = "observation.images.front"
    frames = r.decode_frames(key, 1, [6, 0, 3, 6])
    candidates = [lerobot_ds.colour(key, 1, f) for f in range(7)]
    for frame, fi in zip(frames, [6, 0, 3, 6], strict=True):
        assert_colour(frame, lerobot_ds.colour(key, 1, fi), candidates)
    with pytest.raises(IndexError, match="out of range for episode 1"):
        r.decode_frames(key, 1, [7])
    with pytest.raises(KeyError):
        r.decode_frames("observation.images.top", 1, [0])


def test_getitem_is_lerobot_like(lerobot_ds: LeRobotStyleDataset) -> None:
    r = LeRobotDatasetReader.open(lerobot_ds.root)
    for index, (ep, fi) in {0: (0, 0), 4: (0, 4), 5: (1, 0), 11: (1, 6), 15: (2, 3), -1: (2, 3)}.items():
        item = r[index]
        assert int(item["episode_index"]) == ep and int(item["frame_index"]) == fi
        assert int(item["index"]) == lerobot_ds.episode_start(ep) + fi
        np.testing.assert_array_equal(item["observation.state"], lerobot_ds.state(ep)[fi])
        np.testing.assert_array_equal(item["action"], lerobot_ds.action(ep)[fi])
        assert item["task"] == TASKS[ep]
        assert item["observation.images.wrist"].shape == (16, 32, 3)
        candidates = [lerobot_ds.colour("observation.images.front", ep, f) for f in range(LENGTHS[ep])]
        assert_colour(
            item["observation.images.front"],
            lerobot_ds.colour("observation.images.front", ep, fi),
            candidates,
        )
    with pytest.raises(IndexError):
        r[16]


def test_rotated_files(rotated_ds: LeRobotStyleDataset) -> None:
    r = LeRobotDatasetReader.open(rotated_ds.root)
    key = "observation.images.front"
    assert len(rotated_ds.data_files) == 2 and len(rotated_ds.video_files[key]) == 2
    assert r.data_path(2) == rotated_ds.data_files[1]
    assert r.video_path(key, 2) == rotated_ds.video_files[key][1]
    assert r.episode(2)[f"videos/{key}/from_timestamp"] == 0.0
    np.testing.assert_array_equal(r.frames(2)["observation.state"], rotated_ds.state(2))
    np.testing.assert_array_equal(r.frames(1)["index"], np.arange(3, 7))
    frames = r.decode_frames(key, 2, [0, 4])
    candidates = [rotated_ds.colour(key, 2, f) for f in range(5)]
    assert_colour(frames[0], rotated_ds.colour(key, 2, 0), candidates)
    assert_colour(frames[1], rotated_ds.colour(key, 2, 4), candidates)
    assert int(r[7]["index"]) == 7 and int(r[7]["episode_index"]) == 2


def _rewrite_episodes(root: Path, fn) -> None:
    path = root / "meta/episodes/chunk-000/file-000.parquet"
    rows = pq.read_table(path).to_pylist()
    for row in rows:
        fn(row)
    pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(path)), path)


def test_missing_frame_names_file_episode_and_time(lerobot_ds: LeRobotStyleDataset, tmp_path: Path) -> None:
    root = copy_of(lerobot_ds, tmp_path)
    key = "observation.images.front"

    def shift(row: dict) -> None:  # half a frame off: no frame within 1e-4 s any more
        if row["episode_index"] == 1:
            row[f"videos/{key}/from_timestamp"] += 0.5 / 30

    _rewrite_episodes(root, shift)
    r = LeRobotDatasetReader.open(root)
    with pytest.raises(FrameDecodeError) as info:
        r.decode_frames(key, 1, [2])
    text = str(info.value)
    assert "file-000.mp4" in text and "episode 1" in text and key in text
    assert f"{5 / 30 + 0.5 / 30 + 2 / 30:.6f}" in text  # the timestamp that has no frame
    assert "nearest decoded frame" in text
    r.decode_frames(key, 0, [0, 4])  # the other episodes are unaffected


def test_video_shorter_than_episode(lerobot_ds: LeRobotStyleDataset, tmp_path: Path) -> None:
    root = copy_of(lerobot_ds, tmp_path)
    key = "observation.images.wrist"
    short = tmp_path / "short"
    write_lerobot_style_dataset(short, [5], {"wrist": (16, 32)})  # a file holding only episode 0
    shutil.copy(short / f"videos/{key}/chunk-000/file-000.mp4", root / f"videos/{key}/chunk-000/file-000.mp4")
    r = LeRobotDatasetReader.open(root)
    with pytest.raises(FrameDecodeError, match=r"episode 2.*") as info:
        r.decode_frames(key, 2, [0])
    assert "file-000.mp4" in str(info.value)
    (root / f"videos/{key}/chunk-000/file-000.mp4").unlink()
    with pytest.raises(FrameDecodeError, match="video file missing"):
        r.decode_frames(key, 0, [0])


def test_decode_video_frames_directly(lerobot_ds: LeRobotStyleDataset) -> None:
    path = lerobot_ds.video_files["observation.images.front"][0]
    key = "observation.images.front"
    frames = decode_video_frames(path, [12 / 30, 0.0])  # episode 2 frame 0, then episode 0 frame 0
    assert frames.shape == (2, 32, 48, 3)
    assert_colour(frames[0], lerobot_ds.colour(key, 2, 0), [lerobot_ds.colour(key, e, 0) for e in range(3)])
    assert_colour(frames[1], lerobot_ds.colour(key, 0, 0), [lerobot_ds.colour(key, e, 0) for e in range(3)])
    with pytest.raises(FrameDecodeError, match="no frame within"):
        decode_video_frames(path, [16 / 30 + 1.0])  # past the end of the file


def test_refuses_v21_with_conversion_hint(lerobot_ds: LeRobotStyleDataset, tmp_path: Path) -> None:
    root = copy_of(lerobot_ds, tmp_path)
    info = json.loads((root / "meta/info.json").read_text())
    info["codebase_version"] = "v2.1"
    (root / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(DatasetFormatError, match="convert_dataset_v21_to_v30"):
        LeRobotDatasetReader.open(root)


def test_not_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        LeRobotDatasetReader.open(tmp_path / "nope")
    with pytest.raises(DatasetNotFoundError, match=r"no meta/info.json"):
        LeRobotDatasetReader.open(tmp_path)


def test_frames_with_wrong_row_count_are_refused(lerobot_ds: LeRobotStyleDataset, tmp_path: Path) -> None:
    root = copy_of(lerobot_ds, tmp_path)
    _rewrite_episodes(
        root, lambda row: row.update(length=row["length"] + 1) if row["episode_index"] == 0 else None
    )
    with pytest.raises(DatasetFormatError, match="episode 0 has 5 rows, but meta/episodes says length 6"):
        LeRobotDatasetReader.open(root).frames(0)


# --- Hub repo ids (offline: conftest sets HF_HUB_OFFLINE=1 and a per-test HF_LEROBOT_HOME)


def test_repo_id_not_cached_offline_says_so() -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        LeRobotDatasetReader.open("someone/never-downloaded")
    text = str(info.value)
    assert "'someone/never-downloaded'" in text and "not cached" in text and "HF_HUB_OFFLINE" in text
    assert str(lerobot_home() / "hub") in text and "hf download someone/never-downloaded" in text


def test_repo_id_from_hub_cache(lerobot_ds: LeRobotStyleDataset) -> None:
    """A snapshot cached by huggingface_hub (refs/v3.0 -> snapshots/<commit>) opens offline."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = lerobot_home() / "hub" / "datasets--someone--so101_pick"
    shutil.copytree(lerobot_ds.root, repo_dir / "snapshots" / commit)
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "v3.0").write_text(commit)
    r = LeRobotDatasetReader.open("someone/so101_pick")
    assert r.repo_id == "someone/so101_pick"
    assert r.root == repo_dir / "snapshots" / commit
    assert r.total_frames == 16
    with pytest.raises(DatasetNotFoundError, match="revision main"):
        LeRobotDatasetReader.open("someone/so101_pick", revision="main")


def test_repo_id_recorded_locally(lerobot_ds: LeRobotStyleDataset) -> None:
    """LeRobot records `repo_id` to $HF_LEROBOT_HOME/<repo_id>; that copy is used without the Hub."""
    shutil.copytree(lerobot_ds.root, lerobot_home() / "me" / "local_ds")
    r = LeRobotDatasetReader.open("me/local_ds")
    assert r.root == lerobot_home() / "me" / "local_ds" and r.total_episodes == 3


def test_cameras_stored_as_images(tmp_path: Path) -> None:
    """`--dataset.video=false`: PNGs embedded in the data parquet, decoded losslessly."""
    ds = write_lerobot_style_dataset(tmp_path / "ds", [3, 2], {"front": (8, 12)}, camera_storage="image")
    r = LeRobotDatasetReader.open(ds.root)
    key = "observation.images.front"
    assert r.camera_keys == [key] and r.video_keys == []
    assert r.info["video_path"] is None
    assert set(r.frames(1)) == {
        "action",
        "observation.state",
        "timestamp",
        "frame_index",
        "episode_index",
        "index",
        "task_index",
    }
    frames = r.decode_frames(key, 1, [1, 0])
    np.testing.assert_array_equal(frames, np.stack([ds.image(key, 1, 1), ds.image(key, 1, 0)]))
    item = r[4]
    np.testing.assert_array_equal(item[key], ds.image(key, 1, 1))
    np.testing.assert_array_equal(item["observation.state"], ds.state(1)[1])


# --- the fixture itself is faithful to LeRobot 0.4.x (reference/lerobot-interop.md §5), field by field


def test_fixture_info_json_is_v04_shaped(lerobot_ds: LeRobotStyleDataset) -> None:
    info = json.loads((lerobot_ds.root / "meta/info.json").read_text())
    assert list(info) == [
        "codebase_version", "robot_type", "total_episodes", "total_frames", "total_tasks", "chunks_size",
        "data_files_size_in_mb", "video_files_size_in_mb", "fps", "splits", "data_path", "video_path", "features",
    ]  # fmt: skip
    assert info["splits"] == {"train": "0:3"} and info["total_tasks"] == 2
    front = info["features"]["observation.images.front"]
    assert front["info"] == {
        "video.height": 32, "video.width": 48, "video.codec": "h264", "video.pix_fmt": "yuv420p",
        "video.is_depth_map": False, "video.fps": 30, "video.channels": 3, "has_audio": False,
    }  # fmt: skip
    assert list(info["features"])[-5:] == ["timestamp", "frame_index", "episode_index", "index", "task_index"]


def test_fixture_parquet_schemas(lerobot_ds: LeRobotStyleDataset) -> None:
    data = pq.ParquetFile(lerobot_ds.data_files[0])
    vec = pa.list_(pa.field("element", pa.float32()), 6)
    assert data.schema_arrow.remove_metadata() == pa.schema(
        [("action", vec), ("observation.state", vec), ("timestamp", pa.float32()), ("frame_index", pa.int64()),
         ("episode_index", pa.int64()), ("index", pa.int64()), ("task_index", pa.int64())]
    )  # fmt: skip
    assert [data.metadata.row_group(i).num_rows for i in range(data.num_row_groups)] == LENGTHS
    hf = json.loads(data.schema_arrow.metadata[b"huggingface"])["info"]["features"]
    assert hf["action"] == {"feature": {"dtype": "float32", "_type": "Value"}, "length": 6, "_type": "List"}
    assert hf["timestamp"] == {"dtype": "float32", "_type": "Value"}
    datasets = pytest.importorskip("datasets")
    parsed = datasets.Features.from_arrow_schema(data.schema_arrow)
    assert parsed["action"] == datasets.List(datasets.Value("float32"), length=6)

    episodes = pq.read_schema(lerobot_ds.root / "meta/episodes/chunk-000/file-000.parquet")
    names = episodes.names
    assert names[:7] == [
        "episode_index", "tasks", "length", "data/chunk_index", "data/file_index",
        "dataset_from_index", "dataset_to_index",
    ]  # fmt: skip
    assert names[7:11] == [
        f"videos/observation.images.front/{c}"
        for c in ("chunk_index", "file_index", "from_timestamp", "to_timestamp")
    ]
    assert names[-2:] == ["meta/episodes/chunk_index", "meta/episodes/file_index"]
    types = {n: episodes.field(n).type for n in names}
    assert types["tasks"] == pa.list_(pa.field("element", pa.string()))
    assert types["videos/observation.images.front/from_timestamp"] == pa.float64()
    assert types["stats/action/mean"] == pa.list_(pa.field("element", pa.float64()))
    assert types["stats/frame_index/min"] == pa.list_(pa.field("element", pa.float64()))
    assert types["stats/action/count"] == pa.list_(pa.field("element", pa.int64()))
    nested = pa.list_(
        pa.field("element", pa.list_(pa.field("element", pa.list_(pa.field("element", pa.float64())))))
    )
    assert types["stats/observation.images.front/std"] == nested
    assert types["stats/observation.images.front/count"] == pa.list_(pa.field("element", pa.int64()))
    stats_cols = [n for n in names if n.startswith("stats/")]
    assert len(stats_cols) == 10 * 9  # 9 features x 10 stats
    assert episodes.metadata is None or b"huggingface" not in episodes.metadata  # pa.Table.from_pydict


@pytest.mark.parametrize("variant", ["task", "__index_level_0__"])
def test_fixture_tasks_parquet(variant: str, tmp_path: Path) -> None:
    ds = write_lerobot_style_dataset(tmp_path / "ds", [2], {}, tasks_index_variant=variant)
    schema = pq.read_schema(ds.root / "meta/tasks.parquet")
    assert schema.remove_metadata() == pa.schema([("task_index", pa.int64()), (variant, pa.string())])
    assert json.loads(schema.metadata[b"pandas"])["index_columns"] == [variant]
    assert LeRobotDatasetReader.open(ds.root).tasks == {0: "pick up the cube"}


def test_av1_like_lerobot_default(tmp_path: Path) -> None:
    """LeRobot encodes with libsvtav1 by default; the PyAV decode path must find every frame in it too."""
    ds = write_lerobot_style_dataset(tmp_path / "ds", [3, 4], {"front": (32, 48)}, vcodec="libsvtav1")
    r = LeRobotDatasetReader.open(ds.root)
    key = "observation.images.front"
    assert r.features[key]["info"]["video.codec"] == "av1"
    for ep, length in enumerate([3, 4]):
        frames = r.decode_frames(key, ep, list(range(length)))
        candidates = [ds.colour(key, ep, f) for f in range(length)]
        for fi in range(length):
            assert_colour(frames[fi], ds.colour(key, ep, fi), candidates)
