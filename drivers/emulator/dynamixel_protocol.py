"""Dynamixel protocol 2.0: framing (CRC-16, byte stuffing) and answering.

Packet `FF FF FD 00 ID LEN_L LEN_H INSTR PARAMS CRC_L CRC_H`, `LEN` = stuffed bytes after it (instruction,
params, CRC). Status packets carry instruction 0x55 and an error byte before their params. Inside the
body, `FF FF FD` is sent as `FF FF FD FD` so it never looks like a header; the CRC covers the stuffed bytes.
A packet with a bad CRC gets a CRC-error status from the motor it names, as the X-series firmware does.
"""

from __future__ import annotations

from collections.abc import Sequence

from drivers.emulator.dynamixel_servo import DynamixelServo
from drivers.emulator.framing import Packet, Reply, StreamFramer

HEADER = b"\xff\xff\xfd\x00"
BROADCAST_ID = 0xFE
MAX_LENGTH = 1024  # the SDK's packet buffer size
STATUS = 0x55

PING, READ, WRITE, REG_WRITE, ACTION, REBOOT = 0x01, 0x02, 0x03, 0x04, 0x05, 0x08
SYNC_READ, SYNC_WRITE, BULK_READ, BULK_WRITE = 0x82, 0x83, 0x92, 0x93

