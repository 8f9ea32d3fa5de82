"""Tiny SmolVLM folders, built once per test session (a second each, offline)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.engine.vqa.tiny_vlm import EOS, build_tiny_smolvlm


@pytest.fixture(scope="session")
def random_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random weights: whatever it says is odd, and the same every time (greedy decoding)."""
    return build_tiny_smolvlm(tmp_path_factory.mktemp("vlm") / "random")


@pytest.fixture(scope="session")
def pointing_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Answers `<loc0512>` at every step: with 2 new tokens, a point in the middle of the image."""
    return build_tiny_smolvlm(tmp_path_factory.mktemp("vlm") / "pointing", forced="<loc0512>")


@pytest.fixture(scope="session")
def silent_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ends its answer at once: an empty answer."""
    return build_tiny_smolvlm(tmp_path_factory.mktemp("vlm") / "silent", forced=EOS)


@pytest.fixture
def two_cameras() -> dict[str, np.ndarray]:
    """Two views that differ everywhere, so drawing on the wrong one shows."""
    return {
        "front": np.full((48, 64, 3), (30, 30, 30), np.uint8),
        "wrist": np.full((40, 80, 3), (200, 200, 200), np.uint8),
    }
