"""LeRobotDataset v3.0 I/O: format definitions, the episode writer with streaming video, crash recovery.

Names are re-exported lazily so that `import engine.dataset.format` (the reader's entry point) does not pay
for PyAV and the writer.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DatasetWriter": "engine.dataset.writer",
    "DatasetMismatchError": "engine.dataset.writer",
    "EpisodeInfo": "engine.dataset.writer",
    "EpisodeRefused": "engine.dataset.writer",
    "CameraStatus": "engine.dataset.writer",
    "recover": "engine.dataset.recovery",
    "DatasetBusyError": "engine.dataset.format",
    "RecoveryReport": "engine.dataset.recovery",
    "StreamingEncoder": "engine.dataset.video",
    "VideoEncoding": "engine.dataset.video",
    "EncoderError": "engine.dataset.video",
    "probe_video": "engine.dataset.video",
    "build_features": "engine.dataset.format",
    "CODEBASE_VERSION": "engine.dataset.format",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'engine.dataset' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
