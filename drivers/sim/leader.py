"""`VirtualLeader`: the leader arm as an emulated Feetech bus whose shafts are moved by a script or keys.

A real leader is limp and moved by hand; here the "hand" is `set_positions` (the demonstrator) or `jog`
(keyboard). There is no physics: the shafts are where the hand puts them. When the engine switches the
leader's torque on for a DAgger handover, the emulated servos move themselves toward their goals
(motion="internal") and the hand lets go of those joints, as a person would feel the arm take over.
"""

from __future__ import annotations

import math

from drivers.emulator import EmulatedBus
from drivers.sim.scene import HOME_POSE, JOINT_NAMES, JOINTS
from drivers.sim.ticks import TickMap

SERVO_MODEL = "sts3215"


class VirtualLeader:
    """Six emulated STS3215 on a pty, positioned in joint angles (rad)."""

    def __init__(self, ticks: TickMap, *, name: str = "leader", port_dir: str | None = None) -> None:
        self.ticks = ticks
        self.bus = EmulatedBus(
            protocol="feetech",
            motors={j.motor_id: SERVO_MODEL for j in JOINTS},
            motion="internal",
            name=name,
            port_dir=port_dir,
            initial_positions=dict(
                zip((j.motor_id for j in JOINTS), ticks.physical(list(HOME_POSE)), strict=True)
            ),
        )
        self._servos = [self.bus.servo(j.motor_id) for j in JOINTS]
        self._lower = [j.lower for j in JOINTS]
        self._upper = [j.upper for j in JOINTS]

    @property
    def port(self) -> str:
        return self.bus.port

    def start(self) -> None:
        self.bus.start()

    def stop(self) -> None:
        self.bus.stop()

    def positions(self) -> list[float]:
        """Current joint angles (rad), JOINTS order."""
        with self.bus.lock:
            physical = [s.actual for s in self._servos]
        return self.ticks.angles(physical).tolist()

    def set_positions(self, angles: list[float] | tuple[float, ...]) -> None:
        """Move the limp joints to `angles` (clipped to the joint ranges); torqued joints are left to their
        firmware."""
        clipped = [min(max(a, lo), hi) for a, lo, hi in zip(angles, self._lower, self._upper, strict=True)]
        physical = self.ticks.physical(clipped)
        with self.bus.lock:
            for servo, p in zip(self._servos, physical, strict=True):
                if not servo.torque_enabled:
                    servo.set_actual(p)

    def jog(self, joint: str, delta_deg: float) -> float:
        """Nudge one joint by `delta_deg` degrees (keyboard teleop); returns its new angle in degrees."""
        i = JOINT_NAMES.index(joint)
        angles = self.positions()
        angles[i] += math.radians(delta_deg)
        self.set_positions(angles)
        return math.degrees(self.positions()[i])

    def unplug(self) -> None:
        self.bus.unplug()

    def replug(self) -> None:
        self.bus.replug()
