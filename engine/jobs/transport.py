"""Running the job scripts on the job's machine: `sh` here, or the system `ssh` (and `rsync`) to a host.

Only the system clients are used, so the user's ~/.ssh/config, agent, jump hosts and known_hosts apply.
BatchMode makes ssh fail instead of prompting (a TUI has no terminal to prompt on), and each failure is
turned into one message that says what to do, from ssh's or rsync's own stderr.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from engine.jobs.errors import JobError, SshError
from engine.jobs.shell import remote_command, script_argv
from engine.jobs.spec import JobSpec, SshHost

SSH_DEFAULT_OPTIONS = (
    "BatchMode=yes",
    "ConnectTimeout=10",
    "ServerAliveInterval=15",
    "ServerAliveCountMax=3",
)
CONTROL_PERSIST_S = 60  # an idle shared connection closes this long after its last use
RUN_TIMEOUT_S = 120.0
_SOCKET_PATH_MAX = 104  # sun_path's size (108 on Linux, 104 on macOS)
_SOCKET_NAME_LEN = 1 + 40 + 17  # "/%C" (a SHA-1 in hex) and the random suffix ssh adds while binding

_AUTH_REFUSED = re.compile(r"Permission denied \((?:publickey|password|keyboard-interactive|gssapi)[^)]*\)")
_NETWORK = (
    "Connection timed out",
    "Operation timed out",
    "No route to host",
    "Network is unreachable",
    "Connection closed by",
    "Connection reset",
    "Broken pipe",
    "Timeout, server",
    "not responding",
    "Connection to",  # "Connection to HOST closed by remote host."
    "kex_exchange_identification",
)
_DISK_FULL = ("No space left on device", "Disk quota exceeded")


def control_dir() -> str | None:
    """Where the shared connections' sockets live (made 0700), or None to not share connections: one SSH
    handshake per host and minute instead of one per status check. None when no private, short enough
    folder can be had."""
    uid = os.getuid()
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    folder = f"{runtime}/robotui-ssh" if runtime else ""
    if not runtime or len(folder) + _SOCKET_NAME_LEN > _SOCKET_PATH_MAX:
        folder = f"/tmp/robotui-ssh-{uid}"
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        st = os.lstat(folder)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid or st.st_mode & 0o077:
        return None  # someone else's or shared: never put our sockets there
    return folder


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no message)"


def ssh_failure(host: SshHost, stderr: str, returncode: int) -> SshError | None:
    """The message for a failure of ssh itself (exit status 255, or killed), or None when the remote command
    failed (its own exit status: ssh is not to blame)."""
    if returncode < 0:
        return SshError(
            f"the connection to {host} was interrupted (ssh ended by signal {-returncode})", retryable=True
        )
    if returncode != 255:
        return None
    return ssh_problem(host, stderr) or SshError(
        f"ssh to {host} failed: {_last_line(stderr)}", retryable=True
    )


def ssh_problem(host: SshHost, stderr: str) -> SshError | None:
    """A known ssh failure named in `stderr` (also when it reaches us through rsync)."""
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr:
        return SshError(
            f"the host key of {host.host} has changed since the last connection: if the machine was "
            f"reinstalled, remove the old key with `ssh-keygen -R {host.host}`, otherwise do not connect"
        )
    if "Host key verification failed" in stderr:
        return SshError(
            f"the host key of {host.host} is not known here: connect once with `ssh {host}` to accept it, or "
            "pass --ssh-option StrictHostKeyChecking=accept-new"
        )
    if _AUTH_REFUSED.search(stderr):
        return SshError(
            f"{host} refused the login ({_AUTH_REFUSED.search(stderr).group(0)}): give the right key with "
            "--identity FILE (its .pub must be in ~/.ssh/authorized_keys there) or load it with ssh-add"
        )
    if "Could not resolve hostname" in stderr:
        return SshError(f"cannot resolve the host name {host.host!r}: check the spelling or ~/.ssh/config")
    if "Connection refused" in stderr:
        port = host.port or 22
        return SshError(
            f"{host.host} refused the connection on port {port}: is sshd running there, is the port right?",
            retryable=True,
        )
    if (
        "Bad configuration option" in stderr
        or "Unsupported option" in stderr
        or "no argument after" in stderr
    ):
        return SshError(f"ssh rejected an option ({_last_line(stderr)}): fix --ssh-option")
    if any(problem in stderr for problem in _NETWORK):
        return SshError(
            f"{host} is unreachable or the connection dropped ({_last_line(stderr)})", retryable=True
        )
    return None


def _disk_message(where: str, stderr: str) -> str | None:
    for problem in _DISK_FULL:
        if problem in stderr:
            return f"{where}: {problem.lower()} ({_last_line(stderr)}): free some space or use another folder"
    if "Read-only file system" in stderr:
        return f"{where}: the folder is on a read-only file system ({_last_line(stderr)}): use another folder"
    return None


def script_failure(where: str, returncode: int, stderr: str) -> JobError:
    """The message for a job script that ran but failed (exit status 10-17 are the scripts' own)."""
    disk = _disk_message(where, stderr)
    if disk:
        return JobError(disk)
    last = _last_line(stderr).removeprefix("robotui: ")
    if returncode == 10:
        return JobError(
            f"rsync is not installed on {where}: install it there (e.g. `sudo apt install rsync`)"
        )
    if returncode == 11:
        prog = last.removeprefix("command not found: ")
        return JobError(
            f"{prog!r} is not found on {where} (PATH of a non-interactive login): give its full path, e.g. "
            "~/miniforge3/envs/lerobot/bin/lerobot-train, or install it there"
        )
    if returncode == 12:
        return JobError(f"cannot create the folder on {where} ({last}): choose a folder you can write")
    if returncode == 13:
        return JobError(f"{last} on {where} already holds a job: choose another job name or --run-dir")
    if returncode == 14:
        return JobError(f"{where} has neither setsid nor python3 to detach the job: install util-linux")
    if returncode in (15, 16, 17):
        return JobError(f"{where}: {last}")
    return JobError(f"the job command failed on {where} (exit status {returncode}): {last}")


def rsync_failure(host: SshHost, direction: str, returncode: int, stderr: str) -> JobError:
    """rsync's exit: the remote rsync missing, a full disk, or ssh's own failure underneath."""
    if "remote command not found" in stderr or re.search(
        r"rsync: (command )?not found|not found: rsync", stderr
    ):
        return JobError(f"rsync is not installed on {host}: install it there (e.g. `sudo apt install rsync`)")
    disk = _disk_message(f"{direction} {host}", stderr)
    if disk:
        return JobError(disk)
    return ssh_problem(host, stderr) or JobError(
        f"{direction} {host} failed (rsync exit {returncode}): {_last_line(stderr)}"
    )


@dataclass(frozen=True)
class SyncResult:
    """What an rsync moved: the number of files (not folders) created or updated, and its itemized lines."""

    files: int
    itemized: tuple[str, ...]


class Transport:
    """Runs a job script where the job lives. `where` names that place in messages."""

    where: str
    cwd: str | None = None

    def argv(self, script: str, args: Sequence[str]) -> list[str]:
        raise NotImplementedError

    def failure(self, returncode: int, stderr: str) -> JobError:
        return script_failure(self.where, returncode, stderr)

    def run(self, script: str, args: Sequence[str], *, timeout: float = RUN_TIMEOUT_S) -> bytes:
        """Run to completion; stdout on success, else raise the failure's message.

        Output goes to temp files, not pipes: the end is the process's exit, never the pipes' EOF, which an
        ssh that stays behind as a shared connection (ControlPersist) could hold open for a minute."""
        argv = self.argv(script, args)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                returncode = subprocess.run(
                    argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, timeout=timeout, cwd=self.cwd
                ).returncode
            except FileNotFoundError as exc:
                raise JobError(
                    f"{argv[0]} is not installed here: install it (openssh-client for ssh)"
                ) from exc
            except subprocess.TimeoutExpired as exc:
                raise SshError(f"{self.where} did not answer within {timeout:.0f} s", retryable=True) from exc
            out.seek(0)
            err.seek(0)
            if returncode != 0:
                raise self.failure(returncode, err.read().decode(errors="replace"))
            return out.read()

    def popen(self, script: str, args: Sequence[str]) -> tuple[subprocess.Popen[bytes], BinaryIO]:
        """Start a long-running script; its stderr goes to a temp file (read it after it ends), so a chatty
        stderr can never block it."""
        err = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the caller once the process has ended)
        try:
            proc = subprocess.Popen(
                self.argv(script, args),
                stdout=subprocess.PIPE,
                stderr=err,
                stdin=subprocess.DEVNULL,
                cwd=self.cwd,
            )
        except FileNotFoundError as exc:
            err.close()
            raise JobError("ssh is not installed here: install openssh-client") from exc
        return proc, err


