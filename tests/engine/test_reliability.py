"""Reliability on the simulated SO-101 with faults injected at the wire level: a noisy bus (5 % corrupted and
2 % lost replies) slows nothing down and is counted; a motor that stops answering ends the run safely,
naming the motor, with torque off and the dataset finalized."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.emulator.faults import Faults
from engine.dataset.reader import LeRobotDatasetReader
from engine.dataset.validate import check, has_errors
from engine.profile import sim_profile
from engine.recorder import RecordSettings
from engine.session import Session
from tests.waiting import wait_until


@pytest.fixture
def session() -> Iterator[Session]:
    with Session(sim_profile()) as s:
        s.connect()
        yield s


def noisy(session: Session, seed: int) -> None:
    assert session.sim is not None
    for role in ("follower", "leader"):
        session.sim.bus(role).faults = Faults(drop_rate=0.02, corrupt_rate=0.05, seed=seed)  # type: ignore[arg-type]


def torque(session: Session, role: str, ids: range = range(1, 7)) -> list[int]:
    assert session.sim is not None
    bus = session.sim.bus(role)  # type: ignore[arg-type]
    return [bus.servo(i).read_register("Torque_Enable") for i in ids]


def test_teleop_rides_through_a_noisy_bus_with_visible_counters(session: Session) -> None:
    assert session.sim is not None
    session.sim.start_demo()
    teleop = session.start_teleop(fps=30)
    noisy(session, seed=1)
    assert wait_until(lambda: teleop.snapshot().loop is not None and teleop.snapshot().loop.ticks > 45)
    snap = teleop.snapshot()
    assert teleop.running and snap.error is None
    assert snap.bus.retries > 0 and snap.bus.corrupt > 0  # the operator sees what the retries absorbed
    session.sim.stop_demo()  # the leader comes to rest: the follower must settle on it, through the noise

    def settled() -> bool:
        rows = {r.name: r for r in teleop.snapshot().rows}  # read by the loop itself: no extra bus reads
        row = rows["shoulder_pan"]
        return row.leader is not None and abs(row.follower - row.leader) < 3

    assert wait_until(settled)
    assert teleop.running
    session.stop_teleop()


def test_recording_on_a_noisy_bus_keeps_every_episode_valid(session: Session, tmp_path: Path) -> None:
    noisy(session, seed=2)
    root = tmp_path / "noisy"
    recorder = session.start_recording(
        RecordSettings(num_episodes=2, episode_time_s=1.0, reset_time_s=0.2, task="pick"), root,
        vcodec="libx264",
    )
    assert recorder.wait(60), recorder.snapshot()
    snap = recorder.snapshot()
    assert snap.error is None and len(snap.saved) == 2
    assert snap.bus.retries > 0
    session.stop_recording()
    assert not has_errors(check(root))
    assert LeRobotDatasetReader.open(root).total_episodes == 2


def test_a_motor_that_stops_answering_stops_safely_and_keeps_the_saved_episodes(session: Session,
                                                                                 tmp_path: Path) -> None:
    assert session.sim is not None
    root = tmp_path / "dead"
    recorder = session.start_recording(
        RecordSettings(num_episodes=5, episode_time_s=0.7, reset_time_s=0.1, task="pick"), root,
        vcodec="libx264",
    )
    assert wait_until(lambda: len(recorder.snapshot().saved) >= 1)
    killed = time.monotonic()
    session.sim.bus("follower").faults.dead_ids.add(3)  # elbow_flex goes silent mid-run
    assert recorder.wait(30)
    took = time.monotonic() - killed
    snap = recorder.snapshot()
    assert snap.error is not None and "elbow_flex" in snap.error and "id 3" in snap.error
    assert took > 1.0  # it rode through the first second, as a noisy bus would need
    assert torque(session, "follower", range(1, 3)) + torque(session, "follower", range(4, 7)) == [0] * 5
    assert not has_errors(check(root))
    ds = LeRobotDatasetReader.open(root)
    assert ds.total_episodes == len(snap.saved) >= 1


def test_a_camera_that_stops_ends_the_recording_with_its_name_and_torque_off(session: Session,
                                                                              tmp_path: Path) -> None:
    assert session.robot is not None
    root = tmp_path / "camera"
    recorder = session.start_recording(
        RecordSettings(num_episodes=5, episode_time_s=0.7, reset_time_s=0.1, task="pick"), root,
        vcodec="libx264",
    )
    assert wait_until(lambda: len(recorder.snapshot().saved) >= 1)
    session.robot.cameras["front"].disconnect()  # its cable pulled
    assert recorder.wait(30)
    snap = recorder.snapshot()
    assert snap.error is not None and "camera 'front'" in snap.error
    assert torque(session, "follower") == [0] * 6
    assert not has_errors(check(root))
    assert LeRobotDatasetReader.open(root).total_episodes == len(snap.saved) >= 1


def test_a_policy_that_raises_pauses_the_arm_and_says_why(session: Session) -> None:
    from engine.rollout import Mode, RolloutSettings
    from tests.rollout_policies import GoToPolicy

    class Broken(GoToPolicy):
        def predict_action_chunk(self, observation):  # type: ignore[no-untyped-def]
            raise RuntimeError("CUDA out of memory")

    assert session.robot is not None
    rollout = session.start_rollout(Broken([0.0] * 6), RolloutSettings())
    rollout.action()
    assert wait_until(lambda: rollout.mode is Mode.PAUSED and rollout.snapshot().inference.errors >= 1)
    snap = rollout.snapshot()
    assert "the policy failed: RuntimeError: CUDA out of memory; paused" in (snap.message or "")
    assert snap.error is None and snap.actions_dispatched == 0  # nothing moved on a failed model
    session.stop_rollout()
    assert torque(session, "follower") == [0] * 6
