"""The recorder on the simulated SO-101 (real drivers, sim cameras, real dataset writer): episodes land in a
LeRobot v3.0 dataset that validates and reads back, with redo and stop mid-episode."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from engine.dataset.format import build_features
from engine.dataset.reader import LeRobotDatasetReader
from engine.dataset.validate import check, has_errors
from engine.dataset.writer import DatasetWriter
from engine.profile import sim_profile
from engine.recorder import Phase, Recorder, RecordSettings
from engine.session import Session

FPS = 30


@pytest.fixture
def session() -> Iterator[Session]:
    with Session(sim_profile()) as s:
        s.connect()
        yield s


def _writer(session: Session, root: Path) -> DatasetWriter:
    robot = session.robot
    assert robot is not None
    cameras = {name: (cam.height, cam.width) for name, cam in robot.cameras.items()}
    features = build_features(list(robot.position_features), cameras)
    return DatasetWriter.create(root, FPS, features, robot.name, vcodec="libx264")


def _wait(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_records_episodes_that_read_back_and_validate(session: Session, tmp_path: Path) -> None:
    root = tmp_path / "ds"
    assert session.sim is not None
    session.sim.start_demo()
    resets: list[int] = []
    rec = Recorder(
        session.robot,
        _writer(session, root),
        RecordSettings(num_episodes=2, episode_time_s=1.0, reset_time_s=0.3, task="pick the cube"),
        leader=session.leader,
        on_reset=resets.append,
    )
    rec.start()
    assert rec.wait(30), rec.snapshot()
    snap = rec.snapshot()
    assert snap.error is None
    assert [e.index for e in snap.saved] == [0, 1]
    assert all(e.length == FPS for e in snap.saved)  # the episode timer counts frames, not wall time
    assert resets == [1]
    # Torque released at the end.
    assert all(session.sim.follower_bus.servo(i).read_register("Torque_Enable") == 0 for i in range(1, 7))

    assert not has_errors(check(root))
    ds = LeRobotDatasetReader.open(root)
    assert ds.total_episodes == 2 and ds.total_frames == 2 * FPS
    assert ds.robot_type == "so_follower"
    frames = ds.frames(1)
    state, action = frames["observation.state"], frames["action"]
    assert state.shape == (FPS, 6) and action.shape == (FPS, 6)
    assert np.ptp(action, axis=0).max() > 0.1  # the demonstrator moved the leader during the episode
    images = ds.decode_frames("observation.images.front", 1, [0, FPS - 1])
    assert images.shape[0] == 2 and images.std() > 1.0


def test_redo_and_stop_mid_episode(session: Session, tmp_path: Path) -> None:
    root = tmp_path / "ds"
    rec = Recorder(
        session.robot,
        _writer(session, root),
        RecordSettings(num_episodes=5, episode_time_s=10.0, reset_time_s=0.1, task="pick the cube"),
        leader=session.leader,
    )
    rec.start()
    assert _wait(lambda: rec.snapshot().frames >= 5)
    rec.redo()  # drop episode 0 while recording it
    assert "discarded" in (rec.snapshot().message or "")
    assert _wait(lambda: rec.phase is Phase.RECORDING and rec.snapshot().frames >= 5)
    assert rec.snapshot().episode == 0  # recorded again under the same index
    rec.next()  # save it early
    assert _wait(lambda: len(rec.snapshot().saved) == 1)
    assert _wait(lambda: rec.phase is Phase.RECORDING and rec.snapshot().frames >= 3)
    rec.stop()  # saves the partial episode 1, finalizes
    assert rec.finished
    snap = rec.snapshot()
    assert [e.index for e in snap.saved] == [0, 1]
    assert not has_errors(check(root))
    assert LeRobotDatasetReader.open(root).total_episodes == 2


def test_settings_refuse_bad_values() -> None:
    with pytest.raises(ValueError, match="task description is required"):
        RecordSettings(task=" ")
    with pytest.raises(ValueError, match="at least 1"):
        RecordSettings(num_episodes=0, task="x")
    with pytest.raises(ValueError, match="positive"):
        RecordSettings(episode_time_s=0, task="x")
