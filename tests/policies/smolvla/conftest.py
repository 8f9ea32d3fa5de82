"""Tiny SmolVLA checkpoints, built offline from the LeRobot-written golden fixtures (config.json and processor
files as LeRobot 0.4.4 saved them, the tiny backbone's config and tokenizer bundled as `tiny_vlm/`, the golden
weights written as model.safetensors)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from tests.policies.smolvla.fixtures.smolvla_golden import NOISE_SEED, golden_tensor, write_tiny_vlm

GOLDEN = Path(__file__).parent / "fixtures" / "smolvla_golden"


def build_checkpoint(case: str, directory: Path, **config_changes) -> Path:
    """The golden case as a checkpoint folder (config.json fields replaced by `config_changes`)."""
    shutil.copytree(GOLDEN / case, directory)
    write_tiny_vlm(directory / "tiny_vlm")
    shapes = json.loads((directory / "state_dict_shapes.json").read_text())
    save_file({k: golden_tensor(k, tuple(s)) for k, s in shapes.items()}, directory / "model.safetensors")
    if config_changes:
        config = json.loads((directory / "config.json").read_text())
        (directory / "config.json").write_text(json.dumps({**config, **config_changes}, indent=4))
    return directory


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """The tiny networks run many small ops: on a shared 2-core machine a second intra-op thread only waits."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def smolvla_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One folder per golden case; read-only (copy it to change files)."""
    root = tmp_path_factory.mktemp("smolvla")
    return {case.name: build_checkpoint(case.name, root / case.name) for case in sorted(GOLDEN.iterdir())}


@pytest.fixture
def load_smolvla(smolvla_checkpoints: dict[str, Path]):
    """load_policy on a golden checkpoint, seeded, with overrides."""
    from policies import load_policy

    def load(case: str = "cross_attn", **overrides):
        return load_policy(smolvla_checkpoints[case], noise_seed=overrides.pop("noise_seed", NOISE_SEED), **overrides)

    return load
