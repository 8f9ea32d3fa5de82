"""Preflight: before anything moves, check that the live robot can feed the policy, and say so once.

Every camera the policy was trained with must be there (its frames are resized when the resolution differs,
and the operator is told); the state and action sizes must match the arm; and a live joint several standard
deviations away from where the training data lived gets a warning, since a policy started far outside its
data tends to do something surprising.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from policies.base import ACTION_KEY, ENV_STATE_KEY, IMAGES_PREFIX, STATE_KEY, Policy

SIGMA_WARN = 3.0


class PreflightError(ValueError):
    """The policy cannot run on this robot; the message says what is missing and what to do."""


@dataclass(frozen=True)
class Preflight:
    camera_for: dict[str, tuple[str, tuple[int, int] | None]]  # policy image key -> (camera, resize to)
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def report(self) -> list[str]:
        return [*self.notes, *(f"warning: {w}" for w in self.warnings)]


def preflight(
    policy: Policy,
    joints: Sequence[str],
    cameras: Mapping[str, tuple[int, int]],
    state: np.ndarray,
) -> Preflight:
    """`joints` in the robot's motor order, `cameras` name -> (height, width), `state` the live positions."""
    problems: list[str] = []
    notes: list[str] = []
    camera_for: dict[str, tuple[str, tuple[int, int] | None]] = {}
    features = policy.input_features
    for key, feature in features.items():
        if feature.type == "VISUAL":
            name = key.removeprefix(IMAGES_PREFIX)
            if name not in cameras:
                have = ", ".join(cameras) or "none"
                problems.append(
                    f"the policy needs camera '{name}' (robot cameras: {have}): add it to the profile's "
                    "cameras under that name"
                )
                continue
            want = (int(feature.shape[-2]), int(feature.shape[-1]))
            live = cameras[name]
            if live != want:
                notes.append(
                    f"{name}: camera {live[1]}×{live[0]} is resized to the policy's {want[1]}×{want[0]}"
                )
                camera_for[key] = (name, want)
            else:
                camera_for[key] = (name, None)
        elif key == ENV_STATE_KEY or feature.type == "ENV":
            problems.append(f"the policy needs '{key}', which a robot arm does not provide")
    state_feature = features.get(STATE_KEY)
    if state_feature is not None and int(state_feature.shape[0]) != len(joints):
        problems.append(
            f"the policy's state has {state_feature.shape[0]} values but the arm has {len(joints)} joints "
            f"({', '.join(joints)}): it was trained on another robot"
        )
    action = policy.output_features.get(ACTION_KEY)
    if action is None or int(action.shape[0]) != len(joints):
        size = "no action" if action is None else f"{action.shape[0]} actions"
        problems.append(f"the policy outputs {size} but the arm has {len(joints)} joints: it was trained on "
                        "another robot")
    if problems:
        raise PreflightError("; ".join(problems))
    unused = sorted(set(cameras) - {c for c, _ in camera_for.values()})
    if unused:
        notes.append(f"not used by the policy: {', '.join(unused)}")
    return Preflight(camera_for=camera_for, notes=tuple(notes),
                     warnings=tuple(_state_warnings(policy, joints, state)))


def _state_warnings(policy: Policy, joints: Sequence[str], state: np.ndarray) -> list[str]:
    stats = policy.normalization_stats().get(STATE_KEY, {})
    if "mean" not in stats or "std" not in stats:
        return []
    mean = np.asarray(stats["mean"], dtype=np.float64).reshape(-1)
    std = np.asarray(stats["std"], dtype=np.float64).reshape(-1)
    if mean.size != len(joints) or std.size != len(joints):
        return []
    warnings = []
    for joint, x, m, s in zip(joints, np.asarray(state, dtype=np.float64), mean, std, strict=True):
        z = abs(x - m) / max(s, 1e-6)
        if z > SIGMA_WARN:
            warnings.append(
                f"{joint} is at {x:.1f}, {z:.1f}σ from the training data (mean {m:.1f}, σ {s:.1f}): "
                "move the arm near the pose the demonstrations started from"
            )
    return warnings
