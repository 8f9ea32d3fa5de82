"""ACTConfig reads and writes LeRobot 0.4.4's config.json exactly and refuses impossible settings clearly."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import pytest

from policies.act import ACTConfig
from policies.base import PolicyFeature

FIXTURES = Path(__file__).parent / "fixtures"
LEROBOT = json.loads((FIXTURES / "act_state_dicts.json").read_text())["variants"]


def test_defaults_and_field_order_are_lerobots() -> None:
    config = ACTConfig(
        device="cpu",
        pretrained_backbone_weights=None,  # as the fixture script wrote it (no torchvision download there)
        input_features={"observation.state": PolicyFeature("STATE", (6,)),
                        "observation.images.front": PolicyFeature("VISUAL", (3, 480, 640))},
        output_features={"action": PolicyFeature("ACTION", (6,))},
    )
    written = json.dumps(config.to_dict(), indent=4)
    assert written == json.dumps(LEROBOT["default"]["config"], indent=4)
    assert ACTConfig().pretrained_backbone_weights == "ResNet18_Weights.IMAGENET1K_V1"


@pytest.mark.parametrize("variant", sorted(LEROBOT))
def test_lerobot_config_round_trips(variant: str) -> None:
    data = LEROBOT[variant]["config"]
    config = ACTConfig.from_dict(data)
    assert json.dumps(config.to_dict(), indent=4) == json.dumps(data, indent=4)


def test_configs_older_than_lerobot_0_2_get_a_conversion_hint() -> None:
    data = {k: v for k, v in LEROBOT["default"]["config"].items() if k not in ("input_features", "output_features")}
    with pytest.raises(ValueError, match=r"predates LeRobot 0\.2"):
        ACTConfig.from_dict({**data, "input_shapes": {"observation.state": [6]}})


def test_integers_in_float_fields_are_written_as_floats() -> None:
    data = copy.deepcopy(LEROBOT["default"]["config"])
    data["kl_weight"] = 10
    assert json.dumps(ACTConfig.from_dict(data).to_dict()["kl_weight"]) == "10.0"


def test_fields_of_other_lerobot_versions_are_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    data = {**LEROBOT["default"]["config"], "pretrained_revision": None}
    with caplog.at_level(logging.WARNING):
        config = ACTConfig.from_dict(data)
    assert "pretrained_revision" in caplog.text
    assert "pretrained_revision" not in config.to_dict()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"n_action_steps": 101}, r"n_action_steps \(101\) cannot exceed chunk_size \(100\)"),
        ({"temporal_ensemble_coeff": 0.01}, "needs n_action_steps=1"),
        ({"n_obs_steps": 2}, "n_obs_steps=1"),
        ({"chunk_size": "100"}, "'chunk_size' must be an integer, got '100'"),
        ({"use_vae": 1}, "'use_vae' must be true or false"),
        ({"chunk_size": 0}, "chunk_size must be at least 1"),
        ({"dim_model": 500}, r"dim_model \(500\) must be divisible by n_heads \(8\)"),
        ({"vision_backbone": "resnet50"}, "vision_backbone 'resnet50' is not supported"),
        ({"feedforward_activation": "swish"}, "feedforward_activation 'swish'"),
        ({"normalization_mapping": {"STATE": "ZSCORE"}}, "unknown normalization mode 'ZSCORE'"),
        ({"input_features": {"observation.state": {"type": "JOINTS", "shape": [6]}}}, "type 'JOINTS'"),
        ({"input_features": {"observation.state": {"type": "STATE", "shape": [-6]}}}, "positive integers"),
        ({"input_features": {"observation.state": {"shape": [6]}}}, "must be {\"type\""),
        ({"tags": "robot"}, "'tags' must be a list of a string or null"),
        ({"type": "diffusion"}, "'diffusion' config, not an ACT one"),
        ({"input_features": None}, "'input_features' must be an object"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(change: dict, message: str) -> None:
    data = {**LEROBOT["default"]["config"], **change}
    with pytest.raises(ValueError, match=message):
        ACTConfig.from_dict(data)


@pytest.mark.parametrize(
    ("inputs", "outputs", "message"),
    [
        ({"observation.state": ("STATE", (6,))}, {"action": ("ACTION", (6,))}, "at least one camera"),
        ({"observation.images.a": ("VISUAL", (3, 32, 32))}, {"act": ("ACTION", (6,))}, "must contain 'action'"),
        ({"observation.images.a": ("VISUAL", (1, 32, 32))}, {"action": ("ACTION", (6,))}, r"shape \[3, H, W\]"),
        ({"observation.env": ("ENV", (4,))}, {"action": ("ACTION", (6,))}, "observation.environment_state"),
    ],
)
def test_feature_sets_act_cannot_use_are_refused(inputs: dict, outputs: dict, message: str) -> None:
    config = ACTConfig(input_features={k: PolicyFeature(*v) for k, v in inputs.items()},
                       output_features={k: PolicyFeature(*v) for k, v in outputs.items()})
    with pytest.raises(ValueError, match=message):
        config.validate_features()
