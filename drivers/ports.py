"""Serial-port discovery for the arms: which ports exist, which one is the arm, and why a port cannot be used.

LeRobot users lose days to three things here: guessing among /dev/tty* names, a port they may not open
(not in the 'dialout' group, or a stale login session), and brltty claiming CH340/CP210x adapters as braille
displays so the port never appears. Discovery covers real USB ports and the servo emulator's pty links alike,
so the same "unplug the cable" flow works against the simulator.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from drivers.emulator import default_port_dir

DEV_DIR = Path("/dev")
BY_ID_DIR = Path("/dev/serial/by-id")
PORT_PATTERNS = ("ttyACM*", "ttyUSB*", "tty.usbmodem*", "tty.usbserial*")
UDEV_RULE_DIRS = (Path("/etc/udev/rules.d"), Path("/usr/lib/udev/rules.d"), Path("/lib/udev/rules.d"))
# USB vendors of the adapters on SO-100/101 and Koch boards that brltty's rules claim: WCH (CH34x), Silicon Labs.
BRLTTY_CLAIMED_VENDORS = ("1a86", "10c4")


def emulator_port_dir() -> Path:
    """Where the servo emulator publishes its ttyEMU-<name> links (read per call: it follows XDG_RUNTIME_DIR)."""
    return Path(default_port_dir())


@dataclass(frozen=True)
class PortInfo:
    path: str  # what to pass as --port (a symlink for emulator ports)
    target: str  # the device node behind it
    by_id_name: str | None = None  # /dev/serial/by-id/<name>: stable across reboots and replugs
    description: str | None = None
    vid_pid: str | None = None  # "1a86:55d3"
    serial_number: str | None = None
    readable: bool = False
    writable: bool = False
    owner_group: str | None = None
    emulated: bool = False

    @property
    def by_id_path(self) -> str | None:
        return str(BY_ID_DIR / self.by_id_name) if self.by_id_name else None

    @property
    def usable(self) -> bool:
        return self.readable and self.writable


# --- listing


def _candidate_paths(dev_dir: Path, port_dirs: Iterable[Path]) -> list[tuple[Path, bool]]:
    """(path, emulated) for each port-like entry; dangling links (a closed emulator pty) do not count."""
    found: list[tuple[Path, bool]] = []
    for pattern in PORT_PATTERNS:
        found += [(p, False) for p in sorted(dev_dir.glob(pattern))]
    for directory in port_dirs:
        if directory.is_dir():
            found += [(p, True) for p in sorted(directory.iterdir()) if p.exists() and not p.is_dir()]
    seen: set[str] = set()
    unique = []
    for path, emulated in found:
        if str(path) not in seen:
            seen.add(str(path))
            unique.append((path, emulated))
    return unique


def _port_dirs(extra_dirs: Iterable[str | Path], include_emulator: bool) -> list[Path]:
    dirs = [emulator_port_dir()] if include_emulator else []
    return dirs + [Path(d) for d in extra_dirs]


def port_paths(
    extra_dirs: Iterable[str | Path] = (), *, dev_dir: Path | None = None, include_emulator: bool = True
) -> set[str]:
    """Just the paths: cheap enough to poll ten times a second while waiting for an unplug."""
    if sys.platform == "win32":
        return {p.path for p in _windows_ports()}
    candidates = _candidate_paths(dev_dir or DEV_DIR, _port_dirs(extra_dirs, include_emulator))
    return {str(p) for p, _ in candidates}


def by_id_names(by_id_dir: Path | None = None) -> dict[str, str]:
    """Resolved device node → its /dev/serial/by-id link name."""
    by_id_dir = by_id_dir or BY_ID_DIR
    names: dict[str, str] = {}
    if by_id_dir.is_dir():
        for link in sorted(by_id_dir.iterdir()):
            try:
                names[os.path.realpath(link)] = link.name
            except OSError:
                continue
    return names


def _usb_details() -> dict[str, tuple[str | None, str | None, str | None]]:
    """Device node → (description, vid:pid, serial) from pyserial's sysfs/IOKit lookup."""
    try:
        from serial.tools import list_ports
    except ImportError:
        return {}
    details = {}
    for p in list_ports.comports():
        vid_pid = f"{p.vid:04x}:{p.pid:04x}" if p.vid is not None and p.pid is not None else None
        description = p.description if p.description and p.description != "n/a" else None
        details[os.path.realpath(p.device)] = (description, vid_pid, p.serial_number)
    return details


