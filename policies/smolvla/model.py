"""The SmolVLA network for inference: a SmolVLM2 backbone (transformers' classes) and the action expert, with
LeRobot 0.4.4's attention layout, so its state-dict keys and its numbers are LeRobot's.

Layout (SmolVLA paper, arXiv 2506.01844):
- prefix = [image tokens per camera (SigLIP + pixel shuffle + projection, scaled by √d), language tokens
  (scaled by √d), one state token]. Image and language tokens attend to each other bidirectionally; the state
  token sees them all. Only the first `num_vlm_layers` text layers run, once per chunk, filling a cache of
  rotated keys and values per layer.
- suffix = `chunk_size` action tokens (noisy actions fused with a sine-cosine embedding of the flow time),
  attending causally to each other and to the whole prefix, processed by the expert: a narrower copy of the
  text model (`expert_width_multiplier`) whose layer i is paired with VLM layer i (or every k-th VLM layer
  when `num_expert_layers` is smaller). In "cross_attn" mode the expert's layers alternate: self-attention
  layers (every `self_attn_every_n_layers`-th) attend to the cached prefix keys and their own; the others
  project the cached VLM keys/values through their own k/v projections and attend to the prefix only.
- flow matching: x_1 = noise, `num_steps` Euler steps x ← x + dt·v(x, t) from t = 1 to 0.

Attention is LeRobot's eager attention (float32 scores, rotary embeddings with base 10000 whatever the
backbone's config says), written here; norms, MLPs and projections are the transformers modules themselves.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from policies.smolvla.config import SmolVLAConfig

ROPE_BASE = 10_000
# Keys and values cached per VLM layer by the prefix pass.
KVCache = list[tuple[torch.Tensor, torch.Tensor]]
Guidance = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]


def expert_intermediate_size(hidden: int, ffn_multiplier: int = 4, multiple_of: int = 256) -> int:
    hidden = int(ffn_multiplier * int(2 * hidden / 3))
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


def apply_rope(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Rotary embedding of x [B, L, H, D] at positions [B, L] (halves rotated, as LeRobot/big_vision)."""
    half = x.shape[-1] // 2
    dtype = x.dtype
    x = x.to(torch.float32)
    exponents = (2.0 / x.shape[-1]) * torch.arange(half, dtype=torch.float32, device=x.device)
    radians = positions[..., None].to(torch.float32) / (ROPE_BASE**exponents)[None, None, :]
    sin, cos = torch.sin(radians)[..., None, :], torch.cos(radians)[..., None, :]
    x1, x2 = x.split(half, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).to(dtype)


def attention_2d_mask(pad_masks: torch.Tensor, ar_masks: torch.Tensor) -> torch.Tensor:
    """[B, N, N]: token i sees token j when both are real and j's block (cumulative ar mask) is not after i's."""
    blocks = torch.cumsum(ar_masks, dim=1)
    return (blocks[:, None, :] <= blocks[:, :, None]) & (pad_masks[:, None, :] & pad_masks[:, :, None])


def sinusoidal_time_embedding(time: torch.Tensor, dim: int, min_period: float, max_period: float) -> torch.Tensor:
    """[B, dim] sine-cosine embedding of the flow time [B] (computed in float64 where the device has it)."""
    dtype = torch.float32 if time.device.type == "mps" else torch.float64
    fraction = torch.linspace(0.0, 1.0, dim // 2, dtype=dtype, device=time.device)
    period = min_period * (max_period / min_period) ** fraction
    angle = (1.0 / period * 2 * math.pi)[None, :] * time[:, None]
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)


