"""Fault injection for the emulated bus: lost and corrupted replies, slow motors, dead motors.

The drivers' retry and error-reporting paths can only be tested if the wire misbehaves on demand.
`Faults` is a plain mutable record the test (or the sim's "flaky cable" option) edits while the bus runs;
the responder reads it for every request. A seed makes the random choices repeatable.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Faults:
    drop_rate: float = 0.0  # probability that a status packet is never sent
    corrupt_rate: float = 0.0  # probability that a status packet's checksum/CRC is wrong
    latency_s: float = 0.0  # extra delay before a request's replies
    dead_ids: set[int] = field(default_factory=set)  # motors that hear nothing and answer nothing
    seed: int | None = None


@dataclass
class EmulatorStats:
    """Wire-level counters since start: what arrived, what went back, what the faults did."""

    requests: int = 0  # well-formed instruction packets received
    bad_packets: int = 0  # framed packets with a wrong checksum/CRC
    replies: int = 0  # status packets written (corrupted ones included)
    dropped: int = 0
    corrupted: int = 0


class FaultInjector:
    """Applies a `Faults` record to outgoing replies with its own seeded random stream."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._seed = faults.seed
        self._rng = random.Random(faults.seed)

    def _random(self) -> float:
        if self.faults.seed != self._seed:  # a new seed set while running restarts the stream
            self._seed = self.faults.seed
            self._rng = random.Random(self._seed)
        return self._rng.random()

    def apply(self, packet: bytes, stats: EmulatorStats) -> bytes | None:
        """The bytes to send for one status packet, or None when it is lost."""
        if self.faults.drop_rate > 0 and self._random() < self.faults.drop_rate:
            stats.dropped += 1
            return None
        if self.faults.corrupt_rate > 0 and self._random() < self.faults.corrupt_rate:
            stats.corrupted += 1
            return packet[:-1] + bytes([packet[-1] ^ 0xFF])  # last checksum/CRC byte flipped
        return packet
