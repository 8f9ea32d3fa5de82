"""save_pretrained / load_policy: LeRobot's folder layout, the folders around it, and clear refusals."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from policies import load_policy, save_pretrained
from policies.act import ACTPolicy
from policies.checkpoint import CheckpointError, CheckpointNotFoundError
from policies.normalization import NORMALIZER_STATE, PREPROCESSOR_JSON, write_processor_files
from tests.policies.act_helpers import observation

FILES = ["config.json", "model.safetensors", "policy_postprocessor.json",
         "policy_postprocessor_step_0_unnormalizer_processor.safetensors", "policy_preprocessor.json",
         "policy_preprocessor_step_3_normalizer_processor.safetensors", "train_config.json"]


@pytest.fixture(scope="module")
def saved(policy: ACTPolicy, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lerobot-train style run folder: checkpoints/000010/pretrained_model and a relative `last` link."""
    run = tmp_path_factory.mktemp("run")
    directory = save_pretrained(policy, run / "checkpoints" / "000010" / "pretrained_model",
                                train_config={"steps": 10, "policy": {"type": "act"}})
    (run / "checkpoints" / "last").symlink_to("000010")
    return directory


def test_save_writes_lerobots_layout(policy: ACTPolicy, saved: Path) -> None:
    assert sorted(p.name for p in saved.iterdir()) == FILES
    with safe_open(saved / "model.safetensors", "pt") as f:
        assert f.metadata() == {"format": "pt"}
        assert set(f.keys()) == set(policy.state_dict())
    assert json.loads((saved / "config.json").read_text())["type"] == "act"
    assert json.loads((saved / "train_config.json").read_text()) == {"steps": 10, "policy": {"type": "act"}}


def test_round_trip_gives_the_same_policy(policy: ACTPolicy, saved: Path) -> None:
    loaded = load_policy(saved)
    assert isinstance(loaded, ACTPolicy) and not loaded.training
    assert loaded.config.to_dict() == policy.config.to_dict()
    for key, tensor in policy.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], tensor), key
    obs = observation(policy.config, seed=4)
    np.testing.assert_array_equal(loaded.predict_action_chunk(obs), policy.predict_action_chunk(obs))
    for key, entry in policy.normalization_stats().items():
        for stat, value in entry.items():
            np.testing.assert_array_equal(loaded.normalization_stats()[key][stat], value)


@pytest.mark.parametrize("where", ["pretrained_model", "step", "last", "checkpoints", "run"])
def test_folders_around_a_checkpoint_are_accepted(saved: Path, where: str) -> None:
    run = saved.parents[2]
    path = {"pretrained_model": saved, "step": saved.parent, "last": run / "checkpoints" / "last",
            "checkpoints": run / "checkpoints", "run": run}[where]
    assert load_policy(path).chunk_size == 10


def test_overrides_replace_config_fields(saved: Path) -> None:
    p = load_policy(saved, temporal_ensemble_coeff=0.01, n_action_steps=1)
    assert p.temporal_ensemble_coeff == 0.01 and p.n_action_steps == 1
    with pytest.raises(CheckpointError, match="unknown ACT option"):
        load_policy(saved, chunksize=5)
    with pytest.raises(CheckpointError, match="needs n_action_steps=1"):
        load_policy(saved, temporal_ensemble_coeff=0.01)
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        load_policy(saved, device="gpu")


def _copy(saved: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(saved, tmp_path / "ckpt"))