class LocalTransport(Transport):
    """This machine; the scripts run under `sh` in the job's working directory."""

    def __init__(self, cwd: str | None = None) -> None:
        self.where = "this machine"
        self.cwd = cwd if cwd and Path(cwd).is_dir() else None

    def argv(self, script: str, args: Sequence[str]) -> list[str]:
        return script_argv(script, args)


class SshTransport(Transport):
    """An SSH host through the system ssh/rsync, with the user's options taking precedence over ours."""

    def __init__(self, host: SshHost, identity: str | None = None, options: Sequence[str] = ()) -> None:
        self.host = host
        self.where = str(host)
        self.identity = identity
        self.options = tuple(options)

    @classmethod
    def for_spec(cls, spec: JobSpec) -> SshTransport:
        assert spec.host is not None
        return cls(SshHost.parse(spec.host), spec.identity, spec.ssh_options)

    def ssh_options(self) -> list[str]:
        """Everything between `ssh` and the destination. ssh keeps the first value it sees for an option,
        so the user's `-o` come before the defaults (`ControlMaster=no` turns the shared connection off)."""
        out: list[str] = []
        for opt in self.options:
            out += ["-o", opt]
        for opt in SSH_DEFAULT_OPTIONS:
            out += ["-o", opt]
        control = control_dir()
        if control is not None:
            out += [
                "-o",
                "ControlMaster=auto",
                "-o",
                f"ControlPath={control}/%C",
                "-o",
                f"ControlPersist={CONTROL_PERSIST_S}",
            ]
        if self.host.port:
            out += ["-p", str(self.host.port)]
        if self.identity:
            out += ["-i", self.identity, "-o", "IdentitiesOnly=yes"]
        return out

    def argv(self, script: str, args: Sequence[str]) -> list[str]:
        return ["ssh", *self.ssh_options(), "--", self.host.target, remote_command(script, args)]

    def failure(self, returncode: int, stderr: str) -> JobError:
        return ssh_failure(self.host, stderr, returncode) or script_failure(self.where, returncode, stderr)

    def close(self) -> None:
        """Close the shared connection to this host now instead of after CONTROL_PERSIST_S idle seconds."""
        subprocess.run(
            ["ssh", *self.ssh_options(), "-O", "exit", "--", self.host.target],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def _rsync(self, src: str, dst: str, direction: str) -> SyncResult:
        """`-s` (protect args) passes remote paths to the remote rsync verbatim, never through its shell."""
        rsh = " ".join(shlex.quote(word) for word in ["ssh", *self.ssh_options()])
        argv = ["rsync", "-a", "-s", "--partial", "--itemize-changes", "-e", rsh, "--", src, dst]
        try:
            proc = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL)
        except FileNotFoundError as exc:
            raise JobError("rsync is not installed here: install it (e.g. `sudo apt install rsync`)") from exc
        if proc.returncode != 0:
            raise rsync_failure(self.host, direction, proc.returncode, proc.stderr.decode(errors="replace"))
        changes = tuple(line for line in proc.stdout.decode(errors="replace").splitlines() if line)
        return SyncResult(
            files=sum(line[1:2] == "f" and line[:1] in "<>" for line in changes), itemized=changes
        )

    def push(self, local_dir: str, remote_dir: str) -> SyncResult:
        """Copy a local folder's content into `remote_dir` (unchanged files skipped; nothing deleted)."""
        return self._rsync(
            local_dir.rstrip("/") + "/", self.host.rsync_prefix() + remote_dir.rstrip("/") + "/", "copying to"
        )

    def pull(self, remote_dir: str, local_dir: str) -> SyncResult:
        Path(local_dir).mkdir(parents=True, exist_ok=True)
        return self._rsync(
            self.host.rsync_prefix() + remote_dir.rstrip("/") + "/",
            local_dir.rstrip("/") + "/",
            "copying from",
        )
