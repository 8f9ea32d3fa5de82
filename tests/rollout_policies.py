"""Small real policies for rollout tests: they follow the `policies.base.Policy` protocol exactly, with
behaviour a test can predict (move towards a target pose), and optional deliberate slowness or blocking."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence

import numpy as np

from policies.base import ACTION_KEY, IMAGES_PREFIX, STATE_KEY, TASK_KEY, Observation, PolicyFeature


class GoToPolicy:
    """Each chunk walks from the observed state towards `target`, at most `step` per action. Records the
    observations it was given (image shapes, tasks) so tests can check what reached the model."""

    name = "goto"

    def __init__(
        self,
        target: Sequence[float],
        *,
        cameras: Mapping[str, tuple[int, int]] | None = None,
        chunk_size: int = 10,
        n_action_steps: int | None = None,
        step: float = 2.0,
        delay_s: float = 0.0,
        language_conditioned: bool = False,
        stats: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    ) -> None:
        self.target = np.asarray(target, dtype=np.float32)
        dim = len(self.target)
        self.input_features: dict[str, PolicyFeature] = {STATE_KEY: PolicyFeature("STATE", (dim,))}
        for name, (h, w) in (cameras or {}).items():
            self.input_features[IMAGES_PREFIX + name] = PolicyFeature("VISUAL", (3, h, w))
        self.output_features = {ACTION_KEY: PolicyFeature("ACTION", (dim,))}
        self.chunk_size = chunk_size
        self.n_action_steps = n_action_steps or chunk_size
        self.language_conditioned = language_conditioned
        self.step = step
        self.delay_s = delay_s
        self.gate: threading.Event | None = None  # when set by a test: inference blocks until it is set
        self.seen_shapes: list[dict[str, tuple[int, ...]]] = []
        self.seen_tasks: list[str] = []
        self._stats = stats or {}
        self.calls = 0

    def reset(self) -> None:
        pass

    def predict_action_chunk(self, observation: Observation) -> np.ndarray:
        self.calls += 1
        if self.gate is not None:
            self.gate.wait()
        if self.delay_s:
            time.sleep(self.delay_s)
        self.seen_shapes.append({k: np.asarray(v).shape for k, v in observation.items() if k != TASK_KEY})
        if TASK_KEY in observation:
            self.seen_tasks.append(observation[TASK_KEY])
        state = np.asarray(observation[STATE_KEY], dtype=np.float32)
        out = np.empty((self.chunk_size, len(state)), dtype=np.float32)
        pos = state.copy()
        for i in range(self.chunk_size):
            pos = pos + np.clip(self.target - pos, -self.step, self.step)
            out[i] = pos
        return out

    def select_action(self, observation: Observation) -> np.ndarray:
        return self.predict_action_chunk(observation)[0]

    def normalization_stats(self) -> Mapping[str, Mapping[str, np.ndarray]]:
        return self._stats
