"""LeRobot calibration JSON: location, byte-exact round trip, older names, and every way a file can be bad."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from drivers.calibration import (
    CalibrationFileError,
    calibration_dir,
    calibration_path,
    calibration_to_json,
    find_calibration,
    load_calibration,
    save_calibration,
)
from drivers.motors.bus import MotorCalibration
from drivers.robots.so import so_motors

FIXTURE = Path(__file__).parent.parent / "fixtures" / "calibration" / "so_follower_lerobot.json"
MOTORS = so_motors()


def _fixture_data() -> dict:
    return json.loads(FIXTURE.read_text())


def _write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=4))
    return path


# ------------------------------------------------------------------------------------------- location
def test_calibration_dir_follows_lerobot_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_LEROBOT_CALIBRATION", str(tmp_path / "explicit"))
    monkeypatch.setenv("HF_LEROBOT_HOME", str(tmp_path / "lrhome"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert calibration_dir() == tmp_path / "explicit"
    monkeypatch.delenv("HF_LEROBOT_CALIBRATION")
    assert calibration_dir() == tmp_path / "lrhome" / "calibration"
    monkeypatch.delenv("HF_LEROBOT_HOME")
    assert calibration_dir() == tmp_path / "hf" / "lerobot" / "calibration"
    monkeypatch.delenv("HF_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert calibration_dir() == tmp_path / "user" / ".cache" / "huggingface" / "lerobot" / "calibration"


def test_calibration_path_layout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_LEROBOT_CALIBRATION", str(tmp_path))
    assert (
        calibration_path("robots", "so_follower", "arm1") == tmp_path / "robots" / "so_follower" / "arm1.json"
    )
    assert (
        calibration_path("teleoperators", "so_leader", "l")
        == tmp_path / "teleoperators" / "so_leader" / "l.json"
    )
    assert calibration_path("robots", "so_follower", None).name == "None.json"  # LeRobot's id=None file
    assert (
        calibration_path("robots", "so_follower", "a", directory=tmp_path / "mine")
        == tmp_path / "mine" / "a.json"
    )
    with pytest.raises(ValueError, match="robots"):
        calibration_path("robot", "so_follower", "a")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------- round trip
def test_fixture_round_trips_byte_for_byte(tmp_path: Path) -> None:
    cal = load_calibration(FIXTURE, MOTORS)
    assert list(cal) == list(MOTORS)
    assert cal["shoulder_pan"] == MotorCalibration(
        id=1, drive_mode=0, homing_offset=-1470, range_min=758, range_max=3292
    )
    assert cal["wrist_roll"].range_max == 4095
    out = save_calibration(tmp_path / "robots" / "so_follower" / "x.json", cal)
    assert out.read_bytes() == FIXTURE.read_bytes()
    assert calibration_to_json(cal) == FIXTURE.read_text()


def test_load_returns_bus_order_and_save_keeps_mapping_order(tmp_path: Path) -> None:
    data = _fixture_data()
    shuffled = {k: data[k] for k in reversed(list(data))}
    path = _write(tmp_path / "shuffled.json", shuffled)
    cal = load_calibration(path, MOTORS)
    assert list(cal) == list(MOTORS)
    save_calibration(path, cal)
    assert path.read_bytes() == FIXTURE.read_bytes()


def test_save_is_atomic_and_readable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "cal" / "arm.json"
    cal = load_calibration(FIXTURE, MOTORS)
    save_calibration(path, cal)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    before = path.read_bytes()

    changed = dict(cal)
    changed["gripper"] = MotorCalibration(6, 0, 0, 100, 200)

    def boom(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="No space"):
        save_calibration(path, changed)
    monkeypatch.undo()
    assert path.read_bytes() == before  # the old file is intact
    assert sorted(p.name for p in path.parent.iterdir()) == ["arm.json"]  # no temp file left behind
    save_calibration(path, changed)
    assert load_calibration(path, MOTORS)["gripper"].range_max == 200


def test_load_without_motors_keeps_file_order() -> None:
    cal = load_calibration(FIXTURE)
    assert list(cal) == list(_fixture_data())


# ---------------------------------------------------------------------------------------- older names
@pytest.mark.parametrize("old", ["so101_follower", "so100_follower"])
def test_find_calibration_under_older_lerobot_names(
    old: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_LEROBOT_CALIBRATION", str(tmp_path))
    assert find_calibration("robots", "so_follower", "arm") is None
    legacy = _write(tmp_path / "robots" / old / "arm.json", _fixture_data())
    assert find_calibration("robots", "so_follower", "arm") == legacy
    assert find_calibration("robots", "so_follower", "other-id") is None
    current = _write(tmp_path / "robots" / "so_follower" / "arm.json", _fixture_data())
    assert find_calibration("robots", "so_follower", "arm") == current  # the current name wins


def test_find_calibration_leader_legacy_and_explicit_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_LEROBOT_CALIBRATION", str(tmp_path))
    legacy = _write(tmp_path / "teleoperators" / "so100_leader" / "lead.json", _fixture_data())
    assert find_calibration("teleoperators", "so_leader", "lead") == legacy
    # A robot-side legacy name is not a leader file.
    assert find_calibration("robots", "so_follower", "lead") is None
    # An explicit folder is exact: no fallback to older names.
    assert find_calibration("teleoperators", "so_leader", "lead", directory=tmp_path / "mine") is None
    # Koch never had other names.
    _write(tmp_path / "robots" / "so100_follower" / "k.json", _fixture_data())
    assert find_calibration("robots", "koch_follower", "k") is None


# ---------------------------------------------------------------------------------------- bad files
def _mutate(change):  # type: ignore[no-untyped-def]
    data = _fixture_data()
    change(data)
    return data


BAD_FILES = {
    "bad_json": ('{"shoulder_pan": {"id": 1,', None, "not valid JSON"),
    "not_an_object": ([1, 2, 3], None, "expected a JSON object"),
    "entry_not_an_object": (
        _mutate(lambda d: d.__setitem__("elbow_flex", 3)),
        "elbow_flex",
        "expected an object",
    ),
    "missing_field": (
        _mutate(lambda d: d["wrist_flex"].pop("homing_offset")),
        "wrist_flex",
        "'homing_offset' is missing",
    ),
    "string_value": (
        _mutate(lambda d: d["gripper"].__setitem__("range_min", "2031")),
        "gripper",
        "must be an integer",
    ),
    "float_value": (
        _mutate(lambda d: d["gripper"].__setitem__("range_max", 3476.5)),
        "gripper",
        "must be an integer",
    ),
    "bool_value": (
        _mutate(lambda d: d["shoulder_pan"].__setitem__("drive_mode", True)),
        "shoulder_pan",
        "must be an integer",
    ),
    "null_value": (
        _mutate(lambda d: d["shoulder_lift"].__setitem__("id", None)),
        "shoulder_lift",
        "must be an integer",
    ),
    "motor_missing": (_mutate(lambda d: d.pop("wrist_roll")), "wrist_roll", "missing from the file"),
    "extra_motor": (
        _mutate(lambda d: d.__setitem__("elbow_roll", dict(d["gripper"], id=7))),
        "elbow_roll",
        "not a motor of this arm",
    ),
    "id_mismatch": (
        _mutate(lambda d: d["elbow_flex"].__setitem__("id", 13)),
        "elbow_flex",
        "id 13 does not match",
    ),
    "range_equal": (
        _mutate(lambda d: d["wrist_flex"].update(range_min=2000, range_max=2000)),
        "wrist_flex",
        "must be below",
    ),
    "range_inverted": (
        _mutate(lambda d: d["gripper"].update(range_min=3476, range_max=2031)),
        "gripper",
        "must be below",
    ),
    "bad_drive_mode": (
        _mutate(lambda d: d["elbow_flex"].__setitem__("drive_mode", 2)),
        "elbow_flex",
        "drive_mode must be 0 or 1",
    ),
    "unknown_field": (
        _mutate(lambda d: d["shoulder_pan"].__setitem__("offset", 0)),
        "shoulder_pan",
        "unknown field",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_malformed_file_names_file_motor_and_fix(case: str, tmp_path: Path) -> None:
    content, motor, problem = BAD_FILES[case]
    path = _write(tmp_path / "robots" / "so_follower" / "arm.json", content)
    with pytest.raises(CalibrationFileError) as info:
        load_calibration(path, MOTORS)
    message = str(info.value)
    assert str(path) in message
    assert problem in message
    assert "robotui calibrate" in message
    assert info.value.path == path
    assert info.value.motor == motor
    if motor is not None:
        assert f"'{motor}'" in message


def test_missing_file_and_custom_fix(tmp_path: Path) -> None:
    with pytest.raises(CalibrationFileError, match="file not found"):
        load_calibration(tmp_path / "nope.json", MOTORS)
    path = _write(tmp_path / "a.json", _mutate(lambda d: d.pop("gripper")))
    with pytest.raises(CalibrationFileError, match="run the wizard"):
        load_calibration(path, MOTORS, fix="run the wizard")
