"""The training loop: LeRobot's `lerobot-train` for one policy on one dataset, single process or DDP.

Per step: next batch (data_s), move it to the device (prep_s), forward under autocast when AMP is on, backward,
clip the gradient norm, AdamW step (updt_s). Every `log_freq` steps the window's averages (over all ranks) go to
the console as LeRobot's line and to metrics.jsonl; every `save_freq` steps and at the end rank 0 writes a
checkpoint in LeRobot's layout. Resuming restores weights (done by the caller, who loads the policy from
`checkpoints/last`), optimizer and RNG state, and continues the step count and the epoch where it stopped.

The loop needs of a policy only `forward(batch) -> (loss, {name: scalar})`, `get_optim_params()` and a
`save(dir)` callable, so it is not tied to ACT.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from policies.train import checkpoint as ckpt
from policies.train.config import TrainConfig
from policies.train.distributed import DistEnv, ResumableSampler, all_mean, seed_worker
from policies.train.metrics import METRICS_FILE, LogRecord, MetricsFile, WindowStats, truncate_after

log = logging.getLogger("policies.train")


class TrainingError(RuntimeError):
    """Training cannot go on (diverged, dataset too small...); the message says what to change."""


@dataclass(frozen=True)
class TrainResult:
    step: int
    checkpoint: Path | None
    last_record: LogRecord | None


@dataclass(frozen=True)
class DatasetSize:
    frames: int
    episodes: int


class Trainer:
    """One run. `save_model(policy, dir)` writes pretrained_model/ (config, weights, processors, train config)."""

    def __init__(
        self,
        policy: nn.Module,
        dataset: Dataset,
        config: TrainConfig,
        *,
        device: torch.device,
        env: DistEnv,
        size: DatasetSize,
        save_model: Callable[[nn.Module, Path], None],
        use_amp: bool = False,
    ) -> None:
        self.policy = policy
        self.dataset = dataset
        self.config = config
        self.device = device
        self.env = env
        self.size = size
        self.save_model = save_model
        self.amp_dtype = _amp_dtype(device) if use_amp else None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        frames = len(dataset)  # type: ignore[arg-type]
        per_rank = frames // env.world_size
        if per_rank < config.batch_size:
            raise TrainingError(
                f"the dataset has {frames} frames, fewer than one batch of {config.batch_size} per process "
                f"({env.world_size} process(es)): lower --batch-size or record more episodes"
            )
        self.batches_per_epoch = per_rank // config.batch_size

    # ------------------------------------------------------------------------------------- building

    def build_optimizer(self) -> torch.optim.Optimizer:
        """AdamW over the policy's parameter groups (ACT: a backbone group with its own lr). The fused kernel
        (same update as LeRobot's AdamW) makes the step several times cheaper on CPU and GPU."""
        groups = self.policy.get_optim_params()  # type: ignore[operator]
        block = self.config.optimizer_block(_policy_config_dict(self.policy))
        return torch.optim.AdamW(groups, lr=block["lr"], weight_decay=block["weight_decay"],
                                 betas=tuple(block["betas"]), eps=block["eps"],
                                 fused=self.device.type in ("cpu", "cuda"))

    def _loader(self, sampler: ResumableSampler, start_step: int) -> DataLoader:
        workers = self.config.num_workers
        generator = torch.Generator().manual_seed(self.config.seed + 7919 * self.env.rank + start_step)
        return DataLoader(
            self.dataset,
            batch_size=self.config.batch_size,
            sampler=sampler,
            num_workers=workers,
            drop_last=True,
            pin_memory=self.device.type == "cuda",
            persistent_workers=workers > 0,
            prefetch_factor=2 if workers > 0 else None,
            worker_init_fn=seed_worker,
            generator=generator,
        )

    # ------------------------------------------------------------------------------------------ run

    def run(self, resume_from: Path | None = None) -> TrainResult:
        cfg, env = self.config, self.env
        self.policy.to(self.device)
        self.policy.train()
        optimizer = self.build_optimizer()
        step = 0
        if resume_from is not None:
            info = ckpt.load_training_state(resume_from, optimizer)
            step = int(info["step"])
            if (info.get("batch_size"), info.get("dp_world_size")) not in (
                (cfg.batch_size, env.world_size), (None, None)
            ):
                log.warning("resuming with batch size %d x %d process(es) (the checkpoint used %s x %s): the "
                            "epoch position is approximate", cfg.batch_size, env.world_size,
                            info.get("batch_size"), info.get("dp_world_size"))
        if step >= cfg.steps:
            raise TrainingError(f"the run already reached step {step} of {cfg.steps}: pass --steps N with N > "
                                f"{step} to train further")
        model: nn.Module = self.policy
        if env.distributed:
            model = nn.parallel.DistributedDataParallel(
                self.policy, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        sampler = ResumableSampler(self.dataset, env, seed=cfg.seed)  # type: ignore[arg-type]
        epoch, done_in_epoch = divmod(step, self.batches_per_epoch)
        sampler.start(epoch, done_in_epoch * cfg.batch_size)
        loader = self._loader(sampler, step)
        metrics = self._open_metrics(step)
        if env.is_main:
            log.info("training %s: %d frames, %d episodes; steps %d -> %d, batch %d x %d process(es) on %s%s",
                     cfg.job_name, self.size.frames, self.size.episodes, step, cfg.steps, cfg.batch_size,
                     env.world_size, self.device, f", AMP {self.amp_dtype}" if self.amp_dtype else "")
        window = WindowStats()
        last_ckpt: Path | None = resume_from
        last_record: LogRecord | None = None
        batches = iter(loader)
        window_start = time.perf_counter()
        try:
            while step < cfg.steps:
                t0 = time.perf_counter()
                try:
                    batch = next(batches)
                except StopIteration:
                    epoch += 1
                    sampler.start(epoch)
                    batches = iter(loader)
                    batch = next(batches)
                t1 = time.perf_counter()
                batch = _to_device(batch, self.device)
                t2 = time.perf_counter()
                loss, parts, grad_norm = self._update(model, optimizer, batch)
                t3 = time.perf_counter()
                step += 1
                window.add({"loss": loss, "grad_norm": grad_norm, "data_s": t1 - t0, "prep_s": t2 - t1,
                            "update_s": t3 - t2, **{f"part/{k}": v for k, v in parts.items()}})
                if (cfg.log_freq > 0 and step % cfg.log_freq == 0) or step == cfg.steps:
                    now = time.perf_counter()
                    last_record = self._log(window, step, optimizer, now - window_start, metrics)
                    window.reset()
                    window_start = now
                if cfg.save_checkpoint and ((cfg.save_freq > 0 and step % cfg.save_freq == 0) or step == cfg.steps):
                    if env.is_main:
                        last_ckpt = self._save(step, optimizer)
                    window_start = time.perf_counter()  # a save's pause is not training speed
        finally:
            if metrics is not None:
                metrics.close()
        if env.is_main:
            log.info("training finished at step %d%s", step, f"; last checkpoint {last_ckpt}" if last_ckpt else "")
        return TrainResult(step=step, checkpoint=last_ckpt, last_record=last_record)

    def _update(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, batch: Mapping[str, Any]
    ) -> tuple[float, dict[str, float], float]:
        autocast = (torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)
                    if self.amp_dtype is not None else contextlib.nullcontext())
        with autocast:
            loss, parts = model(batch)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.config.grad_clip_norm,
                                                   error_if_nonfinite=False)
        self.scaler.step(optimizer)
        self.scaler.update()
        optimizer.zero_grad(set_to_none=True)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return float(loss.detach()), {k: float(v) for k, v in (parts or {}).items()}, float(grad_norm)

    # ------------------------------------------------------------------------------------ logging

    def _open_metrics(self, step: int) -> MetricsFile | None:
        if not self.env.is_main:
            return None
        self.config.output_dir.mkdir(parents=True, exist_ok=True)
        path = self.config.output_dir / METRICS_FILE
        truncate_after(path, step)
        return MetricsFile(path)

    def _log(self, window: WindowStats, step: int, optimizer: torch.optim.Optimizer, wall_s: float,
             metrics: MetricsFile | None) -> LogRecord:
        cfg = self.config
        means = all_mean(window.means(), self.env, self.device)
        if not math.isfinite(means["loss"]):
            raise TrainingError(
                f"the loss became {means['loss']} by step {step}: training diverged; lower the learning rate "
                "(--set optimizer_lr=...) or check the dataset's stats.json for zero or huge std values"
            )
        samples = step * cfg.batch_size * self.env.world_size
        frames_per_episode = self.size.frames / max(1, self.size.episodes)
        record = LogRecord(
            step=step,
            total_steps=cfg.steps,
            samples=samples,
            episodes=samples / frames_per_episode,
            epoch=samples / max(1, self.size.frames),
            loss=means["loss"],
            grad_norm=means["grad_norm"],
            lr=float(optimizer.param_groups[0]["lr"]),
            data_s=means["data_s"],
            prep_s=means["prep_s"],
            update_s=means["update_s"],
            step_s=wall_s / max(1, window.steps),
            samples_per_s=window.steps * cfg.batch_size * self.env.world_size / max(wall_s, 1e-9),
            parts={k.removeprefix("part/"): v for k, v in means.items() if k.startswith("part/")},
            mem_gb=torch.cuda.max_memory_allocated(self.device) / 1024**3 if self.device.type == "cuda" else None,
        )
        if self.env.is_main:
            log.info(record.console_line())
            if metrics is not None:
                metrics.write(record)
        return record

    def _save(self, step: int, optimizer: torch.optim.Optimizer) -> Path:
        cfg = self.config
        path = ckpt.save_checkpoint(
            cfg.output_dir, step, cfg.steps,
            save_model=lambda d: self.save_model(self.policy, d),
            optimizer=optimizer, world_size=self.env.world_size, batch_size=cfg.batch_size,
        )
        log.info("checkpoint saved: %s", path)
        return path


def _amp_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 where the GPU has it (no loss scaling needed), else fp16 with a GradScaler; AMP is CUDA-only."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


def _policy_config_dict(policy: nn.Module) -> dict[str, Any]:
    config = getattr(policy, "config", None)
    to_dict = getattr(config, "to_dict", None)
    return dict(to_dict()) if callable(to_dict) else {}
