"""Fixtures for the simulated SO-101: a running virtual robot whose ports live in the test's tmp dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.sim.virtual_robot import VirtualSO101
from tests.waiting import wait_until  # noqa: F401 (the sim tests import it from here)


@pytest.fixture
def port_dir(tmp_path: Path) -> Path:
    d = tmp_path / "ports"
    d.mkdir()
    return d


@pytest.fixture
def virtual(port_dir: Path) -> Iterator[VirtualSO101]:
    sim = VirtualSO101(seed=0, port_dir=port_dir)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()
