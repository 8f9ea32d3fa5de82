"""What a job is: where it runs, what it runs, where its files live, and what the registry knows of it.

Paths on an SSH host that are not absolute are relative to the login (home) directory there, the same base
`ssh` and `rsync` use, so one relative path means the same thing to every step. A local job's paths are
made absolute when the spec is built, because robotui may later run from another directory.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any

from engine.jobs.errors import JobError

LOG_FILE = "job.log"
PID_FILE = "job.pid"
EXIT_FILE = "job.exit"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_HOSTNAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_IPV6 = re.compile(r"[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?")


def data_dir() -> Path:
    """`$XDG_DATA_HOME/robotui`, else `~/.local/share/robotui`: registry, local runs, fetched checkpoints."""
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share") / "robotui"


def check_name(name: str) -> str:
    """Job names become folder names locally and remotely, so they stay plain."""
    if not _NAME.fullmatch(name):
        raise JobError(
            f"job name {name!r} is not usable: use letters, digits, '.', '_' or '-' (at most 80, "
            "starting with a letter or digit)"
        )
    return name


@dataclass(frozen=True)
class SshHost:
    """`[user@]host[:port]` (IPv6 in brackets: `user@[::1]:2222`); port None = ssh's default or ssh config."""

    host: str
    user: str | None = None
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> SshHost:
        bad = JobError(
            f"SSH host {text!r} is not of the form [user@]host[:port] (IPv6 as [addr]): fix --host"
        )
        user, sep, rest = text.rpartition("@")
        if sep and not _USER.fullmatch(user):
            raise bad
        port_text = ""
        if rest.startswith("["):
            addr, close, after = rest[1:].partition("]")
            if not close or not _IPV6.fullmatch(addr) or (after and not after.startswith(":")):
                raise bad
            host, port_text = addr, after[1:]
        else:
            host, _, port_text = rest.partition(":")
            if not _HOSTNAME.fullmatch(
                host
            ):  # also refuses a leading '-' (it would be read as an ssh option)
                raise bad
        port = None
        if port_text or rest.endswith(":"):
            if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                raise bad
            port = int(port_text)
        return cls(host=host, user=user or None, port=port)

    @property
    def target(self) -> str:
        """What `ssh` takes as its destination (the port goes in `-p`)."""
        return f"{self.user}@{self.host}" if self.user else self.host

    def rsync_prefix(self) -> str:
        """`[user@]host:` as rsync wants it before a remote path (IPv6 bracketed)."""
        return self._user_host() + ":"

    def _user_host(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user}@{host}" if self.user else host

    def __str__(self) -> str:
        return self._user_host() + (f":{self.port}" if self.port else "")