def test_damaged_checkpoints_are_refused_clearly(saved: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointNotFoundError, match=r"no checkpoint at .*the folder does not exist"):
        load_policy(tmp_path / "nope")
    with pytest.raises(CheckpointNotFoundError, match=r"holds no policy checkpoint: expected config.json"):
        load_policy(tmp_path)
    ckpt = _copy(saved, tmp_path)
    config = json.loads((ckpt / "config.json").read_text())

    (ckpt / "config.json").write_text('{"type": "act", ')
    with pytest.raises(CheckpointError, match=r"config.json is not valid JSON \(.* line 1 column"):
        load_policy(ckpt)
    (ckpt / "config.json").write_text(json.dumps({k: v for k, v in config.items() if k != "type"}))
    with pytest.raises(CheckpointError, match='has no "type" field'):
        load_policy(ckpt)
    (ckpt / "config.json").write_text(json.dumps({**config, "type": "diffusion"}))
    with pytest.raises(CheckpointError, match=r"holds a 'diffusion' policy; robotui runs: (\w+, )*act\b"):
        load_policy(ckpt)
    (ckpt / "config.json").write_text(json.dumps({**config, "chunk_size": "ten"}))
    with pytest.raises(CheckpointError, match="'chunk_size' must be an integer"):
        load_policy(ckpt)
    (ckpt / "config.json").write_text(json.dumps({**config, "dim_model": 64}))
    with pytest.raises(CheckpointError, match=r"does not match its config.json: wrong shape: model.vae_encoder_pos_enc \[1, 12, 32\] \(expected \[1, 12, 64\]\)"):
        load_policy(ckpt)
    (ckpt / "config.json").write_text(json.dumps(config))
    weights = load_file(ckpt / "model.safetensors")
    save_file({k: v for k, v in weights.items() if "action_head" not in k}, ckpt / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"missing: model.action_head.weight, model.action_head.bias \(2\)"):
        load_policy(ckpt)
    (ckpt / "model.safetensors").write_bytes(b"\x10\x00")
    with pytest.raises(CheckpointError, match=r"model.safetensors cannot be read"):
        load_policy(ckpt)
    (ckpt / "model.safetensors").unlink()
    with pytest.raises(CheckpointNotFoundError, match=r"has config.json but no model.safetensors"):
        load_policy(ckpt)


def test_missing_processor_files_are_refused(saved: Path, tmp_path: Path) -> None:
    ckpt = _copy(saved, tmp_path)
    for f in ckpt.glob("policy_*"):
        f.unlink()
    with pytest.raises(CheckpointError, match=r"has no policy_preprocessor.json and no normalization buffers"):
        load_policy(ckpt)
    write_processor_files(ckpt, input_features={}, output_features={}, norm_map={}, stats={}, device="cpu")
    (ckpt / NORMALIZER_STATE).unlink()
    with pytest.raises(CheckpointError, match="processor files are damaged"):
        load_policy(ckpt)


def test_checkpoints_with_normalization_inside_the_weights_still_load(
    policy: ACTPolicy, saved: Path, tmp_path: Path
) -> None:
    """LeRobot < 0.4 had no processor files: the statistics were buffers in model.safetensors."""
    ckpt = _copy(saved, tmp_path)
    for f in ckpt.glob("policy_*"):
        f.unlink()
    weights = load_file(ckpt / "model.safetensors")
    stats = policy.normalization_stats()
    for prefix, keys in (("normalize_inputs", [k for k in policy.input_features]),
                         ("normalize_targets", ["action"]), ("unnormalize_outputs", ["action"])):
        for key in keys:
            for stat in stats[key]:
                weights[f"{prefix}.buffer_{key.replace('.', '_')}.{stat}"] = torch.tensor(stats[key][stat])
    save_file(weights, ckpt / "model.safetensors")
    loaded = load_policy(ckpt)
    obs = observation(policy.config, seed=2)
    np.testing.assert_array_equal(loaded.predict_action_chunk(obs), policy.predict_action_chunk(obs))


def test_a_rename_map_in_the_preprocessor_is_applied(saved: Path, tmp_path: Path, policy: ACTPolicy) -> None:
    ckpt = _copy(saved, tmp_path)
    pre = json.loads((ckpt / PREPROCESSOR_JSON).read_text())
    pre["steps"][0]["config"]["rename_map"] = {"observation.images.laptop": "observation.images.front"}
    (ckpt / PREPROCESSOR_JSON).write_text(json.dumps(pre, indent=2))
    loaded = load_policy(ckpt)
    obs = observation(policy.config, seed=3)
    renamed = {("observation.images.laptop" if k == "observation.images.front" else k): v for k, v in obs.items()}
    np.testing.assert_array_equal(loaded.predict_action_chunk(renamed), policy.predict_action_chunk(obs))
    resaved = save_pretrained(loaded, tmp_path / "resaved")
    assert json.loads((resaved / PREPROCESSOR_JSON).read_text()) == pre


def test_hub_ids_offline_say_what_to_download(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    with pytest.raises(CheckpointNotFoundError, match=r"'someone/act_so101' is neither a local folder nor in the "
                       r"Hub cache .*HF_HUB_OFFLINE is set.*hf download someone/act_so101"):
        load_policy("someone/act_so101")

