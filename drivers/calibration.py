"""LeRobot calibration JSON: where the files live, and reading/writing them byte-for-byte like LeRobot.

A user must be able to calibrate with robotui and teleoperate with LeRobot (or the other way round) without
recalibrating, so the folder, the file name and the exact layout follow LeRobot (reference §1.4): keys are
motor names in bus order, each holding the five int fields of `MotorCalibration`, dumped with a 4-space
indent and no trailing newline. A damaged file is never half-used: it raises `CalibrationFileError` naming
the file, the motor and the fix.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from drivers.motors.bus import Motor, MotorCalibration

ArmKind = Literal["robots", "teleoperators"]

CALIBRATION_FIELDS = ("id", "drive_mode", "homing_offset", "range_min", "range_max")

# Class names LeRobot used up to v0.4.2 for what it now calls so_follower / so_leader.
LEGACY_NAMES: dict[str, tuple[str, ...]] = {
    "so_follower": ("so101_follower", "so100_follower"),
    "so_leader": ("so101_leader", "so100_leader"),
}

DEFAULT_FIX = "recalibrate with `robotui calibrate ...`"


class CalibrationFileError(ValueError):
    """A calibration file that cannot be used as is; the message names the file, the motor and the fix."""

    def __init__(self, path: Path, problem: str, motor: str | None = None, fix: str = DEFAULT_FIX):
        self.path = Path(path)
        self.problem = problem
        self.motor = motor
        where = f"motor '{motor}': " if motor else ""
        super().__init__(f"calibration file {self.path}: {where}{problem}; {fix}")


def calibration_dir() -> Path:
    """LeRobot's calibration root, resolved from the environment at call time (tests change it)."""
    env = os.environ
    if env.get("HF_LEROBOT_CALIBRATION"):
        return Path(env["HF_LEROBOT_CALIBRATION"]).expanduser()
    if env.get("HF_LEROBOT_HOME"):
        return Path(env["HF_LEROBOT_HOME"]).expanduser() / "calibration"
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "lerobot" / "calibration"
    return Path.home() / ".cache" / "huggingface" / "lerobot" / "calibration"


def calibration_path(kind: ArmKind, name: str, id: str | None, *, directory: Path | None = None) -> Path:
    """Where the file for arm `name` with user id `id` is written. `directory` replaces the
    `<root>/<kind>/<name>` folder, like LeRobot's `calibration_dir` config field. `id=None` gives
    `None.json`, as in LeRobot."""
    if kind not in ("robots", "teleoperators"):
        raise ValueError(f"calibration kind must be 'robots' or 'teleoperators', not {kind!r}")
    folder = Path(directory).expanduser() if directory is not None else calibration_dir() / kind / name
    return folder / f"{id}.json"


def find_calibration(kind: ArmKind, name: str, id: str | None, *, directory: Path | None = None) -> Path | None:
    """The existing file for this arm: the current name first, then the names older LeRobot versions wrote
    (so101_follower, so100_follower...), so a user upgrading keeps their calibration."""
    candidates = [calibration_path(kind, name, id, directory=directory)]
    if directory is None:
        candidates += [calibration_path(kind, old, id) for old in LEGACY_NAMES.get(name, ())]
    return next((p for p in candidates if p.is_file()), None)


def _as_int(path: Path, motor: str, field: str, value: object, fix: str) -> int:
    # bool is an int subclass in Python, but `true` in the file is a corruption, not a number.
    if isinstance(value, bool) or not isinstance(value, int):
        raise CalibrationFileError(path, f"field '{field}' must be an integer, got {json.dumps(value)}", motor, fix)
    return value


def parse_calibration(
    data: object, path: Path, motors: Mapping[str, Motor] | None = None, *, fix: str = DEFAULT_FIX
) -> dict[str, MotorCalibration]:
    """Validate decoded JSON against the arm's motors. Returns the calibration in bus order."""

    def error(problem: str, motor: str | None = None) -> CalibrationFileError:
        return CalibrationFileError(path, problem, motor, fix)

    if not isinstance(data, dict):
        raise error("expected a JSON object of motor name -> calibration")
    if motors is not None:
        missing = [m for m in motors if m not in data]
        if missing:
            raise error("missing from the file", missing[0])
        extra = [m for m in data if m not in motors]
        if extra:
            raise error(f"not a motor of this arm (its motors: {', '.join(motors)})", extra[0])
    order = list(motors) if motors is not None else list(data)
    result: dict[str, MotorCalibration] = {}
    for name in order:
        entry = data[name]
        if not isinstance(entry, dict):
            raise error("expected an object with " + ", ".join(CALIBRATION_FIELDS), name)
        for field in CALIBRATION_FIELDS:
            if field not in entry:
                raise error(f"field '{field}' is missing", name)
        unknown = sorted(set(entry) - set(CALIBRATION_FIELDS))
        if unknown:
            raise error(f"unknown field(s) {', '.join(unknown)}", name)
        values = {f: _as_int(path, name, f, entry[f], fix) for f in CALIBRATION_FIELDS}
        cal = MotorCalibration(**values)
        if motors is not None and cal.id != motors[name].id:
            raise error(f"id {cal.id} does not match the arm's motor id {motors[name].id} (file of another arm?)", name)
        if cal.range_min >= cal.range_max:
            raise error(f"range_min {cal.range_min} must be below range_max {cal.range_max}", name)
        if cal.drive_mode not in (0, 1):
            raise error(f"drive_mode must be 0 or 1, got {cal.drive_mode}", name)
        result[name] = cal
    return result


def load_calibration(
    path: Path | str, motors: Mapping[str, Motor] | None = None, *, fix: str = DEFAULT_FIX
) -> dict[str, MotorCalibration]:
    """Read and validate a LeRobot calibration file. With `motors`, the file must hold exactly those
    motors with matching ids; the result follows the motors' (bus) order."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CalibrationFileError(path, "file not found", fix=fix) from None
    except OSError as e:
        raise CalibrationFileError(path, f"cannot be read ({e.strerror})", fix="check its permissions") from e
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise CalibrationFileError(path, f"not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})", fix=fix) from e
    return parse_calibration(data, path, motors, fix=fix)


def calibration_to_json(calibration: Mapping[str, MotorCalibration]) -> str:
    """The exact text LeRobot writes (draccus -> json.dump(indent=4)): one field per line, no final newline."""
    data = {
        name: {field: int(getattr(cal, field)) for field in CALIBRATION_FIELDS} for name, cal in calibration.items()
    }
    return json.dumps(data, indent=4)


def save_calibration(path: Path | str, calibration: Mapping[str, MotorCalibration]) -> Path:
    """Write atomically (temp file in the same folder, fsync, rename) so a crash or a full disk never leaves a
    truncated file that would make the arm look uncalibrated. Keys keep the mapping's (bus) order."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = calibration_to_json(calibration)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600; keep an existing file's mode, else the usual 0644 LeRobot's open() gives.
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path
