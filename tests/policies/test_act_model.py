"""The network: LeRobot's state-dict keys and shapes, the frozen ResNet-18, forward shapes, training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from policies.act import ACTConfig, ACTPolicy
from policies.act.model import ACT
from policies.act.resnet import FrozenBatchNorm2d, ResNet18Backbone
from tests.policies.act_helpers import ACTION_DIM, CAMERAS, tiny_config, tiny_policy, tiny_stats

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "act_state_dicts.json").read_text())


@pytest.mark.parametrize("variant", sorted(FIXTURE["variants"]))
def test_state_dict_keys_and_shapes_are_lerobots(variant: str) -> None:
    spec = FIXTURE["variants"][variant]
    expected = dict(spec["keys"])
    if spec["has_backbone"]:
        expected |= FIXTURE["backbone"]
    model = ACT(ACTConfig.from_dict(spec["config"]))
    assert {f"model.{k}": list(v.shape) for k, v in model.state_dict().items()} == expected
    if variant == "default":  # LeRobot's count for state 6, action 6, one camera
        assert sum(p.numel() for p in model.parameters()) == 51_597_190


def test_frozen_batch_norm_is_eval_batch_norm_and_takes_torchvision_files() -> None:
    bn = torch.nn.BatchNorm2d(8).eval()
    with torch.no_grad():
        for t in (bn.weight, bn.bias, bn.running_mean):
            t.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    frozen = FrozenBatchNorm2d(8)
    frozen.load_state_dict(bn.state_dict())  # carries num_batches_tracked, as torchvision's files do
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(frozen(x), bn(x))
    assert "num_batches_tracked" not in frozen.state_dict()


def test_backbone_output_and_frozen_statistics() -> None:
    backbone = ResNet18Backbone()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in backbone.modules())
    assert backbone(torch.zeros(1, 3, 64, 96)).shape == (1, 512, 2, 3)
    assert backbone(torch.zeros(2, 3, 120, 161)).shape == (2, 512, 4, 6)  # ceil(H / 32), ceil(W / 32)


def test_training_forward_shapes_and_losses(policy: ACTPolicy) -> None:
    batch = _training_batch(policy.config, batch=3)
    policy.train()
    try:
        loss, info = policy.forward(batch)
    finally:
        policy.eval()
    assert loss.shape == () and loss.requires_grad
    loss.backward()
    assert policy.model.backbone.conv1.weight.grad.abs().sum() > 0
    assert policy.model.vae_encoder_action_input_proj.weight.grad.abs().sum() > 0
    policy.zero_grad(set_to_none=True)
    assert set(info) == {"l1_loss", "kld_loss"}
    assert loss.item() == pytest.approx(info["l1_loss"] + policy.config.kl_weight * info["kld_loss"], rel=1e-5)


def test_without_vae_the_loss_is_l1_only() -> None:
    p = tiny_policy(use_vae=False)
    p.train()
    loss, info = p.forward(_training_batch(p.config))
    assert set(info) == {"l1_loss"} and loss.item() == pytest.approx(info["l1_loss"])
    assert not any(k.startswith("model.vae_encoder") for k in p.state_dict())


def test_padded_steps_do_not_count() -> None:
    p = tiny_policy(dropout=0.0, use_vae=False)
    p.train()
    batch = _training_batch(p.config)
    batch["action_is_pad"][:, 5:] = True
    base, _ = p.forward(batch)
    batch["action"][:, 5:] += 1000.0  # only padded steps change
    moved, _ = p.forward(batch)
    assert moved.item() == pytest.approx(base.item(), rel=1e-6)


def test_loss_decreases_on_a_fixed_batch() -> None:
    cameras = {"observation.images.front": (3, 32, 32)}
    p = tiny_policy(seed=3, dropout=0.0, cameras=cameras)
    p.model.backbone.requires_grad_(False)  # its gradient is checked elsewhere; AdamW on 11M weights is slow
    p.train()
    batch = _training_batch(p.config, cameras=cameras)
    optimizer = torch.optim.AdamW(p.get_optim_params(), lr=1e-3)
    torch.manual_seed(0)
    losses = []
    for _ in range(8):
        loss, _ = p.forward(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_optimizer_groups_split_off_the_backbone(policy: ACTPolicy) -> None:
    config = tiny_config(optimizer_lr_backbone=3e-6)
    p = ACTPolicy(config, tiny_stats())
    main, backbone = p.get_optim_params()
    assert backbone["lr"] == 3e-6 and "lr" not in main
    names = {id(t): n for n, t in p.named_parameters()}
    assert all(names[id(t)].startswith("model.backbone.") for t in backbone["params"])
    assert not any(names[id(t)].startswith("model.backbone.") for t in main["params"])
    assert len(main["params"]) + len(backbone["params"]) == len(list(p.parameters()))


def test_training_batch_errors_are_clear(policy: ACTPolicy) -> None:
    batch = _training_batch(policy.config)
    with pytest.raises(ValueError, match="needs 'action'"):
        policy.forward({k: v for k, v in batch.items() if k != "action"})
    batch["action"] = batch["action"][:, :4]
    with pytest.raises(ValueError, match=r"expected \[B, 10, 6\]"):
        policy.forward(batch)


def _training_batch(config: ACTConfig, batch: int = 2, cameras: dict | None = None) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    out = {"observation.state": torch.rand(batch, 6, generator=g) * 100 - 50,
           "action": torch.rand(batch, config.chunk_size, ACTION_DIM, generator=g) * 100 - 50,
           "action_is_pad": torch.zeros(batch, config.chunk_size, dtype=torch.bool)}
    for key, shape in (cameras or CAMERAS).items():
        out[key] = torch.rand(batch, *shape, generator=g)
    return out
