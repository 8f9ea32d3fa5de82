"""Shared pieces of the launcher tests: the real sshd, the scripted run, process-group checks."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.jobs import JobLauncher
from tests.engine.jobs.sshd import SshServer, sshd  # noqa: F401 (the session fixture)

SCRIPTED_RUN = Path(__file__).with_name("scripted_run.py")


def scripted_run(*args: str) -> list[str]:
    return [sys.executable, str(SCRIPTED_RUN), *args]


def proc_state(pid: int) -> str | None:
    """The process's state letter, None when it does not exist (a zombie counts as ended: "Z")."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def live(pid: int) -> bool:
    return proc_state(pid) not in (None, "Z")


def live_group_members(pgid: int) -> list[int]:
    """Processes still running (not zombies) in process group `pgid`."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def wait_for(predicate: Callable[[], object], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def remote_kwargs(server: SshServer) -> dict[str, object]:
    return {"host": server.host, "identity": str(server.identity), "ssh_options": server.options}


@pytest.fixture
def launcher() -> JobLauncher:
    """A launcher on the test's own registry ($XDG_DATA_HOME is per test); a short SIGKILL grace."""
    return JobLauncher(cancel_grace_s=3)
