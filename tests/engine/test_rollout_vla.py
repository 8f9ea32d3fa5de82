"""Slow and language-conditioned policies in the rollout engine: the real-time-chunking prefix handed to a policy
that can continue a chunk, a real (tiny) SmolVLA driving the virtual SO-101 with RTC on and its instruction
changed by `/subtask`, and a residual stacked on ACT through `load_policy`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.profile import sim_profile
from engine.rollout import Mode, RolloutSettings
from engine.rollout.actions import ActionQueue
from engine.session import Session
from policies import load_policy
from policies.base import Observation
from policies.residual import ResidualMLP, save_residual
from tests.act_checkpoint import save_tiny_act, tiny_act
from tests.policies.smolvla.conftest import build_checkpoint
from tests.rollout_policies import GoToPolicy
from tests.waiting import wait_until


def test_planned_gives_the_consecutive_actions_from_a_tick() -> None:
    q = ActionQueue()
    q.put(np.arange(5, dtype=np.float32).reshape(5, 1), obs_tick=10, now_tick=10)
    assert q.planned(12)[:, 0].tolist() == [2, 3, 4]
    assert q.planned(20) is None


class ContinuingPolicy(GoToPolicy):
    """A GoToPolicy that can continue a chunk (as SmolVLA with RTC): it records what it was handed."""

    rtc_enabled = True

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, delay_s=0.15, **kwargs)  # type: ignore[arg-type]
        self.prefixes: list[tuple[np.ndarray | None, int]] = []

    def predict_action_chunk(self, observation: Observation, *, prefix: np.ndarray | None = None,
                             inference_delay: int = 0) -> np.ndarray:
        self.prefixes.append((prefix, inference_delay))
        return super().predict_action_chunk(observation)


def test_a_continuing_policy_gets_the_leftover_plan_and_its_delay() -> None:
    with Session(sim_profile()) as session:
        session.connect()
        assert session.robot is not None
        present = np.array(list(session.robot.read_positions().values()))
        policy = ContinuingPolicy(present + 20.0, chunk_size=20, n_action_steps=20, step=0.5)
        rollout = session.start_rollout(policy, RolloutSettings(task="pick"))
        rollout.action()
        assert wait_until(lambda: len(policy.prefixes) >= 3)
        session.stop_rollout()
    first, later = policy.prefixes[0], policy.prefixes[2]
    assert first[0] is None  # nothing was planned yet
    prefix, delay = later
    assert prefix is not None and prefix.shape[1] == 6 and len(prefix) >= 1
    assert delay >= 4  # 150 ms of inference at 30 Hz: those ticks run before the new chunk lands


@pytest.fixture(scope="module")
def smolvla(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_checkpoint("cross_attn", tmp_path_factory.mktemp("smolvla") / "ckpt")


def test_smolvla_drives_the_sim_with_rtc_and_follows_the_subtask(smolvla: Path) -> None:
    threads = torch.get_num_threads()
    policy = load_policy(smolvla, rtc_config={"enabled": True}, noise_seed=0)
    assert policy.language_conditioned and policy.rtc_enabled
    seen: list[str] = []
    predict = policy.predict_action_chunk

    def spy(observation: Observation, **kwargs: object) -> np.ndarray:
        seen.append(observation["task"])
        return predict(observation, **kwargs)  # type: ignore[arg-type]

    policy.predict_action_chunk = spy  # type: ignore[method-assign]
    base = sim_profile()
    camera = base.cameras["front"]
    profile = replace(base, cameras={"top": {**camera, "index_or_path": "front", "width": 80, "height": 48},
                                     "wrist": {**camera, "width": 64, "height": 64}})
    with Session(profile) as session:
        session.connect()
        rollout = session.start_rollout(policy, RolloutSettings(task="pick the cube", blend_ticks=3))
        rollout.action()
        assert wait_until(lambda: rollout.snapshot().actions_dispatched > 30, 60)
        rollout.set_subtask("grasp the cube")
        assert wait_until(lambda: seen[-1:] == ["grasp the cube"], 60)
        snap = rollout.snapshot()
        assert rollout.mode is Mode.AUTONOMOUS and snap.error is None and snap.inference.errors == 0
        session.stop_rollout()
    assert "pick the cube" in seen
    assert torch.get_num_threads() == threads  # the worker gave the cores back


def test_a_residual_stacks_on_act_through_load_policy(tmp_path: Path) -> None:
    checkpoint = save_tiny_act(tmp_path / "act")
    torch.manual_seed(3)
    mlp = ResidualMLP(6, 6, [16])
    path = tmp_path / "residual.pt"
    save_residual(path, mlp, state_dim=6, action_dim=6, hidden_dims=[16])
    base = load_policy(checkpoint)
    stacked = load_policy(checkpoint, residual=path, residual_scale=0.5)
    rng = np.random.default_rng(0)
    obs = {"observation.state": rng.normal(0, 10, 6).astype(np.float32),
           "observation.images.front": rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)}
    with torch.no_grad():
        correction = mlp(torch.from_numpy(obs["observation.state"])).numpy()
    expected = base.predict_action_chunk(obs) + 0.5 * correction
    assert np.allclose(stacked.predict_action_chunk(obs), expected, atol=1e-5)
    assert tiny_act().name == stacked.name  # the stack presents itself as its base
