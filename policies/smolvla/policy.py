"""SmolVLAPolicy: the SmolVLA network behind the policy protocol, with LeRobot's preprocessing, normalization,
action queue and real-time chunking.

`self.model` is the network, so `state_dict()` keys are LeRobot's (`model.vlm_with_expert.vlm.model
.text_model.layers.0...`, `model.state_proj.weight`...) and `model.safetensors` files move between the two
programs unchanged. Normalization statistics live in `self.normalizer` (LeRobot keeps them in the processor
files).

Preprocessing is LeRobot's, step for step: the task gets a trailing newline and is tokenized with the
backbone's tokenizer; the state is normalized and zero-padded to `max_state_dim`; each camera image (uint8
HWC -> float [0, 1]) is normalized, resized to fit `resize_imgs_with_padding` keeping its aspect ratio
(bilinear), padded on the left and top with black, and scaled to [-1, 1]; `empty_cameras` add blank, masked
images. Actions are denoised from Gaussian noise, cut to the action's size and unnormalized.

Precision follows LeRobot too: a checkpoint whose config says `load_vlm_weights` (SmolVLA fine-tuned from
smolvla_base) runs its backbone and expert in bfloat16, as LeRobot builds them; otherwise float32 (the expert
in the dtype its backbone config names). `backbone_dtype="float32"` overrides this (slower on GPUs, faster
on CPUs without bfloat16 units, and numerically closer to the float32 training).
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from policies.base import ACTION_KEY, STATE_KEY, TASK_KEY, Observation, ObservationError, PolicyFeature
from policies.devices import resolve_device
from policies.normalization import EPS, Normalizer, Stats
from policies.smolvla.config import SmolVLAConfig
from policies.smolvla.model import VLAFlowMatching
from policies.smolvla.processor import LanguageSettings, write_processor_files
from policies.smolvla.rtc import PrefixGuidance

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
IMAGE_TOKENS = ("<fake_token_around_image>", "<global-img>")


def resize_with_pad(image: torch.Tensor, width: int, height: int, pad_value: float = 0.0) -> torch.Tensor:
    """[B, C, H, W] scaled (bilinear) to fit width × height with its aspect ratio, padded on the left/top."""
    h, w = image.shape[2:]
    ratio = max(w / width, h / height)
    new_h, new_w = int(h / ratio), int(w / ratio)
    resized = F.interpolate(image, size=(new_h, new_w), mode="bilinear", align_corners=False)
    return F.pad(resized, (max(0, width - new_w), 0, max(0, height - new_h), 0), value=pad_value)


def pad_vector(x: torch.Tensor, size: int) -> torch.Tensor:
    """Zero-pad the last dimension to `size`."""
    return F.pad(x, (0, size - x.shape[-1])) if x.shape[-1] < size else x


def parameter_dtypes(config: SmolVLAConfig, vlm_config: Any, choice: str = "auto") -> tuple[torch.dtype, torch.dtype]:
    """(backbone, expert) dtypes: LeRobot's (see the module docstring) for "auto", else `choice` for both."""
    if choice != "auto":
        if choice not in DTYPES:
            raise ValueError(f"backbone_dtype must be auto or one of {', '.join(DTYPES)}, got {choice!r}")
        return DTYPES[choice], DTYPES[choice]
    if config.load_vlm_weights:
        return torch.bfloat16, torch.bfloat16
    named = getattr(vlm_config.text_config, "dtype", None) or getattr(vlm_config.text_config, "torch_dtype", None)
    if isinstance(named, str):
        named = DTYPES.get(named)
    return torch.float32, named if isinstance(named, torch.dtype) else torch.float32


