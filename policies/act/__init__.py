"""ACT (Action Chunking Transformer), LeRobot-compatible: same config.json, state-dict keys and processors."""

from policies.act.config import ACTConfig
from policies.act.policy import ACTPolicy, TemporalEnsembler

__all__ = ["ACTConfig", "ACTPolicy", "TemporalEnsembler"]