def _group_name(gid: int) -> str:
    import grp  # POSIX only

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def list_ports(
    extra_dirs: Iterable[str | Path] = (),
    *,
    by_id_dir: Path | None = None,
    dev_dir: Path | None = None,
    include_emulator: bool = True,
) -> list[PortInfo]:
    """USB serial ports (/dev/ttyACM*, ttyUSB*, macOS tty.usbmodem*/usbserial*), the emulator's ports and every
    entry of `extra_dirs`, each with its stable by-id name, USB identity and whether this user may open it.
    dev_dir/by_id_dir default to DEV_DIR/BY_ID_DIR, read at call time. On Windows: pyserial's COM ports."""
    if sys.platform == "win32":
        return _windows_ports()
    candidates = _candidate_paths(dev_dir or DEV_DIR, _port_dirs(extra_dirs, include_emulator))
    ids = by_id_names(by_id_dir)
    usb = _usb_details() if any(not emulated for _, emulated in candidates) else {}
    ports = []
    for path, emulated in candidates:
        target = os.path.realpath(path)
        try:
            group: str | None = _group_name(os.stat(target).st_gid)
        except OSError:
            continue  # vanished between listing and stat
        description, vid_pid, serial = usb.get(target, (None, None, None))
        if emulated and description is None:
            description = f"robotui servo emulator ({path.name.removeprefix('ttyEMU-')})"
        ports.append(
            PortInfo(
                path=str(path),
                target=target,
                by_id_name=ids.get(target),
                description=description,
                vid_pid=vid_pid,
                serial_number=serial,
                readable=os.access(target, os.R_OK),
                writable=os.access(target, os.W_OK),
                owner_group=group,
                emulated=emulated,
            )
        )
    return ports


def _windows_ports() -> list[PortInfo]:
    """No /dev, groups or emulator ptys on Windows: COM ports as pyserial enumerates them."""
    from serial.tools import list_ports as serial_ports

    return [
        PortInfo(path=p.device, target=p.device, description=p.description, readable=True, writable=True)
        for p in serial_ports.comports()
    ]


# --- watching for an unplug / replug


@dataclass(frozen=True)
class PortDiff:
    removed: tuple[str, ...] = ()
    added: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.removed or self.added)


def _paths(ports: Iterable[PortInfo | str]) -> set[str]:
    return {p.path if isinstance(p, PortInfo) else str(p) for p in ports}


def diff_ports(before: Iterable[PortInfo | str], after: Iterable[PortInfo | str]) -> PortDiff:
    old, new = _paths(before), _paths(after)
    return PortDiff(removed=tuple(sorted(old - new)), added=tuple(sorted(new - old)))


class PortWatcher:
    """Polls the port list so the user only unplugs (no Enter). After the first change it waits `settle_s` more,
    because a USB hub or a two-arm board takes several ports with it and that must not pass as one port."""

    def __init__(
        self,
        list_fn: Callable[[], Iterable[str]] = port_paths,
        interval_s: float = 0.1,
        settle_s: float = 0.5,
        stop: threading.Event | None = None,
    ) -> None:
        self.list_fn = list_fn
        self.interval_s = interval_s
        self.settle_s = settle_s
        self.stop = stop or threading.Event()
        self.current: set[str] = set(list_fn())

    def poll(self) -> PortDiff:
        """What changed since the last poll (or construction)."""
        now = set(self.list_fn())
        diff = diff_ports(self.current, now)
        self.current = now
        return diff

    def wait_for(self, want: str, timeout_s: float) -> PortDiff:
        """Wait until ports are `want` ("removed" or "added"); the diff covers the settle window. Empty on timeout
        or stop."""
        if want not in ("removed", "added"):
            raise ValueError(f"want must be 'removed' or 'added', got {want!r}")
        baseline = set(self.current)
        deadline = time.monotonic() + timeout_s
        while not self.stop.is_set():
            self.poll()
            if getattr(diff_ports(baseline, self.current), want):
                if self.stop.wait(self.settle_s):
                    return PortDiff()
                self.poll()
                return diff_ports(baseline, self.current)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return PortDiff()
            self.stop.wait(min(self.interval_s, remaining))
        return PortDiff()

    def wait_removed(self, timeout_s: float) -> tuple[str, ...]:
        return self.wait_for("removed", timeout_s).removed

    def wait_added(self, timeout_s: float) -> tuple[str, ...]:
        return self.wait_for("added", timeout_s).added


# --- why a port cannot be used


@dataclass(frozen=True)
class PortProblem:
    kind: str  # "permission" | "relogin" | "brltty"
    port: str | None
    detail: str
    fix: str


@dataclass(frozen=True)
class UserIdentity:
    """The ids the kernel checks for this process; `listed_groups` are those /etc/group gives the user, which a
    session started before `usermod -aG` does not have yet."""

    uid: int
    name: str
    gids: frozenset[int]
    listed_groups: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def current(cls) -> UserIdentity:
        import grp
        import pwd

        uid = os.getuid()
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = os.environ.get("USER", str(uid))
        listed = {g.gr_name for g in grp.getgrall() if name in g.gr_mem}
        try:
            listed.add(_group_name(pwd.getpwnam(name).pw_gid))
        except KeyError:
            pass
        return cls(
            uid=uid,
            name=name,
            gids=frozenset({os.getgid(), *os.getgroups()}),
            listed_groups=frozenset(listed),
        )


