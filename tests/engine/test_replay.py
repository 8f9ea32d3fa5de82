"""Replay on the simulated SO-101: an episode recorded with the Session is played back on the follower,
which ends where the episode's last action points; mismatched joints and missing episodes are refused."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from drivers.robots.registry import make_robot
from engine.dataset.format import build_features
from engine.dataset.reader import LeRobotDatasetReader
from engine.dataset.writer import DatasetWriter
from engine.profile import sim_profile
from engine.recorder import RecordSettings
from engine.replay import Replay, ReplayError, ReplayPhase, load_episode_actions
from engine.session import Session

SO_JOINTS = [f"{m}.pos" for m in ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll",
                                  "gripper")]


def write_dataset(root: Path, names: Sequence[str], actions: Sequence[np.ndarray],
                  robot_type: str = "so_follower", fps: int = 30) -> Path:
    """A camera-less dataset with one episode per array of actions (the state repeats the action)."""
    writer = DatasetWriter.create(root, fps, build_features(list(names), {}), robot_type)
    with writer:
        for episode in actions:
            writer.begin_episode("wave")
            for row in episode:
                vec = np.asarray(row, dtype=np.float32)
                writer.add_frame({"observation.state": vec, "action": vec})
            writer.save_episode()
    return root


def wave(frames: int = 45, amplitude: float = 20.0) -> np.ndarray:
    """Arm joints swing from 0 to +amplitude degrees; the gripper opens from 10 to 40."""
    t = np.linspace(0.0, 1.0, frames)[:, None]
    arm = amplitude * np.sin(t * np.pi / 2) * np.ones((1, 5))
    grip = 10 + 30 * t
    return np.hstack([arm, grip])


@pytest.fixture
def session() -> Iterator[Session]:
    with Session(replace(sim_profile(), cameras={})) as s:  # no cameras: replay needs none, keeps it light
        s.connect()
        yield s


def _torque(session: Session) -> list[int]:
    assert session.sim is not None
    return [session.sim.follower_bus.servo(i).read_register("Torque_Enable") for i in range(1, 7)]


def test_recorded_episode_replays_on_the_follower(session: Session, tmp_path: Path) -> None:
    root = tmp_path / "ds"
    rec = session.start_recording(
        RecordSettings(num_episodes=1, episode_time_s=2.0, reset_time_s=0.0, task="pick the cube"), root
    )
    assert rec.wait(30), rec.snapshot()
    session.stop_recording()
    assert rec.snapshot().error is None

    robot = session.robot
    assert robot is not None
    episode = load_episode_actions(LeRobotDatasetReader.open(root), 0, robot)
    assert episode.actions.shape == (60, 6) and episode.names == tuple(SO_JOINTS)
    last = episode.actions[-1]

    # Park the arm well away from where the episode ends, so reaching it proves the replay moved it.
    robot.set_torque(True)
    away = {n: float(v) + (15.0 if i < 5 else 20.0) for i, (n, v) in enumerate(zip(SO_JOINTS, last, strict=True))}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        robot.send_action(away)
        time.sleep(0.05)
        now = robot.read_positions()
        if max(abs(now[n.removesuffix(".pos")] - away[n]) for n in SO_JOINTS[:5]) < 2.0:
            break
    before = robot.read_positions()
    assert max(abs(before[n.removesuffix(".pos")] - v) for n, v in zip(SO_JOINTS[:5], last, strict=False)) > 10

    replay = Replay(robot, episode)
    replay.start()
    assert replay.wait(30), replay.snapshot()
    snap = replay.snapshot()
    assert snap.error is None and snap.phase is ReplayPhase.DONE
    assert (snap.frame, snap.total) == (60, 60)
    assert snap.loop is not None and snap.loop.ticks >= 60
    final = snap.final_positions
    assert final is not None
    gaps = [abs(final[n.removesuffix(".pos")] - v) for n, v in zip(SO_JOINTS, last, strict=True)]
    assert max(gaps[:5]) < 2.0, gaps  # arm joints reach the last recorded action
    assert gaps[5] < 5.0, gaps  # the gripper may be pressing on the cube
    assert _torque(session) == [0] * 6  # released at the end


def test_stop_mid_replay_releases_torque(session: Session, tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "ds", SO_JOINTS, [wave(frames=600)])
    robot = session.robot
    assert robot is not None
    replay = Replay(robot, load_episode_actions(LeRobotDatasetReader.open(root), 0, robot), approach_s=0.2)
    replay.start()
    deadline = time.monotonic() + 10
    while replay.snapshot().frame < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _torque(session) == [1] * 6
    replay.stop()
    snap = replay.snapshot()
    assert replay.finished and snap.phase is ReplayPhase.DONE and 5 <= snap.frame < 600
    assert _torque(session) == [0] * 6


def test_mismatched_joints_name_both_lists(tmp_path: Path) -> None:
    koch_like = ["base.pos", "elbow.pos"]
    root = write_dataset(tmp_path / "ds", koch_like, [np.zeros((3, 2))], robot_type="other_arm")
    robot = make_robot("so101_follower", port=str(tmp_path / "tty"), id="x")  # never connected
    with pytest.raises(ReplayError) as info:
        load_episode_actions(LeRobotDatasetReader.open(root), 0, robot)
    text = str(info.value)
    assert "do not match" in text and "base.pos, elbow.pos" in text and "other_arm" in text
    assert ", ".join(SO_JOINTS) in text


def test_missing_episode_gives_the_valid_range(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "ds", SO_JOINTS, [wave(5), wave(5)])
    robot = make_robot("so101_follower", port=str(tmp_path / "tty"), id="x")
    reader = LeRobotDatasetReader.open(root)
    with pytest.raises(ReplayError, match=r"episode 7 is not in .*valid episodes are 0\.\.1"):
        load_episode_actions(reader, 7, robot)
    episode = load_episode_actions(reader, 1, robot)
    np.testing.assert_allclose(episode.actions, wave(5), atol=1e-4)
    with pytest.raises(ReplayError, match="must be positive"):
        Replay(robot, episode, fps=0)
