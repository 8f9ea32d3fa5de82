"""`language_events`: rows attached while recording land on their frame, read back, validate, and follow
LeRobot's language-annotation schema (checked by loading the parquet with `datasets` and the features LeRobot
builds for the column). Datasets without the column are unchanged."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.dataset.format import build_features
from engine.dataset.language import (
    LANGUAGE_EVENTS,
    LANGUAGE_FEATURE,
    LanguageRowError,
    column_arrow_type,
    event_row,
)
from engine.dataset.reader import LeRobotDatasetReader
from engine.dataset.validate import check, has_errors
from engine.dataset.writer import DatasetWriter

JOINTS = ["shoulder_pan.pos", "gripper.pos"]
CAMS = {"front": (16, 32), "wrist": (16, 32)}
FPS = 30
DATA = "data/chunk-000/file-000.parquet"


def frame(i: int) -> dict[str, Any]:
    out: dict[str, Any] = {"action": np.full(2, i, np.float32), "observation.state": np.full(2, i, np.float32)}
    for c, name in enumerate(CAMS):
        out[f"observation.images.{name}"] = np.full((16, 32, 3), 40 * c + i, np.uint8)
    return out


def add_frames(writer: DatasetWriter, n: int) -> None:
    """n frames (more than one: a 1-frame episode trips an unrelated video-append defect)."""
    for i in range(n):
        writer.add_frame(frame(i))


def new_writer(root: Path, *, language: bool = True) -> DatasetWriter:
    features = build_features(JOINTS, CAMS, language_events=language)
    return DatasetWriter.create(root, FPS, features, "so_follower", vcodec="libx264")


def qa(question: str, answer: str, camera: str = "front") -> list[dict[str, Any]]:
    return [event_row("user", question, style="vqa", camera=camera),
            event_row("assistant", answer, style="vqa", camera=camera)]


def lerobot_features() -> datasets.Features:
    """The `datasets` features LeRobot's loader builds for this dataset (`get_hf_features_from_features`
    with `language_events_column_feature()` for the language column)."""
    row = {"role": datasets.Value("string"), "content": datasets.Value("string"),
           "style": datasets.Value("string"), "camera": datasets.Value("string"),
           "tool_calls": datasets.List(datasets.Json())}
    vector = datasets.List(datasets.Value("float32"), length=2)
    return datasets.Features({
        "action": vector, "observation.state": vector, "timestamp": datasets.Value("float32"),
        **{k: datasets.Value("int64") for k in ("frame_index", "episode_index", "index", "task_index")},
        LANGUAGE_EVENTS: datasets.List(row),
    })


def test_events_land_on_their_frames_read_back_and_validate(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    with new_writer(root) as writer:
        assert writer.records_language and writer.language_anchor() is None  # no episode yet
        writer.begin_episode("pick the cube")
        assert writer.language_anchor().frame_index == 0
        asked = None
        for i in range(8):
            writer.add_frame(frame(i))
            if i == 2:
                asked = writer.language_anchor()  # the question is asked on frame 2...
        assert asked is not None and (asked.episode_index, asked.frame_index) == (0, 2)
        assert writer.add_language_event(qa("where is the cube?", "<loc0512><loc0512>", "wrist"), at=asked)
        assert writer.add_language_event(event_row("user", "go left", style="interjection"))  # now: frame 7
        call = {"type": "function", "function": {"name": "say", "arguments": {"text": "ok"}}}
        assert writer.add_language_event(event_row("assistant", None, style=None, tool_calls=[call]))
        writer.save_episode()
        assert not writer.add_language_event(qa("late?", "yes"), at=asked)  # the episode is saved
        writer.begin_episode("pick the cube")
        add_frames(writer, 3)
        assert not writer.add_language_event(qa("late?", "yes"), at=asked)  # another episode now
        writer.add_language_event(qa("is it red?", "yes"))
        writer.save_episode()

    info = json.loads((root / "meta/info.json").read_text())
    assert info["features"][LANGUAGE_EVENTS] == {"dtype": "language", "shape": [1], "names": None}
    assert list(info["features"])[-1] == LANGUAGE_EVENTS  # after the defaults, as LeRobot appends it
    assert not has_errors(check(root)), check(root)

    reader = LeRobotDatasetReader(root)
    events = reader.language_events(0)
    assert sorted(events) == [2, 7]
    assert events[2] == [
        {"role": "user", "content": "where is the cube?", "style": "vqa", "camera": "observation.images.wrist",
         "tool_calls": None},
        {"role": "assistant", "content": "<loc0512><loc0512>", "style": "vqa",
         "camera": "observation.images.wrist", "tool_calls": None},
    ]
    assert [r["style"] for r in events[7]] == ["interjection", None]
    assert events[7][1]["tool_calls"] == [call]  # stored as JSON, parsed back
    assert [r["content"] for r in reader.language_events(1)[2]] == ["is it red?", "yes"]
    assert reader.frames(0)["action"].shape == (8, 2)  # numeric reads are unaffected
    assert "stats/language_events/min" not in pq.read_schema(root / "meta/episodes/chunk-000/file-000.parquet").names


def test_the_parquet_column_is_lerobots_and_datasets_loads_it(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    with new_writer(root) as writer:
        writer.begin_episode("pick")
        for i in range(3):
            writer.add_frame(frame(i))
        writer.add_language_event(qa("where?", "there"))
        writer.save_episode()
    schema = pq.read_schema(root / DATA)
    assert schema.field(LANGUAGE_EVENTS).type == column_arrow_type(LANGUAGE_EVENTS)
    row_type = schema.field(LANGUAGE_EVENTS).type.value_type
    assert [row_type.field(i).name for i in range(row_type.num_fields)] == [
        "role", "content", "style", "camera", "tool_calls"]
    assert not row_type.field("role").nullable and row_type.field("content").nullable
    features = lerobot_features()
    metadata = json.loads(schema.metadata[b"huggingface"])["info"]["features"]
    assert metadata[LANGUAGE_EVENTS] == features.to_dict()[LANGUAGE_EVENTS]

    ds = datasets.load_dataset("parquet", data_files=str(root / DATA), features=features, split="train",
                               cache_dir=str(tmp_path / "cache"))
    assert [len(e) for e in ds[LANGUAGE_EVENTS]] == [0, 0, 2]
    assert ds[2][LANGUAGE_EVENTS][0] == {"role": "user", "content": "where?", "style": "vqa",
                                         "camera": "observation.images.front", "tool_calls": None}


def test_events_from_another_thread_while_frames_are_added(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    with new_writer(root) as writer:
        writer.begin_episode("pick")
        writer.add_frame(frame(0))
        done = threading.Event()
        added: list[int] = []

        def asker() -> None:
            while not done.is_set() and len(added) < 50:
                anchor = writer.language_anchor()
                if anchor is not None and writer.add_language_event(qa(f"q{len(added)}", "a"), at=anchor):
                    added.append(anchor.frame_index)

        thread = threading.Thread(target=asker)
        thread.start()
        for i in range(1, 60):
            writer.add_frame(frame(i % 200))
        done.set()
        thread.join()
        writer.save_episode()
    events = LeRobotDatasetReader(root).language_events(0)
    assert sum(len(rows) for rows in events.values()) == 2 * len(added) > 0
    assert all(rows[0]["content"].startswith("q") for rows in events.values())
    assert not has_errors(check(root))


def test_bad_rows_are_refused_with_the_rule_they_break(tmp_path: Path) -> None:
    with pytest.raises(LanguageRowError, match="need a camera"):
        event_row("user", "where?", style="vqa")
    with pytest.raises(LanguageRowError, match="must have no camera"):
        event_row("user", "go left", style="interjection", camera="front")
    with pytest.raises(LanguageRowError, match="not an event style"):
        event_row("assistant", "grasp", style="subtask")
    with pytest.raises(LanguageRowError, match="must carry tool_calls"):
        event_row("assistant", "hi", style=None)
    with new_writer(tmp_path / "ds") as writer:
        writer.begin_episode("pick")
        writer.add_frame(frame(0))
        with pytest.raises(LanguageRowError, match=r"'observation\.images\.top' is not a camera of this dataset"):
            writer.add_language_event(qa("where?", "there", camera="top"))
        writer.discard_episode()


def test_without_the_feature_nothing_changes(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    assert LANGUAGE_EVENTS not in build_features(JOINTS, CAMS)
    with new_writer(root, language=False) as writer:
        writer.begin_episode("pick")
        add_frames(writer, 3)
        assert not writer.records_language and writer.language_anchor() is None
        assert not writer.add_language_event(qa("where?", "there"))  # nowhere to put it: not recorded
        writer.save_episode()
    assert LANGUAGE_EVENTS not in pq.read_schema(root / DATA).names
    assert LANGUAGE_EVENTS not in json.loads((root / "meta/info.json").read_text())["features"]
    assert LeRobotDatasetReader(root).language_events(0) == {}
    assert not has_errors(check(root))

    # Resuming it from a session that records questions keeps the dataset as it is (and says so).
    with DatasetWriter.resume(root, fps=FPS, features=build_features(JOINTS, CAMS, language_events=True),
                              robot_type="so_follower") as writer:
        assert not writer.records_language
        writer.begin_episode("pick")
        add_frames(writer, 3)
        writer.save_episode()
    assert not has_errors(check(root))

    # And the other way round: a dataset with the column keeps filling it (empty lists) when resumed.
    lang = tmp_path / "lang"
    with new_writer(lang) as writer:
        writer.begin_episode("pick")
        add_frames(writer, 3)
        writer.save_episode()
    with DatasetWriter.resume(lang, fps=FPS, features=build_features(JOINTS, CAMS),
                              robot_type="so_follower") as writer:
        assert writer.records_language
        writer.begin_episode("pick")
        add_frames(writer, 3)
        writer.save_episode()
    files = sorted((lang / "data").rglob("*.parquet"))  # a resumed dataset continues in a new file
    assert [c for f in files for c in pq.read_table(f)[LANGUAGE_EVENTS].to_pylist()] == [[]] * 6
    assert not has_errors(check(lang))


def test_validation_reports_rows_lerobot_would_reject(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    with new_writer(root) as writer:
        writer.begin_episode("pick")
        for i in range(2):
            writer.add_frame(frame(i))
        writer.save_episode()
    table = pq.read_table(root / DATA)
    bad = [[{"role": "user", "content": "where?", "style": "vqa", "camera": None, "tool_calls": None}],
           [{"role": "user", "content": "hi", "style": "chitchat", "camera": None, "tool_calls": None}]]
    # Typed as LeRobot's annotation writer leaves it (inferred: JSON values as strings), which is accepted.
    row = pa.struct([(f, pa.string()) for f in ("role", "content", "style", "camera")]
                    + [("tool_calls", pa.list_(pa.string()))])
    column = pa.array(bad, type=pa.list_(row))
    pq.write_table(table.set_column(table.schema.get_field_index(LANGUAGE_EVENTS), LANGUAGE_EVENTS,
                                    column), root / DATA)
    problems = [p for p in check(root) if p.code == "language-row"]
    assert [p.where.rsplit(", ", 1)[-1] for p in problems] == ["frame 0", "frame 1"]
    assert "needs the camera it is about" in problems[0].what and "not an event style" in problems[1].what

    info_path = root / "meta/info.json"
    info = json.loads(info_path.read_text())
    info["features"]["chat"] = dict(LANGUAGE_FEATURE)
    info_path.write_text(json.dumps(info))
    assert any("reserves for language_persistent and language_events" in p.what for p in check(root))
