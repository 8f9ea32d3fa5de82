"""A real OpenSSH server on 127.0.0.1 for the launcher tests (machine-and-deps.md §8): key-only login as the
current user, host and client keys made in a temp dir, stopped by its pid.

The client key lives in a folder whose name has a space, so every test also checks that the identity path
survives ssh's and rsync's (-e) argument handling. Missing sshd is a failure, not a skip: run
scripts/install-test-deps.sh.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.jobs.spec import SshHost
from engine.jobs.transport import SshTransport


@dataclass(frozen=True)
class SshServer:
    port: int
    user: str
    identity: Path
    known_hosts: Path
    pid: int
    log: Path

    @property
    def host(self) -> str:
        return f"{self.user}@127.0.0.1:{self.port}"

    @property
    def options(self) -> tuple[str, ...]:
        return ("StrictHostKeyChecking=no", f"UserKnownHostsFile={self.known_hosts}", "LogLevel=ERROR")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    binary = shutil.which("sshd") or "/usr/sbin/sshd"
    for tool in (binary, "ssh", "ssh-keygen", "rsync"):
        if not (Path(tool).is_file() or shutil.which(tool)):
            pytest.fail(f"{tool} is not installed: run scripts/install-test-deps.sh")
    root = tmp_path_factory.mktemp("sshd")
    keys = root / "client keys"
    keys.mkdir()
    _keygen(root / "hostkey")
    _keygen(keys / "id test")
    (root / "authorized_keys").write_text((keys / "id test.pub").read_text())
    os.chmod(root / "authorized_keys", 0o600)
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir sshd insists on
    port = _free_port()
    config = root / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {root / 'hostkey'}",
                f"PidFile {root / 'sshd.pid'}",
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                f"AuthorizedKeysFile {root / 'authorized_keys'}",
                "StrictModes no",
                "UsePAM no",
                "MaxStartups 100",
                "MaxSessions 100",
                # bash runs ~/.bashrc for ssh commands only at shell level < 2: keep the developer's rc
                # file (on dev machines, pyenv init: ~1 s a command) out of every test connection.
                "SetEnv SHLVL=1",
                "",
            ]
        )
    )
    log = root / "sshd.log"
    check = subprocess.run([binary, "-t", "-f", str(config)], capture_output=True, text=True)
    if check.returncode != 0:
        pytest.fail(f"sshd rejects the test config: {check.stderr.strip()}")
    subprocess.run([binary, "-f", str(config), "-E", str(log)], check=True)
    pid_file = root / "sshd.pid"
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
            if pid_file.is_file() and pid_file.read_text().strip():
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(
                f"sshd did not come up on 127.0.0.1:{port}: {log.read_text() if log.exists() else ''}"
            )
        time.sleep(0.05)
    pid = int(pid_file.read_text())
    server = SshServer(
        port=port,
        user=getpass.getuser(),
        identity=keys / "id test",
        known_hosts=root / "known_hosts",
        pid=pid,
        log=log,
    )
    probe = subprocess.run(
        [
            "ssh",
            "-p",
            str(port),
            "-i",
            str(server.identity),
            "-o",
            "BatchMode=yes",
            *[w for opt in server.options for w in ("-o", opt)],
            f"{server.user}@127.0.0.1",
            "echo ok",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if probe.stdout.strip() != "ok":
        os.kill(pid, signal.SIGTERM)
        pytest.fail(f"cannot log in to the test sshd: {probe.stderr.strip()} / {log.read_text()}")
    try:
        yield server
    finally:
        SshTransport(SshHost.parse(server.host), str(server.identity), server.options).close()
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists() and _state(pid) != "Z":
            time.sleep(0.05)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[0]
    except (OSError, IndexError):
        return "gone"
