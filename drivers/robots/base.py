"""The arm abstraction shared by followers (`Robot`) and leaders (`Teleoperator`): a motor bus, its motors,
the LeRobot calibration file, and (for robots) cameras.

The shape follows LeRobot's `Robot`/`Teleoperator` (reference §3) so datasets and calibration files line up:
observations are `{"<motor>.pos": float, "<camera>": HxWx3 uint8}`, actions `{"<motor>.pos": float}`.
Calibration is never interactive here: a missing file leaves the arm uncalibrated (the step-by-step
procedure lives in `engine.calibration`), a damaged one raises `CalibrationFileError` at connect.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

import numpy as np

from drivers.calibration import (
    ArmKind,
    CalibrationFileError,
    calibration_path,
    find_calibration,
    load_calibration,
    save_calibration,
)
from drivers.cameras.base import Camera
from drivers.motors.bus import HandshakeError, Motor, MotorBus, MotorCalibration, NotCalibratedError
from drivers.robots import safety

log = logging.getLogger(__name__)

# A camera, or a config object that builds one: anything with `make(name) -> Camera`, or a callable.
CameraSpec = Any

__all__ = [
    "Arm",
    "ArmConfig",
    "CameraSpec",
    "NotCalibratedError",  # the bus's error: raised both here and by normalized bus reads
    "Robot",
    "RobotConfig",
    "Teleoperator",
    "TeleoperatorConfig",
    "clamp_relative",
]


# --------------------------------------------------------------------------------------------- configs
@dataclass(kw_only=True)
class ArmConfig:
    """Fields every arm has. `type` is LeRobot's CLI type name (so101_follower...), `id` names the
    calibration file, `calibration_dir` replaces the `<root>/<kind>/<name>` folder as in LeRobot."""

    type: str
    port: str
    id: str | None = None
    use_degrees: bool = True
    calibration_dir: Path | None = None
    disable_torque_on_disconnect: bool = True
    num_read_retries: int = 2


@dataclass(kw_only=True)
class RobotConfig(ArmConfig):
    cameras: dict[str, CameraSpec] = field(default_factory=dict)
    # Largest allowed step per tick, in the motor's user unit: one float for all motors or one per motor.
    max_relative_target: float | dict[str, float] | None = None


@dataclass(kw_only=True)
class TeleoperatorConfig(ArmConfig):
    pass


# ------------------------------------------------------------------------------------------- clamping
def clamp_relative(
    goal: Mapping[str, float], present: Mapping[str, float], cap: float | Mapping[str, float]
) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Limit each goal to `present ± cap` per motor (LeRobot's `ensure_safe_goal_position`): one rogue joint
    is slowed, the rest of the action goes through. Returns the safe goals and {motor: (asked, sent)}."""
    safe: dict[str, float] = {}
    clamped: dict[str, tuple[float, float]] = {}
    for motor, target in goal.items():
        limit = cap if isinstance(cap, int | float) else cap.get(motor)
        if limit is None:
            safe[motor] = target
            continue
        now = present[motor]
        sent = min(max(target, now - limit), now + limit)
        safe[motor] = sent
        if sent != target:
            clamped[motor] = (target, sent)
    return safe, clamped