class SmolVLAPolicy(nn.Module):
    name = "smolvla"
    language_conditioned = True

    def __init__(self, config: SmolVLAConfig, stats: Stats | None, vlm_config: Any, tokenizer: Any, *,
                 language: LanguageSettings | None = None, rename_map: Mapping[str, str] | None = None,
                 noise_seed: int | None = None, backbone_dtype: str = "auto", empty_weights: bool = False) -> None:
        """`vlm_config`: the backbone's transformers SmolVLMConfig; `tokenizer`: its tokenizer. `stats`: per
        feature, the dataset statistics the normalization modes need. `noise_seed`: draw each chunk's initial
        noise from a generator seeded with it at construction and at every `reset()` (the same sequence of
        chunks as LeRobot after `torch.manual_seed(noise_seed)`, on CPU); None uses torch's global RNG.
        `empty_weights`: leave the network's weights uninitialized (built on the meta device, then allocated):
        for a caller that loads every weight next, as the checkpoint loader does (seconds instead of half a
        minute for the 450M-parameter SmolVLA)."""
        super().__init__()
        config.validate_features()
        self.config = config
        self.language = language or LanguageSettings.from_config(config)
        self.tokenizer = tokenizer
        self.rename_map = dict(rename_map or {})
        normalized = [STATE_KEY, *config.camera_keys]
        self.normalizer = Normalizer({**{k: config.input_features[k] for k in normalized}, **config.output_features},
                                     config.normalization_mapping, stats, EPS)
        image_ids: list[int] = []
        if config.add_image_special_tokens:
            vocab = tokenizer.get_vocab()
            missing = [t for t in IMAGE_TOKENS if t not in vocab]
            if missing:
                raise ValueError(f"add_image_special_tokens needs the tokens {', '.join(missing)}, which the "
                                 "backbone's tokenizer lacks: it is not SmolVLM's tokenizer")
            image_ids = [vocab[t] for t in IMAGE_TOKENS]
        device = resolve_device(config.device)
        dtypes = parameter_dtypes(config, vlm_config, backbone_dtype)
        with torch.device("meta") if empty_weights else contextlib.nullcontext():
            self.model = VLAFlowMatching(config, vlm_config, dtypes, image_ids)
        if empty_weights:
            self.model.to_empty(device=device)
            self.model.vlm_with_expert.rebuild_rotary_tables()
        if noise_seed is not None and (isinstance(noise_seed, bool) or not isinstance(noise_seed, int)):
            raise ValueError(f"noise_seed must be an integer or None, got {noise_seed!r}")
        self.noise_seed = noise_seed
        self._generator: torch.Generator | None = None
        self._queue: deque[np.ndarray] = deque()
        self.to(device)
        self.reset()

    @property
    def device(self) -> torch.device:
        return self.model.state_proj.weight.device

    # --- protocol attributes ---

    @property
    def input_features(self) -> dict[str, PolicyFeature]:
        """What an observation must carry (the empty cameras are made up inside)."""
        return {k: self.config.input_features[k] for k in (STATE_KEY, *self.config.camera_keys)}

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
    def rtc_enabled(self) -> bool:
        """Whether `predict_action_chunk` uses a `prefix` (rtc_config.enabled in config.json)."""
        return self.config.rtc_config is not None and self.config.rtc_config.enabled

    def normalization_stats(self) -> dict[str, dict[str, np.ndarray]]:
        return {k: {s: v.copy() for s, v in entry.items()} for k, entry in self.normalizer.stats.items()}

    # --- inference ---

    def reset(self) -> None:
        self._queue.clear()
        if self.noise_seed is not None:
            self._generator = torch.Generator().manual_seed(self.noise_seed)

    def select_action(self, observation: Observation) -> np.ndarray:
        """The next action [A]: a new chunk (without RTC) when the queue of `n_action_steps` is empty."""
        if not self._queue:
            self._queue.extend(self.predict_action_chunk(observation)[: self.n_action_steps])
        return self._queue.popleft()

    def predict_action_chunk(self, observation: Observation, *, prefix: np.ndarray | None = None,
                             inference_delay: int = 0) -> np.ndarray:
        """[chunk_size, A] float32 in robot units; does not touch the select_action queue.

        Real-time chunking (when `rtc_enabled`; ignored otherwise): `prefix` [P, A] (robot units) is the
        previous chunk's leftover, i.e. the actions still planned for the ticks this chunk's rows 0..P-1 cover
        (row 0 = the tick of `observation`); `inference_delay` is how many of those ticks will have executed
        by the time this chunk arrives. Those rows are pulled onto the prefix, the following ones up to
        rtc_config.execution_horizon progressively less (see policies.smolvla.rtc)."""
        guidance = self._guidance(prefix, inference_delay) if self.rtc_enabled and prefix is not None else None
        self.eval()
        with torch.inference_mode():
            images, image_masks, tokens, token_masks, state = self._inputs(observation)
            actions = self.model.sample_actions(images, image_masks, tokens, token_masks, state,
                                                self._noise(state.shape[0]), guidance)
            actions = self.normalizer.unnormalize(ACTION_KEY, actions[:, :, : self.config.action_feature.shape[0]])
        return actions[0].to("cpu", torch.float32).numpy()

    def _noise(self, batch: int) -> torch.Tensor:
        shape = (batch, self.chunk_size, self.config.max_action_dim)
        if self._generator is None:
            return torch.normal(0.0, 1.0, size=shape, dtype=torch.float32, device=self.device)
        return torch.normal(0.0, 1.0, size=shape, generator=self._generator, dtype=torch.float32).to(self.device)

    def _guidance(self, prefix: np.ndarray, inference_delay: int) -> PrefixGuidance | None:
        action_dim = self.config.action_feature.shape[0]
        leftover = np.asarray(prefix, dtype=np.float32)
        if leftover.ndim != 2 or leftover.shape[1] != action_dim:
            raise ValueError(f"prefix must be the leftover actions [P, {action_dim}], got shape {list(leftover.shape)}")
        if isinstance(inference_delay, bool) or not isinstance(inference_delay, int) or inference_delay < 0:
            raise ValueError(f"inference_delay must be a non-negative number of ticks, got {inference_delay!r}")
        if not len(leftover):
            return None
        target = torch.from_numpy(leftover[: self.chunk_size]).to(self.device)
        target = self.normalizer.normalize(ACTION_KEY, target)[None]
        return PrefixGuidance(self.config.rtc_config, target, inference_delay, self.chunk_size,
                              self.config.max_action_dim)

    # --- observation handling ---

    def _inputs(self, observation: Observation) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor,
                                                          torch.Tensor, torch.Tensor]:
        if self.rename_map:
            observation = dict(observation)
            for old, new in self.rename_map.items():
                if old in observation and new not in observation:
                    observation[new] = observation[old]
        missing = [k for k in (*self.input_features, TASK_KEY) if k not in observation]
        if missing:
            raise ObservationError(
                f"the observation lacks {', '.join(missing)} (the policy reads {', '.join(self.input_features)} "
                f"and the task; got {', '.join(sorted(map(str, observation))) or 'nothing'})")
        state = self.normalizer.normalize(STATE_KEY, self._state(observation[STATE_KEY]))
        images, masks = [], []
        for key in self.config.camera_keys:
            image = self.normalizer.normalize(key, self._image(key, observation[key]))
            if self.config.resize_imgs_with_padding is not None:
                image = resize_with_pad(image, *self.config.resize_imgs_with_padding, pad_value=0)
            images.append(image * 2.0 - 1.0)
            masks.append(torch.ones(1, dtype=torch.bool, device=self.device))
        for _ in range(self.config.empty_cameras):
            images.append(-torch.ones_like(images[-1]))
            masks.append(torch.zeros_like(masks[-1]))
        tokens, token_masks = self._tokenize(observation[TASK_KEY])
        return images, masks, tokens, token_masks, pad_vector(state, self.config.max_state_dim)

    def _tokenize(self, task: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(task, str):
            raise ObservationError(f"{TASK_KEY} must be the instruction text (a str), got {type(task).__name__}")
        if self.language.add_newline and not task.endswith("\n"):
            task += "\n"
        lang = self.language
        encoded = self.tokenizer([task], max_length=lang.max_length, truncation=lang.truncation,
                                 padding=lang.padding, padding_side=lang.padding_side, return_tensors="pt")
        return encoded["input_ids"].to(self.device), encoded["attention_mask"].to(self.device, torch.bool)

    def _state(self, value: Any) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(value) if not isinstance(value, torch.Tensor) else value)
        dim = self.config.input_features[STATE_KEY].shape[0]
        if x.shape != (dim,):
            raise ObservationError(f"{STATE_KEY} has shape {list(x.shape)}, the policy expects [{dim}] "
                                   "(joint values in the order it was trained with)")
        if not (torch.is_floating_point(x) or x.dtype in (torch.int32, torch.int64)):
            raise ObservationError(f"{STATE_KEY} must hold numbers, got dtype {x.dtype}")
        return x.to(self.device, torch.float32)[None]

    def _image(self, key: str, value: Any) -> torch.Tensor:
        """uint8 HWC RGB -> float [1, 3, H, W] in [0, 1]; float images are taken as CHW in [0, 1] already.
        Any resolution is accepted: the image is resized to the model's anyway."""
        x = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(value))
        if x.dtype == torch.uint8:
            if x.ndim != 3 or x.shape[-1] != 3:
                raise ObservationError(f"{key}: uint8 images must be H×W×3 RGB, got shape {list(x.shape)}")
            x = x.to(self.device).permute(2, 0, 1).to(torch.float32) / 255
        elif torch.is_floating_point(x):
            if x.ndim != 3 or x.shape[0] != 3:
                raise ObservationError(f"{key}: float images must be 3×H×W in [0, 1], got shape {list(x.shape)}")
            x = x.to(self.device, torch.float32)
        else:
            raise ObservationError(f"{key}: images must be uint8 HWC or float CHW in [0, 1], got dtype {x.dtype}")
        return x[None]

    # --- checkpoint ---

    def save_processors(self, directory: Any) -> None:
        write_processor_files(directory, self.config, self.normalizer.stats, self.language, self.rename_map,
                              self.normalizer.eps)
