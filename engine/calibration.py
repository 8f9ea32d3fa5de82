"""The arm calibration procedure as explicit steps, with no prompts: the TUI screen and the headless
`robotui calibrate` drive the same object.

    proc = CalibrationProcedure(arm)
    proc.existing_calibration()      # offer "use it" (proc.use_existing()) or recalibrate
    proc.start()                     # torque off, calibration mode, EEPROM calibration reset
    # user: move every joint to the middle of its range
    proc.set_middle()                # half-turn homing: the middle now reads 2047
    # user: move each joint through its whole range, while the UI calls
    proc.sample()                    # -> rows (motor, MIN, POS, MAX) for a live table
    proc.finish()                    # ranges -> motors' EEPROM (full-turn joints get 0..4095)
    proc.save()                      # LeRobot JSON at the arm's calibration path

The numbers follow LeRobot (reference §1.1, §3): homing is written before the ranges are recorded, so
`range_min`/`range_max` are ticks in the homed frame, and the resulting file is interchangeable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from drivers.calibration import CalibrationFileError, save_calibration
from drivers.motors.bus import BusError, CommError, MotorCalibration, MotorError, PortError
from drivers.robots.base import Arm


class CalibrationError(RuntimeError):
    """A step cannot complete; the message names the motor and what the user should do."""


class Step(StrEnum):
    READY = "ready"  # nothing touched yet
    STARTED = "started"  # torque off, old calibration cleared: move joints to the middle
    HOMED = "homed"  # middle set: move every joint through its range, sampling
    FINISHED = "finished"  # calibration written to the motors
    SAVED = "saved"  # and to the file


@dataclass(frozen=True)
class RangeRow:
    """One line of the live range table, raw ticks in the homed frame."""

    motor: str
    min: int
    pos: int
    max: int
    full_turn: bool  # range is not recorded: the joint gets the whole encoder range

    @property
    def travel(self) -> int:
        return self.max - self.min


@dataclass(frozen=True)
class ExistingCalibration:
    path: Path
    calibration: dict[str, MotorCalibration] | None  # None when the file is damaged
    error: CalibrationFileError | None
    legacy_name: bool  # found under a name older LeRobot versions used (so101_follower...)


class CalibrationProcedure:
    """Step-by-step calibration of one arm. Methods must be called in order; each checks it.

    `min_travel` is how many ticks a recorded joint must have moved: encoder noise makes a joint that was
    never touched read a couple of ticks of range, which would otherwise pass as a (useless) calibration.
    """

    def __init__(self, arm: Arm, *, min_travel: int = 20, read_retries: int = 5) -> None:
        if min_travel < 1:
            raise ValueError("min_travel must be at least 1 tick (range_min must stay below range_max)")
        self.arm = arm
        self.min_travel = min_travel
        self.read_retries = read_retries
        self.step = Step.READY
        self.homing_offsets: dict[str, int] = {}
        self.calibration: dict[str, MotorCalibration] | None = None
        self.saved_path: Path | None = None
        self._mins: dict[str, int] = {}
        self._maxs: dict[str, int] = {}
        self._pos: dict[str, int] = {}
        self._opened_bus = False

    # --- helpers
    @property
    def motors(self) -> list[str]:
        return list(self.arm.motors)

    @property
    def recorded_motors(self) -> list[str]:
        return [m for m in self.motors if m not in self.arm.full_turn_motors]

    def _expect(self, *steps: Step) -> None:
        if self.step not in steps:
            wanted = " or ".join(s.value for s in steps)
            raise CalibrationError(f"calibration step out of order: at '{self.step.value}', needs '{wanted}'")

    def _ensure_bus(self) -> None:
        if not self.arm.is_connected:
            self.arm.connect_bus()
            self._opened_bus = True

    def _read_raw(self) -> dict[str, int]:
        values = self.arm.bus.sync_read(
            "Present_Position", self.motors, normalize=False, num_retry=self.read_retries
        )
        return {m: int(values[m]) for m in self.motors}

    # --- "use it or recalibrate"
    def existing_calibration(self) -> ExistingCalibration | None:
        """The arm's calibration file, if any, as read now (valid or with the reason it is not). Only reads:
        the arm keeps what it had until `use_existing()` or `finish()`."""
        path, calibration, error = self.arm.read_calibration_file()
        if path is None:
            return None
        return ExistingCalibration(
            path=path, calibration=calibration, error=error, legacy_name=path != self.arm.calibration_fpath
        )

    def use_existing(self) -> bool:
        """Keep the file: write it to the motors if their EEPROM differs (returns whether it wrote). A file
        found under an older LeRobot name is also saved under the current one, where LeRobot now looks."""
        self._expect(Step.READY)
        existing = self.existing_calibration()
        if existing is None:
            raise CalibrationError(f"{self.arm.label} has no calibration file to use; run the calibration")
        if existing.error is not None:
            raise existing.error
        self.arm.reload_calibration()
        self._ensure_bus()
        wrote = self.arm.apply_calibration()
        if existing.legacy_name:
            self.saved_path = save_calibration(self.arm.calibration_fpath, self.arm.calibration)
        else:
            self.saved_path = existing.path
        self.calibration = dict(self.arm.calibration)
        self.step = Step.SAVED
        return wrote

    # --- the procedure
    def start(self) -> None:
        """Torque off, calibration operating mode and drive modes, EEPROM calibration reset so positions are
        raw. Can be called again to start over."""
        self._expect(Step.READY, Step.STARTED, Step.HOMED, Step.FINISHED)
        self._ensure_bus()
        bus = self.arm.bus
        bus.disable_torque()
        # Brand defaults first: on a factory STS3215 this switches positions to wrap into 0..4095, without
        # which the recorded ranges would be in a different frame than the one the arm later runs in.
        bus.configure_motors()
        for motor in self.motors:
            bus.write("Operating_Mode", motor, self.arm.calibration_operating_mode)
        if self.arm.drive_mode_register:
            # Before homing: reversing a motor changes what its Present_Position reads.
            for motor in self.motors:
                bus.write("Drive_Mode", motor, self.arm.calibration_drive_modes.get(motor, 0))
        bus.reset_calibration()
        self.arm.mark_unsynced()  # the file (kept for "use it") no longer matches the motors
        self.homing_offsets = {}
        self.calibration = None
        self._mins, self._maxs, self._pos = {}, {}, {}
        self.step = Step.STARTED

    def set_middle(self) -> dict[str, int]:
        """With every joint at the middle of its range: write half-turn homing offsets, so that pose reads
        2047. Returns {motor: offset}. A joint too near the end of the encoder's turn cannot be homed
        (its offset does not fit the register): the error names it."""
        self._expect(Step.STARTED, Step.HOMED)
        bus = self.arm.bus
        offsets: dict[str, int] = {}
        # One motor at a time so a failure names the motor and the others stay homed.
        for motor in self.motors:
            try:
                offsets.update(bus.set_half_turn_homings([motor]))
            except (CommError, PortError, MotorError):
                raise  # the bus's own message (port, motor, what to check) is the right one
            except (ValueError, BusError) as e:  # the offset does not fit the motor's register
                raw = self._raw_after_failure(motor)
                at = f" (it reads {raw} of 0..{self.arm.motor_resolution(motor) - 1})" if raw is not None else ""
                raise CalibrationError(
                    f"'{motor}' is too close to the end of its encoder turn for its homing offset to be "
                    f"stored{at}: move it nearer the middle of its range and set the middle again"
                ) from e
        self.homing_offsets = offsets
        raw = self._read_raw()
        self._pos = dict(raw)
        self._mins = dict(raw)
        self._maxs = dict(raw)
        self.step = Step.HOMED
        return dict(offsets)

    def _raw_after_failure(self, motor: str) -> int | None:
        try:
            return int(self.arm.bus.read("Present_Position", motor, normalize=False, num_retry=2))
        except Exception:
            return None

    def sample(self) -> list[RangeRow]:
        """One read of every motor's raw position; widens MIN/MAX. Call it while the user moves the joints."""
        self._expect(Step.HOMED)
        raw = self._read_raw()
        for motor, value in raw.items():
            self._pos[motor] = value
            self._mins[motor] = min(self._mins.get(motor, value), value)
            self._maxs[motor] = max(self._maxs.get(motor, value), value)
        return self.rows()

    def rows(self) -> list[RangeRow]:
        """The table as last sampled, without touching the bus."""
        full = set(self.arm.full_turn_motors)
        return [
            RangeRow(motor=m, min=self._mins[m], pos=self._pos[m], max=self._maxs[m], full_turn=m in full)
            for m in self.motors
            if m in self._pos
        ]

    def finish(self) -> dict[str, MotorCalibration]:
        """Build the calibration, write it to the motors' EEPROM and adopt it. Raises naming every joint that
        was not moved through a range."""
        self._expect(Step.HOMED)
        still = [m for m in self.recorded_motors if self._maxs[m] - self._mins[m] < self.min_travel]
        if still:
            detail = ", ".join(f"{m} ({self._maxs[m] - self._mins[m]} ticks)" for m in still)
            raise CalibrationError(
                f"joint(s) that never moved: {detail}. Move each of them through its whole range of motion, "
                "then finish again"
            )
        calibration: dict[str, MotorCalibration] = {}
        for motor, spec in self.arm.motors.items():
            if motor in self.arm.full_turn_motors:
                low, high = 0, self.arm.motor_resolution(motor) - 1
            else:
                low, high = self._mins[motor], self._maxs[motor]
            calibration[motor] = MotorCalibration(
                id=spec.id,
                drive_mode=self.arm.calibration_drive_modes.get(motor, 0),
                homing_offset=self.homing_offsets[motor],
                range_min=low,
                range_max=high,
            )
        self.arm.bus.disable_torque()  # EEPROM writes need it off (and Feetech's Lock open)
        self.arm.bus.write_calibration(calibration)
        self.arm.set_calibration(calibration, synced=True)
        self.calibration = calibration
        self.step = Step.FINISHED
        return dict(calibration)

    def save(self) -> Path:
        """Write the LeRobot JSON to the arm's calibration path (current LeRobot name)."""
        self._expect(Step.FINISHED, Step.SAVED)
        self.saved_path = self.arm.save_calibration()
        self.step = Step.SAVED
        return self.saved_path

    def close(self) -> None:
        """Close the bus if this procedure opened it (torque stays off, as during calibration)."""
        if self._opened_bus:
            self.arm.disconnect()
            self._opened_bus = False

    def __enter__(self) -> CalibrationProcedure:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- headless
    def run_non_interactive(
        self,
        range_seconds: float,
        sample_hz: float = 50.0,
        *,
        on_sample: Callable[[list[RangeRow]], None] | None = None,
        stop: threading.Event | None = None,
    ) -> Path:
        """start -> set_middle -> sample for `range_seconds` -> finish -> save, for `robotui calibrate
        --non-interactive` (scripted rigs and the sim, where something else moves the joints)."""
        if range_seconds < 0 or sample_hz <= 0:
            raise ValueError("range_seconds must be >= 0 and sample_hz > 0")
        self.start()
        self.set_middle()
        period = 1.0 / sample_hz
        deadline = time.monotonic() + range_seconds
        next_tick = time.monotonic()
        while True:
            rows = self.sample()
            if on_sample is not None:
                on_sample(rows)
            next_tick += period
            now = time.monotonic()
            if now >= deadline or (stop is not None and stop.is_set()):
                break
            wait = max(0.0, min(next_tick, deadline) - now)
            if stop is not None:
                stop.wait(wait)
            else:
                time.sleep(wait)
        self.finish()
        return self.save()
