"""Residual policies: checkpoint format, exact composition with a base policy, clipping bounds, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from policies.base import Policy
from policies.residual import ResidualError, ResidualMLP, ResidualPolicy, load_residual, save_residual
from tests.rollout_policies import GoToPolicy

STATE = np.array([10.0, -20.0, 30.0, 5.0, -5.0, 0.5], dtype=np.float32)
TARGET = [40.0, 0.0, -30.0, 10.0, 20.0, 1.0]


def residual_file(tmp_path, state_dim=6, action_dim=6, hidden=(16, 8), seed=0, **kwargs):
    torch.manual_seed(seed)
    model = ResidualMLP(state_dim, action_dim, hidden, kwargs.get("activation", "relu"))
    for p in model.parameters():  # large enough corrections to see
        p.data.mul_(5)
    path = save_residual(tmp_path / "residual.pt", model, state_dim=state_dim, action_dim=action_dim,
                         hidden_dims=list(hidden), **kwargs)
    return path, model


def expected_correction(model: ResidualMLP, scale: float) -> np.ndarray:
    with torch.no_grad():
        return (scale * model(torch.from_numpy(STATE)).numpy()).astype(np.float32)


class PrefixGoTo(GoToPolicy):
    """GoToPolicy with the real-time chunking keywords; records the prefix it was given."""

    def predict_action_chunk(self, observation, *, prefix=None, inference_delay=0):
        self.prefixes = [*getattr(self, "prefixes", []), prefix]
        return super().predict_action_chunk(observation)


def test_checkpoint_format_round_trip(tmp_path):
    path, model = residual_file(tmp_path, activation="tanh")
    data = torch.load(path, weights_only=True)
    assert {"state_dim", "action_dim", "hidden_dims", "model_state_dict"} <= set(data)
    assert (data["state_dim"], data["action_dim"], data["hidden_dims"], data["activation"]) == (6, 6, [16, 8], "tanh")
    loaded, _ = load_residual(path)
    x = torch.randn(4, 6)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    assert [type(m).__name__ for m in loaded.net] == ["Linear", "Tanh", "Linear", "Tanh", "Linear"]


def test_composition_is_base_plus_scaled_residual(tmp_path):
    path, model = residual_file(tmp_path)
    base = GoToPolicy(TARGET, chunk_size=8)
    policy = ResidualPolicy(base, path, scale=0.25)
    assert isinstance(policy, Policy) and policy.name == "goto" and policy.chunk_size == 8
    obs = {"observation.state": STATE}
    correction = expected_correction(model, 0.25)
    assert np.abs(correction).max() > 0.1
    chunk = policy.predict_action_chunk(obs)
    np.testing.assert_array_equal(chunk, base.predict_action_chunk(obs) + correction)  # every row, no clipping
    np.testing.assert_array_equal(policy.select_action(obs), base.select_action(obs) + correction)
    np.testing.assert_array_equal(policy.predict_action_chunk(obs), chunk)  # deterministic
    zero = ResidualPolicy(base, path, scale=0.0)
    np.testing.assert_array_equal(zero.predict_action_chunk(obs), base.predict_action_chunk(obs))


def test_checkpoint_bounds_clip_and_win_over_base_stats(tmp_path):
    low, high = [-5.0] * 6, [12.0] * 6
    path, model = residual_file(tmp_path, action_min=low, action_max=high)
    stats = {"action": {"min": np.full(6, -100.0), "max": np.full(6, 100.0)}}
    base = GoToPolicy(TARGET, chunk_size=8, stats=stats)
    obs = {"observation.state": STATE}
    chunk = ResidualPolicy(base, path, scale=3.0).predict_action_chunk(obs)
    raw = base.predict_action_chunk(obs) + expected_correction(model, 3.0)
    assert (raw < -5).any() and (raw > 12).any()
    np.testing.assert_array_equal(chunk, np.clip(raw, -5.0, 12.0))


def test_base_action_statistics_bound_a_real_policy(tmp_path, policy):
    """A tiny ACT (tests/policies/conftest.py) whose action stats span [-89, 91]: a huge correction is clipped
    to them."""
    path, _ = residual_file(tmp_path)
    wrapped = ResidualPolicy(policy, path, scale=1000.0)
    wrapped.reset()
    rng = np.random.default_rng(0)
    obs = {k: (rng.integers(0, 256, (f.shape[1], f.shape[2], 3), dtype=np.uint8) if f.type == "VISUAL"
               else STATE) for k, f in policy.input_features.items()}
    stats = policy.normalization_stats()["action"]
    action = wrapped.select_action(obs)
    assert ((action == stats["min"]) | (action == stats["max"])).all()
    chunk = wrapped.predict_action_chunk(obs)
    assert chunk.shape == (policy.chunk_size, 6) and (chunk >= stats["min"]).all() and (chunk <= stats["max"]).all()


def test_rtc_prefix_goes_back_to_the_base_without_the_correction(tmp_path):
    path, model = residual_file(tmp_path)
    base = PrefixGoTo(TARGET, chunk_size=8)
    policy = ResidualPolicy(base, path, scale=0.5)
    obs = {"observation.state": STATE}
    first = policy.predict_action_chunk(obs)
    policy.predict_action_chunk(obs, prefix=first[3:], inference_delay=2)
    assert base.prefixes[0] is None
    np.testing.assert_allclose(base.prefixes[1], first[3:] - expected_correction(model, 0.5), rtol=1e-6)


def test_mismatches_and_bad_files_are_refused(tmp_path):
    path, _ = residual_file(tmp_path, state_dim=5)
    with pytest.raises(ResidualError, match="reads a state of 5 values"):
        ResidualPolicy(GoToPolicy(TARGET), path)
    with pytest.raises(ResidualError, match="scale must be a finite number"):
        ResidualPolicy(GoToPolicy(TARGET), path, scale=float("nan"))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ResidualError, match="not a residual checkpoint"):
        load_residual(junk)
    torch.save({"state_dim": 6, "action_dim": 6}, tmp_path / "partial.pt")
    with pytest.raises(ResidualError, match="lacks hidden_dims, model_state_dict"):
        load_residual(tmp_path / "partial.pt")
    with pytest.raises(ResidualError, match="does not fit an MLP"):
        save_residual(tmp_path / "wrong.pt", ResidualMLP(6, 6, [4]), state_dim=6, action_dim=6, hidden_dims=[8])
    assert not (tmp_path / "wrong.pt").exists()
    with pytest.raises(ResidualError, match="no residual checkpoint"):
        load_residual(tmp_path / "missing.pt")
