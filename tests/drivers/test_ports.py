"""Port discovery on real pseudo-terminals: emulator-style links, by-id names, unplug/replug, permissions, brltty."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.ports import (
    BRLTTY_FIX,
    BrlttyFinding,
    PortDiff,
    PortInfo,
    PortWatcher,
    UserIdentity,
    brltty_problem,
    diff_ports,
    emulator_port_dir,
    find_brltty,
    list_ports,
    permission_problem,
    port_paths,
    port_problems,
)

CHAR = stat.S_IFCHR


class Ptys:
    """Real ptys from os.openpty(); closed at teardown."""

    def __init__(self) -> None:
        self.fds: list[int] = []

    def new(self) -> tuple[str, int]:
        master, slave = os.openpty()
        self.fds += [master, slave]
        return os.ttyname(slave), slave

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)


@pytest.fixture
def ptys() -> Iterator[Ptys]:
    p = Ptys()
    yield p
    p.close()


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    names = ("ports", "dev", "by-id", "empty")
    for name in names:
        (tmp_path / name).mkdir()
    return {name: tmp_path / name for name in names}


def link(directory: Path, name: str, target: str) -> Path:
    path = directory / name
    path.symlink_to(target)
    return path


def isolated(extra: list[Path], dirs: dict[str, Path], **kw: object) -> list[PortInfo]:
    return list_ports(extra, dev_dir=dirs["dev"], by_id_dir=dirs["by-id"], include_emulator=False, **kw)  # type: ignore[arg-type]


# --- listing


def test_lists_emulator_links_to_real_ptys(ptys: Ptys, dirs: dict[str, Path]) -> None:
    follower, _ = ptys.new()
    leader, _ = ptys.new()
    link(dirs["ports"], "ttyEMU-follower", follower)
    link(dirs["ports"], "ttyEMU-leader", leader)
    link(dirs["ports"], "ttyEMU-gone", "/dev/pts/999999")  # emulator died: dangling link is not a port
    (dirs["ports"] / "subdir").mkdir()

    ports = isolated([dirs["ports"]], dirs)
    assert [p.path for p in ports] == [
        str(dirs["ports"] / "ttyEMU-follower"),
        str(dirs["ports"] / "ttyEMU-leader"),
    ]
    first = ports[0]
    assert first.target == os.path.realpath(follower)
    assert first.emulated and first.usable
    assert first.description == "robotui servo emulator (follower)"
    assert first.owner_group
    assert port_paths([dirs["ports"]], dev_dir=dirs["dev"], include_emulator=False) == {p.path for p in ports}


def test_by_id_names_are_attached(ptys: Ptys, dirs: dict[str, Path]) -> None:
    acm, _ = ptys.new()
    other, _ = ptys.new()
    link(dirs["dev"], "ttyACM0", acm)
    link(dirs["dev"], "ttyUSB3", other)
    link(dirs["dev"], "ttyS0", other)  # not an arm-like name: not listed
    by_id = "usb-1a86_USB_Single_Serial_5A46083059-if00"
    link(dirs["by-id"], by_id, acm)

    ports = {Path(p.path).name: p for p in isolated([], dirs)}
    assert set(ports) == {"ttyACM0", "ttyUSB3"}
    assert ports["ttyACM0"].by_id_name == by_id
    assert ports["ttyACM0"].by_id_path == f"/dev/serial/by-id/{by_id}"
    assert not ports["ttyACM0"].emulated
    assert ports["ttyUSB3"].by_id_name is None


def test_the_emulator_directory_is_always_included(
    ptys: Ptys, dirs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    port_dir = emulator_port_dir()
    assert port_dir == tmp_path / "run" / "robotui" / "ports"
    port_dir.mkdir(parents=True)
    pts, _ = ptys.new()
    link(port_dir, "ttyEMU-follower", pts)
    extra_pts, _ = ptys.new()
    link(dirs["ports"], "ttyEMU-other", extra_pts)

    ports = list_ports([dirs["ports"]], dev_dir=dirs["empty"], by_id_dir=dirs["empty"])
    assert [p.path for p in ports] == [str(port_dir / "ttyEMU-follower"), str(dirs["ports"] / "ttyEMU-other")]


# --- unplug / replug


def test_diff_ports_accepts_infos_and_paths() -> None:
    before = [PortInfo("/dev/ttyACM0", "/dev/ttyACM0"), "/dev/ttyACM1"]
    assert diff_ports(before, ["/dev/ttyACM1", "/dev/ttyUSB0"]) == PortDiff(
        ("/dev/ttyACM0",), ("/dev/ttyUSB0",)
    )
    assert not diff_ports(before, ["/dev/ttyACM0", "/dev/ttyACM1"])


def test_watcher_detects_unplug_and_replug(ptys: Ptys, dirs: dict[str, Path]) -> None:
    pts, _ = ptys.new()
    keep, _ = ptys.new()
    arm = link(dirs["ports"], "ttyEMU-follower", pts)
    link(dirs["ports"], "ttyEMU-leader", keep)
    watcher = PortWatcher(
        lambda: port_paths([dirs["ports"]], dev_dir=dirs["empty"], include_emulator=False),
        interval_s=0.01,
        settle_s=0.05,
    )

    unplug = threading.Timer(0.1, arm.unlink)
    unplug.start()
    try:
        assert watcher.wait_removed(timeout_s=5) == (str(arm),)
    finally:
        unplug.cancel()
    replug = threading.Timer(0.1, lambda: arm.symlink_to(pts))
    replug.start()
    try:
        assert watcher.wait_added(timeout_s=5) == (str(arm),)
    finally:
        replug.cancel()


def test_watcher_reports_every_port_that_vanishes_together() -> None:
    states = iter([{"a", "b", "c"}, {"a", "b", "c"}, {"a"}, {"a"}])
    last: list[set[str]] = [set()]

    def list_fn() -> set[str]:
        last[0] = next(states, last[0])
        return last[0]

    watcher = PortWatcher(list_fn, interval_s=0.001, settle_s=0.001)
    assert watcher.wait_removed(timeout_s=5) == ("b", "c")


def test_watcher_picks_up_ports_leaving_during_the_settle_window() -> None:
    states = iter([{"a", "b"}, {"a"}, set()])
    last: list[set[str]] = [set()]

    def list_fn() -> set[str]:
        last[0] = next(states, last[0])
        return last[0]

    assert PortWatcher(list_fn, interval_s=0.001, settle_s=0.001).wait_removed(timeout_s=5) == ("a", "b")


def test_watcher_times_out_and_stops() -> None:
    assert PortWatcher(lambda: {"a"}, interval_s=0.01).wait_removed(timeout_s=0.05) == ()
    stop = threading.Event()
    stop.set()
    watcher = PortWatcher(lambda: {"a"}, stop=stop)
    assert watcher.wait_added(timeout_s=30) == ()
    with pytest.raises(ValueError):
        watcher.wait_for("changed", 1)


# --- permissions

ALICE = UserIdentity(
    uid=1000, name="alice", gids=frozenset({1000, 24}), listed_groups=frozenset({"alice", "cdrom"})
)


@pytest.mark.parametrize(
    ("mode", "uid", "gid", "group"),
    [
        (0o666, 0, 20, "dialout"),  # everyone may
        (0o600, 1000, 1000, "alice"),  # her own device
        (0o660, 0, 24, "cdrom"),  # a group her session has
    ],
)
def test_allowed_modes(mode: int, uid: int, gid: int, group: str) -> None:
    assert permission_problem("/dev/ttyACM0", CHAR | mode, uid, gid, group, ALICE) is None


def test_missing_group_gives_the_usermod_fix() -> None:
    problem = permission_problem("/dev/ttyACM0", CHAR | 0o660, 0, 20, "dialout", ALICE)
    assert problem is not None and problem.kind == "permission"
    assert "'dialout'" in problem.detail and "alice" in problem.detail
    assert problem.fix.startswith("sudo usermod -aG dialout $USER") and "log out" in problem.fix
    arch = permission_problem("/dev/ttyUSB0", CHAR | 0o660, 0, 987, "uucp", ALICE)
    assert arch is not None and "sudo usermod -aG uucp $USER" in arch.fix


def test_added_to_group_but_not_logged_in_again() -> None:
    stale = UserIdentity(uid=1000, name="alice", gids=frozenset({1000}), listed_groups=frozenset({"dialout"}))
    problem = permission_problem("/dev/ttyACM0", CHAR | 0o660, 0, 20, "dialout", stale)
    assert problem is not None and problem.kind == "relogin"
    assert "log out and back in" in problem.fix and "newgrp dialout" in problem.fix


def test_owner_only_device_gets_a_udev_rule() -> None:
    problem = permission_problem("/dev/ttyUSB0", CHAR | 0o600, 0, 0, "root", ALICE, vid_pid="1a86:7523")
    assert problem is not None and problem.kind == "permission"
    assert 'ATTRS{idVendor}=="1a86", ATTRS{idProduct}=="7523"' in problem.fix
    assert 'GROUP="dialout"' in problem.fix and "udevadm" in problem.fix
    no_usb = permission_problem("/dev/ttyACM2", CHAR | 0o600, 0, 0, "root", ALICE)
    assert no_usb is not None and 'KERNEL=="ttyACM*"' in no_usb.fix


def test_root_may_open_anything() -> None:
    root = UserIdentity(uid=0, name="root", gids=frozenset({0}))
    assert permission_problem("/dev/ttyACM0", CHAR | 0o600, 1000, 1000, "alice", root) is None


def test_port_problems_classify_real_ptys_for_another_user(ptys: Ptys, dirs: dict[str, Path]) -> None:
    pts, slave = ptys.new()
    os.fchmod(slave, 0o660)
    gid = os.fstat(slave).st_gid
    link(dirs["ports"], "ttyEMU-follower", pts)
    ports = isolated([dirs["ports"]], dirs)
    outsider = UserIdentity(uid=54321, name="bob", gids=frozenset({54321}))
    insider = UserIdentity(uid=54321, name="bob", gids=frozenset({54321, gid}))

    problems = port_problems(ports, user=outsider, brltty=BrlttyFinding())
    assert [(p.kind, p.port) for p in problems] == [("permission", ports[0].path)]
    assert "usermod -aG" in problems[0].fix
    assert port_problems(ports, user=insider, brltty=BrlttyFinding()) == []
    assert port_problems(ports, brltty=BrlttyFinding()) == []  # this process made the pty, so it may open it


# --- brltty


def test_brltty_process_and_rules_are_found(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    for pid, comm in ((123, "brltty"), (456, "bash"), (789, "brltty-udev")):
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "comm").write_text(comm + "\n")
    (proc / "self").mkdir()
    rules = tmp_path / "rules.d"
    rules.mkdir()
    (rules / "85-brltty.rules").write_text('ENV{PRODUCT}=="1a86/7523/*", ENV{BRLTTY_BRAILLE_DRIVER}="bm"\n')
    (rules / "90-brltty-hid.rules").write_text('ENV{PRODUCT}=="0f4e/0100/*"\n')  # braille-only vendors
    (rules / "99-other.rules").write_text('ATTRS{idVendor}=="10c4"\n')

    finding = find_brltty(proc, [rules, tmp_path / "missing"])
    assert finding.pids == (123,)
    assert finding.rule_files == (str(rules / "85-brltty.rules"),)
    problem = brltty_problem(finding)
    assert problem is not None and problem.kind == "brltty"
    assert "pid 123" in problem.detail and "85-brltty.rules" in problem.detail
    assert problem.fix == BRLTTY_FIX and problem.fix.startswith("sudo apt remove brltty")
    assert port_problems([], brltty=finding) == [problem]


def test_no_brltty_no_problem(tmp_path: Path) -> None:
    finding = find_brltty(tmp_path / "no-proc", [tmp_path / "no-rules"])
    assert not finding
    assert brltty_problem(finding) is None
