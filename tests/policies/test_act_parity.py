"""Golden parity with LeRobot 0.4.4: same weights, same observations, same actions (to 1e-4 in joint units).

The fixtures under fixtures/act_golden/<case>/ were written by LeRobot itself (fixtures/make_act_oracle.py,
run in the oracle venv): its config.json and processor files, the state-dict shapes, and the actions it
computed. The weights are not committed; both sides rebuild them with fixtures/golden.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from policies import load_policy, save_pretrained
from policies.act import ACTConfig
from policies.act.model import ACT
from tests.policies.fixtures.golden import (
    CASES,
    ENSEMBLE_COEFF,
    ENSEMBLE_STEPS,
    QUEUE_STEPS,
    TRAIN_SEED,
    golden_observation,
    golden_state_dict,
    golden_training_batch,
)

GOLDEN = Path(__file__).parent / "fixtures" / "act_golden"
LEROBOT_FILES = ["config.json", "policy_preprocessor.json", "policy_postprocessor.json",
                 "policy_preprocessor_step_3_normalizer_processor.safetensors",
                 "policy_postprocessor_step_0_unnormalizer_processor.safetensors"]
ATOL = 1e-4


VAE_CASES = sorted(c for c in CASES if CASES[c]["config"].get("use_vae", True))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Per case, LeRobot's files plus model.safetensors filled with the golden weights."""
    out = {}
    for case in CASES:
        directory = tmp_path_factory.mktemp(case)
        for name in LEROBOT_FILES:
            shutil.copy(GOLDEN / case / name, directory / name)
        model = ACT(ACTConfig.from_dict(json.loads((GOLDEN / case / "config.json").read_text())))
        ours = {f"model.{k}": v for k, v in model.state_dict().items()}
        lerobot_shapes = json.loads((GOLDEN / case / "state_dict_shapes.json").read_text())
        assert {k: list(v.shape) for k, v in ours.items()} == lerobot_shapes
        save_file(golden_state_dict(ours), directory / "model.safetensors")
        out[case] = directory
    return out


def _expected(case: str) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in load_file(GOLDEN / case / "expected.safetensors").items()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_chunk_and_action_queue_match_lerobot(checkpoints: dict[str, Path], case: str) -> None:
    directory = checkpoints[case]
    expected = _expected(case)
    policy = load_policy(directory)
    chunk = policy.predict_action_chunk(golden_observation(case, 0))
    np.testing.assert_allclose(chunk, expected["chunk"], rtol=1e-6, atol=ATOL)
    actions = np.stack([policy.select_action(golden_observation(case, i)) for i in range(QUEUE_STEPS)])
    np.testing.assert_allclose(actions, expected["queue_actions"], rtol=1e-6, atol=ATOL)


@pytest.mark.parametrize("case", sorted(CASES))
def test_temporal_ensembling_matches_lerobot(checkpoints: dict[str, Path], case: str) -> None:
    directory = checkpoints[case]
    policy = load_policy(directory, temporal_ensemble_coeff=ENSEMBLE_COEFF, n_action_steps=1)
    actions = np.stack([policy.select_action(golden_observation(case, i)) for i in range(ENSEMBLE_STEPS)])
    np.testing.assert_allclose(actions, _expected(case)["ensembled_actions"], rtol=1e-6, atol=ATOL)


@pytest.mark.parametrize("case", VAE_CASES)
def test_training_loss_matches_lerobot(checkpoints: dict[str, Path], case: str) -> None:
    directory = checkpoints[case]
    expected = _expected(case)
    policy = load_policy(directory, dropout=0.0)
    policy.train()
    batch = {k: torch.from_numpy(v) for k, v in golden_training_batch(case).items()}
    torch.manual_seed(TRAIN_SEED)  # the VAE's reparameterisation noise is the only random draw, as in LeRobot
    loss, info = policy.forward(batch)
    np.testing.assert_allclose([loss.item(), info["l1_loss"], info["kld_loss"]], expected["train_loss"], rtol=1e-4)


@pytest.mark.parametrize("case", sorted(CASES))
def test_saved_files_are_the_ones_lerobot_writes(checkpoints: dict[str, Path], case: str, tmp_path: Path) -> None:
    directory = checkpoints[case]
    saved = save_pretrained(load_policy(directory), tmp_path)
    for name in LEROBOT_FILES:
        if name.endswith(".json"):
            assert (saved / name).read_bytes() == (GOLDEN / case / name).read_bytes(), name
        else:
            ours, theirs = load_file(saved / name), load_file(GOLDEN / case / name)
            assert ours.keys() == theirs.keys(), name
            for key in theirs:
                assert torch.equal(ours[key], theirs[key]), f"{name}: {key}"
