"""Policy rollout: inference worker, action queue, preflight, strategies (base, dagger, highlight)."""

from engine.rollout.preflight import PreflightError
from engine.rollout.runner import STRATEGIES, Mode, Rollout, RolloutSettings, RolloutSnapshot

__all__ = ["STRATEGIES", "Mode", "PreflightError", "Rollout", "RolloutSettings", "RolloutSnapshot"]
