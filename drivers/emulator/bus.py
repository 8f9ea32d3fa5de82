"""`EmulatedBus`: a chain of emulated servos behind one pseudo-terminal, answering like real hardware.

The real Feetech/Dynamixel drivers open `bus.port` and cannot tell it from a USB adapter: packets are
parsed and answered byte for byte, motors only hear a client at their own baud rate, and faults, unplugs
and power cycles can be injected while it runs. The physics sim reads `goal_actual` and writes
`set_actual` under `bus.lock`; with `motion="internal"` the servos move themselves instead.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol

from drivers.emulator.dynamixel_protocol import DynamixelProtocol
from drivers.emulator.dynamixel_servo import DynamixelServo
from drivers.emulator.faults import EmulatorStats, FaultInjector, Faults
from drivers.emulator.feetech_protocol import FeetechProtocol
from drivers.emulator.feetech_servo import FeetechServo
from drivers.emulator.framing import Packet, Reply, StreamFramer
from drivers.emulator.pty_port import PtyPort, default_port_dir
from drivers.emulator.servo import EmulatedServo, Motion

log = logging.getLogger(__name__)

BusProtocolName = Literal["feetech", "dynamixel"]
PARTIAL_PACKET_EXPIRY_S = 0.002  # a packet that stops growing this long is treated as garbage
IDLE_POLL_S = 0.5


class _WireProtocol(Protocol):
    name: str

    def new_framer(self) -> StreamFramer: ...
    def handle(self, packet: Packet, servos: Sequence[Any]) -> list[Reply]: ...


_PROTOCOLS: dict[str, tuple[Callable[[], _WireProtocol], type[EmulatedServo]]] = {
    "feetech": (FeetechProtocol, FeetechServo),
    "dynamixel": (DynamixelProtocol, DynamixelServo),
}


class _Responder(threading.Thread):
    """Reads the client's bytes, answers them, until told to stop (one per plugged-in period)."""

    def __init__(self, bus: EmulatedBus, port: PtyPort) -> None:
        super().__init__(name=f"emulator-{bus.name}", daemon=True)
        self._bus = bus
        self._port = port
        self._framer = bus._protocol.new_framer()
        self._stop_event = threading.Event()
        self._wake_r, self._wake_w = os.pipe()

    def stop(self) -> None:
        self._stop_event.set()
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass
        self.join(timeout=5.0)
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)

    def run(self) -> None:
        master = self._port.master_fd
        assert master is not None
        while not self._stop_event.is_set():
            timeout = PARTIAL_PACKET_EXPIRY_S if self._framer.pending else IDLE_POLL_S
            try:
                ready, _, _ = select.select([master, self._wake_r], [], [], timeout)
            except (OSError, ValueError):
                return
            if self._stop_event.is_set():
                return
            if master in ready:
                data = self._port.read()
                packets = self._framer.feed(data) if data else []
            elif self._framer.pending:
                packets = self._framer.expire()
            else:
                continue
            for packet in packets:
                try:
                    answer, latency = self._bus._answer(packet, self._port.client_baudrate())
                except Exception:  # the responder must outlive any request, however malformed
                    log.exception("emulator %s: error while answering %r", self._bus.name, packet)
                    continue
                if answer:
                    if latency > 0 and self._stop_event.wait(latency):
                        return
                    self._port.write(answer)


