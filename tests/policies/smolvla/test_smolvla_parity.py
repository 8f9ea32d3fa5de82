"""Golden parity with LeRobot 0.4.4's SmolVLA (fixtures from fixtures/make_smolvla_oracle.py): the same
checkpoint files, observations and noise seed give LeRobot's tokens and actions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.policies.smolvla.conftest import GOLDEN
from tests.policies.smolvla.fixtures.smolvla_golden import (
    CASES,
    QUEUE_STEPS,
    RTC_CONFIG,
    RTC_DELAY,
    golden_observation,
    golden_prefix,
)

# float32 sums in another order (another BLAS, another CPU) move actions of ~100 by ~1e-4.
TOL = {"rtol": 1e-4, "atol": 2e-3}


def expected(case: str) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in load_file(GOLDEN / case / "expected.safetensors").items()}


@pytest.mark.parametrize("case", list(CASES))
def test_loads_lerobot_checkpoint_with_its_key_names(load_smolvla, case):
    policy = load_smolvla(case)
    shapes = json.loads((GOLDEN / case / "state_dict_shapes.json").read_text())
    assert {k: list(v.shape) for k, v in policy.state_dict().items()} == shapes
    text = policy.model.vlm_with_expert.vlm.model.text_model  # rebuilt after the meta-device construction
    torch.testing.assert_close(text.rotary_emb.inv_freq, type(text.rotary_emb)(config=text.config).inv_freq)
    assert policy.name == "smolvla" and policy.language_conditioned


@pytest.mark.parametrize("case", list(CASES))
def test_chunk_queue_and_tokens_match_lerobot(load_smolvla, case):
    policy = load_smolvla(case)
    want = expected(case)
    tokens, _ = policy._tokenize(golden_observation(case)["task"])
    assert tokens[0].tolist() == want["lang_tokens"].tolist()  # "\n" appended, same tokenizer call
    chunk = policy.predict_action_chunk(golden_observation(case, 0))
    assert chunk.shape == want["chunk"].shape and chunk.dtype == np.float32
    np.testing.assert_allclose(chunk, want["chunk"], **TOL)
    policy.reset()
    queue = np.stack([policy.select_action(golden_observation(case, i)) for i in range(QUEUE_STEPS)])
    np.testing.assert_allclose(queue, want["queue_actions"], **TOL)


def test_rtc_guided_chunk_matches_lerobot(load_smolvla):
    policy = load_smolvla("cross_attn", rtc_config=RTC_CONFIG)
    assert policy.rtc_enabled
    chunk = policy.predict_action_chunk(golden_observation("cross_attn"), prefix=golden_prefix(),
                                        inference_delay=RTC_DELAY)
    np.testing.assert_allclose(chunk, expected("cross_attn")["rtc_chunk"], **TOL)


def test_bfloat16_backbone_as_lerobot_builds_it(load_smolvla):
    """load_vlm_weights=true: LeRobot runs backbone and expert in bfloat16, the projections in float32."""
    policy = load_smolvla("self_attn_bf16")
    dtypes = {name.split(".")[2] if name.startswith("model.vlm_with_expert") else "projections": p.dtype
              for name, p in policy.named_parameters()}
    assert dtypes == {"vlm": torch.bfloat16, "lm_expert": torch.bfloat16, "projections": torch.float32}
    as_float = load_smolvla("self_attn_bf16", backbone_dtype="float32")
    assert {p.dtype for p in as_float.parameters()} == {torch.float32}
    a = policy.predict_action_chunk(golden_observation("self_attn_bf16"))
    b = as_float.predict_action_chunk(golden_observation("self_attn_bf16"))
    assert np.abs(a - b).max() < 0.1 * np.abs(a).max()  # same model, another precision
