"""Rollout on the simulated SO-101 (real drivers, sim cameras, real dataset writer): the queue, the worker that
never stalls the loop, preflight, timed bursts, and the dagger and highlight strategies' datasets."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from engine.dataset.reader import LeRobotDatasetReader
from engine.dataset.validate import check, has_errors
from engine.profile import sim_profile
from engine.rollout import Mode, PreflightError, Rollout, RolloutSettings
from engine.rollout.actions import ActionQueue
from engine.session import Session
from tests.rollout_policies import GoToPolicy
from tests.waiting import wait_until

FPS = 30
CAMERAS = {"front": (240, 320), "wrist": (240, 320)}




@pytest.fixture
def session() -> Iterator[Session]:
    with Session(sim_profile()) as s:
        s.connect()
        yield s


def _torque(session: Session, role: str) -> list[int]:
    assert session.sim is not None
    bus = session.sim.bus(role)  # type: ignore[arg-type]
    return [bus.servo(i).read_register("Torque_Enable") for i in range(1, 7)]


def _present(session: Session) -> np.ndarray:
    assert session.robot is not None
    return np.array(list(session.robot.read_positions().values()))


# ---------------------------------------------------------------------------------------------- the queue


def test_queue_keys_actions_by_tick_and_drops_the_stale_ones() -> None:
    q = ActionQueue()
    chunk = np.arange(10, dtype=np.float32).reshape(10, 1)
    assert q.put(chunk, obs_tick=100, now_tick=103) == 7  # three ticks passed while inferring
    assert q.stale_dropped == 3
    assert q.pop(103)[0] == 3
    assert q.pop(105)[0] == 5  # tick 104 was missed: skipped, never replayed
    assert q.remaining(105) == 4  # 106..109 still to come (105 is executing)
    # A fresher chunk replaces the plan from now on, and cancels the old plan beyond its end.
    q.put(np.full((2, 1), 50.0), obs_tick=106, now_tick=106)
    assert q.pop(106)[0] == 50 and q.pop(107)[0] == 50 and q.pop(108) is None


def test_queue_blend_fades_the_new_chunk_in_at_the_seam() -> None:
    q = ActionQueue(blend_ticks=3)
    q.put(np.zeros((10, 1)), obs_tick=0, now_tick=0)
    q.put(np.full((10, 1), 4.0), obs_tick=2, now_tick=2)
    got = [float(q.pop(t)[0]) for t in range(2, 7)]
    assert got == pytest.approx([1.0, 2.0, 3.0, 4.0, 4.0])  # w = 1/4, 2/4, 3/4, then the new chunk


def test_queue_temporal_ensembling_matches_lerobots_weights() -> None:
    coeff = 0.5
    q = ActionQueue(ensemble_coeff=coeff)
    preds = [np.full((3, 1), v, dtype=np.float32) for v in (1.0, 2.0, 4.0)]
    for i, p in enumerate(preds):
        q.put(p, obs_tick=i, now_tick=i)  # each tick a new chunk; tick 2 has three predictions
        if i < 2:
            q.pop(i)
    w = [math.exp(-coeff * i) for i in range(3)]  # w_0 for the oldest prediction
    expected = (1.0 * w[0] + 2.0 * w[1] + 4.0 * w[2]) / sum(w)
    assert float(q.pop(2)[0]) == pytest.approx(expected, rel=1e-6)


def test_queue_refuses_chunks_inferred_before_a_clear() -> None:
    q = ActionQueue()
    generation = q.generation
    q.clear()
    assert q.put(np.zeros((5, 1)), obs_tick=0, now_tick=0, generation=generation) == 0
    assert q.remaining(0) == 0


# ---------------------------------------------------------------------------------------------- preflight


def test_preflight_refuses_a_missing_camera_and_says_which(session: Session) -> None:
    policy = GoToPolicy([0] * 6, cameras={"top": (240, 320)})
    with pytest.raises(PreflightError, match=r"camera 'top'.*front, wrist"):
        Rollout(session.robot, policy, RolloutSettings()).start()
    assert policy.calls == 0  # refused before the model ran or anything moved


def test_preflight_resizes_and_warns_about_a_pose_far_from_the_data(session: Session) -> None:
    present = _present(session)
    stats = {"observation.state": {"mean": present + 90.0, "std": np.full(6, 10.0)}}
    policy = GoToPolicy(present, cameras={"front": (120, 160)}, stats=stats)
    rollout = Rollout(session.robot, policy, RolloutSettings())
    try:
        report = rollout.start().report()
        assert any("front: camera 320×240 is resized to the policy's 160×120" in line for line in report)
        assert any("wrist" in line and "not used" in line for line in report)
        assert sum("σ from the training data" in line for line in report) == 6
        assert rollout.mode is Mode.PAUSED
        rollout.action(0.3)
        assert wait_until(lambda: policy.seen_shapes)
        assert policy.seen_shapes[0]["observation.images.front"] == (120, 160, 3)
    finally:
        rollout.stop()


def test_wrong_state_size_is_another_robot() -> None:
    with Session(sim_profile()) as s:
        s.connect()
        with pytest.raises(PreflightError, match="state has 7 values but the arm has 6 joints"):
            Rollout(s.robot, GoToPolicy([0] * 7), RolloutSettings()).start()


# ---------------------------------------------------------------------------------------------- motion


def test_starts_paused_then_action_moves_the_arm_and_a_timed_burst_pauses(session: Session) -> None:
    start = _present(session)
    target = start.copy()
    target[0] += 25.0
    policy = GoToPolicy(target, step=1.0)
    rollout = Rollout(session.robot, policy, RolloutSettings())
    rollout.start()
    try:
        time.sleep(0.3)
        assert policy.calls == 0 and rollout.snapshot().actions_dispatched == 0  # paused: no inference
        assert "1 s" in rollout.action(1.0)
        assert wait_until(lambda: rollout.snapshot().actions_dispatched > 0)
        assert wait_until(lambda: rollout.mode is Mode.PAUSED and rollout.snapshot().burst_left_s is None, 10)
        snap = rollout.snapshot()
        assert snap.queue_depth == 0  # the burst's leftover actions were cleared
        moved = _present(session)[0] - start[0]
        assert moved > 5.0, moved
        dispatched = snap.actions_dispatched
        time.sleep(0.3)
        assert rollout.snapshot().actions_dispatched == dispatched  # nothing more while paused
    finally:
        rollout.stop()
    assert _torque(session, "follower") == [0] * 6


def test_a_blocked_model_never_stalls_the_control_loop(session: Session) -> None:
    policy = GoToPolicy(_present(session) + 10.0)
    policy.gate = threading.Event()
    rollout = Rollout(session.robot, policy, RolloutSettings())
    rollout.start()
    try:
        rollout.action()
        assert wait_until(lambda: policy.calls == 1)  # the worker is now stuck inside the model
        ticks = rollout.snapshot().loop.ticks
        assert wait_until(lambda: rollout.snapshot().loop.ticks >= ticks + FPS)  # the loop kept ticking meanwhile
        snap = rollout.snapshot()
        assert snap.starved_ticks >= FPS and snap.actions_dispatched == 0  # holding position, counted
        held_for = time.monotonic()
        policy.gate.set()
        assert wait_until(lambda: rollout.snapshot().actions_dispatched > 0)
        assert rollout.snapshot().loop.period_max_ms < (time.monotonic() - held_for + 1.0) * 1000
    finally:
        policy.gate.set()
        rollout.stop()


def test_subtask_reaches_a_language_conditioned_policy(session: Session) -> None:
    policy = GoToPolicy(_present(session), language_conditioned=True)
    rollout = Rollout(session.robot, policy, RolloutSettings(task="pick the cube"))
    rollout.start()
    try:
        rollout.action()
        assert wait_until(lambda: "pick the cube" in policy.seen_tasks)
        rollout.set_subtask("grasp the cube")
        assert wait_until(lambda: policy.seen_tasks[-1] == "grasp the cube")
        rollout.action("stack the cube")
        rollout.set_subtask(None)
        assert wait_until(lambda: policy.seen_tasks[-1] == "stack the cube")
    finally:
        rollout.stop()


# ---------------------------------------------------------------------------------------------- strategies


def _dagger(session: Session, root: Path, **settings: object) -> Rollout:
    return session.start_rollout(
        GoToPolicy(_present(session), step=0.5),
        RolloutSettings(strategy="dagger", task="pick the cube", handover_s=0.3, **settings),  # type: ignore[arg-type]
        root,
        vcodec="libx264",
    )


def _takeover_and_move(session: Session, rollout: Rollout, delta: float) -> None:
    assert session.sim is not None
    rollout.takeover()
    assert wait_until(lambda: rollout.mode is Mode.TAKEOVER)
    assert _torque(session, "leader") == [0] * 6  # the leader is limp in the human's hands
    start = session.sim.joint_degrees("leader")["shoulder_pan"]
    for k in range(1, 11):  # a human's hand: a smooth motion over half a second
        session.sim.move_joints("leader", {"shoulder_pan": start + delta * k / 10})
        time.sleep(0.05)
    assert wait_until(lambda: abs(session.robot.read_positions()["shoulder_pan"] - (start + delta)) < 3)


def test_dagger_records_each_takeover_as_an_episode(session: Session, tmp_path: Path) -> None:
    root = tmp_path / "dagger"
    rollout = _dagger(session, root)
    rollout.action()
    assert wait_until(lambda: rollout.snapshot().actions_dispatched > 5)
    _takeover_and_move(session, rollout, 15.0)
    snap = rollout.snapshot()
    assert snap.interventions == 1 and snap.recording
    rollout.resume()
    assert wait_until(lambda: rollout.mode is Mode.AUTONOMOUS and len(rollout.snapshot().saved) == 1)
    assert _torque(session, "leader") == [0] * 6
    _takeover_and_move(session, rollout, -15.0)
    rollout.pause()  # ending a takeover by pausing also saves it
    assert wait_until(lambda: len(rollout.snapshot().saved) == 2)
    assert rollout.mode is Mode.PAUSED
    session.stop_rollout()
    assert _torque(session, "follower") == [0] * 6 and _torque(session, "leader") == [0] * 6

    assert not has_errors(check(root))
    ds = LeRobotDatasetReader.open(root)
    assert ds.total_episodes == 2
    assert ds.features["intervention"]["dtype"] == "bool"
    for ep in (0, 1):
        frames = ds.frames(ep)
        assert frames["intervention"].all()  # corrections only: every frame is the human's
        pan = frames["action"][:, 0]
        assert np.ptp(pan) > 10.0  # the correction's motion is in the data


def test_dagger_continuous_tags_interventions_and_rotates_by_time(session: Session, tmp_path: Path) -> None:
    root = tmp_path / "continuous"
    rollout = _dagger(session, root, record_autonomous=True, episode_time_s=1.0)
    rollout.action()
    assert wait_until(lambda: len(rollout.snapshot().saved) >= 1)  # rotated after 1 s of recording
    _takeover_and_move(session, rollout, 10.0)
    time.sleep(0.3)
    rollout.resume()
    assert wait_until(lambda: rollout.snapshot().actions_dispatched > 0)
    time.sleep(0.3)
    session.stop_rollout()
    assert not has_errors(check(root))
    ds = LeRobotDatasetReader.open(root)
    assert ds.total_episodes >= 2
    assert ds.frames(0)["intervention"].shape[0] == FPS  # rotated at exactly episode_time_s of frames
    flags = np.concatenate([ds.frames(e)["intervention"].reshape(-1) for e in ds.episode_indices])
    assert flags.any() and not flags.all()  # the policy's frames and the human's, told apart


def test_redo_discards_the_correction_in_progress(session: Session, tmp_path: Path) -> None:
    root = tmp_path / "redo"
    rollout = _dagger(session, root)
    rollout.takeover()  # from paused: no policy run needed
    assert wait_until(lambda: rollout.mode is Mode.TAKEOVER and rollout.snapshot().episode_frames > 10)
    rollout.redo()
    assert wait_until(lambda: rollout.snapshot().message == "episode discarded")
    time.sleep(0.2)
    rollout.takeover()  # ends the takeover: saves the new correction only
    assert wait_until(lambda: len(rollout.snapshot().saved) == 1)
    saved = rollout.snapshot().saved[0]
    session.stop_rollout()
    assert saved.index == 0 and saved.length < 20


def test_highlight_saves_the_buffered_seconds_then_records_until_saved_again(session: Session, tmp_path: Path) -> None:
    root = tmp_path / "highlight"
    rollout = session.start_rollout(
        GoToPolicy(_present(session)),
        RolloutSettings(strategy="highlight", task="pick", ring_buffer_s=1.0),
        root,
        vcodec="libx264",
    )
    rollout.action()
    assert wait_until(lambda: rollout.snapshot().loop.ticks > 2 * FPS + 10)  # more than the ring holds
    rollout.save()
    assert wait_until(lambda: rollout.snapshot().recording)
    assert "1.0 s ago" in (rollout.snapshot().message or "")  # the ring was full: exactly 1 s buffered
    assert wait_until(lambda: rollout.snapshot().episode_frames >= FPS + 15)
    rollout.save()
    assert wait_until(lambda: len(rollout.snapshot().saved) == 1)
    session.stop_rollout()
    ds = LeRobotDatasetReader.open(root)
    assert ds.total_episodes == 1 and ds.frames(0)["index"].shape[0] >= FPS + 15
    assert not has_errors(check(root))


def test_recording_strategies_need_a_dataset_and_base_refuses_one(session: Session, tmp_path: Path) -> None:
    policy = GoToPolicy(_present(session))
    with pytest.raises(ValueError, match="dagger strategy records: give it a dataset folder"):
        session.start_rollout(policy, RolloutSettings(strategy="dagger"))
    with pytest.raises(ValueError, match="unknown strategy 'sentry'"):
        RolloutSettings(strategy="sentry")  # type: ignore[arg-type]
    rollout = session.start_rollout(policy, RolloutSettings())
    with pytest.raises(ValueError, match="nothing is recorded with the base strategy"):
        rollout.save()
    with pytest.raises(ValueError, match="seconds must be positive"):
        rollout.action(-2.0)
    session.stop_rollout()
    with pytest.raises(ValueError, match="the rollout has stopped"):
        rollout.pause()