class EmulatedBus:
    """Emulated motors on a pty. See the module docstring and `drivers/emulator/__init__.py`."""

    def __init__(
        self,
        protocol: BusProtocolName = "feetech",
        motors: Mapping[int, str] | None = None,
        baudrate: int = 1_000_000,
        motion: Motion = "internal",
        max_speed: float = 4000.0,
        name: str = "bus",
        port_dir: str | Path | None = None,
        initial_positions: Mapping[int, float] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if protocol not in _PROTOCOLS:
            raise ValueError(f"protocol must be one of {sorted(_PROTOCOLS)}, not {protocol!r}")
        if "/" in name or not name:
            raise ValueError(f"bus name must be a non-empty file name, not {name!r}")
        factory, self._servo_class = _PROTOCOLS[protocol]
        self._protocol = factory()
        self.protocol = protocol
        self.name = name
        self.baudrate = baudrate
        self.motion: Motion = motion
        self.max_speed = max_speed
        self.lock = threading.RLock()
        self.stats = EmulatorStats()
        self._clock = clock
        self._faults = FaultInjector(Faults())
        self._servos: list[EmulatedServo] = []
        self._port = PtyPort(Path(port_dir or default_port_dir()) / f"ttyEMU-{name}")
        self._responder: _Responder | None = None
        self._started = False
        positions = dict(initial_positions or {})
        for motor_id, model in (motors or {}).items():
            self.add_motor(motor_id, model, initial_position=positions.get(motor_id))

    # --------------------------------------------------------------------------------- lifecycle
    @property
    def port(self) -> str:
        """The stable path drivers open (a symlink to the current /dev/pts/N)."""
        return str(self._port.link)

    @property
    def plugged(self) -> bool:
        return self._port.is_open

    @property
    def running(self) -> bool:
        return self._started

    def start(self) -> EmulatedBus:
        if self._started:
            return self
        self._started = True
        self.replug()
        return self

    def stop(self) -> None:
        """Stop answering and leave nothing behind: no thread, no fd, no symlink. Idempotent."""
        self._started = False
        self.unplug()

    def __enter__(self) -> EmulatedBus:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def unplug(self) -> None:
        """The adapter is pulled: the device node disappears and an open client gets I/O errors."""
        if self._responder is not None:
            self._responder.stop()
            self._responder = None
        self._port.close()

    def replug(self) -> None:
        """Plug back in: a new pty behind the same symlink path, motors keep their state."""
        if not self._started:
            raise RuntimeError("start() the bus before replugging it")
        if self._port.is_open:
            return
        self._port.open()
        self._responder = _Responder(self, self._port)
        self._responder.start()

    @property
    def client_baudrate(self) -> int:
        """The baud rate the client's serial port is set to (0 while unplugged)."""
        return self._port.client_baudrate()

    # ------------------------------------------------------------------------------------ motors
    @property
    def servos(self) -> dict[int, EmulatedServo]:
        """Motors keyed by their current ID register (an ID write re-keys them)."""
        with self.lock:
            return {servo.id: servo for servo in self._servos}

    def servo(self, motor_id: int) -> EmulatedServo:
        with self.lock:
            for servo in self._servos:
                if servo.id == motor_id:
                    return servo
        raise KeyError(f"no emulated motor with id {motor_id} on {self.name}")

    def add_motor(
        self, motor_id: int, model: str, baudrate: int | None = None, *, initial_position: float | None = None
    ) -> EmulatedServo:
        """Connect another motor (e.g. a factory-fresh one for motor setup)."""
        with self.lock:
            if any(servo.id == motor_id for servo in self._servos):
                raise ValueError(f"{self.name}: a motor with id {motor_id} is already on the bus")
            servo = self._servo_class(
                motor_id,
                model,
                baudrate=baudrate or self.baudrate,
                lock=self.lock,
                motion=self.motion,
                max_speed=self.max_speed,
                initial_position=initial_position,
                clock=self._clock,
            )
            self._servos.append(servo)
            return servo

    def remove_motor(self, motor_id: int) -> EmulatedServo:
        with self.lock:
            servo = self.servo(motor_id)
            self._servos.remove(servo)
            return servo

    def set_actual(self, positions: Mapping[int, float]) -> None:
        """Move shafts from outside (the physics sim, or a hand on a limp arm)."""
        with self.lock:
            for motor_id, position in positions.items():
                self.servo(motor_id).set_actual(position)

    def power_cycle(self) -> None:
        """Switch the motors' power off and on (Feetech EEPROM written while locked is lost)."""
        with self.lock:
            for servo in self._servos:
                servo.power_cycle()

    # ------------------------------------------------------------------------------------ faults
    @property
    def faults(self) -> Faults:
        return self._faults.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self._faults = FaultInjector(faults)

    # ---------------------------------------------------------------------------------- serving
    def _answer(self, packet: Packet, client_baudrate: int) -> tuple[bytes, float]:
        """Run one instruction packet; returns the bytes to send back and the injected latency."""
        if packet.valid:
            self.stats.requests += 1
        else:
            self.stats.bad_packets += 1
        injector = self._faults
        with self.lock:
            listening = sorted(
                (
                    s
                    for s in self._servos
                    if s.baudrate == client_baudrate and s.id not in injector.faults.dead_ids
                ),
                key=lambda s: s.id,
            )
            replies = self._protocol.handle(packet, listening)
        out = bytearray()
        for reply in replies:
            data = injector.apply(reply.data, self.stats)
            if data is not None:
                out += data
                self.stats.replies += 1
        return bytes(out), injector.faults.latency_s

    def __repr__(self) -> str:
        state = "plugged" if self.plugged else "unplugged"
        return f"EmulatedBus({self.protocol!r}, name={self.name!r}, {len(self._servos)} motors, {state})"
