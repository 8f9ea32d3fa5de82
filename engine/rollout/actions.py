"""The action queue between the inference worker and the control loop.

Every planned action is keyed by the control tick it is meant for: a chunk inferred from the observation of
tick t plans ticks t, t+1, ... So when a chunk arrives late, the actions whose tick has passed are dropped
(counted) instead of replaying the past, and the loop simply pops the action for the current tick.

Three ways to merge a new chunk with what is already planned:
- replace (ACT's default): the fresher chunk wins from the current tick on;
- blend over `blend_ticks`: the new chunk fades in linearly over the first overlapping ticks, so the seam
  between two chunks from different observations does not jerk the arm (slow policies, RTC-style);
- temporal ensembling (ACT's `temporal_ensemble_coeff`): every prediction for a tick is kept and averaged with
  weights exp(-coeff·i), i = 0 for the oldest prediction, exactly as LeRobot's ACTTemporalEnsembler does.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np


@dataclass
class _Planned:
    value: np.ndarray  # the (ensembled) action
    count: int = 1  # predictions merged into it (temporal ensembling)


class ActionQueue:
    def __init__(self, *, ensemble_coeff: float | None = None, blend_ticks: int = 0) -> None:
        if blend_ticks < 0:
            raise ValueError(f"blend_ticks cannot be negative, got {blend_ticks}")
        self.ensemble_coeff = ensemble_coeff
        self.blend_ticks = blend_ticks
        self._plan: dict[int, _Planned] = {}
        self._lock = threading.Lock()
        self._generation = 0
        self.chunk_tick: int | None = None  # observation tick of the newest chunk merged
        self.stale_dropped = 0  # planned actions whose tick had passed when their chunk arrived

    @property
    def generation(self) -> int:
        """Bumped by `clear()`: a chunk inferred before a clear belongs to another generation and is refused."""
        return self._generation

    def put(self, chunk: np.ndarray, obs_tick: int, now_tick: int, generation: int | None = None) -> int:
        """Merge `chunk[i]` as the action for tick `obs_tick + i`; ticks before `now_tick` are dropped.
        Returns how many actions were kept (0 when the chunk was stale or from before a clear)."""
        chunk = np.asarray(chunk, dtype=np.float32)
        if chunk.ndim != 2:
            raise ValueError(f"an action chunk must be [steps, action_dim], got shape {chunk.shape}")
        with self._lock:
            if generation is not None and generation != self._generation:
                return 0
            skip = max(0, now_tick - obs_tick)
            self.stale_dropped += min(skip, len(chunk))
            for t in [t for t in self._plan if t < now_tick]:
                del self._plan[t]
            kept = 0
            for i in range(skip, len(chunk)):
                tick = obs_tick + i
                new = chunk[i]
                old = self._plan.get(tick)
                if old is None:
                    self._plan[tick] = _Planned(new.copy())
                elif self.ensemble_coeff is not None:
                    self._ensemble(old, new)
                elif tick - now_tick < self.blend_ticks:  # the seam: fade the new chunk in
                    w = (tick - now_tick + 1) / (self.blend_ticks + 1)
                    self._plan[tick] = _Planned((1 - w) * old.value + w * new)
                else:
                    self._plan[tick] = _Planned(new.copy())
                kept += 1
            if self.ensemble_coeff is None:
                # A fresher chunk also cancels the older plan beyond its own end.
                end = obs_tick + len(chunk)
                for t in [t for t in self._plan if t >= end]:
                    del self._plan[t]
            if kept:
                self.chunk_tick = obs_tick
            return kept

    def _ensemble(self, old: _Planned, new: np.ndarray) -> None:
        """LeRobot's online update: avg_n+1 = (avg_n·W_n + new·w_n) / W_n+1 with w_i = exp(-coeff·i)."""
        assert self.ensemble_coeff is not None
        w = [math.exp(-self.ensemble_coeff * i) for i in range(old.count + 1)]
        total_before = sum(w[:-1])
        old.value = (old.value * total_before + new * w[-1]) / (total_before + w[-1])
        old.count += 1

    def pop(self, tick: int) -> np.ndarray | None:
        """The action planned for `tick` (older entries are discarded), or None when the queue ran dry. The
        entry stays until the next tick, so `planned(tick)` still starts with the action executing now."""
        with self._lock:
            for t in [t for t in self._plan if t < tick]:
                del self._plan[t]
            planned = self._plan.get(tick)
            return None if planned is None else planned.value

    def planned(self, tick: int) -> np.ndarray | None:
        """The consecutive actions planned from `tick` on ([n, action_dim]), or None: what a real-time chunking
        policy continues from."""
        with self._lock:
            rows = []
            while (planned := self._plan.get(tick + len(rows))) is not None:
                rows.append(planned.value)
        return np.stack(rows) if rows else None

    def remaining(self, tick: int) -> int:
        """Planned actions after `tick` (the one for `tick` itself is executing)."""
        with self._lock:
            return sum(1 for t in self._plan if t > tick)

    def clear(self) -> None:
        """Drop every planned action; chunks still being inferred from older observations will be refused."""
        with self._lock:
            self._plan.clear()
            self._generation += 1
            self.chunk_tick = None