@dataclass(frozen=True)
class JobSpec:
    """Everything needed to (re)start a job and to find its files again.

    `host` None runs on this machine. `dataset` is a local folder copied to `remote_dataset` on the host
    before the start (nothing is synced for a local job). `output_dir` is where the training writes its
    `checkpoints/`; `fetch` looks there.
    """

    name: str
    argv: tuple[str, ...]
    host: str | None = None
    identity: str | None = None
    ssh_options: tuple[str, ...] = ()
    run_dir: str = ""
    cwd: str | None = None
    dataset: str | None = None
    remote_dataset: str | None = None
    output_dir: str | None = None
    total_steps: int | None = None

    @classmethod
    def create(
        cls,
        name: str,
        argv: list[str] | tuple[str, ...],
        *,
        host: str | None = None,
        identity: str | None = None,
        ssh_options: list[str] | tuple[str, ...] = (),
        run_dir: str | None = None,
        cwd: str | None = None,
        dataset: str | None = None,
        remote_dataset: str | None = None,
        output_dir: str | None = None,
        total_steps: int | None = None,
    ) -> JobSpec:
        """Validate and fill in the defaults (run dir, remote dataset folder, absolute local paths)."""
        check_name(name)
        if not argv or not argv[0]:
            raise JobError("the job has no command to run: give a preset or a command after `--`")
        if argv[0].startswith("-"):
            raise JobError(f"the command cannot start with an option ({argv[0]!r}): put the program first")
        if host is None:
            if identity or ssh_options or remote_dataset or dataset:
                raise JobError(
                    "--identity, --ssh-option and the dataset copy only apply with --host "
                    "(a local job reads the dataset where it is)"
                )
            base = Path(cwd).expanduser().resolve() if cwd else Path.cwd()
            run = Path(run_dir).expanduser() if run_dir else default_run_dir(name, None)
            return cls(
                name=name,
                argv=tuple(argv),
                run_dir=str(base / run),
                cwd=str(base),
                output_dir=str(base / Path(output_dir).expanduser()) if output_dir else None,
                total_steps=total_steps,
            )
        SshHost.parse(host)
        if cwd:
            raise JobError(
                "a job on an SSH host runs in the login directory there; give absolute paths instead"
            )
        if identity:
            identity = str(Path(identity).expanduser().resolve())
            if not Path(identity).is_file():
                raise JobError(f"identity file {identity} does not exist: check --identity")
        for opt in ssh_options:
            if "=" not in opt and " " not in opt.strip():
                raise JobError(f"ssh option {opt!r} is not Key=Value (as ssh -o takes it): fix --ssh-option")
        run_dir, remote_dataset, output_dir = (
            remote_path(p) if p else p for p in (run_dir, remote_dataset, output_dir)
        )
        local_dataset = None
        if dataset:
            local_dataset = str(Path(dataset).expanduser().resolve())
            if not Path(local_dataset).is_dir():
                raise JobError(f"dataset folder {local_dataset} does not exist: check --dataset")
            remote_dataset = remote_dataset or default_remote_dataset(local_dataset)
        return cls(
            name=name,
            argv=tuple(argv),
            host=host,
            identity=identity,
            ssh_options=tuple(ssh_options),
            run_dir=run_dir or default_run_dir(name, host),
            dataset=local_dataset,
            remote_dataset=remote_dataset,
            output_dir=output_dir,
            total_steps=total_steps,
        )

    @property
    def where(self) -> str:
        return self.host or "local"

    def run_path(self, *parts: str) -> str:
        """A path inside the run directory, spelled for the machine the job runs on."""
        return str(PurePosixPath(self.run_dir, *parts))


def remote_path(path: str) -> str:
    """`~/x` -> `x`: remote paths are relative to the login directory anyway, and a quoted `~` is never
    expanded by the remote shell."""
    if path == "~":
        return "."
    return path[2:] if path.startswith("~/") else path


def default_run_dir(name: str, host: str | None) -> str:
    """Local: `<data dir>/runs/NAME`; remote: `robotui/runs/NAME` under the login directory."""
    return str(data_dir() / "runs" / name) if host is None else f"robotui/runs/{name}"


def default_remote_dataset(local_dataset: str) -> str:
    return f"robotui/datasets/{Path(local_dataset).name}"


class JobState(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"  # exit code 0
    FAILED = "failed"  # non-zero exit code, or ended without one
    CANCELLED = "cancelled"

    @property
    def done(self) -> bool:
        return self is not JobState.RUNNING


@dataclass
class JobRecord:
    """One registry entry: the spec plus what was learnt when it started and at the last status check."""

    spec: JobSpec
    started_at: float = field(default_factory=time.time)
    run_dir_abs: str = ""  # the run directory as the host resolved it
    pid: int = 0  # leader of the job's process group (pgid == pid)
    start_token: str = ""  # the leader's start time, to tell it from a later process with the same pid
    state: JobState = JobState.RUNNING
    exit_code: int | None = None
    cancel_requested: bool = False
    ended_at: float | None = None
    detail: str = ""  # why it failed, when the exit code alone does not say

    @property
    def name(self) -> str:
        return self.spec.name

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["spec"]["argv"] = list(self.spec.argv)
        out["spec"]["ssh_options"] = list(self.spec.ssh_options)
        out["state"] = self.state.value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobRecord:
        known = {f.name for f in fields(JobSpec)}
        spec_data = {k: v for k, v in data["spec"].items() if k in known}
        spec_data["argv"] = tuple(spec_data.get("argv", ()))
        spec_data["ssh_options"] = tuple(spec_data.get("ssh_options", ()))
        spec = JobSpec(**spec_data)
        rest = {k: v for k, v in data.items() if k in {f.name for f in fields(cls)} and k != "spec"}
        rest["state"] = JobState(rest.get("state", JobState.RUNNING.value))
        return cls(spec=spec, **rest)