class _RateLimitedWarning:
    """Logs at most once per `interval_s`, counting what it held back, so a 60 Hz loop cannot flood."""

    def __init__(self, interval_s: float = 2.0) -> None:
        self.interval_s = interval_s
        self._last = -float("inf")
        self._suppressed = 0

    def warn(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last < self.interval_s:
            self._suppressed += 1
            return
        extra = f" ({self._suppressed} similar warnings suppressed)" if self._suppressed else ""
        log.warning("%s%s", message, extra)
        self._last = now
        self._suppressed = 0


# ----------------------------------------------------------------------------------------------- arms
class Arm:
    """A bus of named motors plus its calibration. Subclasses set the class attributes and `_motors()`."""

    name: ClassVar[str]  # LeRobot class name: names the calibration folder and the dataset robot_type
    kind: ClassVar[ArmKind]
    bus_class: ClassVar[type[MotorBus]]

    # Facts the calibration procedure (engine.calibration) needs per arm.
    calibration_operating_mode: ClassVar[int] = 0  # Operating_Mode while calibrating
    full_turn_motors: ClassVar[tuple[str, ...]] = ()  # get the whole encoder range, not a recorded one
    calibration_drive_modes: ClassVar[dict[str, int]] = {}  # motor -> drive_mode stored in the file
    drive_mode_register: ClassVar[bool] = False  # the motor applies drive_mode itself (Dynamixel)

    def __init__(self, config: ArmConfig) -> None:
        self.config = config
        self.motors: dict[str, Motor] = self._motors()
        self.calibration: dict[str, MotorCalibration] = {}
        self.calibration_error: CalibrationFileError | None = None
        self.calibration_source: Path | None = None  # the file it came from (maybe an older LeRobot name)
        self._synced = False  # calibration known to match the motors' EEPROM
        self._ready = False  # connect() completed: configured, cameras running
        self._lock = threading.RLock()
        self.bus: MotorBus = self.bus_class(config.port, self.motors)
        self.reload_calibration()

    # --- subclass hooks
    def _motors(self) -> dict[str, Motor]:
        raise NotImplementedError

    def configure(self) -> None:
        """Write the arm's operating registers (modes, gains, limits). Runs at every connect."""
        raise NotImplementedError

    def motor_resolution(self, motor: str) -> int:
        raise NotImplementedError

    # --- identity
    @property
    def label(self) -> str:
        return f"{self.name} '{self.config.id}' on {self.config.port}"

    @property
    def calibration_fpath(self) -> Path:
        """Where this arm's calibration is saved (always the current LeRobot name)."""
        return calibration_path(self.kind, self.name, self.config.id, directory=self.config.calibration_dir)

    @property
    def calibrate_hint(self) -> str:
        return f"recalibrate with `robotui calibrate` ({self.config.type}, id '{self.config.id}')"

    @property
    def setup_order(self) -> list[str]:
        """Motor setup goes gripper first: the motor at the end of the chain is plugged in alone first."""
        return list(reversed(self.motors))

    # --- calibration file
    def read_calibration_file(
        self,
    ) -> tuple[Path | None, dict[str, MotorCalibration] | None, CalibrationFileError | None]:
        """(file, its calibration, why it is unusable) for this arm, read now; changes nothing."""
        path = find_calibration(self.kind, self.name, self.config.id, directory=self.config.calibration_dir)
        if path is None:
            return None, None, None
        try:
            return path, load_calibration(path, self.motors, fix=self.calibrate_hint), None
        except CalibrationFileError as e:
            return path, None, e

    def reload_calibration(self) -> dict[str, MotorCalibration] | None:
        """(Re)read the calibration file; a damaged one is kept in `calibration_error`, not raised, so the
        arm can still be recalibrated."""
        path, calibration, error = self.read_calibration_file()
        self.calibration_source = path
        self.calibration = calibration or {}
        self.calibration_error = error
        self._synced = False
        self.bus.calibration = dict(self.calibration)
        return calibration

    def set_calibration(self, calibration: Mapping[str, MotorCalibration], *, synced: bool) -> None:
        """Adopt a calibration (in bus order). `synced` says the motors' EEPROM already holds it."""
        self.calibration = {m: calibration[m] for m in self.motors}
        self.calibration_error = None
        self.bus.calibration = dict(self.calibration)
        self._synced = synced

    def mark_unsynced(self) -> None:
        """The motors' calibration and modes were changed (a calibration is under way): until the file is
        written back or replaced the arm is not calibrated, and `connect()` must configure it again."""
        self._synced = False
        self._ready = False

    def save_calibration(self) -> Path:
        if not self.calibration:
            raise NotCalibratedError(f"{self.label}: nothing to save, the arm has no calibration")
        path = save_calibration(self.calibration_fpath, self.calibration)
        self.calibration_source = path
        return path

    @property
    def is_calibrated(self) -> bool:
        """A calibration is loaded and, once connected, the motors hold it (checked at connect, not here:
        this is read from UI timers and must not touch the bus)."""
        if not self.calibration:
            return False
        return self._synced if self.is_connected else True

    def apply_calibration(self) -> bool:
        """Write the loaded calibration to the motors if their EEPROM differs. Returns True if it wrote.
        Torque is switched off for the write (EEPROM is locked while it is on); `configure()` decides after."""
        if not self.calibration:
            raise NotCalibratedError(f"{self.label} has no calibration file; {self.calibrate_hint}")
        self.bus.calibration = dict(self.calibration)
        wrote = False
        if not self.bus.is_calibrated:
            log.info("%s: motors differ from %s, writing the file's calibration", self.label, self.calibration_source)
            self.bus.disable_torque()
            if self.drive_mode_register:
                for motor, cal in self.calibration.items():
                    self.bus.write("Drive_Mode", motor, cal.drive_mode)
            self.bus.write_calibration(self.calibration)
            wrote = True
        self.bus.calibration = dict(self.calibration)
        self._synced = True
        return wrote

    # --- lifecycle
    @property
    def is_connected(self) -> bool:
        return self.bus.is_connected

    def connect_bus(self) -> None:
        """Open the port and check every motor answers with the right model; nothing is written. Used alone
        by the calibration procedure, which must not apply a calibration it is about to replace."""
        with self._lock:
            if self.bus.is_connected:
                return
            try:
                self.bus.connect(handshake=True)
            except HandshakeError as e:
                self._close_quietly()
                hint = "check power and cables"
                if e.wrong:
                    hint += "; a wrong model means the wrong motor at that id (run motor setup again)"
                if e.missing:
                    hint += "; missing ids usually mean motor setup was not run for them"
                raise HandshakeError(f"{self.label}: {e} ({hint})", e.missing, e.wrong) from e
            except BaseException:
                self._close_quietly()
                raise
            safety.register(self)

    def connect(self, calibrate: bool = False) -> None:
        """Handshake, bring the motors' calibration in line with the file, configure, start the cameras.

        Without a calibration file the arm still connects (uncalibrated: reads in user units raise) unless
        `calibrate=True`, which demands one and raises `NotCalibratedError` naming the fix. The calibration
        itself is interactive and runs through `engine.calibration.CalibrationProcedure`."""
        if self.calibration_error is not None:
            raise self.calibration_error
        if calibrate and not self.calibration:
            raise NotCalibratedError(
                f"{self.label} is not calibrated (no file at {self.calibration_fpath}); {self.calibrate_hint}"
            )
        with self._lock:
            if self._ready and self.is_connected:
                return
            # The bus may already be open (a calibration just ran on it): finish bringing the arm up.
            self.connect_bus()
            try:
                if self.calibration:
                    self.apply_calibration()
                self.configure()
                self._connect_extras()
            except BaseException:
                self.disconnect()
                raise
            self._ready = True

    def _connect_extras(self) -> None:
        """Cameras and other devices (robots override)."""

    def _disconnect_extras(self) -> None:
        """Counterpart of `_connect_extras`; must not raise."""

    def disconnect(self) -> None:
        """Torque off (or held, if configured), port closed, cameras stopped. Safe to call twice and on a
        bus that vanished: a lost port is logged, never raised, so shutdown reaches every arm."""
        with self._lock:
            try:
                if self.bus.is_connected:
                    try:
                        self.bus.disconnect(disable_torque=self.config.disable_torque_on_disconnect)
                    except Exception as e:  # BusError, or an OS error the driver let through: still close
                        log.warning("%s: bus lost while disconnecting (%s); motors may still hold torque",
                                    self.label, e)
                        self._close_quietly()
                self._synced = False
                self._ready = False
                self._disconnect_extras()
            finally:
                safety.unregister(self)

    def _close_quietly(self) -> None:
        try:
            if self.bus.is_connected:
                self.bus.disconnect(disable_torque=False)
        except Exception as e:
            log.debug("%s: closing the port failed: %s", self.label, e)

    def set_torque(self, enabled: bool, motors: list[str] | None = None) -> None:
        if enabled:
            self.bus.enable_torque(motors)
        else:
            self.bus.disable_torque(motors)

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.disconnect()

    def __repr__(self) -> str:
        state = "connected" if self.is_connected else "disconnected"
        return f"<{type(self).__name__} {self.label} {state}>"

    # --- shared reads
    def _require_calibration(self) -> None:
        if not self.is_calibrated:
            raise NotCalibratedError(f"{self.label} is not calibrated; {self.calibrate_hint}")

    def read_positions(self) -> dict[str, float]:
        """Present positions in user units (degrees, ±100 or 0..100 per motor)."""
        self._require_calibration()
        values = self.bus.sync_read("Present_Position", num_retry=self.config.num_read_retries)
        return {m: float(values[m]) for m in self.motors}

    def _goals_from_action(self, action: Mapping[str, Any]) -> dict[str, float]:
        goal: dict[str, float] = {}
        unknown: list[str] = []
        for key, value in action.items():
            if not key.endswith(".pos"):
                continue
            motor = key.removesuffix(".pos")
            if motor not in self.motors:
                unknown.append(key)
                continue
            goal[motor] = float(value)
        if unknown:
            raise KeyError(f"{self.label}: no motor for action key(s) {', '.join(unknown)} "
                           f"(motors: {', '.join(self.motors)})")
        return goal

    @property
    def position_features(self) -> dict[str, type]:
        return {f"{m}.pos": float for m in self.motors}


class Robot(Arm):
    """A follower: observations in, goal positions out, with a per-motor step limit."""

    kind: ClassVar[ArmKind] = "robots"
    config: RobotConfig

    def __init__(self, config: RobotConfig) -> None:
        super().__init__(config)
        self._check_max_relative_target(config.max_relative_target)
        self.cameras: dict[str, Camera] = {
            name: _build_camera(name, spec) for name, spec in config.cameras.items()
        }
        self.last_clamped: dict[str, tuple[float, float]] = {}  # motor -> (asked, sent) of the last action
        self.clamp_count = 0  # actions that needed clamping since construction
        self._clamp_warning = _RateLimitedWarning()

    def _check_max_relative_target(self, cap: float | dict[str, float] | None) -> None:
        if cap is None:
            return
        values = cap.values() if isinstance(cap, dict) else [cap]
        if any(isinstance(v, bool) or not isinstance(v, int | float) or v <= 0 for v in values):
            raise ValueError(f"{self.label}: max_relative_target must be positive numbers, got {cap!r}")
        if isinstance(cap, dict) and set(cap) != set(self.motors):
            missing = sorted(set(self.motors) - set(cap))
            extra = sorted(set(cap) - set(self.motors))
            raise ValueError(
                f"{self.label}: max_relative_target must give every motor exactly once "
                f"(missing: {missing or 'none'}, unknown: {extra or 'none'})"
            )

    @property
    def observation_features(self) -> dict[str, type | tuple[int, int, int]]:
        features: dict[str, type | tuple[int, int, int]] = dict(self.position_features)
        for name, cam in self.cameras.items():
            features[name] = (cam.height, cam.width, 3)
        return features

    @property
    def action_features(self) -> dict[str, type]:
        return self.position_features

    def _connect_extras(self) -> None:
        for cam in self.cameras.values():
            cam.connect()

    def _disconnect_extras(self) -> None:
        for name, cam in self.cameras.items():
            try:
                cam.disconnect()
            except Exception as e:
                log.warning("%s: camera '%s' did not close cleanly: %s", self.label, name, e)

    def get_observation(self) -> dict[str, float | np.ndarray]:
        obs: dict[str, float | np.ndarray] = {f"{m}.pos": v for m, v in self.read_positions().items()}
        for name, cam in self.cameras.items():
            obs[name] = cam.read_latest()
        return obs

    def send_action(self, action: Mapping[str, Any]) -> dict[str, float]:
        """Write goal positions; with `max_relative_target`, each goal is first limited to present ± cap.
        Returns the action actually sent; `last_clamped` says which motors were limited."""
        self._require_calibration()
        goal = self._goals_from_action(action)
        cap = self.config.max_relative_target
        clamped: dict[str, tuple[float, float]] = {}
        if cap is not None and goal:
            present = self.bus.sync_read("Present_Position", list(goal), num_retry=self.config.num_read_retries)
            goal, clamped = clamp_relative(goal, {m: float(v) for m, v in present.items()}, cap)
        self.last_clamped = clamped
        if clamped:
            self.clamp_count += 1
            detail = ", ".join(f"{m} {a:.1f}->{s:.1f}" for m, (a, s) in clamped.items())
            self._clamp_warning.warn(
                f"{self.label}: relative goal position magnitude had to be clamped "
                f"(max_relative_target={cap}): {detail}"
            )
        if goal:
            self.bus.sync_write("Goal_Position", goal)
        return {f"{m}.pos": v for m, v in goal.items()}


class Teleoperator(Arm):
    """A leader arm: read as the action source, optionally driven back (DAgger handover)."""

    kind: ClassVar[ArmKind] = "teleoperators"
    config: TeleoperatorConfig

    @property
    def action_features(self) -> dict[str, type]:
        return self.position_features

    @property
    def feedback_features(self) -> dict[str, type]:
        return self.position_features

    def get_action(self) -> dict[str, float]:
        return {f"{m}.pos": v for m, v in self.read_positions().items()}

    def send_feedback(self, feedback: Mapping[str, Any]) -> None:
        """Drive the leader to the given positions; the caller enables torque first (`set_torque(True)`),
        since a leader is limp by design."""
        self._require_calibration()
        goal = self._goals_from_action(feedback)
        if goal:
            self.bus.sync_write("Goal_Position", goal)


def _build_camera(name: str, spec: CameraSpec) -> Camera:
    if isinstance(spec, Camera):
        return spec
    make: Callable[[str], Camera] | None = getattr(spec, "make", None)
    if make is None and callable(spec):
        make = spec
    if make is None:
        raise TypeError(f"camera '{name}': expected a Camera or a camera config with make(name), got {spec!r}")
    camera = make(name)
    if not isinstance(camera, Camera):
        raise TypeError(f"camera '{name}': its config built {camera!r}, not a Camera")
    return camera
