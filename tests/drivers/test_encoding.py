"""Value conversions: sign encodings, wire byte layout and LeRobot-identical normalization."""

from __future__ import annotations

import pytest
from scservo_sdk import scservo_def

from drivers.motors.bus import MotorCalibration, NormMode
from drivers.motors.encoding import (
    bytes_to_int,
    decode_sign_magnitude,
    decode_twos_complement,
    encode_sign_magnitude,
    encode_twos_complement,
    int_to_bytes,
    normalize,
    unnormalize,
)

M100, R100, DEG = NormMode.RANGE_M100_100, NormMode.RANGE_0_100, NormMode.DEGREES
CAL = MotorCalibration(id=1, drive_mode=0, homing_offset=0, range_min=1000, range_max=3000)
CAL_REV = MotorCalibration(id=1, drive_mode=1, homing_offset=0, range_min=1000, range_max=3000)
CAL_FULL = MotorCalibration(id=2, drive_mode=0, homing_offset=0, range_min=0, range_max=4095)
CAL_SCS = MotorCalibration(id=3, drive_mode=0, homing_offset=0, range_min=0, range_max=1023)


# -------------------------------------------------------------------------------------- sign encodings
@pytest.mark.parametrize(
    ("value", "bit", "raw"),
    [
        (-1470, 11, 0x800 | 1470),  # the reference's Homing_Offset example: 3518
        (1470, 11, 1470),
        (0, 11, 0),
        (-2047, 11, 4095),
        (-5, 15, 0x8000 | 5),
        (-3, 10, 0x400 | 3),  # Present_Load's sign sits at bit 10
    ],
)
def test_sign_magnitude_values(value: int, bit: int, raw: int) -> None:
    assert encode_sign_magnitude(value, bit) == raw
    assert decode_sign_magnitude(raw, bit) == value


def test_sign_magnitude_round_trip_and_limits() -> None:
    for value in range(-2047, 2048):
        assert decode_sign_magnitude(encode_sign_magnitude(value, 11), 11) == value
    for too_big in (2048, -2048, 40000):
        with pytest.raises(ValueError, match="sign-magnitude"):
            encode_sign_magnitude(too_big, 11)


@pytest.mark.parametrize(
    ("value", "n_bytes", "raw"),
    [
        (-1, 4, 0xFFFFFFFF),
        (-2900, 4, 2**32 - 2900),
        (2900, 4, 2900),
        (-1, 2, 0xFFFF),
        (32767, 2, 0x7FFF),
        (-32768, 2, 0x8000),
        (-128, 1, 0x80),
    ],
)
def test_twos_complement_values(value: int, n_bytes: int, raw: int) -> None:
    assert encode_twos_complement(value, n_bytes) == raw
    assert decode_twos_complement(raw, n_bytes) == value


def test_twos_complement_limits() -> None:
    with pytest.raises(ValueError):
        encode_twos_complement(2**31, 4)
    with pytest.raises(ValueError):
        encode_twos_complement(-32769, 2)


# ------------------------------------------------------------------------------------------ byte layout
def test_little_endian_layout() -> None:
    assert int_to_bytes(0x1234, 2) == [0x34, 0x12]
    assert int_to_bytes(0x12345678, 4) == [0x78, 0x56, 0x34, 0x12]
    assert int_to_bytes(0xAB, 1) == [0xAB]
    assert bytes_to_int([0x34, 0x12]) == 0x1234
    assert bytes_to_int(bytes([0x78, 0x56, 0x34, 0x12])) == 0x12345678


def test_big_endian_words_match_the_sdk_with_scs_end_1(monkeypatch: pytest.MonkeyPatch) -> None:
    """What scservo_sdk would put on the wire for protocol 1 (SCS_END = 1), without using its global."""
    monkeypatch.setattr(scservo_def, "SCS_END", 1)
    for value in (0x1234, 0x00FF, 0xFF00, 1023, 0):
        sdk = [scservo_def.SCS_LOBYTE(value), scservo_def.SCS_HIBYTE(value)]
        assert int_to_bytes(value, 2, big_endian_words=True) == sdk
        assert bytes_to_int(sdk, big_endian_words=True) == scservo_def.SCS_MAKEWORD(*sdk) == value
    dword = 0x12345678
    sdk4 = [
        scservo_def.SCS_LOBYTE(dword & 0xFFFF),
        scservo_def.SCS_HIBYTE(dword & 0xFFFF),
        scservo_def.SCS_LOBYTE(dword >> 16),
        scservo_def.SCS_HIBYTE(dword >> 16),
    ]
    assert int_to_bytes(dword, 4, big_endian_words=True) == sdk4 == [0x56, 0x78, 0x12, 0x34]
    assert bytes_to_int(sdk4, big_endian_words=True) == dword


def test_byte_layout_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError):
        int_to_bytes(-1, 2)
    with pytest.raises(ValueError):
        int_to_bytes(0x10000, 2)
    with pytest.raises(ValueError):
        int_to_bytes(1, 3)
    with pytest.raises(ValueError):
        bytes_to_int([1, 2, 3])


