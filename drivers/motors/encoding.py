"""Pure value conversions between user units, signed register values and wire bytes.

Kept free of any SDK or serial import so the numbers can be checked on their own. The normalization
formulas reproduce LeRobot's `_normalize`/`_unnormalize` operation for operation (same expression order,
`int()` truncation, same clamping) so a calibration file yields identical values in both projects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for annotations: bus.py imports this module
    from drivers.motors.bus import MotorCalibration, NormMode

# NormMode is a str Enum, so comparing with its values keeps this module import-free of bus.py.
_M100, _R100, _DEG = "range_m100_100", "range_0_100", "degrees"


# ----------------------------------------------------------------------------------------- sign encodings
def encode_sign_magnitude(value: int, sign_bit: int) -> int:
    """Feetech signed registers: magnitude in the low bits, sign in bit `sign_bit`."""
    magnitude_max = (1 << sign_bit) - 1
    if abs(value) > magnitude_max:
        raise ValueError(f"{value} does not fit a sign-magnitude field with {sign_bit} magnitude bits "
                         f"(|value| <= {magnitude_max})")
    return ((1 << sign_bit) if value < 0 else 0) | abs(value)


def decode_sign_magnitude(raw: int, sign_bit: int) -> int:
    magnitude = raw & ((1 << sign_bit) - 1)
    return -magnitude if (raw >> sign_bit) & 1 else magnitude


def encode_twos_complement(value: int, n_bytes: int) -> int:
    """Dynamixel signed registers: two's complement over the register's full width."""
    bits = 8 * n_bytes
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if not low <= value <= high:
        raise ValueError(f"{value} does not fit a signed {n_bytes}-byte register [{low}, {high}]")
    return value & ((1 << bits) - 1)


def decode_twos_complement(raw: int, n_bytes: int) -> int:
    bits = 8 * n_bytes
    raw &= (1 << bits) - 1
    return raw - (1 << bits) if raw & (1 << (bits - 1)) else raw


# ------------------------------------------------------------------------------------------ byte layout
def int_to_bytes(value: int, n_bytes: int, *, big_endian_words: bool = False) -> list[int]:
    """Split an unsigned register value into wire bytes.

    Words (16 bit) are always sent low word first; `big_endian_words` puts each word's high byte first,
    which is what Feetech protocol 1 (SCS series) expects. Done here rather than through the SDK's
    byte-order global so two buses with different byte orders can live in one process.
    """
    if n_bytes not in (1, 2, 4):
        raise ValueError(f"registers are 1, 2 or 4 bytes wide, not {n_bytes}")
    if not 0 <= value < (1 << (8 * n_bytes)):
        raise ValueError(f"{value} does not fit an unsigned {n_bytes}-byte register")
    if n_bytes == 1:
        return [value]
    out: list[int] = []
    for word in (value & 0xFFFF, value >> 16)[: n_bytes // 2]:
        lo, hi = word & 0xFF, (word >> 8) & 0xFF
        out += [hi, lo] if big_endian_words else [lo, hi]
    return out


def bytes_to_int(data: list[int] | bytes, *, big_endian_words: bool = False) -> int:
    """Inverse of `int_to_bytes`."""
    n = len(data)
    if n not in (1, 2, 4):
        raise ValueError(f"registers are 1, 2 or 4 bytes wide, not {n}")
    if n == 1:
        return data[0]
    value = 0
    for i in range(0, n, 2):
        first, second = data[i], data[i + 1]
        word = (first << 8 | second) if big_endian_words else (second << 8 | first)
        value |= word << (8 * i)
    return value


# ---------------------------------------------------------------------------------------- normalization
def _checked_range(cal: MotorCalibration) -> tuple[int, int]:
    if cal.range_min == cal.range_max:
        raise ValueError(f"invalid calibration for id {cal.id}: range_min == range_max == {cal.range_min}")
    return cal.range_min, cal.range_max


def normalize(raw: int, mode: NormMode, cal: MotorCalibration, resolution: int, apply_drive_mode: bool) -> float:
    """Raw (homed) encoder ticks -> user units."""
    min_, max_ = _checked_range(cal)
    drive_mode = apply_drive_mode and bool(cal.drive_mode)
    if mode == _M100:
        bounded = min(max_, max(min_, raw))
        norm = (((bounded - min_) / (max_ - min_)) * 200) - 100
        return -norm if drive_mode else norm
    if mode == _R100:
        bounded = min(max_, max(min_, raw))
        norm = ((bounded - min_) / (max_ - min_)) * 100
        return 100 - norm if drive_mode else norm
    if mode == _DEG:
        mid = (min_ + max_) / 2
        max_res = resolution - 1
        return (raw - mid) * 360 / max_res
    raise ValueError(f"unknown normalization mode {mode!r}")


def unnormalize(value: float, mode: NormMode, cal: MotorCalibration, resolution: int, apply_drive_mode: bool) -> int:
    """User units -> raw (homed) encoder ticks; truncates with int() like LeRobot."""
    min_, max_ = _checked_range(cal)
    drive_mode = apply_drive_mode and bool(cal.drive_mode)
    if mode == _M100:
        val = -value if drive_mode else value
        bounded = min(100.0, max(-100.0, val))
        return int(((bounded + 100) / 200) * (max_ - min_) + min_)
    if mode == _R100:
        val = 100 - value if drive_mode else value
        bounded = min(100.0, max(0.0, val))
        return int((bounded / 100) * (max_ - min_) + min_)
    if mode == _DEG:
        mid = (min_ + max_) / 2
        max_res = resolution - 1
        return int((value * max_res / 360) + mid)
    raise ValueError(f"unknown normalization mode {mode!r}")
