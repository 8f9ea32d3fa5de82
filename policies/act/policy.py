"""ACTPolicy: the ACT network behind the policy protocol, with normalization, action queue and ensembling.

`self.model` is the network, so `state_dict()` keys are LeRobot's (`model.backbone.conv1.weight`...) and
`model.safetensors` files move between the two programs unchanged. Normalization statistics are not part of
the state dict (LeRobot keeps them in the processor files); they live in `self.normalizer`.

Inference semantics follow LeRobot's `ACTPolicy`: `select_action` infers when its queue of `n_action_steps`
actions is empty, or at every step with temporal ensembling (`temporal_ensemble_coeff`), where each step's
action is the exp(-coeff·i)-weighted mean of every prediction made for it so far, i = 0 being the oldest.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from policies.act.config import ACTConfig
from policies.act.model import ACT
from policies.base import ACTION_KEY, ENV_STATE_KEY, STATE_KEY, Observation, ObservationError, PolicyFeature
from policies.devices import resolve_device
from policies.normalization import EPS, Normalizer, Stats, write_processor_files


class TemporalEnsembler:
    """Online exponentially weighted mean over overlapping chunks (ACT paper, Algorithm 2).

    Future step t keeps the running weighted mean of the k predictions made for it so far; a new prediction
    enters with weight w_k = exp(-coeff·k), so the mean is Σ w_i a_i / Σ w_i over its predictions, oldest
    first.
    """

    def __init__(self, coeff: float, chunk_size: int) -> None:
        self.chunk_size = chunk_size
        self.weights = torch.exp(-coeff * torch.arange(chunk_size))
        self.cumulative = torch.cumsum(self.weights, dim=0)
        self.reset()

    def reset(self) -> None:
        self.mean: torch.Tensor | None = None  # [B, steps, A]
        self.count: torch.Tensor | None = None  # [steps, 1] predictions averaged into each step

    def update(self, chunk: torch.Tensor) -> torch.Tensor:
        """Fold in a new [B, chunk, A] prediction made one step after the previous one; pop the next action."""
        w, cum = self.weights.to(chunk.device), self.cumulative.to(chunk.device)
        if self.mean is None or self.count is None:
            mean = chunk.clone()
            count = torch.ones(self.chunk_size, 1, dtype=torch.long, device=chunk.device)
        else:
            mean = self.mean * cum[self.count - 1]
            mean = (mean + chunk[:, :-1] * w[self.count]) / cum[self.count]
            count = torch.clamp(self.count + 1, max=self.chunk_size)
            mean = torch.cat([mean, chunk[:, -1:]], dim=1)
            count = torch.cat([count, torch.ones_like(count[-1:])])
        action, self.mean, self.count = mean[:, 0], mean[:, 1:], count[1:]
        return action


class ACTPolicy(nn.Module):
    name = "act"
    language_conditioned = False

    def __init__(self, config: ACTConfig, stats: Stats | None = None, *,
                 rename_map: Mapping[str, str] | None = None) -> None:
        """`stats`: per feature key, the dataset statistics the normalization modes need (meta/stats.json
        shape: `{"observation.state": {"mean": [...], "std": [...]}, ...}`); extra keys are kept and saved.
        `rename_map`: observation keys to rename before use, as LeRobot's rename step (old -> new)."""
        super().__init__()
        config.validate_features()
        self.config = config
        self.rename_map = dict(rename_map or {})
        self.normalizer = Normalizer(
            {**config.input_features, **config.output_features}, config.normalization_mapping, stats, EPS
        )
        self.model = ACT(config)
        self._ensembler = (
            TemporalEnsembler(config.temporal_ensemble_coeff, config.chunk_size)
            if config.temporal_ensemble_coeff is not None
            else None
        )
        self._queue: deque[np.ndarray] = deque()
        device = resolve_device(config.device)
        if config.device in (None, "auto"):  # as LeRobot's config does: the files then name the device actually used
            config.device = device.type
        self.to(device)

    @property
    def device(self) -> torch.device:
        return self.model.action_head.weight.device

    # --- protocol attributes ---

    @property
    def input_features(self) -> dict[str, PolicyFeature]:
        return self.config.input_features

    @property
    def output_features(self) -> dict[str, PolicyFeature]:
        return self.config.output_features

    @property
    def chunk_size(self) -> int:
        return self.config.chunk_size

    @property
    def n_action_steps(self) -> int:
        return self.config.n_action_steps

    @property
    def temporal_ensemble_coeff(self) -> float | None:
        return self.config.temporal_ensemble_coeff

    def normalization_stats(self) -> dict[str, dict[str, np.ndarray]]:
        return {k: {s: v.copy() for s, v in entry.items()} for k, entry in self.normalizer.stats.items()}

    # --- inference ---

    def reset(self) -> None:
        self._queue.clear()
        if self._ensembler is not None:
            self._ensembler.reset()

    def select_action(self, observation: Observation) -> np.ndarray:
        """The next action [A] ([B, A] for a batched observation)."""
        if self._ensembler is not None:
            with torch.inference_mode():
                chunk, batched = self._predict_normalized(observation)
                action = self.normalizer.unnormalize(ACTION_KEY, self._ensembler.update(chunk))
            return self._to_numpy(action) if batched else self._to_numpy(action)[0]
        if not self._queue:
            with torch.inference_mode():
                chunk, batched = self._predict_normalized(observation)
                chunk = self._to_numpy(self.normalizer.unnormalize(ACTION_KEY, chunk[:, : self.n_action_steps]))
            self._queue.extend(chunk.transpose(1, 0, 2) if batched else chunk[0])
        return self._queue.popleft()

    def predict_action_chunk(self, observation: Observation) -> np.ndarray:
        """[chunk_size, A] float32 in robot units ([B, chunk_size, A] for a batched observation)."""
        with torch.inference_mode():
            chunk, batched = self._predict_normalized(observation)
            chunk = self._to_numpy(self.normalizer.unnormalize(ACTION_KEY, chunk))
        return chunk if batched else chunk[0]

    def _predict_normalized(self, observation: Observation) -> tuple[torch.Tensor, bool]:
        self.eval()
        state, env, images, batched = self._inputs(observation)
        return self.model(state, env, images)[0], batched

    @staticmethod
    def _to_numpy(x: torch.Tensor) -> np.ndarray:
        return x.detach().to("cpu", torch.float32).numpy()

    # --- observation handling ---

    def _renamed(self, observation: Observation) -> Mapping[str, Any]:
        if not self.rename_map:
            return observation
        out = dict(observation)
        for old, new in self.rename_map.items():
            if old in out and new not in out:
                out[new] = out[old]
        return out

    def _inputs(
        self, observation: Observation
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, list[torch.Tensor], bool]:
        """Normalized, batched model inputs on the policy's device from a raw observation, and whether the
        observation came batched."""
        observation = self._renamed(observation)
        missing = [k for k in self.input_features if k not in observation]
        if missing:
            got = ", ".join(sorted(map(str, observation))) or "nothing"
            raise ObservationError(
                f"the observation lacks {', '.join(missing)} (the policy reads "
                f"{', '.join(self.input_features)}; got {got})"
            )
        state = env = None
        images: list[torch.Tensor] = []
        batched = []
        for key, feature in self.input_features.items():
            if feature.type == "VISUAL":
                x, was_batched = self._image(key, observation[key], feature)
                images.append(self.normalizer.normalize(key, x))
            elif feature.type in ("STATE", "ENV"):
                x, was_batched = self._vector(key, observation[key], feature)
                if key == STATE_KEY and feature.type == "STATE":
                    state = self.normalizer.normalize(key, x)
                elif key == ENV_STATE_KEY:
                    env = self.normalizer.normalize(key, x)
            else:
                continue
            batched.append((key, was_batched, x.shape[0]))
        if len({(b, n) for _, b, n in batched}) > 1:
            sizes = [(k, n if b else None) for k, b, n in batched]
            raise ObservationError(f"inputs disagree on the batch size: {sizes}")
        return state, env, images, bool(batched) and batched[0][1]

    def _vector(self, key: str, value: Any, feature: PolicyFeature) -> tuple[torch.Tensor, bool]:
        if not isinstance(value, torch.Tensor):
            value = np.asarray(value)
            if value.dtype.kind not in "fiu":
                raise ObservationError(f"{key} must hold numbers, got dtype {value.dtype}")
        x = torch.as_tensor(value)
        batched = x.ndim == 2
        if x.ndim == 1:
            x = x.unsqueeze(0)
        if x.ndim != 2 or x.shape[1] != feature.shape[0]:
            raise ObservationError(
                f"{key} has shape {list(np.shape(value))}, the policy expects [{feature.shape[0]}] "
                f"(values in the order it was trained with)"
            )
        if x.dtype == torch.bool or x.is_complex():
            raise ObservationError(f"{key} must hold real numbers, got dtype {x.dtype}")
        return x.to(self.device, torch.float32), batched

    def _image(self, key: str, value: Any, feature: PolicyFeature) -> tuple[torch.Tensor, bool]:
        """uint8 HWC (or BHWC) RGB -> float CHW in [0, 1]; float images are taken as CHW in [0, 1] already."""
        x = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(value))
        if x.dtype == torch.uint8:
            if x.ndim not in (3, 4) or x.shape[-1] != 3:
                raise ObservationError(f"{key}: uint8 images must be H×W×3 RGB, got shape {list(x.shape)}")
            x = x.to(self.device).permute(*range(x.ndim - 3), -1, -3, -2).to(torch.float32) / 255
        elif torch.is_floating_point(x):
            x = x.to(self.device, torch.float32)
        else:
            raise ObservationError(f"{key}: images must be uint8 HWC or float CHW in [0, 1], got dtype "
                                   f"{x.dtype}")
        batched = x.ndim == 4
        if x.ndim == 3:
            x = x.unsqueeze(0)
        if x.ndim != 4 or tuple(x.shape[1:]) != tuple(feature.shape):
            c, h, w = feature.shape
            raise ObservationError(
                f"{key} is {list(x.shape[1:])} (C, H, W) but the policy expects [{c}, {h}, {w}]: "
                f"resize the camera frames to {w}×{h}"
            )
        return x, batched

    # --- training ---

    def forward(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss on a raw-unit batch: masked L1 on the normalized chunk + kl_weight · KL (LeRobot's).

        batch: `observation.state` [B, D], `observation.images.<cam>` float [B, 3, H, W] in [0, 1] (or uint8
        BHWC), `action` [B, chunk, A], `action_is_pad` bool [B, chunk] (all False when absent).
        """
        if ACTION_KEY not in batch:
            raise ObservationError(f"a training batch needs {ACTION_KEY!r} [B, chunk_size, action_dim]")
        state, env, images, _ = self._inputs(batch)
        actions = torch.as_tensor(batch[ACTION_KEY]).to(self.device, torch.float32)
        if actions.ndim != 3 or actions.shape[1:] != (self.chunk_size, self.config.action_feature.shape[0]):
            raise ObservationError(
                f"{ACTION_KEY} has shape {list(actions.shape)}, expected [B, {self.chunk_size}, "
                f"{self.config.action_feature.shape[0]}]"
            )
        pad = batch.get("action_is_pad")
        is_pad = (torch.as_tensor(pad).to(self.device, torch.bool) if pad is not None
                  else torch.zeros(actions.shape[:2], dtype=torch.bool, device=self.device))
        target = self.normalizer.normalize(ACTION_KEY, actions)
        predicted, latent = self.model(state, env, images, target, is_pad)
        l1 = ((target - predicted).abs() * ~is_pad.unsqueeze(-1)).mean()
        info = {"l1_loss": l1.item()}
        loss = l1
        if latent is not None:
            mu, log_sigma_x2 = latent
            kld = (-0.5 * (1 + log_sigma_x2 - mu.pow(2) - log_sigma_x2.exp())).sum(-1).mean()
            info["kld_loss"] = kld.item()
            loss = l1 + self.config.kl_weight * kld
        return loss, info

    def get_optim_params(self) -> list[dict[str, Any]]:
        """LeRobot's two AdamW groups: everything but the backbone at the optimizer's lr, the backbone at
        `optimizer_lr_backbone`."""
        named = [(n, p) for n, p in self.named_parameters() if p.requires_grad]
        backbone = [p for n, p in named if n.startswith("model.backbone")]
        rest = [p for n, p in named if not n.startswith("model.backbone")]
        return [{"params": rest}, {"params": backbone, "lr": self.config.optimizer_lr_backbone}]

    # --- checkpoint ---

    def save_processors(self, directory: Any) -> None:
        write_processor_files(
            directory,
            input_features=self.config.input_features,
            output_features=self.config.output_features,
            norm_map=self.config.normalization_mapping,
            stats=self.normalizer.stats,
            device=self.config.device,
            eps=self.normalizer.eps,
            rename_map=self.rename_map,
        )