# ---------------------------------------------------------------------------------------- normalization
# (mode, calibration, resolution, apply_drive_mode, raw, expected), each worked out by hand from
# LeRobot's formulas (reference/lerobot-interop.md §1.1).
NORMALIZE_PARITY = [
    (M100, CAL, 4096, True, 2000, 0.0),  # (1000/2000)*200-100
    (M100, CAL, 4096, True, 1500, -50.0),  # (500/2000)*200-100
    (M100, CAL, 4096, True, 500, -100.0),  # clamped to range_min
    (M100, CAL, 4096, True, 3500, 100.0),  # clamped to range_max
    (M100, CAL_REV, 4096, True, 1500, 50.0),  # drive mode negates
    (M100, CAL_REV, 4096, False, 1500, -50.0),  # ...unless the bus applies no drive mode (Dynamixel)
    (R100, CAL, 4096, True, 2500, 75.0),  # (1500/2000)*100
    (R100, CAL_REV, 4096, True, 2500, 25.0),  # 100 - 75
    (R100, CAL, 4096, True, 0, 0.0),  # clamped
    (R100, CAL, 4096, True, 4000, 100.0),  # clamped
    (DEG, CAL, 4096, True, 2000, 0.0),  # mid = 2000
    (DEG, CAL, 4096, True, 3023, 1023 * 360 / 4095),
    (DEG, CAL, 4096, True, 0, -2000 * 360 / 4095),  # degrees are never clamped
    (DEG, CAL_REV, 4096, True, 3023, 1023 * 360 / 4095),  # ...and ignore drive mode
    (DEG, CAL_SCS, 1024, True, 1023, 180.0),  # mid 511.5, (511.5*360)/1023
]

# (mode, calibration, resolution, apply_drive_mode, value, expected raw): int() truncates toward zero.
UNNORMALIZE_PARITY = [
    (M100, CAL, 4096, True, 0.0, 2000),
    (M100, CAL, 4096, True, -50.0, 1500),
    (M100, CAL, 4096, True, 150.0, 3000),  # clamped to 100
    (M100, CAL, 4096, True, -150.0, 1000),  # clamped to -100
    (M100, CAL_REV, 4096, True, 50.0, 1500),  # negated first
    (M100, CAL_REV, 4096, False, 50.0, 2500),
    (R100, CAL, 4096, True, 33.33, 1666),  # 1666.6 truncated, not rounded
    (R100, CAL_REV, 4096, True, 25.0, 2500),  # 100 - 25 = 75
    (R100, CAL, 4096, True, -10.0, 1000),  # clamped to 0
    (DEG, CAL, 4096, True, 90.0, 3023),  # 1023.75 + 2000
    (DEG, CAL, 4096, True, -90.0, 976),  # 976.25
    (DEG, CAL, 4096, True, -190.0, -161),  # -161.25 truncates toward zero
    (DEG, CAL, 4096, True, 400.0, 6550),  # not clamped
]


@pytest.mark.parametrize(("mode", "cal", "res", "apply_dm", "raw", "expected"), NORMALIZE_PARITY)
def test_normalize_parity(
    mode: NormMode, cal: MotorCalibration, res: int, apply_dm: bool, raw: int, expected: float
) -> None:
    assert normalize(raw, mode, cal, res, apply_dm) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("mode", "cal", "res", "apply_dm", "value", "expected"), UNNORMALIZE_PARITY)
def test_unnormalize_parity(
    mode: NormMode, cal: MotorCalibration, res: int, apply_dm: bool, value: float, expected: int
) -> None:
    result = unnormalize(value, mode, cal, res, apply_dm)
    assert isinstance(result, int)
    assert result == expected


@pytest.mark.parametrize("mode", [M100, R100, DEG])
@pytest.mark.parametrize("cal", [CAL, CAL_REV, CAL_FULL, MotorCalibration(1, 0, -1470, 758, 3292)])
def test_round_trip_within_one_tick(mode: NormMode, cal: MotorCalibration) -> None:
    """raw -> user -> raw loses at most one tick, from int() truncation of a float like 14.999999999999998."""
    for raw in range(cal.range_min, cal.range_max + 1, 7):
        back = unnormalize(normalize(raw, mode, cal, 4096, True), mode, cal, 4096, True)
        assert raw - 1 <= back <= raw


def test_truncation_loses_a_tick_exactly_like_lerobot() -> None:
    # 15 -> 15/4095*100 = 0.3663... -> 0.3663.../100*4095 = 14.999999999999998 -> int() = 14
    value = normalize(15, R100, CAL_FULL, 4096, True)
    assert unnormalize(value, R100, CAL_FULL, 4096, True) == 14


def test_user_round_trip_m100() -> None:
    for value in (-100.0, -37.5, 0.0, 12.5, 100.0):
        raw = unnormalize(value, M100, CAL, 4096, True)
        assert normalize(raw, M100, CAL, 4096, True) == pytest.approx(value, abs=200 / 2000)


def test_equal_range_is_rejected() -> None:
    bad = MotorCalibration(id=1, drive_mode=0, homing_offset=0, range_min=2000, range_max=2000)
    with pytest.raises(ValueError, match="range_min == range_max"):
        normalize(2000, M100, bad, 4096, True)
    with pytest.raises(ValueError, match="range_min == range_max"):
        unnormalize(0.0, DEG, bad, 4096, True)
