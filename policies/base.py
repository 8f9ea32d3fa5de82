"""The policy protocol: what the rollout engine, the trainer and the benches expect of every policy.

Observations use LeRobot's keys, unbatched and in robot units: `observation.state` float32 [D] (joint
positions in the order of the policy's state feature), `observation.images.<camera>` uint8 HWC RGB at the
resolution in the policy's input features, and for language-conditioned policies `task` (str). Actions come
back unnormalized (robot units), float32 numpy. Normalization, device transfer and batching happen inside.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

STATE_KEY = "observation.state"
ENV_STATE_KEY = "observation.environment_state"
IMAGES_PREFIX = "observation.images."
ACTION_KEY = "action"
TASK_KEY = "task"

Observation = Mapping[str, Any]


class ObservationError(ValueError):
    """An observation a policy cannot use; the message names the key and what was expected."""


@dataclass(frozen=True)
class PolicyFeature:
    """A feature as LeRobot's `config.json` declares it: type STATE | VISUAL | ENV | ACTION, shape (CHW for
    images)."""

    type: str
    shape: tuple[int, ...]


@runtime_checkable
class Policy(Protocol):
    name: str  # the config's "type": "act", "smolvla", ...
    input_features: Mapping[str, PolicyFeature]
    output_features: Mapping[str, PolicyFeature]
    chunk_size: int  # actions predicted per inference
    n_action_steps: int  # of which executed before the next inference
    language_conditioned: bool  # reads observation["task"]

    def reset(self) -> None:
        """Forget queued actions and temporal state (a new episode)."""

    def select_action(self, observation: Observation) -> np.ndarray:
        """One action [action_dim] (LeRobot semantics: infers when its internal queue is empty)."""
        ...

    def predict_action_chunk(self, observation: Observation) -> np.ndarray:
        """A whole chunk [chunk_size, action_dim] from one observation, without touching internal queues."""
        ...

    def normalization_stats(self) -> Mapping[str, Mapping[str, np.ndarray]]:
        """Per feature key, the dataset statistics the policy normalizes with (`mean`, `std`, `min`, `max`...)."""
        ...


def image_keys(policy: Policy) -> list[str]:
    return [k for k, f in policy.input_features.items() if f.type == "VISUAL"]
