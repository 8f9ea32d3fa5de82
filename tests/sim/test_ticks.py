"""Joint angle <-> encoder tick mapping and the calibration a perfect LeRobot run would record."""

from __future__ import annotations

import math

import pytest

from drivers.motors.bus import NormMode
from drivers.sim.scene import GRIPPER, JOINTS
from drivers.sim.ticks import HALF_TURN, MAX_MOUNT, RESOLUTION, TickMap, norm_mode


def firmware_present(physical: float, homing_offset: int) -> int:
    """STS3215 with Phase bit 4 clear: Present_Position = Actual - Homing_Offset, wrapped to one turn."""
    return (round(physical) - homing_offset) % RESOLUTION


def test_mounts_are_seeded_per_arm_and_make_raw_ticks_arbitrary() -> None:
    a, a2, b = TickMap.seeded(101), TickMap.seeded(101), TickMap.seeded(202)
    assert [a[j.name].mount for j in JOINTS] == [a2[j.name].mount for j in JOINTS]
    assert [a[j.name].mount for j in JOINTS] != [b[j.name].mount for j in JOINTS]
    raw_at_mid = [round(a[j.name].physical(j.mid)) for j in JOINTS]
    assert sum(abs(r - 2048) > 50 for r in raw_at_mid) >= 4  # calibration has something to find
    assert all(abs(a[j.name].mount) <= MAX_MOUNT for j in JOINTS)


def test_out_of_range_mount_is_refused() -> None:
    with pytest.raises(ValueError, match="mount"):
        TickMap({j.name: (MAX_MOUNT + 1 if j.name == GRIPPER else 0) for j in JOINTS})


@pytest.mark.parametrize("seed", [1, 101, 202, 7])
def test_calibration_homes_the_middle_pose_to_2047_and_brackets_the_joint_range(seed: int) -> None:
    ticks = TickMap.seeded(seed)
    for j in JOINTS:
        m = ticks[j.name]
        cal = m.calibration()
        assert cal.id == j.motor_id and cal.drive_mode == 0
        assert abs(cal.homing_offset) <= 2047  # fits the 11-bit sign-magnitude register
        assert firmware_present(m.physical(j.mid), cal.homing_offset) == HALF_TURN
        lo = firmware_present(m.physical(j.lower), cal.homing_offset)
        hi = firmware_present(m.physical(j.upper), cal.homing_offset)
        if j.name == "wrist_roll":
            assert (cal.range_min, cal.range_max) == (0, RESOLUTION - 1)
            assert 0 < lo < hi < RESOLUTION - 1  # no wrap over the whole roll range once homed
        else:
            assert abs(lo - cal.range_min) <= 1 and abs(hi - cal.range_max) <= 1


def test_normalized_values_read_like_degrees_and_gripper_percent() -> None:
    ticks = TickMap.seeded(101)
    for j in JOINTS:
        m = ticks[j.name]
        if norm_mode(j.name) is NormMode.DEGREES:
            for deg in (-90.0, -30.0, 0.0, 45.0):
                got = m.normalized(math.radians(deg))
                assert got == pytest.approx(deg, abs=0.1), (j.name, deg, got)
        else:
            assert m.normalized(j.lower) == pytest.approx(0.0, abs=0.1)
            assert m.normalized(j.upper) == pytest.approx(100.0, abs=0.1)
            assert m.normalized(j.mid) == pytest.approx(50.0, abs=0.1)


def test_normalized_round_trip_and_wrapped_goals() -> None:
    ticks = TickMap.seeded(202)
    angles = [0.3, -0.7, 1.1, -1.2, 2.5, 0.9]
    back = ticks.from_normalized(ticks.normalized(angles))
    assert back == pytest.approx(angles, abs=1e-9)
    for j, a in zip(JOINTS, angles, strict=True):
        p = ticks[j.name].physical(a)
        # A goal in a frame wrapped by one turn (an uncalibrated servo) is still the same joint angle.
        assert ticks[j.name].angle(p + RESOLUTION) == pytest.approx(a)
        assert ticks[j.name].angle(p - RESOLUTION) == pytest.approx(a)
    assert ticks.angles(ticks.physical(angles)) == pytest.approx(angles)
