"""Fixtures for the simulated SO-101: a running virtual robot whose ports live in the test's tmp dir."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drivers.sim.virtual_robot import VirtualSO101


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.02) -> bool:
    """Poll `predicate` until it holds or `timeout` passes (a loaded CI box gets the whole budget)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


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
