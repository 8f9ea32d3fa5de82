"""ACT's configuration, field for field LeRobot 0.4.4's `ACTConfig`, read from and written to `config.json`.

`to_dict()` produces what LeRobot's draccus dump writes (same keys, same order, `"type": "act"` first), so a
checkpoint saved here loads with `ACTPolicy.from_pretrained`. `from_dict()` accepts what any LeRobot version
writes: keys it does not know (newer base fields such as `pretrained_revision`) are logged and dropped, since
none of them changes the network or its inference.
"""

from __future__ import annotations

import dataclasses
import logging
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from policies.base import ACTION_KEY, ENV_STATE_KEY, STATE_KEY, PolicyFeature
from policies.features import features_from_json, features_to_json
from policies.normalization import check_norm_map

log = logging.getLogger(__name__)

POLICY_TYPE = "act"
BACKBONES = ("resnet18",)
ACTIVATIONS = ("relu", "gelu")


def _default_norm_map() -> dict[str, str]:
    return {"VISUAL": "MEAN_STD", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"}


@dataclass
class ACTConfig:
    # LeRobot's PreTrainedConfig fields (0.4.4), in its order.
    n_obs_steps: int = 1
    input_features: dict[str, PolicyFeature] = field(default_factory=dict)
    output_features: dict[str, PolicyFeature] = field(default_factory=dict)
    device: str | None = None  # cpu, cuda, cuda:N, mps; None = the best one available
    use_amp: bool = False
    use_peft: bool = False
    push_to_hub: bool = True
    repo_id: str | None = None
    private: bool | None = None
    tags: list[str] | None = None
    license: str | None = None
    pretrained_path: str | None = None
    # ACT's own fields.
    chunk_size: int = 100
    n_action_steps: int = 100
    normalization_mapping: dict[str, str] = field(default_factory=_default_norm_map)
    vision_backbone: str = "resnet18"
    pretrained_backbone_weights: str | None = "ResNet18_Weights.IMAGENET1K_V1"
    replace_final_stride_with_dilation: bool = False
    pre_norm: bool = False
    dim_model: int = 512
    n_heads: int = 8
    dim_feedforward: int = 3200
    feedforward_activation: str = "relu"
    n_encoder_layers: int = 4
    n_decoder_layers: int = 1
    use_vae: bool = True
    latent_dim: int = 32
    n_vae_encoder_layers: int = 4
    temporal_ensemble_coeff: float | None = None
    dropout: float = 0.1
    kl_weight: float = 10.0
    optimizer_lr: float = 1e-5
    optimizer_weight_decay: float = 1e-4
    optimizer_lr_backbone: float = 1e-5

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(ACTConfig)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            _check_type(f.name, value, hints[f.name])
            if float in (*typing.get_args(hints[f.name]), hints[f.name]) and isinstance(value, int):
                setattr(self, f.name, float(value))  # JSON's 10 for 10.0: written back as LeRobot would
        self.input_features = features_from_json(self.input_features, "input_features")
        self.output_features = features_from_json(self.output_features, "output_features")
        self.normalization_mapping = check_norm_map(self.normalization_mapping, "normalization_mapping")
        if self.n_obs_steps != 1:
            raise ValueError(f"ACT uses one observation step (n_obs_steps=1), got {self.n_obs_steps}")
        for name in ("chunk_size", "n_action_steps", "dim_model", "n_heads", "dim_feedforward",
                     "n_encoder_layers", "n_decoder_layers", "latent_dim", "n_vae_encoder_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.n_action_steps > self.chunk_size:
            raise ValueError(
                f"n_action_steps ({self.n_action_steps}) cannot exceed chunk_size ({self.chunk_size}): a chunk "
                "holds only chunk_size actions"
            )
        if self.temporal_ensemble_coeff is not None and self.n_action_steps != 1:
            raise ValueError(
                "temporal ensembling (temporal_ensemble_coeff) infers at every step, so it needs "
                f"n_action_steps=1, got n_action_steps={self.n_action_steps}"
            )
        if self.vision_backbone not in BACKBONES:
            raise ValueError(f"vision_backbone {self.vision_backbone!r} is not supported; robotui's ACT has "
                             f"{', '.join(BACKBONES)}")
        if self.replace_final_stride_with_dilation:
            raise ValueError("replace_final_stride_with_dilation=true is impossible with ResNet-18's basic "
                             "blocks (torchvision refuses it too)")
        if self.dim_model % self.n_heads:
            raise ValueError(f"dim_model ({self.dim_model}) must be divisible by n_heads ({self.n_heads})")
        if self.feedforward_activation not in ACTIVATIONS:
            raise ValueError(
                f"feedforward_activation {self.feedforward_activation!r} is not supported; use "
                f"{' or '.join(ACTIVATIONS)}"
            )
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    # --- features, as LeRobot's config properties name them ---

    @property
    def robot_state_feature(self) -> PolicyFeature | None:
        f = self.input_features.get(STATE_KEY)
        return f if f is not None and f.type == "STATE" else None

    @property
    def env_state_feature(self) -> PolicyFeature | None:
        return next((f for f in self.input_features.values() if f.type == "ENV"), None)

    @property
    def image_features(self) -> dict[str, PolicyFeature]:
        return {k: f for k, f in self.input_features.items() if f.type == "VISUAL"}

    @property
    def action_feature(self) -> PolicyFeature | None:
        f = self.output_features.get(ACTION_KEY)
        return f if f is not None and f.type == "ACTION" else None

    def validate_features(self) -> None:
        """What a network needs beyond the hyper-parameters (LeRobot checks it when the policy is built)."""
        if not self.image_features and self.env_state_feature is None:
            raise ValueError(
                "ACT needs at least one camera (a VISUAL input feature) or the environment state "
                f"({ENV_STATE_KEY}); the inputs are {sorted(self.input_features) or 'empty'}"
            )
        env = [k for k, f in self.input_features.items() if f.type == "ENV"]
        if env and env != [ENV_STATE_KEY]:
            raise ValueError(f"ACT reads the environment state from {ENV_STATE_KEY!r}, not {env}")
        action = self.action_feature
        if action is None:
            raise ValueError(
                f"output_features must contain {ACTION_KEY!r} with type ACTION, got "
                f"{sorted(self.output_features)}"
            )
        for key, f in self.input_features.items():
            if f.type in ("STATE", "ENV", "ACTION") and len(f.shape) != 1:
                raise ValueError(f"{key} must be a vector (shape [D]), got shape {list(f.shape)}")
            if f.type == "VISUAL" and (len(f.shape) != 3 or f.shape[0] != 3):
                raise ValueError(f"{key} must be an RGB image with shape [3, H, W], got {list(f.shape)}")
        if len(action.shape) != 1:
            raise ValueError(f"{ACTION_KEY} must be a vector (shape [A]), got shape {list(action.shape)}")

    # --- config.json ---

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": POLICY_TYPE}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("input_features", "output_features"):
                value = features_to_json(value)
            elif isinstance(value, dict | list):
                value = type(value)(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ACTConfig:
        """An ACTConfig from a parsed `config.json`; ValueError naming the bad field otherwise."""
        if not isinstance(data, Mapping):
            raise ValueError(f"an ACT config must be a JSON object, got {type(data).__name__}")
        kind = data.get("type", POLICY_TYPE)
        if kind != POLICY_TYPE:
            raise ValueError(f"this is a {kind!r} config, not an ACT one")
        if "input_shapes" in data and "input_features" not in data:
            raise ValueError("this config.json predates LeRobot 0.2 (input_shapes, no input_features): load and "
                             "re-save it with a current LeRobot to convert it")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names - {"type"})
        if unknown:
            log.warning("ignoring config fields robotui's ACT does not use: %s", ", ".join(unknown))
        return cls(**{k: v for k, v in data.items() if k in names})


def _check_type(name: str, value: Any, hint: Any) -> None:
    """Config values as JSON gives them: a clear message instead of a failure deep inside torch."""
    if _matches(value, hint):
        return
    raise ValueError(f"config field {name!r} must be {_describe(hint)}, got {value!r}")


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list | tuple) and all(_matches(v, item) for v in value)
    if origin is dict:
        return isinstance(value, Mapping)  # features and the norm map are checked by their own parsers
    return True


def _describe(hint: Any) -> str:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if hint is type(None):
        return "null"
    if typing.get_origin(hint) is list:
        return f"a list of {_describe(args[0])}"
    if typing.get_origin(hint) is dict:
        return "an object"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))
