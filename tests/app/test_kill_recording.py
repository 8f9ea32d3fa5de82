"""SIGKILL during a real recording (`robotui record --sim` in its own process), at each kind of moment:
afterwards the dataset repairs to a valid one with every completed episode intact. `bench/soak.py` runs many
more random moments."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.kill_recording import MOMENTS, kill_recording


@pytest.mark.parametrize("moment", MOMENTS)
def test_sigkill_loses_at_most_the_episode_in_progress(tmp_path: Path, moment: str) -> None:
    result = kill_recording(tmp_path / "ds", moment, random.Random(moment))
    assert result.ok, result
    if moment != "start":
        assert result.saved_before_kill >= 1  # killed in the second episode: the first must survive whole
