"""ACTPolicy at inference: the protocol, observation checks, the action queue and temporal ensembling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from policies.act import ACTPolicy, TemporalEnsembler
from policies.base import ObservationError, Policy, image_keys
from tests.policies.act_helpers import CAMERAS, observation, tiny_policy


def test_policy_follows_the_protocol(policy: ACTPolicy) -> None:
    assert isinstance(policy, Policy)
    assert policy.name == "act" and not policy.language_conditioned
    assert (policy.chunk_size, policy.n_action_steps) == (10, 10)
    assert image_keys(policy) == list(CAMERAS)
    stats = policy.normalization_stats()
    assert stats["observation.state"]["mean"].dtype == np.float32
    stats["observation.state"]["mean"][:] = 1e6  # a copy: the policy's statistics stay intact
    assert policy.normalization_stats()["observation.state"]["mean"][0] != 1e6


def test_chunk_shape_dtype_and_determinism(policy: ACTPolicy) -> None:
    obs = observation(policy.config)
    chunk = policy.predict_action_chunk(obs)
    assert chunk.shape == (10, 6) and chunk.dtype == np.float32
    np.testing.assert_array_equal(policy.predict_action_chunk(obs), chunk)
    assert not np.allclose(policy.predict_action_chunk(observation(policy.config, seed=1)), chunk)
    assert np.all(np.abs(chunk) < 1e3)  # unnormalized into joint units, not left at normalized scale


def test_batched_torch_input_matches_unbatched_numpy(policy: ACTPolicy) -> None:
    obs = [observation(policy.config, seed=s) for s in (0, 1)]
    batch = {}
    for key in obs[0]:
        stacked = torch.from_numpy(np.stack([o[key] for o in obs]))
        batch[key] = stacked.permute(0, 3, 1, 2).float() / 255 if stacked.dtype == torch.uint8 else stacked
    chunks = policy.predict_action_chunk(batch)
    assert chunks.shape == (2, 10, 6)
    for i in range(2):
        np.testing.assert_allclose(chunks[i], policy.predict_action_chunk(obs[i]), atol=1e-4)


def test_select_action_serves_the_chunk_then_infers_again(policy: ACTPolicy) -> None:
    calls = []
    hook = policy.model.register_forward_hook(lambda *_: calls.append(1))
    try:
        policy.reset()
        first = policy.predict_action_chunk(observation(policy.config, seed=0))
        calls.clear()
        actions = [policy.select_action(observation(policy.config, seed=i)) for i in range(12)]
        assert len(calls) == 2  # at step 0 and step 10
        np.testing.assert_allclose(np.stack(actions[:10]), first, atol=1e-6)
        np.testing.assert_allclose(actions[10], policy.predict_action_chunk(observation(policy.config, 10))[0])
        policy.reset()
        calls.clear()
        policy.select_action(observation(policy.config))
        assert len(calls) == 1  # reset dropped the queued actions
    finally:
        hook.remove()
        policy.reset()


def test_fewer_action_steps_than_the_chunk() -> None:
    p = tiny_policy(n_action_steps=3)
    chunk = p.predict_action_chunk(observation(p.config, seed=0))
    actions = [p.select_action(observation(p.config, seed=0)) for _ in range(4)]
    np.testing.assert_allclose(np.stack(actions[:3]), chunk[:3], atol=1e-6)


def test_temporal_ensembler_is_the_weighted_mean_of_overlapping_predictions() -> None:
    coeff, chunk, steps = 0.3, 4, 7
    rng = np.random.default_rng(0)
    chunks = rng.normal(size=(steps, chunk, 2))  # chunks[t] predicted at step t for steps t..t+chunk-1
    ens = TemporalEnsembler(coeff, chunk)
    for t in range(steps):
        got = ens.update(torch.from_numpy(chunks[t][None]))[0].numpy()
        made_at = [s for s in range(max(0, t - chunk + 1), t + 1)]  # oldest first
        w = np.exp(-coeff * np.arange(len(made_at)))
        want = sum(wi * chunks[s][t - s] for wi, s in zip(w, made_at, strict=True)) / w.sum()
        np.testing.assert_allclose(got, want, rtol=1e-6)  # float32 weights
    ens.reset()
    np.testing.assert_allclose(ens.update(torch.from_numpy(chunks[3][None]))[0].numpy(), chunks[3][0])


def test_temporal_ensembling_infers_every_step_and_smooths() -> None:
    p = tiny_policy(n_action_steps=1, temporal_ensemble_coeff=0.01)
    calls = []
    p.model.register_forward_hook(lambda *_: calls.append(1))
    obs = [observation(p.config, seed=s) for s in range(3)]
    actions = [p.select_action(o) for o in obs]
    assert len(calls) == 3
    np.testing.assert_allclose(actions[0], p.predict_action_chunk(obs[0])[0], atol=1e-5)
    second = (p.predict_action_chunk(obs[0])[1] + np.exp(-0.01) * p.predict_action_chunk(obs[1])[0]) / (
        1 + np.exp(-0.01))
    np.testing.assert_allclose(actions[1], second, atol=1e-4)
    p.reset()
    np.testing.assert_allclose(p.select_action(obs[2]), p.predict_action_chunk(obs[2])[0], atol=1e-5)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda o: o.pop("observation.images.wrist"), "the observation lacks observation.images.wrist"),
        (lambda o: o.update({"observation.state": np.zeros(5, np.float32)}),
         r"observation.state has shape \[5\], the policy expects \[6\]"),
        (lambda o: o.update({"observation.images.front": np.zeros((240, 320, 3), np.uint8)}),
         r"expects \[3, 48, 64\]: resize the camera frames to 64×48"),
        (lambda o: o.update({"observation.images.front": np.zeros((48, 64), np.uint8)}), "H×W×3 RGB"),
        (lambda o: o.update({"observation.images.front": np.zeros((48, 64, 3), np.int16)}), "uint8 HWC or float"),
        (lambda o: o.update({"observation.state": np.array(["a"] * 6)}), "must hold numbers"),
    ],
)
def test_bad_observations_say_what_is_wrong(policy: ACTPolicy, change, message: str) -> None:
    obs = observation(policy.config)
    change(obs)
    with pytest.raises(ObservationError, match=message):
        policy.predict_action_chunk(obs)