ERROR_INSTRUCTION, ERROR_CRC, ERROR_DATA_LENGTH = 2, 3, 5
STATUS_LEVEL_PING_ONLY, STATUS_LEVEL_PING_READ = 0, 1


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes | bytearray) -> int:
    """CRC-16/BUYPASS (poly 0x8005, init 0, no reflection), the protocol-2 checksum."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) ^ _CRC_TABLE[((crc >> 8) ^ byte) & 0xFF]) & 0xFFFF
    return crc


def stuff(body: bytes, preceding: bytes = b"") -> bytes:
    """Insert an extra FD after every FF FF FD in `body` (`preceding` = the header bytes before it)."""
    out = bytearray()
    window = bytearray(preceding[-2:])
    for byte in body:
        out.append(byte)
        if byte == 0xFD and window[-2:] == b"\xff\xff":
            out.append(0xFD)
        window = (window + bytes([byte]))[-2:]
    return bytes(out)


def unstuff(body: bytes, preceding: bytes = b"") -> bytes:
    """Inverse of `stuff`: drop the FD that follows each FF FF FD."""
    out = bytearray()
    window = bytearray(preceding[-2:])
    index = 0
    while index < len(body):
        byte = body[index]
        out.append(byte)
        if byte == 0xFD and window[-2:] == b"\xff\xff" and index + 1 < len(body) and body[index + 1] == 0xFD:
            index += 1  # skip the stuffing byte
        window = (window + bytes([byte]))[-2:]
        index += 1
    return bytes(out)


def _frame(motor_id: int, body: bytes) -> bytes:
    """Header + stuffed body + CRC for an unstuffed body (instruction/status byte onward)."""
    prefix = HEADER + bytes([motor_id])
    stuffed = stuff(body, b"\x00\x00")  # LEN bytes precede the body; they can never both be FF
    length = len(stuffed) + 2
    packet = prefix + length.to_bytes(2, "little") + stuffed
    return packet + crc16(packet).to_bytes(2, "little")


def status_packet(motor_id: int, error: int, params: bytes = b"") -> bytes:
    return _frame(motor_id, bytes([STATUS, error]) + params)


def instruction_packet(motor_id: int, instruction: int, params: bytes = b"") -> bytes:
    """Build an instruction packet (used by tests and tools that talk raw bytes)."""
    return _frame(motor_id, bytes([instruction]) + params)


class DynamixelFramer(StreamFramer):
    def _scan(self, buffer: bytearray) -> tuple[Packet | None, int]:
        start = buffer.find(HEADER)
        if start < 0:
            return None, max(0, len(buffer) - (len(HEADER) - 1))  # keep a possible header prefix
        if start > 0:
            return None, start
        if len(buffer) < 7:
            return None, 0
        length = int.from_bytes(buffer[5:7], "little")
        if length < 3 or length > MAX_LENGTH:
            return None, 1
        total = 7 + length
        if len(buffer) < total:
            return None, 0
        valid = crc16(buffer[: total - 2]) == int.from_bytes(buffer[total - 2 : total], "little")
        body = unstuff(bytes(buffer[7 : total - 2]), bytes(buffer[5:7]))
        packet = Packet(buffer[4], body[0], body[1:], valid)
        return packet, total if valid else 1


def _u16(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 2], "little")


class DynamixelProtocol:
    """Executes protocol-2 instruction packets against the listening servos and builds their replies."""

    name = "dynamixel"

    def new_framer(self) -> DynamixelFramer:
        return DynamixelFramer()

    def handle(self, packet: Packet, servos: Sequence[DynamixelServo]) -> list[Reply]:
        """`servos`: the powered motors listening at the client's baud rate, in id order."""
        broadcast = packet.motor_id == BROADCAST_ID
        targets = list(servos) if broadcast else [s for s in servos if s.id == packet.motor_id]
        if not packet.valid:
            return [] if broadcast else [Reply(s.id, status_packet(s.id, ERROR_CRC)) for s in targets]
        instruction, params = packet.instruction, packet.params
        if broadcast and instruction in (SYNC_READ, SYNC_WRITE, BULK_READ, BULK_WRITE):
            return self._group(instruction, params, servos)
        replies: list[Reply] = []
        for servo in targets:
            motor_id = servo.id  # before a write can change it
            level = servo.read_register("Status_Return_Level")
            if instruction == PING:
                model = servo.read_register("Model_Number").to_bytes(2, "little")
                params_out = model + bytes([servo.read_register("Firmware_Version")])
                replies.append(Reply(motor_id, status_packet(motor_id, 0, params_out)))
                continue
            if instruction == READ:
                if broadcast:
                    continue
                if len(params) != 4:
                    error, data = ERROR_DATA_LENGTH, b""
                else:
                    error, data = servo.read_bytes(_u16(params, 0), _u16(params, 2))
                if level != STATUS_LEVEL_PING_ONLY:
                    replies.append(
                        Reply(motor_id, status_packet(motor_id, error, data if not error else b""))
                    )
                continue
            if instruction in (WRITE, REG_WRITE):
                if len(params) < 3:
                    error = ERROR_DATA_LENGTH
                elif instruction == WRITE:
                    error = servo.write_bytes(_u16(params, 0), params[2:])
                else:
                    error = servo.register_write(_u16(params, 0), params[2:])
            elif instruction == ACTION:
                error = servo.action()
            elif instruction == REBOOT:
                servo.power_cycle()
                error = 0
            else:
                error = ERROR_INSTRUCTION
            if not broadcast and level not in (STATUS_LEVEL_PING_ONLY, STATUS_LEVEL_PING_READ):
                replies.append(Reply(motor_id, status_packet(motor_id, error)))
        return replies

    @staticmethod
    def _group(instruction: int, params: bytes, servos: Sequence[DynamixelServo]) -> list[Reply]:
        """SYNC/BULK READ/WRITE: broadcast instructions that address several motors at once."""
        by_id: dict[int, list[DynamixelServo]] = {}
        for servo in servos:
            by_id.setdefault(servo.id, []).append(servo)
        replies: list[Reply] = []

        def read(motor_id: int, address: int, length: int) -> None:
            for servo in by_id.get(motor_id, []):
                if servo.read_register("Status_Return_Level") == STATUS_LEVEL_PING_ONLY:
                    continue
                error, data = servo.read_bytes(address, length)
                replies.append(Reply(motor_id, status_packet(motor_id, error, data if not error else b"")))

        def write(motor_id: int, address: int, data: bytes) -> None:
            for servo in by_id.get(motor_id, []):
                servo.write_bytes(address, data)

        if instruction in (SYNC_READ, SYNC_WRITE):
            if len(params) < 4:
                return []
            address, length = _u16(params, 0), _u16(params, 2)
            if instruction == SYNC_READ:
                for motor_id in params[4:]:
                    read(motor_id, address, length)
            elif length:
                for start in range(4, len(params) - length, length + 1):
                    write(params[start], address, params[start + 1 : start + 1 + length])
            return replies
        index = 0
        while index + 5 <= len(params):  # BULK_*: (id, addr_L, addr_H, len_L, len_H[, data]) repeated
            motor_id, address, length = params[index], _u16(params, index + 1), _u16(params, index + 3)
            index += 5
            if instruction == BULK_READ:
                read(motor_id, address, length)
            else:
                write(motor_id, address, params[index : index + length])
                index += length
        return replies
