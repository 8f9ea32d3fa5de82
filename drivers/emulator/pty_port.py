"""A pseudo-terminal that stands in for a USB serial adapter, reachable through a stable symlink.

The real drivers open `port` like any /dev/ttyUSB*: the symlink points at the pty slave. The emulator
keeps its own slave fd open, for two reasons: the pty stays alive while no client has it open, and the
slave's termios tell which baud rate the client configured (TCGETS2 gives the exact speed, custom rates
included), so motors only answer a client at their own baud, as on a real bus.
"""

from __future__ import annotations

import array
import fcntl
import os
import pty
import struct
import termios
import tty
from pathlib import Path

TCGETS2 = 0x802C542A  # _IOR('T', 0x2A, struct termios2)
TERMIOS2_SPEED_OFFSET = 36  # c_ispeed, c_ospeed follow 4 flags, c_line and 19 control chars


def default_port_dir() -> Path:
    """Where emulated ports' symlinks live: per-user, so two users never collide."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "robotui" / "ports"
    return Path(f"/tmp/robotui-{os.getuid()}/ports")


def _termios_speed_fallback(fd: int) -> int:
    """Standard-rate decoding through termios when TCGETS2 is unavailable."""
    speed_code = termios.tcgetattr(fd)[5]
    for name in dir(termios):
        if name.startswith("B") and name[1:].isdigit() and getattr(termios, name) == speed_code:
            return int(name[1:])
    return 0


class PtyPort:
    """One pty pair plus the symlink that names it. `open()` / `close()` can repeat (unplug/replug)."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master_fd: int | None = None
        self.slave_fd: int | None = None
        self.slave_name: str | None = None

    @property
    def is_open(self) -> bool:
        return self.master_fd is not None

    def open(self) -> None:
        if self.is_open:
            return
        master, slave = pty.openpty()
        tty.setraw(slave)  # no echo or line editing before a client configures it
        os.set_blocking(master, False)
        self.master_fd, self.slave_fd, self.slave_name = master, slave, os.ttyname(slave)
        self.link.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.link.with_name(f".{self.link.name}.{os.getpid()}.tmp")
        if temporary.is_symlink():
            temporary.unlink()
        temporary.symlink_to(self.slave_name)
        os.replace(temporary, self.link)  # atomic: a stale link from a crashed run is replaced

    def close(self) -> None:
        """Close both ends and remove the symlink (if it still names this pty)."""
        if self.link.is_symlink() and self.slave_name and os.readlink(self.link) == self.slave_name:
            self.link.unlink()
        for fd in (self.master_fd, self.slave_fd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.master_fd = self.slave_fd = self.slave_name = None

    def client_baudrate(self) -> int:
        """The baud rate the client set on its end (0 if unknown)."""
        if self.slave_fd is None:
            return 0
        raw = array.array("i", [0] * 16)
        try:
            fcntl.ioctl(self.slave_fd, TCGETS2, raw)
        except OSError:
            return _termios_speed_fallback(self.slave_fd)
        _ispeed, ospeed = struct.unpack_from("II", raw.tobytes(), TERMIOS2_SPEED_OFFSET)
        return int(ospeed)

    def read(self) -> bytes:
        """Whatever the client wrote (b"" if nothing is there)."""
        assert self.master_fd is not None
        try:
            return os.read(self.master_fd, 4096)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError:  # EIO while no client holds the slave on some kernels
            return b""

    def write(self, data: bytes) -> None:
        """Send to the client; bytes that do not fit (client not reading) are lost like on a wire."""
        assert self.master_fd is not None
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.master_fd, view)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            view = view[written:]
