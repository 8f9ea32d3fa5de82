"""DatasetWriter: files read back with pyarrow/pandas/PyAV directly, LeRobot's schema, resume, redo, rotation,
encoder refusal, and SIGKILL at chosen and random moments followed by `recover`."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import av
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.dataset import video
from engine.dataset.format import (
    INTERVENTION_FEATURE,
    LOCK_FILE,
    STAGING_DIR,
    STAT_NAMES,
    TEMP_SUFFIX,
    DatasetBusyError,
    build_features,
)
from engine.dataset.recovery import recover
from engine.dataset.stats import aggregate_stats, stats_from_json, unflatten_stats
from engine.dataset.writer import DatasetMismatchError, DatasetWriter, EpisodeRefused

REPO = Path(__file__).resolve().parents[3]
JOINTS = [
    f"{m}.pos" for m in ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
]
H, W, FPS = 48, 64, 30
CAMS = {"front": (H, W), "wrist": (H, W)}
TASKS = ["pick the cube", "place the cube", "push the cube"]
ROBOT = "so_follower"


def make_features(cams: dict[str, tuple[int, int]] = CAMS, joints: list[str] = JOINTS) -> dict[str, Any]:
    return build_features(joints, cams, extra={"intervention": INTERVENTION_FEATURE})


def plan(seed: int) -> tuple[int, str]:
    """(length, task) of the episode recorded with `seed`: deterministic so a crashed child's work is checkable."""
    return 6 + (seed * 5) % 7, TASKS[min(seed, 2)] if seed < 3 else TASKS[seed % 2]


def colour(seed: int, i: int, cam: int) -> tuple[int, int, int]:
    k = seed * 41 + i * 7 + cam * 19
    return ((k * 67) % 200 + 28, (k * 131) % 200 + 28, (k * 29) % 200 + 28)


def frame(seed: int, i: int, cams: dict[str, tuple[int, int]] = CAMS) -> dict[str, Any]:
    state = np.arange(6, dtype=np.float32) * 0.25 + seed * 100 + i * 0.5
    out: dict[str, Any] = {
        "action": state * 2 - 1,
        "observation.state": state,
        "intervention": i % 3 == 0,
    }
    for c, (name, (h, w)) in enumerate(cams.items()):
        out[f"observation.images.{name}"] = np.broadcast_to(
            np.array(colour(seed, i, c), np.uint8), (h, w, 3)
        ).copy()
    return out


def record(writer: DatasetWriter, seed: int, cams: dict[str, tuple[int, int]] = CAMS) -> None:
    n, task = plan(seed)
    writer.begin_episode(task)
    for i in range(n):
        writer.add_frame(frame(seed, i, cams))


# ------------------------------------------------------------------------------------------- read back


