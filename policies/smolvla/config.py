"""SmolVLA's configuration, field for field LeRobot 0.4.4's `SmolVLAConfig`, read from and written to
`config.json`.

`to_dict()` produces what LeRobot's draccus dump writes (same keys, same order, `"type": "smolvla"` first), so
a checkpoint saved here loads with LeRobot's `SmolVLAPolicy.from_pretrained`. `from_dict()` accepts what any
LeRobot version writes: unknown keys are logged and dropped. Training-only fields (optimizer, scheduler,
freezing, compilation) are kept for the round trip and otherwise unused.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from policies.base import ACTION_KEY, IMAGES_PREFIX, STATE_KEY, PolicyFeature
from policies.features import features_from_json, features_to_json
from policies.normalization import check_norm_map
from policies.smolvla.rtc import RTCConfig

log = logging.getLogger(__name__)

POLICY_TYPE = "smolvla"
DEFAULT_VLM = "HuggingFaceTB/SmolVLM2-500M-Video-Instruct"
PADDINGS = ("longest", "max_length")
ATTENTION_MODES = ("cross_attn", "self_attn")


def empty_camera_key(index: int) -> str:
    """The image features LeRobot adds for `empty_cameras` (never in an observation; fed as blank images)."""
    return f"{IMAGES_PREFIX}empty_camera_{index}"


def _default_norm_map() -> dict[str, str]:
    return {"VISUAL": "IDENTITY", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"}


@dataclass
class SmolVLAConfig:
    # LeRobot's PreTrainedConfig fields (0.4.4), in its order.
    n_obs_steps: int = 1
    input_features: dict[str, PolicyFeature] = field(default_factory=dict)
    output_features: dict[str, PolicyFeature] = field(default_factory=dict)
    device: str | None = None
    use_amp: bool = False
    use_peft: bool = False
    push_to_hub: bool = True
    repo_id: str | None = None
    private: bool | None = None
    tags: list[str] | None = None
    license: str | None = None
    pretrained_path: str | None = None
    # SmolVLA's own fields.
    chunk_size: int = 50
    n_action_steps: int = 50
    normalization_mapping: dict[str, str] = field(default_factory=_default_norm_map)
    max_state_dim: int = 32
    max_action_dim: int = 32
    resize_imgs_with_padding: tuple[int, int] | None = (512, 512)  # (width, height)
    empty_cameras: int = 0
    adapt_to_pi_aloha: bool = False
    use_delta_joint_actions_aloha: bool = False
    tokenizer_max_length: int = 48
    num_steps: int = 10
    use_cache: bool = True
    freeze_vision_encoder: bool = True
    train_expert_only: bool = True
    train_state_proj: bool = True
    optimizer_lr: float = 1e-4
    optimizer_betas: tuple[float, float] = (0.9, 0.95)
    optimizer_eps: float = 1e-8
    optimizer_weight_decay: float = 1e-10
    optimizer_grad_clip_norm: float = 10
    scheduler_warmup_steps: int = 1_000
    scheduler_decay_steps: int = 30_000
    scheduler_decay_lr: float = 2.5e-6
    vlm_model_name: str = DEFAULT_VLM
    load_vlm_weights: bool = False  # LeRobot then builds the backbone in bfloat16 (see SmolVLAPolicy)
    add_image_special_tokens: bool = False
    attention_mode: str = "cross_attn"
    prefix_length: int = -1
    pad_language_to: str = "longest"
    num_expert_layers: int = -1  # <= 0: as many as the VLM layers
    num_vlm_layers: int = 16  # the first num_vlm_layers text layers of the VLM are kept
    self_attn_every_n_layers: int = 2
    expert_width_multiplier: float = 0.75
    min_period: float = 4e-3
    max_period: float = 4.0
    rtc_config: RTCConfig | None = None
    compile_model: bool = False
    compile_mode: str = "max-autotune"

    def __post_init__(self) -> None:
        _check_types(self)
        self.input_features = features_from_json(self.input_features, "input_features")
        self.output_features = features_from_json(self.output_features, "output_features")
        self.normalization_mapping = check_norm_map(self.normalization_mapping, "normalization_mapping")
        if isinstance(self.rtc_config, Mapping):
            self.rtc_config = RTCConfig.from_dict(self.rtc_config)
        if self.resize_imgs_with_padding is not None:
            self.resize_imgs_with_padding = tuple(self.resize_imgs_with_padding)
        self.optimizer_betas = tuple(self.optimizer_betas)
        if self.n_obs_steps != 1:
            raise ValueError(f"SmolVLA uses one observation step (n_obs_steps=1), got {self.n_obs_steps}")
        for name in ("chunk_size", "n_action_steps", "max_state_dim", "max_action_dim", "tokenizer_max_length",
                     "num_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.n_action_steps > self.chunk_size:
            raise ValueError(f"n_action_steps ({self.n_action_steps}) cannot exceed chunk_size ({self.chunk_size}): "
                             "a chunk holds only chunk_size actions")
        if self.adapt_to_pi_aloha or self.use_delta_joint_actions_aloha:
            raise ValueError("adapt_to_pi_aloha / use_delta_joint_actions_aloha (the Aloha joint conventions of "
                             "the π0 runtime) are not supported by robotui's SmolVLA")
        if self.attention_mode not in ATTENTION_MODES:
            raise ValueError(f"attention_mode {self.attention_mode!r} is not supported; use one of {ATTENTION_MODES}")
        if self.pad_language_to not in PADDINGS:
            raise ValueError(f"pad_language_to must be one of {PADDINGS}, got {self.pad_language_to!r}")
        if self.resize_imgs_with_padding is not None and (
            len(self.resize_imgs_with_padding) != 2 or min(self.resize_imgs_with_padding) < 1
        ):
            raise ValueError(f"resize_imgs_with_padding must be [width, height], got {self.resize_imgs_with_padding}")
        if self.empty_cameras < 0 or self.num_vlm_layers == 0 or self.expert_width_multiplier <= 0:
            raise ValueError("empty_cameras must be >= 0, num_vlm_layers non-zero and expert_width_multiplier > 0")

    # --- features, as LeRobot's config properties name them ---

    @property
    def image_features(self) -> dict[str, PolicyFeature]:
        return {k: f for k, f in self.input_features.items() if f.type == "VISUAL"}

    @property
    def action_feature(self) -> PolicyFeature:
        return self.output_features[ACTION_KEY]

    @property
    def camera_keys(self) -> list[str]:
        """The image features an observation must carry (the empty cameras excepted)."""
        empty = {empty_camera_key(i) for i in range(self.empty_cameras)}
        return [k for k in self.image_features if k not in empty]

    def validate_features(self) -> None:
        """What the network needs beyond the hyper-parameters; adds the empty cameras as LeRobot does."""
        for i in range(self.empty_cameras):
            self.input_features.setdefault(empty_camera_key(i), PolicyFeature("VISUAL", (3, 480, 640)))
        state = self.input_features.get(STATE_KEY)
        if state is None or state.type != "STATE" or len(state.shape) != 1:
            raise ValueError(f"SmolVLA reads the robot state from {STATE_KEY!r} (a STATE vector); the inputs are "
                             f"{sorted(self.input_features) or 'empty'}")
        if state.shape[0] > self.max_state_dim:
            raise ValueError(f"{STATE_KEY} has {state.shape[0]} values but max_state_dim is {self.max_state_dim}")
        action = self.output_features.get(ACTION_KEY)
        if action is None or action.type != "ACTION" or len(action.shape) != 1:
            raise ValueError(f"output_features must contain {ACTION_KEY!r} (an ACTION vector), "
                             f"got {sorted(self.output_features)}")
        if action.shape[0] > self.max_action_dim:
            raise ValueError(f"{ACTION_KEY} has {action.shape[0]} values but max_action_dim is {self.max_action_dim}")
        if not self.camera_keys:
            raise ValueError("SmolVLA needs at least one camera (a VISUAL input feature)")
        for key, f in self.image_features.items():
            if len(f.shape) != 3 or f.shape[0] != 3:
                raise ValueError(f"{key} must be an RGB image with shape [3, H, W], got {list(f.shape)}")

    # --- config.json ---

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": POLICY_TYPE}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("input_features", "output_features"):
                value = features_to_json(value)
            elif isinstance(value, RTCConfig):
                value = value.to_dict()
            elif isinstance(value, tuple | list):
                value = list(value)
            elif isinstance(value, dict):
                value = dict(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SmolVLAConfig:
        """A SmolVLAConfig from a parsed `config.json`; ValueError naming the bad field otherwise."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a SmolVLA config must be a JSON object, got {type(data).__name__}")
        kind = data.get("type", POLICY_TYPE)
        if kind != POLICY_TYPE:
            raise ValueError(f"this is a {kind!r} config, not a SmolVLA one")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names - {"type"})
        if unknown:
            log.warning("ignoring config fields robotui's SmolVLA does not use: %s", ", ".join(unknown))
        return cls(**{k: v for k, v in data.items() if k in names})


_KINDS: dict[str, tuple[tuple[type, ...], str]] = {
    "int": ((int,), "an integer"), "float": ((int, float), "a number"), "bool": ((bool,), "true or false"),
    "str": ((str,), "a string"),
}


def _check_types(config: SmolVLAConfig) -> None:
    """Scalars as JSON gives them, checked against the annotation's base type (a clear message instead of a
    failure deep inside torch); containers are checked by their own parsers."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        annotation = str(f.type)
        base = annotation.split(" | ")[0]
        if value is None:
            if "None" not in annotation:
                raise ValueError(f"config field {f.name!r} must not be null")
            continue
        if base not in _KINDS:
            continue
        kinds, description = _KINDS[base]
        if not isinstance(value, kinds) or (base != "bool" and isinstance(value, bool)):
            raise ValueError(f"config field {f.name!r} must be {description}, got {value!r}")
