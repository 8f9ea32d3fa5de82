"""Data-parallel plumbing for `torchrun`: rank detection, process group, device, a resumable sampler.

`torchrun --nproc_per_node N -m robotui train ...` starts N copies with RANK/WORLD_SIZE/LOCAL_RANK set; each
trains on its shard of every epoch (DistributedSampler), gradients are averaged by DDP, and rank 0 alone
writes checkpoints and metrics. gloo on CPU, NCCL on GPUs. Without those variables it is a plain one-process
run and nothing here touches torch.distributed.
"""

from __future__ import annotations

import datetime
import os
import random
from collections.abc import Iterator, Sized
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

from policies.devices import resolve_device

PROCESS_GROUP_TIMEOUT = datetime.timedelta(minutes=30)  # a checkpoint save on rank 0 must not time out the rest


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def dist_env() -> DistEnv:
    """The torchrun environment, or a single process when it is absent."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise ValueError(f"RANK/WORLD_SIZE/LOCAL_RANK must be integers (set by torchrun): {exc}") from exc
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"inconsistent torchrun environment: RANK={rank} WORLD_SIZE={world}")
    return DistEnv(rank=rank, world_size=world, local_rank=local)


def training_device(name: str | None, env: DistEnv) -> torch.device:
    """The device for this rank: `auto` as `policies.devices` picks it; with several ranks on GPUs, each rank
    takes GPU LOCAL_RANK (and makes it current, as NCCL expects)."""
    device = resolve_device(name)
    if env.distributed and device.type == "mps":
        raise ValueError("multi-process training on MPS is not supported: run a single process")
    if device.type == "cuda":
        index = env.local_rank if env.distributed else (device.index or 0)
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"rank {env.rank} wants GPU {index} but torch sees {torch.cuda.device_count()}: start at most "
                "that many processes per node (--nproc_per_node)"
            )
        torch.cuda.set_device(index)
        device = torch.device("cuda", index)
    return device


def init_process_group(env: DistEnv, device: torch.device) -> None:
    if env.distributed and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs = {"device_id": device} if device.type == "cuda" else {}
        dist.init_process_group(backend=backend, timeout=PROCESS_GROUP_TIMEOUT, **kwargs)


def destroy_process_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_mean(values: dict[str, float], env: DistEnv, device: torch.device) -> dict[str, float]:
    """Each value averaged over the ranks (for log lines: every rank calls this at the same step)."""
    if not env.distributed or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    summed = dict(zip(keys, t.tolist(), strict=True))
    return {k: summed[k] / env.world_size for k in values}  # the caller's order (it is the log line's)


class ResumableSampler(DistributedSampler):
    """DistributedSampler whose current epoch can start part-way, so a resumed run continues with the samples
    the interrupted one had not seen yet instead of replaying the start of the epoch."""

    def __init__(self, dataset: Sized, env: DistEnv, *, seed: int) -> None:
        super().__init__(dataset, num_replicas=env.world_size, rank=env.rank, shuffle=True, seed=seed,
                         drop_last=True)
        self.skip = 0

    def start(self, epoch: int, skip: int = 0) -> None:
        self.set_epoch(epoch)
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.skip:])

    def __len__(self) -> int:
        return self.num_samples - self.skip


def seed_worker(worker_id: int) -> None:
    """DataLoader workers: torch is seeded per worker by the loader; numpy and random follow it."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
