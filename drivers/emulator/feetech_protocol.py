"""Feetech wire protocol (STS/SMS "protocol 0" and SCS "protocol 1"): framing and answering.

Instruction `FF FF ID LEN INSTR PARAMS CHK`, status `FF FF ID LEN ERR PARAMS CHK`, `LEN = n_params + 2`,
`CHK = ~(ID + LEN + INSTR/ERR + sum(PARAMS)) & 0xFF`. Both protocol versions frame the same way; they
differ in word byte order (held by each servo) and SCS motors not answering SYNC_READ. A bad checksum is
ignored silently, as the firmware does.
"""

from __future__ import annotations

from collections.abc import Sequence

from drivers.emulator.feetech_servo import FeetechServo
from drivers.emulator.framing import Packet, Reply, StreamFramer

HEADER = b"\xff\xff"
BROADCAST_ID = 0xFE
MAX_PACKET_LENGTH = 250  # the SDK's TX/RX buffer size

PING, READ, WRITE, REG_WRITE, ACTION = 0x01, 0x02, 0x03, 0x04, 0x05
SYNC_READ, SYNC_WRITE = 0x82, 0x83

STATUS_LEVEL_READ_ONLY = 0  # Response_Status_Level 0: only PING and READ are answered


def checksum(body: bytes | bytearray) -> int:
    """Feetech checksum over ID..last param."""
    return ~sum(body) & 0xFF


def status_packet(motor_id: int, error: int, params: bytes = b"") -> bytes:
    body = bytes([motor_id, len(params) + 2, error]) + params
    return HEADER + body + bytes([checksum(body)])


def instruction_packet(motor_id: int, instruction: int, params: bytes = b"") -> bytes:
    """Build an instruction packet (used by tests and tools that talk raw bytes)."""
    body = bytes([motor_id, len(params) + 2, instruction]) + params
    return HEADER + body + bytes([checksum(body)])


class FeetechFramer(StreamFramer):
    def _scan(self, buffer: bytearray) -> tuple[Packet | None, int]:
        start = buffer.find(HEADER)
        if start < 0:
            keep = 1 if buffer[-1] == 0xFF else 0  # a lone FF may be the first header byte
            return None, len(buffer) - keep
        if start > 0:
            return None, start
        if len(buffer) < 4:
            return None, 0
        motor_id, length = buffer[2], buffer[3]
        if motor_id == 0xFF or length < 2 or length + 4 > MAX_PACKET_LENGTH:
            return None, 1
        total = length + 4
        if len(buffer) < total:
            return None, 0
        valid = buffer[total - 1] == checksum(buffer[2 : total - 1])
        packet = Packet(motor_id, buffer[4], bytes(buffer[5 : total - 1]), valid)
        return packet, total if valid else 1


class FeetechProtocol:
    """Executes instruction packets against the servos that can hear them and builds their replies."""

    name = "feetech"

    def new_framer(self) -> FeetechFramer:
        return FeetechFramer()

    def handle(self, packet: Packet, servos: Sequence[FeetechServo]) -> list[Reply]:
        """`servos`: the powered motors listening at the client's baud rate, in id order."""
        if not packet.valid:
            return []
        params, instruction = packet.params, packet.instruction
        broadcast = packet.motor_id == BROADCAST_ID
        targets = list(servos) if broadcast else [s for s in servos if s.id == packet.motor_id]
        if instruction == SYNC_READ:
            return self._sync_read(params, servos) if broadcast else []
        if instruction == SYNC_WRITE:
            if broadcast:
                self._sync_write(params, servos)
            return []
        replies: list[Reply] = []
        for servo in targets:
            motor_id = servo.id  # before a write can change it
            if instruction == PING:
                replies.append(Reply(motor_id, status_packet(motor_id, 0)))
                continue
            if instruction == READ:
                if broadcast or len(params) != 2:
                    continue
                error, data = servo.read_bytes(params[0], params[1])
                replies.append(Reply(motor_id, status_packet(motor_id, error, data)))
                continue
            if instruction == WRITE and len(params) >= 2:
                error = servo.write_bytes(params[0], params[1:])
            elif instruction == REG_WRITE and len(params) >= 2:
                error = servo.register_write(params[0], params[1:])
            elif instruction == ACTION:
                error = servo.action()
            else:
                continue  # unknown or malformed: the firmware stays silent
            if not broadcast and servo.read_register("Response_Status_Level") != STATUS_LEVEL_READ_ONLY:
                replies.append(Reply(motor_id, status_packet(motor_id, error)))
        return replies

    @staticmethod
    def _sync_read(params: bytes, servos: Sequence[FeetechServo]) -> list[Reply]:
        if len(params) < 3:
            return []
        address, length = params[0], params[1]
        replies = []
        for motor_id in params[2:]:
            for servo in servos:
                if servo.id == motor_id and servo.protocol == 0:  # SCS firmware has no SYNC_READ
                    error, data = servo.read_bytes(address, length)
                    replies.append(Reply(motor_id, status_packet(motor_id, error, data)))
        return replies

    @staticmethod
    def _sync_write(params: bytes, servos: Sequence[FeetechServo]) -> None:
        if len(params) < 2 or params[1] == 0:
            return
        address, length = params[0], params[1]
        for start in range(2, len(params) - length, length + 1):
            motor_id, data = params[start], params[start + 1 : start + 1 + length]
            for servo in servos:
                if servo.id == motor_id:
                    servo.write_bytes(address, data)
