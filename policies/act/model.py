"""The Action Chunking Transformer network (Zhao et al. 2023, arXiv:2304.13705) on normalized tensors.

Submodule names, parameter shapes and buffers are LeRobot's (`encoder.layers.0.self_attn.in_proj_weight`,
`vae_encoder_pos_enc`, `encoder_1d_feature_pos_embed`...), and so is the computation: tokens are
[latent, (state), (env state), camera pixels...] for the encoder, the decoder cross-attends with `chunk_size`
learned queries, and the VAE encoder sees [cls, (state), actions...] only when training. Sequences are laid
out (S, B, D) as in the reference implementation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from policies.act.config import ACTConfig
from policies.act.resnet import OUT_CHANNELS, ResNet18Backbone


def sinusoid_1d(positions: int, dim: int) -> torch.Tensor:
    """[positions, dim] fixed encoding: sin on even, cos on odd channels, frequency 10000^(-2⌊j/2⌋/dim)."""
    pos = torch.arange(positions, dtype=torch.float64).unsqueeze(1)
    j = torch.arange(dim, dtype=torch.float64)
    exponent = 2 * torch.div(j, 2, rounding_mode="floor") / dim
    angle = pos / torch.pow(torch.tensor(10000.0, dtype=torch.float64), exponent)
    table = torch.empty_like(angle)
    table[:, 0::2] = torch.sin(angle[:, 0::2])
    table[:, 1::2] = torch.cos(angle[:, 1::2])
    return table.float()


def sinusoid_2d(height: int, width: int, dim: int, device: torch.device) -> torch.Tensor:
    """[1, 2*dim, H, W] DETR-style encoding of feature-map pixels: y channels then x channels, positions
    1..H (1..W) scaled to (0, 2π], sin/cos interleaved."""
    eps, two_pi = 1e-6, 2 * math.pi
    y = torch.arange(1, height + 1, dtype=torch.float32, device=device)
    x = torch.arange(1, width + 1, dtype=torch.float32, device=device)
    y = (y / (y[-1] + eps) * two_pi).reshape(1, height, 1, 1).expand(1, height, width, 1)
    x = (x / (x[-1] + eps) * two_pi).reshape(1, 1, width, 1).expand(1, height, width, 1)
    channel = torch.arange(dim, dtype=torch.float32, device=device)
    freq = 10000 ** (2 * torch.div(channel, 2, rounding_mode="floor") / dim)

    def encode(t: torch.Tensor) -> torch.Tensor:
        t = t / freq
        return torch.stack((t[..., 0::2].sin(), t[..., 1::2].cos()), dim=-1).flatten(3)

    return torch.cat((encode(y), encode(x)), dim=3).permute(0, 3, 1, 2)


def _activation(name: str):  # type: ignore[no-untyped-def]
    return {"relu": F.relu, "gelu": F.gelu}[name]


class EncoderLayer(nn.Module):
    def __init__(self, config: ACTConfig) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(config.dim_model, config.n_heads, dropout=config.dropout)
        self.linear1 = nn.Linear(config.dim_model, config.dim_feedforward)
        self.dropout = nn.Dropout(config.dropout)
        self.linear2 = nn.Linear(config.dim_feedforward, config.dim_model)
        self.norm1 = nn.LayerNorm(config.dim_model)
        self.norm2 = nn.LayerNorm(config.dim_model)
        self.dropout1 = nn.Dropout(config.dropout)
        self.dropout2 = nn.Dropout(config.dropout)
        self.activation = _activation(config.feedforward_activation)
        self.pre_norm = config.pre_norm

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None, pad_mask: torch.Tensor | None) -> torch.Tensor:
        skip = x
        if self.pre_norm:
            x = self.norm1(x)
        qk = x if pos is None else x + pos
        x = skip + self.dropout1(self.self_attn(qk, qk, x, key_padding_mask=pad_mask, need_weights=False)[0])
        if self.pre_norm:
            skip, x = x, self.norm2(x)
        else:
            x = skip = self.norm1(x)
        x = skip + self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))
        return x if self.pre_norm else self.norm2(x)


class Encoder(nn.Module):
    def __init__(self, config: ACTConfig, n_layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(n_layers))
        self.norm = nn.LayerNorm(config.dim_model) if config.pre_norm else nn.Identity()

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None = None,
                pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, pos, pad_mask)
        return self.norm(x)


class DecoderLayer(nn.Module):
    def __init__(self, config: ACTConfig) -> None:
        super().__init__()
        d = config.dim_model
        self.self_attn = nn.MultiheadAttention(d, config.n_heads, dropout=config.dropout)
        self.multihead_attn = nn.MultiheadAttention(d, config.n_heads, dropout=config.dropout)
        self.linear1 = nn.Linear(d, config.dim_feedforward)
        self.dropout = nn.Dropout(config.dropout)
        self.linear2 = nn.Linear(config.dim_feedforward, d)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.dropout1 = nn.Dropout(config.dropout)
        self.dropout2 = nn.Dropout(config.dropout)
        self.dropout3 = nn.Dropout(config.dropout)
        self.activation = _activation(config.feedforward_activation)
        self.pre_norm = config.pre_norm

    def forward(self, x: torch.Tensor, memory: torch.Tensor, query_pos: torch.Tensor,
                memory_pos: torch.Tensor) -> torch.Tensor:
        skip = x
        if self.pre_norm:
            x = self.norm1(x)
        q = x + query_pos
        x = skip + self.dropout1(self.self_attn(q, q, x, need_weights=False)[0])
        if self.pre_norm:
            skip, x = x, self.norm2(x)
        else:
            x = skip = self.norm1(x)
        x = self.multihead_attn(x + query_pos, memory + memory_pos, memory, need_weights=False)[0]
        x = skip + self.dropout2(x)
        if self.pre_norm:
            skip, x = x, self.norm3(x)
        else:
            x = skip = self.norm2(x)
        x = skip + self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))
        return x if self.pre_norm else self.norm3(x)


class Decoder(nn.Module):
    def __init__(self, config: ACTConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.n_decoder_layers))
        self.norm = nn.LayerNorm(config.dim_model)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, query_pos: torch.Tensor,
                memory_pos: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, memory, query_pos, memory_pos)
        return self.norm(x)


class ACT(nn.Module):
    def __init__(self, config: ACTConfig) -> None:
        super().__init__()
        config.validate_features()
        self.config = config
        d = config.dim_model
        state, env = config.robot_state_feature, config.env_state_feature
        action = config.action_feature
        assert action is not None  # validate_features guarantees it
        self.has_state, self.has_env = state is not None, env is not None
        self.has_images = bool(config.image_features)

        if config.use_vae:
            self.vae_encoder = Encoder(config, config.n_vae_encoder_layers)
            self.vae_encoder_cls_embed = nn.Embedding(1, d)
            if state is not None:
                self.vae_encoder_robot_state_input_proj = nn.Linear(state.shape[0], d)
            self.vae_encoder_action_input_proj = nn.Linear(action.shape[0], d)
            self.vae_encoder_latent_output_proj = nn.Linear(d, config.latent_dim * 2)
            n_tokens = 1 + config.chunk_size + (state is not None)
            self.register_buffer("vae_encoder_pos_enc", sinusoid_1d(n_tokens, d).unsqueeze(0))

        if self.has_images:
            self.backbone = ResNet18Backbone()
        self.encoder = Encoder(config, config.n_encoder_layers)
        self.decoder = Decoder(config)
        if state is not None:
            self.encoder_robot_state_input_proj = nn.Linear(state.shape[0], d)
        if env is not None:
            self.encoder_env_state_input_proj = nn.Linear(env.shape[0], d)
        self.encoder_latent_input_proj = nn.Linear(config.latent_dim, d)
        if self.has_images:
            self.encoder_img_feat_input_proj = nn.Conv2d(OUT_CHANNELS, d, kernel_size=1)
        self.encoder_1d_feature_pos_embed = nn.Embedding(1 + self.has_state + self.has_env, d)
        self.decoder_pos_embed = nn.Embedding(config.chunk_size, d)
        self.action_head = nn.Linear(d, action.shape[0])
        for p in [*self.encoder.parameters(), *self.decoder.parameters()]:
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(
        self,
        state: torch.Tensor | None,
        env_state: torch.Tensor | None,
        images: list[torch.Tensor],
        actions: torch.Tensor | None = None,
        action_is_pad: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
        """Normalized inputs ([B, D], [B, E], per camera [B, 3, H, W]) -> ([B, chunk, A] actions, latent
        (mu, log σ²) when the VAE encoder ran). The VAE encoder runs only in training with target actions;
        otherwise the latent is zero, as at inference."""
        cfg = self.config
        batch = images[0].shape[0] if images else env_state.shape[0]  # type: ignore[union-attr]
        device = self.encoder_latent_input_proj.weight.device
        latent_params = None
        if cfg.use_vae and self.training and actions is not None:
            tokens = [self.vae_encoder_cls_embed.weight.expand(batch, 1, -1)]
            if self.has_state:
                tokens.append(self.vae_encoder_robot_state_input_proj(state).unsqueeze(1))
            tokens.append(self.vae_encoder_action_input_proj(actions))
            vae_in = torch.cat(tokens, dim=1).transpose(0, 1)
            prefix_pad = torch.zeros(batch, 1 + self.has_state, dtype=torch.bool, device=device)
            if action_is_pad is None:
                action_is_pad = torch.zeros(batch, cfg.chunk_size, dtype=torch.bool, device=device)
            pad = torch.cat([prefix_pad, action_is_pad], dim=1)
            cls_out = self.vae_encoder(vae_in, pos=self.vae_encoder_pos_enc.transpose(0, 1), pad_mask=pad)[0]
            params = self.vae_encoder_latent_output_proj(cls_out)
            mu, log_sigma_x2 = params[:, : cfg.latent_dim], params[:, cfg.latent_dim :]
            latent = mu + (log_sigma_x2 / 2).exp() * torch.randn_like(mu)
            latent_params = (mu, log_sigma_x2)
        else:
            latent = torch.zeros(batch, cfg.latent_dim, dtype=torch.float32, device=device)

        tokens = [self.encoder_latent_input_proj(latent)]
        if self.has_state:
            tokens.append(self.encoder_robot_state_input_proj(state))
        if self.has_env:
            tokens.append(self.encoder_env_state_input_proj(env_state))
        enc_in = torch.stack(tokens)  # [n_1d, B, D]
        pos = self.encoder_1d_feature_pos_embed.weight.unsqueeze(1)  # [n_1d, 1, D]
        enc_parts, pos_parts = [enc_in], [pos]
        for image in images:
            features = self.backbone(image)
            cam_pos = sinusoid_2d(features.shape[2], features.shape[3], cfg.dim_model // 2, features.device)
            features = self.encoder_img_feat_input_proj(features)
            enc_parts.append(features.flatten(2).permute(2, 0, 1))  # [H*W, B, D]
            pos_parts.append(cam_pos.to(features.dtype).flatten(2).permute(2, 0, 1))  # [H*W, 1, D]
        enc_in, pos = torch.cat(enc_parts), torch.cat(pos_parts)
        memory = self.encoder(enc_in, pos=pos)
        queries = torch.zeros(cfg.chunk_size, batch, cfg.dim_model, dtype=pos.dtype, device=pos.device)
        out = self.decoder(queries, memory, self.decoder_pos_embed.weight.unsqueeze(1), pos)
        return self.action_head(out.transpose(0, 1)), latent_params