def read_dir(root: Path, sub: str) -> pa.Table:
    files = sorted((root / sub).glob("chunk-*/file-*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files])


def decoded(path: Path) -> dict[int, tuple[float, np.ndarray]]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        out = {}
        for f in c.decode(s):
            t = float(f.pts * s.time_base)
            out[round(t * FPS)] = (t, f.to_ndarray(format="rgb24"))
    return out


def verify(root: Path, seeds: list[int], cams: dict[str, tuple[int, int]] = CAMS) -> None:
    """Every episode of `seeds` is in the dataset exactly as recorded, and nothing else is."""
    info = json.loads((root / "meta/info.json").read_text())
    lengths = [plan(s)[0] for s in seeds]
    assert info["total_episodes"] == len(seeds) and info["total_frames"] == sum(lengths)
    assert info["splits"] == ({"train": f"0:{len(seeds)}"} if seeds else {})
    tasks = pd.read_parquet(root / "meta/tasks.parquet") if seeds else pd.DataFrame()
    assert info["total_tasks"] == len(tasks)
    if not seeds:
        return
    task_of = {t: int(i) for t, i in zip(tasks.index, tasks["task_index"], strict=True)}
    episodes = read_dir(root, "meta/episodes").to_pylist()
    data = read_dir(root, "data")
    assert data.num_rows == sum(lengths)
    assert data.column("index").to_pylist() == list(range(sum(lengths)))
    videos: dict[Path, dict[int, tuple[float, np.ndarray]]] = {}
    ends: dict[Path, float] = {}
    start = 0
    for ep, seed in enumerate(seeds):
        n, task = plan(seed)
        row = episodes[ep]
        assert (row["episode_index"], row["length"], row["tasks"]) == (ep, n, [task])
        assert (row["dataset_from_index"], row["dataset_to_index"]) == (start, start + n)
        assert all(row[f"stats/{k}/{s}"] is not None for k in info["features"] for s in STAT_NAMES)
        rows = data.slice(start, n).to_pylist()
        for i, r in enumerate(rows):
            want = frame(seed, i, cams)
            assert (r["episode_index"], r["frame_index"], r["index"], r["task_index"]) == (
                ep,
                i,
                start + i,
                task_of[task],
            )
            assert r["timestamp"] == np.float32(i / FPS)
            assert (
                r["action"] == want["action"].tolist()
                and r["observation.state"] == want["observation.state"].tolist()
            )
            assert r["intervention"] == want["intervention"]
        for c, cam in enumerate(cams):
            key = f"observation.images.{cam}"
            path = root / info["video_path"].format(
                video_key=key,
                chunk_index=row[f"videos/{key}/chunk_index"],
                file_index=row[f"videos/{key}/file_index"],
            )
            frames = videos.setdefault(path, decoded(path))
            t0 = row[f"videos/{key}/from_timestamp"]
            assert row[f"videos/{key}/to_timestamp"] == pytest.approx(t0 + n / FPS, abs=1e-9)
            ends[path] = max(ends.get(path, 0.0), row[f"videos/{key}/to_timestamp"])
            for i, r in enumerate(rows):
                query = t0 + r["timestamp"]
                t, img = frames[round(query * FPS)]
                assert abs(t - query) <= 1e-4, (ep, i, t, query)
                mean = img.reshape(-1, 3).mean(0)
                assert np.abs(mean - colour(seed, i, c)).max() < 10, (ep, i, cam, mean, colour(seed, i, c))
        start += n
    for path, frames in videos.items():  # no frame in any file beyond the last episode that uses it
        assert len(frames) == round(ends[path] * FPS), path
    stats = stats_from_json(json.loads((root / "meta/stats.json").read_text()))
    expected = aggregate_stats(unflatten_stats(e) for e in episodes)
    assert set(stats) == set(info["features"])
    for key, st in expected.items():
        for name in STAT_NAMES:
            np.testing.assert_allclose(stats[key][name], st[name], err_msg=f"{key}/{name}")
    assert stats["observation.state"]["count"].tolist() == [sum(lengths)]


def no_leftovers(root: Path) -> bool:
    return (
        not list(root.rglob("*" + TEMP_SUFFIX))
        and not (root / STAGING_DIR).exists()
        and not (root / LOCK_FILE).exists()
    )


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("codec", ["libsvtav1", "libx264"])
def test_round_trip(tmp_path: Path, codec: str) -> None:
    root = tmp_path / "ds"
    with DatasetWriter.create(root, FPS, make_features(), ROBOT, vcodec=codec) as w:
        infos = []
        for seed in range(3):
            record(w, seed)
            infos.append(w.save_episode())
    assert [i.episode_index for i in infos] == [0, 1, 2]
    assert [i.length for i in infos] == [plan(s)[0] for s in range(3)]
    assert infos[2].dataset_to_index == sum(plan(s)[0] for s in range(3))
    assert infos[0].duration_s == pytest.approx(plan(0)[0] / FPS) and infos[0].save_latency_s > 0
    verify(root, [0, 1, 2])
    assert no_leftovers(root)
    # One mp4 per camera holds all three episodes; one data file with one row group per episode.
    assert len(list(root.glob("videos/observation.images.front/*/*.mp4"))) == 1
    assert pq.ParquetFile(root / "data/chunk-000/file-000.parquet").num_row_groups == 3
    block = json.loads((root / "meta/info.json").read_text())["features"]["observation.images.front"]["info"]
    assert block["video.codec"] == {"libsvtav1": "av1", "libx264": "h264"}[codec]
    assert (block["video.height"], block["video.width"], block["video.fps"], block["video.g"]) == (
        H,
        W,
        FPS,
        2,
    )


def test_files_match_lerobots_documented_schema(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    features = make_features()
    with DatasetWriter.create(root, FPS, features, ROBOT) as w:
        record(w, 0)
        w.save_episode()

    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["robot_type"] == ROBOT and info["fps"] == FPS
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    assert (info["chunks_size"], info["data_files_size_in_mb"], info["video_files_size_in_mb"]) == (
        1000,
        100,
        200,
    )
    assert list(info["features"]) == [
        "action", "observation.state", "observation.images.front", "observation.images.wrist", "intervention",
        "timestamp", "frame_index", "episode_index", "index", "task_index",
    ]  # fmt: skip
    assert info["features"]["action"] == {"dtype": "float32", "shape": [6], "names": JOINTS}
    assert info["features"]["timestamp"] == {"dtype": "float32", "shape": [1], "names": None}
    front = info["features"]["observation.images.front"]
    assert (front["dtype"], front["shape"], front["names"]) == (
        "video",
        [H, W, 3],
        ["height", "width", "channels"],
    )
    assert front["info"] == {
        "is_depth_map": False, "video.height": H, "video.width": W, "video.codec": "av1",
        "video.pix_fmt": "yuv420p", "video.fps": FPS, "video.channels": 3, "has_audio": False, "video.g": 2,
        "video.crf": 30, "video.preset": 12, "video.fast_decode": 0, "video.video_backend": "pyav",
        "video.extra_options": {},
    }  # fmt: skip

    schema = pq.read_schema(root / "data/chunk-000/file-000.parquet")
    vec = pa.list_(pa.field("element", pa.float32()), 6)
    assert [(f.name, f.type) for f in schema] == [
        ("action", vec), ("observation.state", vec), ("intervention", pa.bool_()), ("timestamp", pa.float32()),
        ("frame_index", pa.int64()), ("episode_index", pa.int64()), ("index", pa.int64()),
        ("task_index", pa.int64()),
    ]  # fmt: skip
    value = {"dtype": "int64", "_type": "Value"}
    vector = {"feature": {"dtype": "float32", "_type": "Value"}, "length": 6, "_type": "List"}
    assert json.loads(schema.metadata[b"huggingface"]) == {
        "info": {
            "features": {
                "action": vector, "observation.state": vector, "intervention": {"dtype": "bool", "_type": "Value"},
                "timestamp": {"dtype": "float32", "_type": "Value"}, "frame_index": value, "episode_index": value,
                "index": value, "task_index": value,
            }
        }
    }  # fmt: skip
    # `datasets` itself (4.x+) would write byte-identical metadata for these features.
    datasets = pytest.importorskip("datasets")
    hf = datasets.Features(
        {
            "action": datasets.List(datasets.Value("float32"), length=6),
            "observation.state": datasets.List(datasets.Value("float32"), length=6),
            "intervention": datasets.Value("bool"),
            "timestamp": datasets.Value("float32"),
            **{k: datasets.Value("int64") for k in ("frame_index", "episode_index", "index", "task_index")},
        }
    )
    assert schema.metadata[b"huggingface"] == hf.arrow_schema.metadata[b"huggingface"]
    assert datasets.Features.from_arrow_schema(schema) == hf

    ep_schema = pq.read_schema(root / "meta/episodes/chunk-000/file-000.parquet")
    lst = lambda t: pa.list_(pa.field("element", t))  # noqa: E731
    expected = [
        ("episode_index", pa.int64()), ("tasks", lst(pa.string())), ("length", pa.int64()),
        ("data/chunk_index", pa.int64()), ("data/file_index", pa.int64()),
        ("dataset_from_index", pa.int64()), ("dataset_to_index", pa.int64()),
    ]  # fmt: skip
    for cam in CAMS:
        key = f"videos/observation.images.{cam}"
        expected += [(f"{key}/chunk_index", pa.int64()), (f"{key}/file_index", pa.int64()),
                     (f"{key}/from_timestamp", pa.float64()), (f"{key}/to_timestamp", pa.float64())]  # fmt: skip
    for key, ft in features.items():
        for stat in STAT_NAMES:
            t = pa.int64() if stat == "count" else pa.float64()
            nested = ft["dtype"] == "video" and stat != "count"
            expected.append((f"stats/{key}/{stat}", lst(lst(lst(t))) if nested else lst(t)))
    expected += [("meta/episodes/chunk_index", pa.int64()), ("meta/episodes/file_index", pa.int64())]
    assert [(f.name, f.type) for f in ep_schema] == expected
    row = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()[0]
    assert np.asarray(row["stats/observation.images.front/mean"]).shape == (3, 1, 1)
    assert row["stats/observation.images.front/count"] == [plan(0)[0]]
    assert row["stats/action/q01"] is not None and len(row["stats/action/q99"]) == 6

    tasks_schema = pq.read_schema(root / "meta/tasks.parquet")
    assert [(f.name, f.type) for f in tasks_schema] == [("task_index", pa.int64()), ("task", pa.string())]
    assert json.loads(tasks_schema.metadata[b"pandas"])["index_columns"] == ["task"]
    df = pd.read_parquet(root / "meta/tasks.parquet")
    assert df.index.name == "task" and df.to_dict()["task_index"] == {TASKS[0]: 0}


def test_tasks_get_indices_in_first_seen_order(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    with DatasetWriter.create(root, FPS, make_features(cams={}), ROBOT) as w:
        for task in ["b task", "a task", "b task"]:
            w.begin_episode(task)
            for i in range(3):
                w.add_frame({k: v for k, v in frame(0, i, {}).items()})
            w.save_episode()
        w.begin_episode("c task")
        for i in range(4):  # a per-frame task may change within an episode
            w.add_frame({**frame(0, i, {}), "task": "d task" if i >= 2 else "c task"})
        info = w.save_episode()
    assert info.tasks == ("c task", "d task")
    df = pd.read_parquet(root / "meta/tasks.parquet")
    assert list(df.index) == ["b task", "a task", "c task", "d task"] and list(df["task_index"]) == [
        0,
        1,
        2,
        3,
    ]
    data = read_dir(root, "data")
    assert data.column("task_index").to_pylist() == [0] * 3 + [1] * 3 + [0] * 3 + [2, 2, 3, 3]
    assert json.loads((root / "meta/info.json").read_text())["video_path"] is None


def test_resume_appends_to_new_files_with_contiguous_indices(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    with DatasetWriter.create(root, FPS, make_features(), ROBOT) as w:
        for seed in (0, 1):
            record(w, seed)
            w.save_episode()
    old = {p: digest(p) for p in root.rglob("*") if p.suffix in (".parquet", ".mp4")}
    with DatasetWriter.resume(root, fps=FPS, features=make_features(), robot_type=ROBOT) as w:
        assert w.last_recovery is not None and not w.last_recovery.changed
        assert (w.total_episodes, w.total_frames) == (2, plan(0)[0] + plan(1)[0])
        record(w, 2)
        info = w.save_episode()
        record(w, 3)
        w.save_episode()
    assert info.episode_index == 2 and info.dataset_from_index == plan(0)[0] + plan(1)[0]
    verify(root, [0, 1, 2, 3])
    for path, h in old.items():  # what was there is untouched, except tasks.parquet (a new task appeared)
        if path.name != "tasks.parquet":
            assert digest(path) == h, path
    eps = read_dir(root, "meta/episodes").to_pylist()
    assert [(e["data/file_index"], e["videos/observation.images.wrist/file_index"]) for e in eps] == [
        (0, 0), (0, 0), (1, 1), (1, 1)
    ]  # fmt: skip
    assert [e["meta/episodes/file_index"] for e in eps] == [0, 0, 1, 1]
    assert eps[2]["videos/observation.images.front/from_timestamp"] == 0.0


def test_resume_refuses_a_different_setup_with_a_readable_diff(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    with DatasetWriter.create(root, FPS, make_features(), ROBOT) as w:
        record(w, 0)
        w.save_episode()
    with pytest.raises(DatasetMismatchError) as err:
        DatasetWriter.resume(root, fps=15, features=make_features(), robot_type="koch_follower")
    assert "fps: dataset 30, now 15" in str(err.value)
    assert "robot_type: dataset 'so_follower', now 'koch_follower'" in str(err.value)
    other = make_features(cams={"front": (H, W), "top": (H, W)}, joints=JOINTS[:5])
    with pytest.raises(DatasetMismatchError) as err:
        DatasetWriter.resume(root, fps=FPS, features=other, robot_type=ROBOT)
    lines = str(err.value).splitlines()
    assert "  features: observation.images.top missing in the dataset" in lines
    assert "  features: observation.images.wrist is in the dataset but not in this session" in lines
    assert "  features: action shape: dataset [6], now [5]" in lines
    with pytest.raises(DatasetMismatchError, match=r"video codec: dataset av1 \(libsvtav1\), now libx264"):
        DatasetWriter.resume(root, fps=FPS, features=make_features(), robot_type=ROBOT, vcodec="libx264")
    verify(root, [0])


def test_create_refuses_a_non_empty_directory_and_bad_frames(tmp_path: Path) -> None:
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "x").write_text("x")
    with pytest.raises(FileExistsError):
        DatasetWriter.create(tmp_path / "ds", FPS, make_features(), ROBOT)
    with DatasetWriter.create(tmp_path / "new", FPS, make_features(), ROBOT) as w:
        w.begin_episode(TASKS[0])
        good = frame(0, 0)
        for bad in (
            {k: v for k, v in good.items() if k != "observation.state"},
            {**good, "timestamp": 0.0},
            {**good, "action": np.zeros(5, np.float32)},
            {**good, "observation.images.front": np.zeros((H, W, 3), np.float32)},
        ):
            with pytest.raises(ValueError):
                w.add_frame(bad)
        assert w.episode_frames == 0
        with pytest.raises(EpisodeRefused, match="no frames"):
            w.save_episode()


def test_discard_redo_leaves_nothing_behind(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    with DatasetWriter.create(root, FPS, make_features(), ROBOT) as w:
        record(w, 5)
        assert w.recording and w.episode_frames == plan(5)[0]
        w.discard_episode()
        assert not w.recording and files(root) == [LOCK_FILE, "meta/info.json"]
        record(w, 0)
        assert w.save_episode().episode_index == 0
    verify(root, [0])
    assert no_leftovers(root)


def test_files_rotate_and_chunks_wrap_at_the_size_limits(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    w = DatasetWriter.create(root, FPS, make_features(), ROBOT, chunks_size=2, max_rewrite_mb=0.001)
    for seed in range(3):
        record(w, seed)
        w.save_episode()
    w.finalize()
    verify(root, [0, 1, 2])
    for sub in ("data", "meta/episodes"):
        names = sorted(str(p.relative_to(root / sub)) for p in (root / sub).rglob("*.parquet"))
        assert names == [
            "chunk-000/file-000.parquet",
            "chunk-000/file-001.parquet",
            "chunk-001/file-000.parquet",
        ]
    assert len(list(root.glob("videos/observation.images.front/chunk-*/*.mp4"))) == 3


def test_encoder_falling_behind_refuses_the_episode(tmp_path: Path, monkeypatch) -> None:
    gate = threading.Event()
    real = video._to_video_frame
    monkeypatch.setattr(video, "_to_video_frame", lambda img: (gate.wait(10), real(img))[1])
    root = tmp_path / "ds"
    with DatasetWriter.create(root, FPS, make_features(), ROBOT, vcodec="libx264", queue_cap_s=0.1) as w:
        w.begin_episode(TASKS[0])
        for i in range(10):
            w.add_frame(frame(0, i))  # never blocks, even with the encoders stalled
        assert w.episode_problem is not None and "fell behind" in w.episode_problem
        status = w.camera_status()
        assert [s.broken for s in status] == [True, True] and all(s.frames_fed == 10 for s in status)
        # The queues reached the cap; after that the abandoned frames are drained, so the lag may be 0 again.
        assert [s.max_depth for s in status] == [3, 3] and [s.queue_cap for s in status] == [3, 3]
        gate.set()
        with pytest.raises(EpisodeRefused, match="Redo the episode"):
            w.save_episode()
        assert not w.recording and files(root) == [LOCK_FILE, "meta/info.json"]
        monkeypatch.setattr(video, "_to_video_frame", real)
        w.queue_cap = 1000  # this test feeds frames faster than real time
        record(w, 0)
        w.save_episode()
    verify(root, [0])


# ----------------------------------------------------------------------------------------- crash safety

CHILD = r"""
import os, signal, sys, time
sys.path.insert(0, {repo!r})
from engine.dataset import writer as wmod
from tests.engine.dataset.test_writer import FPS, ROBOT, make_features, record
root, point, first, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def hook(name):
    if name == point:
        os.kill(os.getpid(), signal.SIGKILL)

if first == 0:
    w = wmod.DatasetWriter.create(root, FPS, make_features(), ROBOT, vcodec="libx264")
else:
    w = wmod.DatasetWriter.resume(root, fps=FPS, features=make_features(), robot_type=ROBOT)
for seed in range(first, first + count):
    record(w, seed)
    if seed == first + count - 1:  # the crash point is armed for the last episode only
        wmod.fault_hook = hook
        if point == "mid_episode":
            print("recording", flush=True)
            time.sleep(60)
    w.save_episode()
    print("saved", seed, flush=True)
"""


def run_child(root: Path, point: str, first: int, count: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD.format(repo=str(REPO)), str(root), point, str(first), str(count)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )


def wait_killed(proc: subprocess.Popen[str], until: str | None = None) -> list[str]:
    """Lines the child printed; with `until`, the child is SIGKILLed once it prints that line."""
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.strip())
        if until is not None and line.strip() == until:
            proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL, lines
    return lines


FRONT_FILE = "videos/observation.images.front/chunk-000/file-000.mp4"
# (crash point while episode 2 is recorded or saved, episodes that survive, what recover must have done)
POINTS: list[tuple[str, int, Any]] = [
    ("mid_episode", 2, lambda r: STAGING_DIR + "/" in r.removed),
    # temp files of video, data and episodes written, nothing renamed yet
    ("before_commit", 2, lambda r: sum(p.endswith(TEMP_SUFFIX) for p in r.removed) == 4),
    # one camera's mp4 already holds the uncommitted segment: trimmed back
    ("video_committed:observation.images.front", 2, lambda r: r.truncated == [FRONT_FILE]),
    # data rows beyond the last committed episode, and both cameras' tails
    (
        "data_committed",
        2,
        lambda r: "data/chunk-000/file-000.parquet" in r.truncated and len(r.truncated) == 3,
    ),
    # a new task that no committed episode uses
    ("tasks_committed", 2, lambda r: r.dropped_tasks == [TASKS[2]] and "meta/tasks.parquet" in r.rewrote),
    # committed, but info.json and stats.json are stale
    ("episodes_committed", 3, lambda r: r.rewrote == ["meta/info.json", "meta/stats.json"]),
    ("info_committed", 3, lambda r: r.rewrote == ["meta/stats.json"]),
]


@pytest.mark.parametrize(("point", "survivors", "repaired"), POINTS, ids=[p[0] for p in POINTS])
def test_sigkill_during_an_episode_loses_at_most_that_episode(
    tmp_path: Path, point: str, survivors: int, repaired: Any
) -> None:
    root = tmp_path / "ds"
    lines = wait_killed(run_child(root, point, 0, 3), until="recording" if point == "mid_episode" else None)
    assert lines[:2] == ["saved 0", "saved 1"]
    report = recover(root)
    assert report.episodes == survivors and no_leftovers(root)
    assert repaired(report), report
    verify(root, list(range(survivors)))
    assert recover(root).changed is False  # idempotent
    # And the dataset takes new episodes after the crash.
    with DatasetWriter.resume(root, fps=FPS, features=make_features(), robot_type=ROBOT) as w:
        record(w, survivors)
        w.save_episode()
    verify(root, list(range(survivors + 1)))


def test_sigkill_while_committing_the_first_episode(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    wait_killed(run_child(root, "episodes_committed", 0, 1))
    info = json.loads((root / "meta/info.json").read_text())
    assert (
        info["total_episodes"] == 0
        and "video.codec" not in info["features"]["observation.images.front"]["info"]
    )
    report = recover(root)
    assert report.episodes == 1 and "meta/info.json" in report.rewrote
    block = json.loads((root / "meta/info.json").read_text())["features"]["observation.images.front"]["info"]
    assert block["video.codec"] == "h264" and block["video.height"] == H and block["video.g"] == 2
    verify(root, [0])


def test_sigkill_at_random_moments(tmp_path: Path) -> None:
    rng = random.Random(7)
    for attempt in range(3):
        root = tmp_path / f"ds{attempt}"
        proc = run_child(root, "none", 0, 50)
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip()]  # the first save: the child is past its imports
        timer = threading.Timer(rng.uniform(0.0, 0.5), proc.send_signal, (signal.SIGKILL,))
        timer.start()
        lines += wait_killed(proc)
        timer.cancel()
        saved = sum(1 for line in lines if line.startswith("saved"))
        assert saved >= 1, lines
        report = recover(root)
        assert report.episodes in (saved, saved + 1), (saved, report)
        verify(root, list(range(report.episodes)))
        assert no_leftovers(root)


def test_recover_sets_aside_an_unreadable_episodes_file(tmp_path: Path) -> None:
    """A footer-less episodes file (what an unfinalized LeRobot run leaves) is renamed, not trusted."""
    root = tmp_path / "ds"
    with DatasetWriter.create(root, FPS, make_features(), ROBOT, max_rewrite_mb=0.001) as w:
        for seed in (0, 1):
            record(w, seed)
            w.save_episode()
    broken = root / "meta/episodes/chunk-000/file-001.parquet"
    broken.write_bytes(broken.read_bytes()[:-100])
    report = recover(root)
    assert report.set_aside == ["meta/episodes/chunk-000/file-001.parquet"] and report.episodes == 1
    assert "data/chunk-000/file-001.parquet" in report.removed
    verify(root, [0])


def test_resume_a_dataset_lerobot_wrote(tmp_path: Path) -> None:
    """A LeRobot-written dataset (v0.4.x layout, built without robotui's writer) is recovered as consistent
    and takes new episodes in new files, with its own codec, leaving its files untouched."""
    from tests.engine.dataset.lerobot_fixture import JOINT_NAMES, write_lerobot_style_dataset

    root = tmp_path / "lerobot"
    spec = write_lerobot_style_dataset(root, episodes=(5, 7), cameras={"front": (48, 64)}, vcodec="libx264")
    old = {p: digest(p) for p in root.rglob("*") if p.is_file()}
    report = recover(root)
    assert not report.changed, report.summary()
    features = build_features(JOINT_NAMES, {"front": (48, 64)})
    with DatasetWriter.resume(root, fps=spec.fps, features=features, robot_type=spec.robot_type) as w:
        assert w.encoding is not None and w.encoding.vcodec == "libx264"
        w.begin_episode("stack the cubes")
        for i in range(4):
            f = frame(9, i, {"front": (48, 64)})
            del f["intervention"]
            w.add_frame(f)
        info = w.save_episode()
    assert (info.episode_index, info.dataset_from_index, info.dataset_to_index) == (2, 12, 16)
    for path, h in old.items():
        if path.name not in ("info.json", "stats.json", "tasks.parquet"):
            assert digest(path) == h, path
    data = read_dir(root, "data")
    assert data.column("index").to_pylist() == list(range(16))
    assert data.column("task_index").to_pylist()[-4:] == [1] * 4
    row = read_dir(root, "meta/episodes").to_pylist()[-1]
    assert (row["data/file_index"], row["videos/observation.images.front/file_index"]) == (1, 1)
    frames = decoded(root / "videos/observation.images.front/chunk-000/file-001.mp4")
    assert len(frames) == 4 and all(abs(frames[i][0] - i / FPS) <= 1e-4 for i in range(4))
    assert not recover(root).changed


def test_one_process_at_a_time(tmp_path: Path) -> None:
    """A second writer, or a repair, while a writer is open would delete its in-progress files: refused."""
    root = tmp_path / "ds"
    w = DatasetWriter.create(root, FPS, make_features(), ROBOT)
    record(w, 0)
    with pytest.raises(DatasetBusyError, match=f"pid {os.getpid()}"):
        recover(root)
    with pytest.raises(DatasetBusyError):
        DatasetWriter.resume(root, fps=FPS, features=make_features(), robot_type=ROBOT)
    w.save_episode()
    w.finalize()
    assert no_leftovers(root)
    assert not recover(root).changed
    with DatasetWriter.resume(root, fps=FPS, features=make_features(), robot_type=ROBOT) as w2:
        record(w2, 1)
        w2.save_episode()
    verify(root, [0, 1])


def test_build_features_from_a_robots_feature_dicts() -> None:
    obs = {**{j: float for j in JOINTS}, "front": (H, W, 3)}  # a robot's observation_features
    feats = build_features(obs, {"front": (H, W)}, action_features={j: float for j in JOINTS[:2]})
    assert feats["observation.state"]["names"] == JOINTS and feats["action"]["shape"] == [2]
    assert list(feats)[-5:] == ["timestamp", "frame_index", "episode_index", "index", "task_index"]
    images = build_features(JOINTS, {"front": (H, W)}, video=False)
    assert images["observation.images.front"]["dtype"] == "image"
    with pytest.raises(ValueError, match="record them as video"):
        DatasetWriter.create(Path("/nonexistent/never-created"), FPS, images, ROBOT)
    with pytest.raises(ValueError, match="clashes"):
        build_features(JOINTS, {}, extra={"index": INTERVENTION_FEATURE})
    with pytest.raises(ValueError, match="contains '/'"):
        build_features(JOINTS, {}, extra={"a/b": INTERVENTION_FEATURE})
