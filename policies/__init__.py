"""Policies: the policy protocol, ACT, normalization, checkpoint I/O and the trainer.

`load_policy` and `save_pretrained` are imported on first use, so `import policies.base` (which the app does
at startup) does not pay for importing torch.
"""

from typing import Any

__all__ = ["load_policy", "save_pretrained"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from policies import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(f"module 'policies' has no attribute {name!r}")
