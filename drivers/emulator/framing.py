"""Byte-stream framing shared by both protocols: turning whatever the client wrote into packets.

The responder must survive any byte sequence (line noise, a client at the wrong baud, a truncated
write): a framer never raises, skips garbage up to the next header, and on a bad checksum resyncs one byte
later so a real packet hidden behind a false header is still found. A partial packet that stops growing is
expired by the responder (`expire`), which drops its first byte and rescans.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class Packet:
    """One instruction packet as received (params already unstuffed for protocol 2)."""

    motor_id: int
    instruction: int
    params: bytes
    valid: bool = True  # checksum / CRC matched


@dataclass(frozen=True)
class Reply:
    """One status packet to send, from one motor."""

    motor_id: int
    data: bytes


class StreamFramer(ABC):
    """Accumulates bytes and yields complete packets."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> bool:
        """Bytes are waiting for the rest of a packet."""
        return bool(self._buffer)

    def feed(self, data: bytes) -> list[Packet]:
        self._buffer += data
        return self._drain()

    def expire(self) -> list[Packet]:
        """The partial packet at the head will not complete: drop its first byte and rescan."""
        if self._buffer:
            del self._buffer[0]
        return self._drain()

    def reset(self) -> None:
        self._buffer.clear()

    def _drain(self) -> list[Packet]:
        packets: list[Packet] = []
        while self._buffer:
            packet, consumed = self._scan(self._buffer)
            if packet is not None:
                packets.append(packet)
            if consumed == 0:
                break
            del self._buffer[:consumed]
        return packets

    @abstractmethod
    def _scan(self, buffer: bytearray) -> tuple[Packet | None, int]:
        """Look at the head of the buffer: (packet or None, bytes to drop). (None, 0) means wait for more."""