def _udev_rule_hint(port: str, vid_pid: str | None, group: str) -> str:
    if vid_pid:
        vid, pid = vid_pid.split(":")
        match = f'ATTRS{{idVendor}}=="{vid}", ATTRS{{idProduct}}=="{pid}"'
    else:
        match = f'KERNEL=="{re.sub(r"[0-9]+$", "*", Path(port).name)}"'
    rule = f'SUBSYSTEM=="tty", {match}, MODE="0660", GROUP="{group}"'
    return (
        f"echo '{rule}' | sudo tee /etc/udev/rules.d/99-robotui-serial.rules && "
        "sudo udevadm control --reload-rules && sudo udevadm trigger, then replug the cable "
        f"(and `sudo usermod -aG {group} $USER` + log in again if you are not in '{group}')"
    )


def permission_problem(
    port: str,
    st_mode: int,
    st_uid: int,
    st_gid: int,
    group_name: str,
    user: UserIdentity,
    vid_pid: str | None = None,
) -> PortProblem | None:
    """Why `user` may not open a device with this mode/owner, and the exact fix; None if read+write is allowed."""
    need = 0o6  # read and write
    if user.uid == 0:
        return None
    if st_uid == user.uid and (st_mode >> 6) & need == need:
        return None
    if st_gid in user.gids and (st_mode >> 3) & need == need:
        return None
    if st_mode & need == need:
        return None
    if (st_mode >> 3) & need == need:  # the owning group may use it: join that group
        if group_name in user.listed_groups:
            return PortProblem(
                "relogin",
                port,
                f"{port}: you are in the '{group_name}' group, but this login session started before you were added",
                f"log out and back in (or reboot); `newgrp {group_name}` works for one shell",
            )
        return PortProblem(
            "permission",
            port,
            f"{port} belongs to group '{group_name}' and user '{user.name}' is not in it",
            f"sudo usermod -aG {group_name} $USER, then log out and back in",
        )
    return PortProblem(
        "permission",
        port,
        f"{port} is readable only by its owner (mode {stat.filemode(st_mode)})",
        _udev_rule_hint(port, vid_pid, group_name if group_name not in ("root", "") else "dialout"),
    )


@dataclass(frozen=True)
class BrlttyFinding:
    pids: tuple[int, ...] = ()
    rule_files: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.pids or self.rule_files)


def find_brltty(proc_dir: Path = Path("/proc"), rule_dirs: Iterable[Path] = UDEV_RULE_DIRS) -> BrlttyFinding:
    """A running brltty, or udev rules that start it for CH34x/CP210x adapters (and so steal the arm's port)."""
    pids = []
    if proc_dir.is_dir():
        for entry in proc_dir.iterdir():
            if entry.name.isdigit():
                try:
                    if (entry / "comm").read_text().strip() == "brltty":
                        pids.append(int(entry.name))
                except OSError:
                    continue
    vendor_re = re.compile(r"\b(" + "|".join(BRLTTY_CLAIMED_VENDORS) + r")\b", re.IGNORECASE)
    rules: dict[str, str] = {}
    for directory in rule_dirs:
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*brltty*.rules")):
            try:
                if vendor_re.search(path.read_text(errors="replace")):
                    rules.setdefault(os.path.realpath(path), str(path))  # /lib is often /usr/lib
            except OSError:
                continue
    return BrlttyFinding(pids=tuple(sorted(pids)), rule_files=tuple(rules.values()))


BRLTTY_FIX = (
    "sudo apt remove brltty (unless you use a braille display; then: sudo systemctl mask brltty-udev.service "
    "&& sudo systemctl stop brltty-udev.service brltty.service), then replug the cable"
)


def brltty_problem(finding: BrlttyFinding) -> PortProblem | None:
    if not finding:
        return None
    what = []
    if finding.pids:
        what.append(f"brltty is running (pid {', '.join(map(str, finding.pids))})")
    if finding.rule_files:
        what.append(
            f"its udev rules claim CH340/CP210x USB-serial adapters ({', '.join(finding.rule_files)})"
        )
    return PortProblem(
        "brltty",
        None,
        "; ".join(what)
        + ": it grabs the arm's adapter as a braille display, so /dev/ttyUSB* vanishes after plugging in",
        BRLTTY_FIX,
    )


def port_problems(
    ports: Iterable[PortInfo] | None = None,
    *,
    user: UserIdentity | None = None,
    brltty: BrlttyFinding | None = None,
) -> list[PortProblem]:
    """Permission problems of each port this user cannot open, then brltty if it is around."""
    ports = list_ports() if ports is None else list(ports)
    if sys.platform == "win32":
        return []  # neither groups nor brltty there
    as_someone_else = user is not None  # PortInfo.readable/writable are this process's view only
    user = user or UserIdentity.current()
    problems = []
    for port in ports:
        if port.usable and not as_someone_else:
            continue
        try:
            st = os.stat(port.target)
        except OSError:
            continue
        problem = permission_problem(
            port.path, st.st_mode, st.st_uid, st.st_gid, _group_name(st.st_gid), user, port.vid_pid
        )
        if problem:
            problems.append(problem)
    found = brltty_problem(find_brltty() if brltty is None else brltty)
    if found:
        problems.append(found)
    return problems
