"""SmolVLA (SmolVLM2 backbone + flow-matching action expert), LeRobot-compatible: same config.json,
state-dict keys, processors and actions; with real-time chunking guidance."""

from policies.smolvla.config import SmolVLAConfig
from policies.smolvla.policy import SmolVLAPolicy
from policies.smolvla.rtc import RTCConfig

__all__ = ["RTCConfig", "SmolVLAConfig", "SmolVLAPolicy"]
