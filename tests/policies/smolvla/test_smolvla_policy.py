"""SmolVLA behind the policy protocol: preprocessing, seeds, language, real-time chunking, files and errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from policies import load_policy, save_pretrained
from policies.base import ObservationError
from policies.checkpoint import CheckpointError, CheckpointNotFoundError
from policies.smolvla.backbone import resolve_backbone
from policies.smolvla.policy import resize_with_pad
from tests.policies.smolvla.conftest import GOLDEN, build_checkpoint
from tests.policies.smolvla.fixtures.smolvla_golden import (
    NOISE_SEED,
    TASK,
    golden_observation,
    write_tiny_vlm,
)

OBS = golden_observation("cross_attn", 0)


def test_chunk_shape_and_action_queue(load_smolvla):
    policy = load_smolvla()
    chunk = policy.predict_action_chunk(OBS)
    assert chunk.shape == (policy.chunk_size, 6) and chunk.dtype == np.float32 and np.isfinite(chunk).all()
    policy.reset()  # the same noise again: select_action executes the first n_action_steps of that chunk
    steps = [policy.select_action(golden_observation("cross_attn", i)) for i in range(policy.n_action_steps + 1)]
    np.testing.assert_array_equal(np.stack(steps[:-1]), chunk[: policy.n_action_steps])
    assert not np.allclose(steps[-1], chunk[policy.n_action_steps])  # a new chunk from a new observation


def test_noise_seed_makes_chunks_reproducible(load_smolvla):
    a, b = load_smolvla(), load_smolvla()
    first = a.predict_action_chunk(OBS)
    np.testing.assert_array_equal(first, b.predict_action_chunk(OBS))
    assert np.abs(a.predict_action_chunk(OBS) - first).max() > 1e-2  # the generator moved on
    a.reset()
    np.testing.assert_array_equal(a.predict_action_chunk(OBS), first)
    unseeded = load_smolvla(noise_seed=None)  # torch's global RNG, as LeRobot
    torch.manual_seed(NOISE_SEED)
    np.testing.assert_array_equal(unseeded.predict_action_chunk(OBS), first)


def test_instruction_reaches_the_model(load_smolvla):
    policy = load_smolvla()
    base = policy.predict_action_chunk(OBS)
    policy.reset()
    other = policy.predict_action_chunk({**OBS, "task": "place the cube in the bin"})
    assert np.abs(other - base).max() > 1e-2
    policy.reset()  # LeRobot appends the newline only when it is missing
    np.testing.assert_array_equal(policy.predict_action_chunk({**OBS, "task": TASK + "\n"}), base)


def test_state_is_normalized_and_zero_padded(load_smolvla):
    policy = load_smolvla()
    *_, state = policy._inputs(OBS)
    stats = policy.normalization_stats()["observation.state"]
    assert state.shape == (1, policy.config.max_state_dim) == (1, 32)
    expected = (OBS["observation.state"] - stats["mean"]) / (stats["std"] + 1e-8)
    np.testing.assert_allclose(state[0, :6].numpy(), expected, rtol=1e-6)
    assert not state[0, 6:].any()


def test_resize_with_pad_keeps_aspect_and_pads_left_top():
    wide = torch.rand(1, 3, 48, 80)
    out = resize_with_pad(wide, 64, 64, pad_value=-5.0)
    assert out.shape == (1, 3, 64, 64)  # 80 wide -> 64, 48 high -> int(48 / 1.25) = 38, 26 rows on top
    assert (out[:, :, :26] == -5).all()
    torch.testing.assert_close(out[:, :, 26:], F.interpolate(wide, size=(38, 64), mode="bilinear", align_corners=False))
    tall = resize_with_pad(torch.rand(1, 3, 80, 48), 64, 64, pad_value=-5.0)
    assert (tall[..., :26] == -5).all() and (tall[..., 26:] != -5).all()


def test_images_resized_padded_and_scaled_to_minus_one_one(load_smolvla):
    policy = load_smolvla()
    white = {**OBS, "observation.images.top": np.full((48, 80, 3), 255, np.uint8)}
    images, masks, *_ = policy._inputs(white)
    top = images[0]
    assert top.shape == (1, 3, 64, 64) and len(images) == 2 and all(m.all() for m in masks)
    assert (top[:, :, :26] == -1).all() and torch.allclose(top[:, :, 26:], torch.ones(1))


def test_empty_cameras_are_blank_masked_images(load_smolvla):
    policy = load_smolvla("self_attn_bf16")  # one camera, empty_cameras=1
    assert list(policy.input_features) == ["observation.state", "observation.images.top"]
    images, masks, *_ = policy._inputs(golden_observation("self_attn_bf16"))
    assert len(images) == 2 and (images[1] == -1).all() and masks[0].all() and not masks[1].any()


def test_rtc_prefix_pulls_the_seam_onto_the_leftover(load_smolvla):
    policy = load_smolvla(rtc_config={"enabled": True, "execution_horizon": 6})
    previous = policy.predict_action_chunk(OBS)
    leftover = previous[3:]  # 3 actions executed when the next inference starts
    new_obs = golden_observation("cross_attn", 1)
    policy.reset()
    free = policy.predict_action_chunk(new_obs)
    policy.reset()  # same noise: only the guidance differs
    guided = policy.predict_action_chunk(new_obs, prefix=leftover, inference_delay=2)
    seam_free, seam_guided = (np.abs(c[:2] - leftover[:2]).mean() for c in (free, guided))
    assert seam_guided < 0.25 * seam_free
    assert np.abs(guided[0] - leftover[0]).max() < np.abs(free[0] - leftover[0]).max()
    plain = load_smolvla()  # rtc_config null in config.json: the prefix is ignored
    plain.predict_action_chunk(OBS)
    plain.reset()
    np.testing.assert_array_equal(plain.predict_action_chunk(new_obs, prefix=leftover, inference_delay=2), free)
    with pytest.raises(ValueError, match=r"prefix must be the leftover actions \[P, 6\]"):
        policy.predict_action_chunk(new_obs, prefix=leftover[:, :4])


def test_save_pretrained_writes_lerobot_files_and_reloads(load_smolvla, tmp_path):
    policy = load_smolvla()
    out = save_pretrained(policy, tmp_path / "saved")
    for name in ("config.json", "policy_preprocessor.json", "policy_postprocessor.json"):
        assert json.loads((out / name).read_text()) == json.loads((GOLDEN / "cross_attn" / name).read_text()), name
    for name in ("policy_preprocessor_step_5_normalizer_processor.safetensors",
                 "policy_postprocessor_step_0_unnormalizer_processor.safetensors"):
        ours, theirs = load_file(out / name), load_file(GOLDEN / "cross_attn" / name)
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    write_tiny_vlm(out / "tiny_vlm")
    again = load_policy(out, noise_seed=NOISE_SEED)
    policy.reset()
    np.testing.assert_array_equal(again.predict_action_chunk(OBS), policy.predict_action_chunk(OBS))


def test_backbone_found_in_the_hub_cache_offline(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    repo = tmp_path / "hub" / "models--HuggingFaceTB--SmolVLM2-500M-Video-Instruct"
    write_tiny_vlm(repo / "snapshots" / "0123abcd")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    assert resolve_backbone("HuggingFaceTB/SmolVLM2-500M-Video-Instruct") == repo / "snapshots" / "0123abcd"


def test_missing_backbone_offline_says_what_to_download(tmp_path):
    checkpoint = build_checkpoint("cross_attn", tmp_path / "ckpt",
                                  vlm_model_name="HuggingFaceTB/SmolVLM2-500M-Video-Instruct")
    shutil.rmtree(checkpoint / "tiny_vlm")
    with pytest.raises(CheckpointNotFoundError) as error:
        load_policy(checkpoint)
    message = str(error.value)
    assert "hf download HuggingFaceTB/SmolVLM2-500M-Video-Instruct" in message
    assert "hf download lerobot/smolvla_base" in message and "HF_HUB_OFFLINE is set" in message


def test_observation_errors_name_what_is_wrong(load_smolvla):
    policy = load_smolvla()
    no_wrist = {k: v for k, v in OBS.items() if k != "observation.images.wrist"}
    with pytest.raises(ObservationError, match=r"lacks observation\.images\.wrist"):
        policy.predict_action_chunk(no_wrist)
    with pytest.raises(ObservationError, match="lacks task"):
        policy.predict_action_chunk({k: v for k, v in OBS.items() if k != "task"})
    with pytest.raises(ObservationError, match="instruction text"):
        policy.predict_action_chunk({**OBS, "task": None})
    with pytest.raises(ObservationError, match=r"expects \[6\]"):
        policy.predict_action_chunk({**OBS, "observation.state": np.zeros(5, np.float32)})


@pytest.mark.parametrize(("changes", "message"), [
    ({"num_expert_layers": 2, "self_attn_every_n_layers": 2}, "cannot run"),
    ({"adapt_to_pi_aloha": True}, "not supported"),
    ({"max_state_dim": 4}, "max_state_dim is 4"),
    ({"chunk_size": "ten"}, "'chunk_size' must be an integer"),
])
def test_bad_configs_are_refused_with_a_reason(tmp_path, changes, message):
    checkpoint = build_checkpoint("half_expert" if "num_expert_layers" in changes else "cross_attn",
                                  tmp_path / "ckpt", **changes)
    with pytest.raises(CheckpointError, match=message):
        load_policy(checkpoint)


def test_unknown_option_is_refused(smolvla_checkpoints):
    with pytest.raises(CheckpointError, match="unknown SmolVLA option"):
        load_policy(smolvla_checkpoints["cross_attn"], temperature=0.5)
