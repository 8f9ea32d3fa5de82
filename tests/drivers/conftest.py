"""Emulated motor buses for driver tests: each one on its own pty, its symlink under the test's tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.emulator import EmulatedBus

SO101_MOTORS = {motor_id: "sts3215" for motor_id in range(1, 7)}
KOCH_MOTORS = {
    1: "xl430-w250",
    2: "xl430-w250",
    3: "xl330-m288",
    4: "xl330-m288",
    5: "xl330-m288",
    6: "xl330-m288",
}


@pytest.fixture
def so101_emulator(tmp_path: Path) -> Iterator[EmulatedBus]:
    """SO-101 arm: Feetech STS3215 ids 1-6 at 1 Mbps, moving by itself toward its goals."""
    with EmulatedBus("feetech", SO101_MOTORS, name="so101", port_dir=tmp_path / "ports") as bus:
        yield bus


@pytest.fixture
def koch_emulator(tmp_path: Path) -> Iterator[EmulatedBus]:
    """Koch arm: Dynamixel XL430-W250 ids 1-2 and XL330-M288 ids 3-6 at 1 Mbps."""
    with EmulatedBus("dynamixel", KOCH_MOTORS, name="koch", port_dir=tmp_path / "ports") as bus:
        yield bus
