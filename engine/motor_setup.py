"""Motor setup as steps: give each factory-fresh motor its id and the bus baud rate, one motor at a time.

New servos all ship with the same id (1), so they cannot share a bus until each has been given its own. The
user plugs in one motor, the procedure finds it at whatever baud rate and id it has and rewrites them, then
asks for the next. The order is the arm's setup order (gripper first, as LeRobot's `setup_motors`), which
is also the order of the daisy chain from its end.

    setup = MotorSetupProcedure(arm)
    while not setup.done:
        show(setup.current.prompt)            # "connect only the 'gripper' motor..."
        result = setup.setup_current()        # raises MotorSetupError; retry after the user fixes it
        show(result.describe())
    setup.close()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from drivers.motors.bus import BusError, HandshakeError, MultipleMotorsError, NoMotorFoundError, PortError
from drivers.robots.base import Arm

FailureReason = Literal["no_motor", "several_motors", "wrong_model", "port", "other"]


class MotorSetupError(RuntimeError):
    """Setting up one motor failed; `reason` lets a UI pick the picture to show, the message says what to do."""

    def __init__(self, motor: str, reason: FailureReason, message: str) -> None:
        super().__init__(message)
        self.motor = motor
        self.reason = reason


@dataclass(frozen=True)
class SetupStep:
    motor: str
    id: int  # the id it will get
    model: str

    @property
    def prompt(self) -> str:
        return (
            f"Connect the controller board to the '{self.motor}' motor ({self.model}) only, "
            f"with no other motor on the cable, then continue: it will get id {self.id}."
        )


@dataclass(frozen=True)
class SetupResult:
    motor: str
    found_baudrate: int
    found_id: int
    new_id: int
    new_baudrate: int

    @property
    def changed(self) -> bool:
        return (self.found_baudrate, self.found_id) != (self.new_baudrate, self.new_id)

    def describe(self) -> str:
        rate = f"{self.new_baudrate / 1e6:g} Mbps" if self.new_baudrate >= 1_000_000 else f"{self.new_baudrate} baud"
        if not self.changed:
            return f"'{self.motor}': already id {self.new_id} at {rate}, nothing to change"
        return (
            f"'{self.motor}': found at {self.found_baudrate} baud with id {self.found_id} "
            f"-> set to id {self.new_id} at {rate}"
        )


def _reason(error: BusError) -> FailureReason:
    """The picture a UI shows for a failed setup; any other failure (a reply lost mid-setup...) is "other"."""
    if isinstance(error, PortError):
        return "port"
    if isinstance(error, HandshakeError):
        return "wrong_model"
    if isinstance(error, NoMotorFoundError):
        return "no_motor"
    if isinstance(error, MultipleMotorsError):
        return "several_motors"
    return "other"


class MotorSetupProcedure:
    """Walks the arm's motors in setup order. The bus is opened without the handshake (the motors are not
    all there yet) and closed by `close()`; torque is never switched on."""

    def __init__(self, arm: Arm) -> None:
        self.arm = arm
        self.steps = [SetupStep(m, arm.motors[m].id, arm.motors[m].model) for m in arm.setup_order]
        self.index = 0
        self.results: dict[str, SetupResult] = {}

    @property
    def current(self) -> SetupStep | None:
        return self.steps[self.index] if self.index < len(self.steps) else None

    @property
    def done(self) -> bool:
        return self.index >= len(self.steps)

    def go_to(self, motor: str) -> SetupStep:
        """Jump to a motor (redo one, or set up a single replaced motor)."""
        for i, step in enumerate(self.steps):
            if step.motor == motor:
                self.index = i
                return step
        raise KeyError(f"no motor named {motor!r} (motors: {', '.join(s.motor for s in self.steps)})")

    def skip(self) -> None:
        if not self.done:
            self.index += 1

    def setup_current(self) -> SetupResult:
        """Find the one connected motor, give it the current step's id and the default baud rate, advance."""
        step = self.current
        if step is None:
            raise MotorSetupError("", "other", "all motors are set up")
        bus = self.arm.bus
        try:
            if not bus.is_connected:
                bus.connect(handshake=False)
            found_baud, found_id = bus.setup_motor(step.motor)
        except BusError as e:
            raise MotorSetupError(step.motor, _reason(e), f"setting up '{step.motor}': {e}") from e
        result = SetupResult(step.motor, found_baud, found_id, step.id, bus.default_baudrate)
        self.results[step.motor] = result
        self.index += 1
        return result

    def close(self) -> None:
        """Close the port. Torque is left alone: setup never enabled it, and most motors are unplugged."""
        if self.arm.bus.is_connected:
            self.arm.bus.disconnect(disable_torque=False)

    def __enter__(self) -> MotorSetupProcedure:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