def vision_position_ids(pixels: torch.Tensor, patch_size: int, per_side: int) -> torch.Tensor:
    """[B, patches] position ids of a whole image, as transformers 4.57 (LeRobot 0.4.4's) computes them: patch
    i of n at fractional coordinate i/n·(1 - 1e-6) in the pixels' dtype, bucketed on a 1/per_side grid.

    In float32 the 1e-6 shrink moves every patch but the first into the bucket below (rows and columns 0, 0, 1,
    2, ...); in bfloat16 it rounds away. transformers 5 dropped the shrink, so its vision tower places float32
    patches one bucket further; SmolVLA checkpoints were trained with 4.x, hence this function.
    """
    batch, _, height, width = pixels.shape
    boundaries = torch.arange(1 / per_side, 1.0, 1 / per_side, device=pixels.device)

    def buckets(count: int) -> torch.Tensor:
        fractions = torch.arange(count, device=pixels.device, dtype=pixels.dtype) / count * (1 - 1e-6)
        return torch.bucketize(fractions, boundaries, right=True)

    ids = (buckets(height // patch_size)[:, None] * per_side + buckets(width // patch_size)).flatten()
    return ids[None].expand(batch, -1)


class SmolVLMWithExpert(nn.Module):
    """`vlm` (transformers' SmolVLMForConditionalGeneration, text layers cut to `num_vlm_layers`) and
    `lm_expert` (a narrower text model without token embeddings)."""

    def __init__(self, config: SmolVLAConfig, vlm_config: Any, vlm_dtype: torch.dtype,
                 expert_dtype: torch.dtype) -> None:
        from transformers import AutoModel, SmolVLMForConditionalGeneration

        super().__init__()
        text = vlm_config.text_config
        if 0 < config.num_vlm_layers < text.num_hidden_layers:  # only the first num_vlm_layers ever run
            vlm_config = copy.deepcopy(vlm_config)
            vlm_config.text_config.num_hidden_layers = config.num_vlm_layers
        self.vlm = SmolVLMForConditionalGeneration(config=vlm_config)
        self.vlm.to(vlm_dtype)
        self.num_vlm_layers = len(self.vlm.model.text_model.layers)

        expert_config = copy.deepcopy(text)
        expert_config.hidden_size = int(text.hidden_size * config.expert_width_multiplier)
        expert_config.intermediate_size = expert_intermediate_size(expert_config.hidden_size)
        expert_config.num_hidden_layers = config.num_expert_layers if config.num_expert_layers > 0 else self.num_vlm_layers
        if config.num_expert_layers > 0 and self.num_vlm_layers % config.num_expert_layers:
            raise ValueError(f"num_vlm_layers ({self.num_vlm_layers}) must be a multiple of num_expert_layers "
                             f"({config.num_expert_layers})")
        self.lm_expert = AutoModel.from_config(expert_config).to(expert_dtype)
        self.every_n = config.self_attn_every_n_layers
        self.cross = config.attention_mode == "cross_attn"
        vlm_kv = text.num_key_value_heads * text.head_dim
        if self.cross:
            for i, layer in enumerate(self.lm_expert.layers):
                if not self._self_attn_layer(i):  # float32 projections of the VLM's keys and values
                    out = expert_config.num_key_value_heads * expert_config.head_dim
                    layer.self_attn.k_proj = nn.Linear(vlm_kv, out, bias=expert_config.attention_bias)
                    layer.self_attn.v_proj = nn.Linear(vlm_kv, out, bias=expert_config.attention_bias)
        self.lm_expert.embed_tokens = None
        self.expert_hidden_size = expert_config.hidden_size
        self.num_heads, self.num_kv_heads, self.head_dim = text.num_attention_heads, text.num_key_value_heads, text.head_dim
        self.expert_layers = self._pair_layers()
        for i, expert in enumerate(self.expert_layers):
            fed = vlm_kv if self.cross and not self._self_attn_layer(i) else self.expert_hidden_size
            if expert is not None and expert.self_attn.k_proj.in_features != fed:
                raise ValueError(
                    f"this SmolVLA cannot run: VLM layer {i} is a "
                    f"{'cross' if fed == vlm_kv else 'self'}-attention layer but its expert layer has the other "
                    f"kind's projections (num_expert_layers={config.num_expert_layers}, self_attn_every_n_layers="
                    f"{self.every_n}; LeRobot 0.4.4 cannot run this combination either)")

    def _self_attn_layer(self, index: int) -> bool:
        return not self.cross or (self.every_n > 0 and index % self.every_n == 0)

    def _pair_layers(self) -> list[nn.Module | None]:
        """The expert layer paired with each VLM layer (None: the expert skips that layer)."""
        n_expert = len(self.lm_expert.layers)
        every = self.num_vlm_layers // n_expert
        if every == 0:
            return [self.lm_expert.layers[i] for i in range(self.num_vlm_layers)]
        return [self.lm_expert.layers[i // every] if i % every == 0 else None for i in range(self.num_vlm_layers)]

    def rebuild_rotary_tables(self) -> None:
        """Recompute the text models' rotary tables (non-persistent buffers: after a construction on the meta
        device they hold no values; this module's attention computes its own, transformers' forward needs them)."""
        for model in (self.vlm.model.text_model, self.lm_expert):
            model.rotary_emb = type(model.rotary_emb)(config=model.config).to(model.norm.weight.device)

    # --- embeddings ---

    def embed_image(self, image: torch.Tensor) -> torch.Tensor:
        """Image tokens [B, T, W]: SigLIP patches + positions, encoder, post-norm, pixel-shuffle projection."""
        vision = self.vlm.model.vision_model
        pixels = image.to(dtype=vision.dtype)
        embeddings = vision.embeddings
        hidden = embeddings.patch_embedding(pixels).flatten(2).transpose(1, 2)
        positions = vision_position_ids(pixels, embeddings.patch_size, embeddings.num_patches_per_side)
        hidden = hidden + embeddings.position_embedding(positions)
        hidden = vision.post_layernorm(vision.encoder(inputs_embeds=hidden).last_hidden_state)
        return self.vlm.model.connector(hidden)

    def embed_language_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.vlm.model.text_model.get_input_embeddings()(tokens)

    # --- attention ---

    def _attention(self, mask: torch.Tensor, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """Eager grouped-query attention: q [B, L, H, D], k/v [B, S, KV, D], mask [B, L, S] -> [B, L, H·D]."""
        batch, length = query.shape[:2]
        groups = self.num_heads // self.num_kv_heads
        key = key[:, :, :, None, :].expand(*key.shape[:3], groups, self.head_dim).reshape(
            batch, key.shape[1], self.num_heads, self.head_dim)
        value = value[:, :, :, None, :].expand(*value.shape[:3], groups, self.head_dim).reshape(
            batch, value.shape[1], self.num_heads, self.head_dim)
        scores = torch.matmul(query.to(torch.float32).transpose(1, 2), key.to(torch.float32).transpose(1, 2).transpose(2, 3))
        scores *= self.head_dim**-0.5
        scores = torch.where(mask[:, None, :, :], scores, torch.finfo(scores.dtype).min)
        probs = F.softmax(scores, dim=-1).to(value.dtype)
        out = torch.matmul(probs, value.permute(0, 2, 1, 3)).permute(0, 2, 1, 3)
        return out.reshape(batch, length, self.num_heads * self.head_dim)

    @staticmethod
    def _qkv(layer: nn.Module, hidden: torch.Tensor) -> tuple[torch.Tensor, ...]:
        normed = layer.input_layernorm(hidden).to(layer.self_attn.q_proj.weight.dtype)
        shape = (*normed.shape[:-1], -1, layer.self_attn.head_dim)
        attn = layer.self_attn
        return attn.q_proj(normed).view(shape), attn.k_proj(normed).view(shape), attn.v_proj(normed).view(shape)

    @staticmethod
    def _finish_layer(layer: nn.Module, hidden: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        """Output projection, residual, post-attention norm, MLP, residual (dtype rules as LeRobot's)."""
        out = layer.self_attn.o_proj(attended.to(layer.self_attn.o_proj.weight.dtype))
        out += hidden
        residual = out.clone()
        out = layer.mlp(layer.post_attention_layernorm(out))
        out += residual
        return out

    # --- the two passes ---

    def fill_cache(self, prefix: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor) -> KVCache:
        """Run the prefix through the VLM layers; the rotated keys and values of every layer."""
        cache: KVCache = []
        hidden = prefix
        layers = self.vlm.model.text_model.layers
        for i, layer in enumerate(layers):
            query, key, value = self._qkv(layer, hidden)
            key = apply_rope(key, positions)
            cache.append((key, value))
            if i < len(layers) - 1:  # the last layer's output feeds nothing
                attended = self._attention(mask, apply_rope(query, positions), key, value)
                hidden = self._finish_layer(layer, hidden, attended)
        return cache

    def expert_forward(self, suffix: torch.Tensor, cache: KVCache, mask: torch.Tensor,
                       positions: torch.Tensor) -> torch.Tensor:
        """The expert over the action tokens [B, S, E] given the prefix cache; mask [B, S, P + S], positions
        [B, S] continuing the prefix's. Returns the normed expert output."""
        hidden = suffix
        prefix_len = cache[0][0].shape[1]
        for i, layer in enumerate(self.expert_layers):
            if layer is None:
                continue
            cached_key, cached_value = cache[i]
            if self._self_attn_layer(i):
                query, key, value = self._qkv(layer, hidden)
                query, key = apply_rope(query, positions), apply_rope(key, positions)
                key, value = torch.cat([cached_key, key], dim=1), torch.cat([cached_value, value], dim=1)
                attended = self._attention(mask, query, key, value)
            else:
                attn = layer.self_attn
                normed = layer.input_layernorm(hidden).to(attn.q_proj.weight.dtype)
                query = attn.q_proj(normed).view(*normed.shape[:-1], -1, attn.head_dim)
                query = apply_rope(query, positions - positions.min(dim=1, keepdim=True).values)
                flat_key = cached_key.to(attn.k_proj.weight.dtype).flatten(2)
                flat_value = cached_value.to(attn.v_proj.weight.dtype).flatten(2)
                key = attn.k_proj(flat_key).view(*flat_key.shape[:2], -1, attn.head_dim)
                value = attn.v_proj(flat_value).view(*flat_value.shape[:2], -1, attn.head_dim)
                attended = self._attention(mask[:, :, :prefix_len], query, key, value)
            hidden = self._finish_layer(layer, hidden, attended)
        return self.lm_expert.norm(hidden)


class VLAFlowMatching(nn.Module):
    """The projections around the VLM + expert, and flow-matching sampling (LeRobot's module of that name)."""

    def __init__(self, config: SmolVLAConfig, vlm_config: Any, dtypes: tuple[torch.dtype, torch.dtype],
                 image_token_ids: Sequence[int]) -> None:
        """`dtypes`: (backbone, expert) parameter dtypes; the projections around them stay float32."""
        super().__init__()
        self.config = config
        self.vlm_with_expert = SmolVLMWithExpert(config, vlm_config, *dtypes)
        width, expert = vlm_config.text_config.hidden_size, self.vlm_with_expert.expert_hidden_size
        self.state_proj = nn.Linear(config.max_state_dim, width)
        self.action_in_proj = nn.Linear(config.max_action_dim, expert)
        self.action_out_proj = nn.Linear(expert, config.max_action_dim)
        self.action_time_mlp_in = nn.Linear(expert * 2, expert)
        self.action_time_mlp_out = nn.Linear(expert, expert)
        self.image_start_tokens = list(image_token_ids)  # <fake_token_around_image>, <global-img>

    def embed_prefix(self, images: list[torch.Tensor], image_masks: list[torch.Tensor], tokens: torch.Tensor,
                     token_masks: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(embeddings [B, P, W], pad mask [B, P], ar mask [B, P]) of images, language and state."""
        vlm = self.vlm_with_expert
        batch = state.shape[0]
        embs: list[torch.Tensor] = []
        pads: list[torch.Tensor] = []
        ar: list[int] = []

        def special(ids: list[int]) -> None:  # framing tokens around each image (add_image_special_tokens)
            emb = vlm.embed_language_tokens(torch.tensor(ids, device=state.device)).unsqueeze(0).expand(batch, -1, -1)
            embs.append(emb)
            pads.append(torch.ones(emb.shape[:2], dtype=torch.bool, device=emb.device))
            ar.extend([0] * emb.shape[1])

        for image, mask in zip(images, image_masks, strict=True):
            if self.config.add_image_special_tokens:
                special(self.image_start_tokens)
            emb = vlm.embed_image(image)
            emb = emb * torch.tensor(emb.shape[-1] ** 0.5, dtype=emb.dtype, device=emb.device)
            embs.append(emb)
            pads.append(mask[:, None].expand(batch, emb.shape[1]))
            ar.extend([0] * emb.shape[1])
            if self.config.add_image_special_tokens:
                special(self.image_start_tokens[:1])
        lang = vlm.embed_language_tokens(tokens)
        embs.append(lang * math.sqrt(lang.shape[-1]))
        pads.append(token_masks)
        ar.extend([0] * lang.shape[1])
        state_emb = self.state_proj(state)[:, None, :]
        embs.append(state_emb)
        pads.append(torch.ones(batch, 1, dtype=torch.bool, device=state.device))
        ar.append(1)

        emb = torch.cat(embs, dim=1)
        pad = torch.cat(pads, dim=1)
        ar_mask = torch.tensor(ar, dtype=torch.bool, device=pad.device)[None, :]
        missing = self.config.prefix_length - pad.shape[1]
        if missing > 0:  # fixed-length prefix: zero embeddings, masked out
            emb = torch.cat([emb, emb.new_zeros(batch, missing, emb.shape[2])], dim=1)
            pad = torch.cat([pad, pad.new_zeros(batch, missing)], dim=1)
            ar_mask = torch.cat([ar_mask, ar_mask.new_zeros(1, missing)], dim=1)
        return emb, pad, ar_mask.expand(batch, -1)

    def embed_suffix(self, noisy_actions: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        action = self.action_in_proj(noisy_actions)
        time_emb = sinusoidal_time_embedding(time, self.vlm_with_expert.expert_hidden_size, self.config.min_period,
                                             self.config.max_period).to(action.dtype)
        fused = torch.cat([action, time_emb[:, None, :].expand_as(action)], dim=2)
        return self.action_time_mlp_out(F.silu(self.action_time_mlp_in(fused)))

    @torch.no_grad()
    def sample_actions(self, images: list[torch.Tensor], image_masks: list[torch.Tensor], tokens: torch.Tensor,
                       token_masks: torch.Tensor, state: torch.Tensor, noise: torch.Tensor,
                       guidance: Guidance | None = None) -> torch.Tensor:
        """Denoised, normalized actions [B, chunk_size, max_action_dim] from noise of that shape.

        `guidance(x_t, v_t, t)` may replace each step's velocity (real-time chunking)."""
        prefix, prefix_pad, prefix_ar = self.embed_prefix(images, image_masks, tokens, token_masks, state)
        cache = self.vlm_with_expert.fill_cache(
            prefix, attention_2d_mask(prefix_pad, prefix_ar), torch.cumsum(prefix_pad, dim=1) - 1)

        batch, chunk = noise.shape[:2]
        suffix_pad = torch.ones(batch, chunk, dtype=torch.bool, device=noise.device)
        suffix_mask = attention_2d_mask(suffix_pad, torch.ones_like(suffix_pad))
        mask = torch.cat([prefix_pad[:, None, :].expand(batch, chunk, -1), suffix_mask], dim=2)
        positions = prefix_pad.sum(dim=-1)[:, None] + torch.cumsum(suffix_pad, dim=1) - 1

        dt = -1.0 / self.config.num_steps
        x_t = noise
        for step in range(self.config.num_steps):
            time = 1.0 + step * dt
            t = torch.tensor(time, dtype=torch.float32, device=noise.device).expand(batch)
            out = self.vlm_with_expert.expert_forward(self.embed_suffix(x_t, t), cache, mask, positions)
            v_t = self.action_out_proj(out[:, -chunk:].to(torch.float32))
            if guidance is not None:
                v_t = guidance(x_t, v_t, time)
            x_t = x_t + dt * v_t
        return x_t
