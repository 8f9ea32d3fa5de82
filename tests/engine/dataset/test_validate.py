"""`check` finds nothing on good datasets and names each injected defect with where it is and how to fix it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from engine.dataset.validate import Problem, check, has_errors
from tests.engine.dataset.lerobot_fixture import LeRobotStyleDataset, write_lerobot_style_dataset

DATA = "data/chunk-000/file-000.parquet"
EPISODES = "meta/episodes/chunk-000/file-000.parquet"
FRONT = "observation.images.front"


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> LeRobotStyleDataset:
    root = tmp_path_factory.mktemp("good") / "ds"
    return write_lerobot_style_dataset(
        root, [5, 7, 4], {"front": (32, 48), "wrist": (16, 16)}, episode_tasks=["pick", "place", "pick"]
    )


@pytest.fixture
def ds(good: LeRobotStyleDataset, tmp_path: Path) -> Path:
    """A private copy to break."""
    shutil.copytree(good.root, tmp_path / "ds")
    return tmp_path / "ds"


def only(problems: list[Problem], code: str) -> list[Problem]:
    found = [p for p in problems if p.code == code]
    assert found, f"no {code!r} problem among {[str(p) for p in problems]}"
    return found


def rewrite_data(root: Path, fn: Callable[[pa.Table], pa.Table]) -> None:
    path = root / DATA
    table = pq.read_table(path)
    pq.write_table(fn(table).replace_schema_metadata(table.schema.metadata), path)


def set_column(table: pa.Table, name: str, values: np.ndarray) -> pa.Table:
    i = table.schema.get_field_index(name)
    return table.set_column(i, table.schema.field(i), pa.array(values, table.schema.field(i).type))


def rewrite_episodes(root: Path, fn: Callable[[dict], None]) -> None:
    path = root / EPISODES
    rows = pq.read_table(path).to_pylist()
    for row in rows:
        fn(row)
    pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(path)), path)


def edit_json(path: Path, fn: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data, indent=4))


@pytest.mark.parametrize("variant", ["task", "__index_level_0__"])
def test_good_lerobot_datasets_have_no_problems(variant: str, tmp_path: Path) -> None:
    ds = write_lerobot_style_dataset(
        tmp_path / "ds", [4, 6], {"front": (16, 16)}, tasks_index_variant=variant
    )
    assert check(ds.root) == []


def test_good_dataset_with_rotated_files(good: LeRobotStyleDataset, tmp_path: Path) -> None:
    ds = write_lerobot_style_dataset(
        tmp_path / "ds", [3, 4, 5], {"front": (16, 16)}, episodes_per_file=2, fps=15
    )
    assert check(ds.root) == []
    assert check(good.root) == []


def test_missing_video_file(ds: Path) -> None:
    (ds / f"videos/{FRONT}/chunk-000/file-000.mp4").unlink()
    (p,) = only(check(ds), "video-missing")
    assert p.severity == "error"
    assert p.where == f"videos/{FRONT}/chunk-000/file-000.mp4"
    assert "episodes 0..2" in p.what and "restore" in p.fix
    assert [
        q
        for q in check(ds)
        if q.code.startswith("video") and q.where.startswith("videos/observation.images.wrist")
    ] == []


def test_non_contiguous_global_index(ds: Path) -> None:
    rewrite_data(
        ds, lambda t: set_column(t, "index", np.where(np.arange(16) >= 5, np.arange(16) + 1, np.arange(16)))
    )
    problems = only(check(ds), "global-index")
    assert any(
        p.where == f"{DATA}, episode 1" and "index at frame 0 is 6, expected 5" in p.what for p in problems
    )
    assert any(p.where == DATA and "row 5 has index 6" in p.what for p in problems)
    assert all(p.severity == "error" and "--repair" in p.fix for p in problems)


def test_episode_index_gap(ds: Path) -> None:
    rewrite_episodes(ds, lambda row: row.update(episode_index=3) if row["episode_index"] == 2 else None)
    (p,) = only(check(ds), "episode-index")
    assert "not contiguous" in p.what and "0..1, 3" in p.what


def test_wrong_length(ds: Path) -> None:
    rewrite_episodes(ds, lambda row: row.update(length=8) if row["episode_index"] == 1 else None)
    problems = only(check(ds), "episode-length")
    whats = " | ".join(p.what for p in problems)
    assert "dataset_to_index - dataset_from_index = 7 but length is 8" in whats
    assert "7 rows of this episode but meta/episodes says length 8" in whats
    assert any(p.where == f"{DATA}, episode 1" for p in problems)
    assert any("8 frames at 30 fps" in p.what for p in only(check(ds), "video-duration"))


def test_missing_stats(ds: Path) -> None:
    edit_json(ds / "meta/stats.json", lambda s: s.pop("observation.state"))
    (p,) = only(check(ds), "stats-missing")
    assert p.where == "meta/stats.json" and "'observation.state'" in p.what and p.severity == "error"
    (ds / "meta/stats.json").unlink()
    (p,) = only(check(ds), "stats-missing")
    assert "meta/stats.json is missing" in p.what


def test_stats_with_wrong_shape(ds: Path) -> None:
    edit_json(ds / "meta/stats.json", lambda s: s[FRONT].update(mean=[0.5, 0.5, 0.5]))
    (p,) = only(check(ds), "stats-shape")
    assert f"{FRONT}/mean has shape (3,), expected (3, 1, 1)" in p.what


def test_timestamps_off(ds: Path) -> None:
    rewrite_data(ds, lambda t: set_column(t, "timestamp", pc.add(t["timestamp"], 0.004).to_numpy()))
    problems = only(check(ds), "timestamps")
    assert len(problems) == 3
    assert (
        "frame_index / fps" in problems[0].fix and "expected frame_index/fps = 0.000000" in problems[0].what
    )


def test_task_index_out_of_range(ds: Path) -> None:
    rewrite_data(
        ds, lambda t: set_column(t, "task_index", np.where(np.arange(16) < 5, 5, t["task_index"].to_numpy()))
    )
    (p,) = only(check(ds), "task-index")
    assert (
        p.where == f"{DATA}, episode 0"
        and "task_index [5] not in meta/tasks.parquet (which has 0..1)" in p.what
    )


def test_episode_task_not_in_tasks(ds: Path) -> None:
    rewrite_episodes(ds, lambda row: row.update(tasks=["fly"]) if row["episode_index"] == 2 else None)
    (p,) = only(check(ds), "task-unknown")
    assert "['fly']" in p.what and p.where.endswith("episode 2")


def test_info_totals_wrong(ds: Path) -> None:
    edit_json(ds / "meta/info.json", lambda i: i.update(total_frames=17, total_tasks=3))
    problems = only(check(ds), "info-totals")
    whats = [p.what for p in problems]
    assert "total_frames is 17 but meta/episodes adds up to 16" in whats
    assert "total_tasks is 3 but tasks.parquet has 2 tasks" in whats
    assert all(p.where == "meta/info.json" for p in problems)


def test_video_segment_off_by_half_a_frame(ds: Path) -> None:
    def shift(row: dict) -> None:
        if row["episode_index"] == 2:
            row[f"videos/{FRONT}/from_timestamp"] += 0.5 / 30
            row[f"videos/{FRONT}/to_timestamp"] += 0.5 / 30

    rewrite_episodes(ds, shift)
    (p,) = only(check(ds), "video-frames")
    assert p.where == f"videos/{FRONT}/chunk-000/file-000.mp4, episode 2"
    assert "4 of 4 frames missing" in p.what and "FrameTimestampError" in p.what


def test_video_missing_frames_at_the_end(ds: Path, tmp_path: Path) -> None:
    """A file holding fewer frames than its episodes claim (streaming encoder dropped frames)."""
    short = write_lerobot_style_dataset(tmp_path / "short", [5, 7, 2], {"front": (32, 48)})
    shutil.copy(short.video_files[FRONT][0], ds / f"videos/{FRONT}/chunk-000/file-000.mp4")
    problems = check(ds)
    (p,) = only(problems, "video-frames")
    assert p.where.endswith("episode 2") and "2 of 4 frames missing" in p.what


def test_video_with_other_size(ds: Path, tmp_path: Path) -> None:
    other = write_lerobot_style_dataset(tmp_path / "other", [5, 7, 4], {"front": (16, 16)})
    shutil.copy(other.video_files[FRONT][0], ds / f"videos/{FRONT}/chunk-000/file-000.mp4")
    (p,) = only(check(ds), "video-size")
    assert "16x16 but info.json says 32x48" in p.what


def test_unfinalized_parquet(ds: Path) -> None:
    path = ds / DATA
    path.write_bytes(path.read_bytes()[:-200])  # no footer, as when the writer was never closed
    (p,) = only(check(ds), "data-unreadable")
    assert "not finalized" in p.what and "--repair" in p.fix


def test_unfinalized_episodes_file(ds: Path) -> None:
    path = ds / EPISODES
    path.write_bytes(path.read_bytes()[:-100])
    (p,) = only(check(ds), "episodes-unreadable")
    assert p.where == EPISODES


def test_schema_mismatch(ds: Path) -> None:
    rewrite_data(
        ds,
        lambda t: t.set_column(0, "action", t["action"].cast(pa.list_(pa.float64()))).append_column(
            "extra", pa.array(np.zeros(16))
        ),
    )
    problems = only(check(ds), "schema")
    whats = " | ".join(p.what for p in problems)
    assert "column action: type list<element: double>" in whats and "fixed_size_list<float>[6]" in whats
    assert "columns ['extra'] are not in info.json features" in whats


def test_v21_dataset(ds: Path) -> None:
    edit_json(ds / "meta/info.json", lambda i: i.update(codebase_version="v2.1"))
    (p,) = only(check(ds), "info-version")
    assert "convert_dataset_v21_to_v30" in p.fix


def test_orphan_rows_from_an_interrupted_episode(ds: Path) -> None:
    rewrite_episodes(ds, lambda row: None)
    path = ds / EPISODES
    table = pq.read_table(path)
    pq.write_table(table.slice(0, 2), path)  # episode 2 was never committed, its rows were
    edit_json(
        ds / "meta/info.json", lambda i: i.update(total_episodes=2, total_frames=12, splits={"train": "0:2"})
    )
    problems = check(ds)
    (p,) = only(problems, "data-orphan-rows")
    assert "episodes [2]" in p.what
    assert all(p.code != "info-totals" for p in problems)


def test_warnings_only_for_leftovers(ds: Path) -> None:
    (ds / "images" / FRONT / "episode-000003").mkdir(parents=True)
    (ds / "images" / FRONT / "episode-000003" / "frame-000000.png").write_bytes(b"png")
    problems = check(ds)
    assert [p.code for p in problems] == ["leftover-images"]
    assert not has_errors(problems) and problems[0].severity == "warning"


def test_many_identical_problems_are_capped(tmp_path: Path) -> None:
    ds = write_lerobot_style_dataset(tmp_path / "ds", [2] * 25, {})
    edit_json(ds.root / "meta/stats.json", lambda s: None)
    rewrite_data(ds.root, lambda t: set_column(t, "timestamp", pc.add(t["timestamp"], 0.5).to_numpy()))
    problems = [p for p in check(ds.root) if p.code == "timestamps"]
    assert len(problems) == 21 and problems[-1].what == "5 more 'timestamps' problems"


# --- repair goes through the writer's crash recovery


def test_repair_rebuilds_totals_and_stats(ds: Path) -> None:
    edit_json(ds / "meta/info.json", lambda i: i.update(total_frames=99))
    (ds / "meta/stats.json").unlink()
    assert {p.code for p in check(ds)} >= {"info-totals", "stats-missing"}
    assert check(ds, repair=True) == []
    assert json.loads((ds / "meta/info.json").read_text())["total_frames"] == 16


def test_repair_leaves_a_good_lerobot_dataset_valid(ds: Path) -> None:
    assert check(ds, repair=True) == []


def test_good_dataset_with_image_cameras(tmp_path: Path) -> None:
    ds = write_lerobot_style_dataset(tmp_path / "ds", [3, 2], {"front": (8, 12)}, camera_storage="image")
    assert check(ds.root) == []
    rewrite_data(ds.root, lambda t: t.set_column(2, FRONT, pa.array([b"x"] * 5, pa.binary())))
    (p,) = only(check(ds.root), "schema")
    assert "is not the image struct" in p.what


def test_what_robotuis_writer_writes_is_valid(tmp_path: Path) -> None:
    """The other half of interop: datasets from engine.dataset.writer pass the same checks and read back."""
    from engine.dataset.format import INTERVENTION_FEATURE, build_features
    from engine.dataset.reader import LeRobotDatasetReader
    from engine.dataset.writer import DatasetWriter

    joints = [f"j{i}.pos" for i in range(6)]
    features = build_features(joints, {"front": (16, 32)}, extra={"intervention": INTERVENTION_FEATURE})
    root = tmp_path / "ds"
    with DatasetWriter.create(root, 30, features, "so_follower", vcodec="libx264") as writer:
        for ep, length in enumerate([3, 5]):
            writer.begin_episode(["pick", "place"][ep])
            for i in range(length):
                value = np.full(6, ep * 10 + i, np.float32)
                image = np.full((16, 32, 3), (40 * i + 20, 100 * ep + 40, 90), np.uint8)
                writer.add_frame(
                    {"action": value, "observation.state": value + 0.5, "intervention": i == 0, FRONT: image}
                )
            writer.save_episode()
    assert check(root) == []
    r = LeRobotDatasetReader.open(root)
    assert r.tasks == {0: "pick", 1: "place"} and len(r) == 8
    np.testing.assert_array_equal(r.frames(1)["action"][:, 0], np.arange(10, 15))
    np.testing.assert_array_equal(r.frames(1)["intervention"], [True, False, False, False, False])
    item = r[4]
    assert item["task"] == "place" and int(item["frame_index"]) == 1
    assert np.abs(item[FRONT].reshape(-1, 3).mean(axis=0) - (60, 140, 90)).max() < 10
