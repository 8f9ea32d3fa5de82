"""The inference worker: runs the policy on its own thread and keeps the action queue ahead of the loop.

The control loop publishes the newest observation every tick and only ever pops actions, so a slow model can
starve the queue (the loop then holds position and counts it) but never stretches a tick. The worker starts
the next inference while enough actions remain to cover its measured latency, always from the freshest
observation, and tags the chunk with that observation's tick so late actions are dropped, not replayed.

Real-time chunking: a policy that can continue a chunk (`rtc_enabled`, e.g. SmolVLA) is given the actions
still planned from the observation's tick on and how many of them will run before its answer arrives, so the
new chunk starts where the old one is going instead of jumping at the seam.

On the CPU the model gets all cores but one: the control loop, the cameras and the encoders need the last one,
and torch's threads competing for every core made inference several times slower, not faster.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

from engine.rollout.actions import ActionQueue
from policies.base import STATE_KEY, TASK_KEY, Policy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawObservation:
    """What the control loop publishes each tick: the follower state and the cameras' newest images."""

    tick: int
    state: np.ndarray  # float32 [n_joints], in the robot's motor order
    images: Mapping[str, np.ndarray]  # camera name -> HWC uint8


@dataclass(frozen=True)
class InferenceStats:
    inferences: int
    last_ms: float
    mean_ms: float
    p99_ms: float
    errors: int
    last_error: str | None


class InferenceWorker:
    """`camera_for` maps each policy image key to (camera name, (H, W) to resize to, or None)."""

    def __init__(
        self,
        policy: Policy,
        queue: ActionQueue,
        *,
        now: Callable[[], int],
        fps: float,
        camera_for: Mapping[str, tuple[str, tuple[int, int] | None]],
        task: Callable[[], str],
        window: int = 200,
    ) -> None:
        self.policy = policy
        self.queue = queue
        self._now = now
        self._period = 1.0 / fps
        self._camera_for = dict(camera_for)
        self._task = task
        # With temporal ensembling every prediction of the whole chunk is averaged in; otherwise only the
        # `n_action_steps` the policy means to execute are planned.
        ensembling = queue.ensemble_coeff is not None
        self._continuous = ensembling  # ensembling wants a prediction from every observation it can get
        self._steps = policy.chunk_size if ensembling else max(1, min(policy.n_action_steps, policy.chunk_size))
        self._latest: RawObservation | None = None
        self._used_tick = -1
        self._cond = threading.Condition()
        self._active = False
        self._stop = False
        self._thread: threading.Thread | None = None
        self._times: deque[float] = deque(maxlen=window)
        self._inferences = 0
        self._errors = 0
        self._last_error: str | None = None
        self.on_error: Callable[[str], None] | None = None
        self._threads_before: int | None = None

    # ------------------------------------------------------------------------------------ control
    def start(self) -> None:
        if _on_cpu(self.policy):
            self._threads_before = torch.get_num_threads()
            torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
        self._thread = threading.Thread(target=self._run, name="inference", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the inference worker did not stop within %.0f s (a model call is still running)",
                            timeout)
        if self._threads_before is not None:
            torch.set_num_threads(self._threads_before)

    def set_active(self, active: bool) -> None:
        """Infer only while the policy is in control (not paused, not during a takeover)."""
        with self._cond:
            self._active = active
            self._cond.notify_all()

    def publish(self, observation: RawObservation) -> None:
        """Called by the control loop every tick; never blocks for long (a lock, no work)."""
        with self._cond:
            self._latest = observation
            self._cond.notify_all()

    # ------------------------------------------------------------------------------------ the worker
    def _lead_ticks(self) -> int:
        """Start the next inference while this many planned actions remain: its p90 latency plus a margin."""
        if not self._times:
            return 1
        latency = float(np.percentile(np.fromiter(self._times, float), 90))
        return min(self._steps, math.ceil(latency / self._period) + 2)

    def _wait_for_need(self) -> RawObservation | None:
        with self._cond:
            while True:
                if self._stop:
                    return None
                obs = self._latest
                fresh = obs is not None and obs.tick > self._used_tick
                needed = self._continuous or self.queue.remaining(self._now()) <= self._lead_ticks()
                if self._active and fresh and needed:
                    assert obs is not None
                    self._used_tick = obs.tick
                    return obs
                self._cond.wait(self._period / 2)

    def _run(self) -> None:
        while True:
            raw = self._wait_for_need()
            if raw is None:
                return
            generation = self.queue.generation
            try:
                observation = self.prepare(raw)
                t0 = time.perf_counter()
                if getattr(self.policy, "rtc_enabled", False):
                    delay = self._lead_ticks() - 2 if self._times else 0
                    prefix = self.queue.planned(raw.tick)
                    chunk = self.policy.predict_action_chunk(  # type: ignore[call-arg]
                        observation, prefix=prefix, inference_delay=max(0, delay))
                else:
                    chunk = self.policy.predict_action_chunk(observation)
                self._times.append(time.perf_counter() - t0)
                self._inferences += 1
            except Exception as e:  # a failing model must not kill the worker silently, nor move the arm
                self._errors += 1
                self._last_error = f"{type(e).__name__}: {e}"
                log.error("policy inference failed: %s", self._last_error)
                if self.on_error is not None:
                    self.on_error(self._last_error)
                with self._cond:
                    self._cond.wait(0.5)
                continue
            self.queue.put(np.asarray(chunk)[: self._steps], raw.tick, self._now(), generation)

    def prepare(self, raw: RawObservation) -> dict[str, Any]:
        """The policy's observation from a raw one: images picked by key and resized where needed."""
        observation: dict[str, Any] = {STATE_KEY: raw.state}
        for key, (camera, size) in self._camera_for.items():
            image = raw.images[camera]
            if size is not None and image.shape[:2] != size:
                image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)
            observation[key] = image
        if self.policy.language_conditioned:
            observation[TASK_KEY] = self._task()
        return observation

    def stats(self) -> InferenceStats:
        times = np.fromiter(self._times, float) * 1e3
        return InferenceStats(
            inferences=self._inferences,
            last_ms=float(times[-1]) if times.size else 0.0,
            mean_ms=float(times.mean()) if times.size else 0.0,
            p99_ms=float(np.percentile(times, 99)) if times.size else 0.0,
            errors=self._errors,
            last_error=self._last_error,
        )


def _on_cpu(policy: Policy) -> bool:
    device = getattr(policy, "device", "cpu")
    return torch.device(device).type == "cpu" if isinstance(device, str | torch.device) else True
