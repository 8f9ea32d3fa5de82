"""`--set` conversion and its errors, train_config.json round trip, LeRobot's console line, and the ResNet-18
weights loader (local torchvision-format files; offline Hub gives a message that says what to do)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from policies.act import ACTConfig
from policies.act.resnet import ResNet18Backbone
from policies.train.backbone import BackboneWeightsError, load_backbone_weights
from policies.train.config import SettingError, TrainConfig, apply_sets, parse_sets
from policies.train.metrics import LeRobotFormatter, LogRecord, format_big_number


def test_set_values_convert_to_the_field_types() -> None:
    config = apply_sets(ACTConfig(), parse_sets([
        "chunk_size=20", "n_action_steps=10", "optimizer_lr=3e-5", "use_vae=false", "kl_weight=5",
        "pretrained_backbone_weights=none", "temporal_ensemble_coeff=null", "tags=a,b",
    ]))
    assert (config.chunk_size, config.n_action_steps, config.optimizer_lr) == (20, 10, 3e-5)
    assert config.use_vae is False and config.kl_weight == 5.0 and config.pretrained_backbone_weights is None
    assert config.tags == ["a", "b"]
    train = apply_sets(TrainConfig(Path("o"), "x"), {"betas": "0.8,0.9", "grad_clip_norm": "5"})
    assert train.betas == (0.8, 0.9) and train.grad_clip_norm == 5.0


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (["dim_modle=64"], "no such setting; did you mean 'dim_model'?"),
        (["chunk_size=abc"], "chunk_size is an integer"),
        (["use_vae=maybe"], "use_vae is true or false"),
        (["optimizer_lr=fast"], "optimizer_lr is a number"),
        (["chunk_size"], "expected key=value"),
        (["n_action_steps=200"], "cannot exceed chunk_size"),  # the config's own check, named
    ],
)
def test_bad_sets_are_explained(pairs: list[str], message: str) -> None:
    with pytest.raises(SettingError, match=message):
        apply_sets(ACTConfig(), parse_sets(pairs))


def test_train_config_round_trips_through_lerobots_layout() -> None:
    config = TrainConfig(Path("/runs/a"), "me/ds", "/data/ds", steps=500, batch_size=16, seed=7, betas=(0.8, 0.9),
                         image_transforms={"enable": True})
    data = config.to_lerobot(ACTConfig(optimizer_lr=2e-5).to_dict())
    assert data["optimizer"]["lr"] == 2e-5 and data["policy"]["type"] == "act"
    back = TrainConfig.from_lerobot(data, "x")
    assert back == config


def test_console_line_is_lerobots_metrics_tracker() -> None:
    record = LogRecord(step=200, total_steps=1000, samples=2000, episodes=5.2, epoch=0.0812, loss=2.3451,
                       grad_norm=45.6781, lr=1e-5, data_s=0.0101, prep_s=0.002, update_s=0.15, step_s=0.17,
                       samples_per_s=47.2, parts={"l1_loss": 0.412, "kld_loss": 0.193}, mem_gb=3.214)
    assert record.console_line() == (
        "step:200 smpl:2K ep:5 epch:0.08 loss:2.345 grdn:45.678 lr:1.0e-05 data_s:0.010 prep_s:0.002 "
        "updt_s:0.150 step_s:0.170 smp/s:47 mem_gb:3.21 l1_loss:0.412 kld_loss:0.193"
    )
    assert [format_big_number(n) for n in (999, 1500, 2_000_000, 3e9)] == ["999", "2K", "2M", "3B"]
    line = LeRobotFormatter().format(logging.LogRecord("policies.train", logging.INFO, "/x/lerobot_train.py", 769,
                                                       "step:1", None, None))
    assert line.startswith("INFO ") and line.endswith(" ot_train.py:769 step:1")


def _torchvision_state(backbone: torch.nn.Module) -> dict[str, torch.Tensor]:
    """What torchvision's resnet18().state_dict() holds: the backbone's tensors plus fc and BN counters."""
    state = {k: torch.randn_like(v) for k, v in backbone.state_dict().items()}
    state |= {k.replace("running_mean", "num_batches_tracked"): torch.tensor(7) for k in list(state)
              if k.endswith("running_mean")}
    return state | {"fc.weight": torch.randn(1000, 512), "fc.bias": torch.randn(1000)}


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_local_resnet18_weights_load_into_the_backbone(tmp_path: Path, suffix: str) -> None:
    backbone = ResNet18Backbone()
    state = _torchvision_state(backbone)
    path = tmp_path / f"resnet18{suffix}"
    if suffix == ".safetensors":
        save_file(state, path)
    else:
        torch.save(state, path)
    assert str(path) in load_backbone_weights(backbone, str(path))
    assert torch.equal(backbone.state_dict()["layer4.1.conv2.weight"], state["layer4.1.conv2.weight"])
    assert torch.equal(backbone.state_dict()["bn1.running_var"], state["bn1.running_var"])


def test_wrong_or_unreachable_weights_are_refused_clearly(tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    backbone = ResNet18Backbone()
    bad = tmp_path / "other.safetensors"
    save_file({"conv1.weight": torch.zeros(64, 3, 7, 7)}, bad)
    with pytest.raises(BackboneWeightsError, match="not hold a ResNet-18 in torchvision's key format"):
        load_backbone_weights(backbone, str(bad))
    with pytest.raises(BackboneWeightsError, match=r"no file at .*missing\.pth"):
        load_backbone_weights(backbone, str(tmp_path / "missing.pth"))
    # Tests run with HF_HUB_OFFLINE=1: LeRobot's default weights cannot be fetched, and the message says how.
    with pytest.raises(BackboneWeightsError, match=r"timm/resnet18\.tv_in1k.*offline.*pretrained_backbone_weights=none"):
        load_backbone_weights(backbone, "ResNet18_Weights.IMAGENET1K_V1")
    # The trainer's logger may not propagate (robotui train prints its own lines): listen to it directly.
    with caplog.at_level(logging.WARNING, logger="policies.train"):
        logging.getLogger("policies.train").addHandler(caplog.handler)
        try:
            assert load_backbone_weights(backbone, None) == "random initialisation"
        finally:
            logging.getLogger("policies.train").removeHandler(caplog.handler)
    assert "random weights" in caplog.text
