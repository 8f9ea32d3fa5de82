"""Checkpoint files written whole or not at all, in LeRobot's exact byte layout.

A crash mid-save must leave the previous file in place (a half-written model.safetensors is worse than an old
one), so every file goes to a temporary sibling first and is renamed over the target.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as safetensors_bytes


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any, indent: int) -> None:
    """`json.dump(data, f, indent=indent)` as LeRobot does: no trailing newline, non-ASCII escaped."""
    write_atomic(path, json.dumps(data, indent=indent).encode())


def write_safetensors(path: Path, tensors: Mapping[str, torch.Tensor], metadata: dict[str, str] | None) -> None:
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    write_atomic(path, safetensors_bytes(cpu, metadata=metadata))


def read_json(path: Path) -> Any:
    """The parsed file; a ValueError naming the file, line and column when it is not valid JSON."""
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from e
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not a UTF-8 text file") from e
