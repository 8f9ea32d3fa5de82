"""Start, watch, cancel and fetch jobs, here or on an SSH host, and keep the registry in step.

A job outlives robotui: it runs detached (its own session) with its output in `<run dir>/job.log`, so
robotui can exit, the laptop can sleep, and a later robotui finds it again through the registry. Status is
asked of the host each time (`snapshot`), never guessed: the wrapper's exit-code file, or the leader
process still being the one that started (pid reuse is ruled out by its start time).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.jobs.errors import JobError
from engine.jobs.follow import LineSplitter, LogFollower, read_bytes, split_stream
from engine.jobs.metrics import JobProgress
from engine.jobs.registry import JobRegistry
from engine.jobs.shell import (
    CANCEL,
    CHECKPOINT,
    PREPARE,
    REPLY_MARKER,
    SNAPSHOT,
    START,
    STREAM_MARKER,
    WRAPPER,
)
from engine.jobs.spec import LOG_FILE, JobRecord, JobSpec, JobState, data_dir
from engine.jobs.transport import LocalTransport, SshTransport, Transport

MIN_FREE_BYTES = 512 * 1024 * 1024  # below this on the host's run-dir file system a run soon fails
DEFAULT_CANCEL_GRACE_S = 10.0  # SIGTERM first (a trainer may save), SIGKILL after this


def transport_for(spec: JobSpec) -> Transport:
    return SshTransport.for_spec(spec) if spec.host else LocalTransport(spec.cwd)


def _reply(raw: bytes) -> str:
    at = raw.find(REPLY_MARKER)
    if at < 0:
        raise JobError("the host's reply had no answer marker: does the login shell print to stdout?")
    return raw[at + len(REPLY_MARKER) :].decode(errors="replace")


@dataclass
class JobSnapshot:
    """A job as last seen: its record (state updated), progress from the log's last 64 KiB, and `problem`
    when the host could not be asked (the record then shows the last known state)."""

    record: JobRecord
    progress: JobProgress
    log_size: int = 0
    problem: str | None = None


class JobLauncher:
    def __init__(
        self, registry: JobRegistry | None = None, *, cancel_grace_s: float = DEFAULT_CANCEL_GRACE_S
    ) -> None:
        self.registry = registry or JobRegistry()
        self.cancel_grace_s = cancel_grace_s

    # ------------------------------------------------------------------------------------------------ start

    def start(self, spec: JobSpec, *, on_status: Callable[[str], None] | None = None) -> JobRecord:
        """Check the host, copy the dataset there if needed, start the job detached and register it."""
        say = on_status or (lambda _message: None)
        if any(r.name == spec.name for r in self.registry.records()):
            raise JobError(f"a job named {spec.name!r} already exists: choose another name")
        transport = transport_for(spec)
        if isinstance(transport, SshTransport):
            self._prepare(transport, spec, say)
        say(f"starting {spec.name} on {transport.where}")
        words = _reply(transport.run(START, [WRAPPER, spec.run_dir, *spec.argv])).split(" ", 3)
        if len(words) != 4 or words[0] != "started":
            raise JobError(f"unexpected answer from {transport.where} when starting: {' '.join(words)!r}")
        record = JobRecord(
            spec=spec, run_dir_abs=words[3].removesuffix("\n"), pid=int(words[1]), start_token=words[2]
        )
        self.registry.add(record)
        return record

    def _prepare(self, transport: SshTransport, spec: JobSpec, say: Callable[[str], None]) -> None:
        """Fail early (missing program or rsync, no disk space) before copying a dataset for nothing."""
        say(f"checking {transport.where}")
        answer = _reply(
            transport.run(
                PREPARE,
                [spec.run_dir, spec.remote_dataset or "", spec.argv[0], "rsync" if spec.dataset else ""],
            )
        ).split()
        free = answer[1] if len(answer) == 2 and answer[0] == "free" else ""
        if free.isdigit() and int(free) * 1024 < MIN_FREE_BYTES:
            raise JobError(
                f"{transport.where} has only {int(free) // 1024} MiB free where {spec.run_dir} is: "
                "free some space or choose another --run-dir"
            )
        if not spec.dataset:
            return
        assert spec.remote_dataset is not None
        say(f"copying the dataset to {transport.where}:{spec.remote_dataset}")
        result = transport.push(spec.dataset, spec.remote_dataset)
        say(f"dataset: {result.files} file(s) copied" if result.files else "dataset already up to date")

    # ----------------------------------------------------------------------------------------------- status

    def snapshot(self, name: str) -> JobSnapshot:
        """Ask the host for the job's state and log tail; a host that cannot be asked gives `problem`."""
        record = self.registry.get(name)
        progress = JobProgress(total=record.spec.total_steps)
        try:
            raw = transport_for(record.spec).run(SNAPSHOT, [self._run_dir(record)])
        except JobError as exc:
            return JobSnapshot(record, progress, problem=str(exc))
        head = _reply(raw[: raw.find(STREAM_MARKER)]).split("\n")
        state = head[0].split()
        size = int(head[1].split()[1]) if len(head) > 1 and head[1].startswith("size ") else 0
        start, tail = split_stream(raw)
        splitter = LineSplitter()
        tail_lines = splitter.feed(tail) + splitter.flush()
        for line in tail_lines[1:] if start > 0 else tail_lines:  # the first one may start mid-line
            progress.feed_line(line.text)
        if record.state is JobState.RUNNING and state and state[0] != "running":
            record = self.registry.update(name, lambda r: _settle(r, state, self._run_dir(r)))
        return JobSnapshot(record, progress, log_size=size)

    def snapshots(self) -> list[JobSnapshot]:
        return [self.snapshot(record.name) for record in self.registry.records()]

    # ------------------------------------------------------------------------------------------------- logs

    def read_log(self, name: str, offset: int = 0) -> tuple[int, bytes]:
        """The log from `offset` (negative: the last -offset bytes) to now, and the offset it starts at."""
        record = self.registry.get(name)
        return read_bytes(transport_for(record.spec), self._run_dir(record), LOG_FILE, offset)

    def follow(
        self,
        name: str,
        offset: int = 0,
        *,
        path: str = LOG_FILE,
        on_reconnect: Callable[[str], None] | None = None,
    ) -> LogFollower:
        """Lines of the job's log (or another file of the run, e.g. an absolute metrics.jsonl path) from
        `offset` until the job ends, reconnecting after drops."""
        record = self.registry.get(name)
        return LogFollower(
            transport_for(record.spec), self._run_dir(record), path, offset, on_reconnect=on_reconnect
        )

    # ------------------------------------------------------------------------------------------------ cancel

    def cancel(self, name: str) -> JobRecord:
        """SIGTERM to the job's process group, SIGKILL after the grace period; the record, now cancelled."""
        record = self.registry.get(name)
        if record.state.done:
            raise JobError(f"job {name!r} is not running (it {record.state.value}): nothing to cancel")
        self.registry.update(name, lambda r: setattr(r, "cancel_requested", True))
        try:
            answer = _reply(
                transport_for(record.spec).run(
                    CANCEL,
                    [self._run_dir(record), str(int(self.cancel_grace_s))],
                    timeout=self.cancel_grace_s + 60,
                )
            )
        except JobError:
            self.registry.update(name, lambda r: setattr(r, "cancel_requested", False))
            raise
        if answer.strip() == "notrunning":  # it ended on its own first: keep its real outcome
            self.registry.update(name, lambda r: setattr(r, "cancel_requested", False))
        snap = self.snapshot(name)
        if snap.problem:
            raise JobError(snap.problem)
        return snap.record

    # ------------------------------------------------------------------------------------------------- fetch

    def fetch(self, name: str, *, checkpoint: str = "last", dest: Path | None = None) -> Path:
        """Bring a checkpoint's `pretrained_model` folder here; its local path. A local job's checkpoint is
        used in place unless `dest` is given."""
        record = self.registry.get(name)
        spec = record.spec
        if not spec.output_dir:
            raise JobError(
                f"job {name!r} was started without an output folder, so robotui cannot find its "
                "checkpoints: copy them with rsync yourself"
            )
        if "/" in checkpoint or checkpoint in ("", ".", ".."):
            raise JobError(f"checkpoint {checkpoint!r} is not a checkpoint folder name: use 'last' or a step")
        transport = transport_for(spec)
        answer = _reply(transport.run(CHECKPOINT, [spec.output_dir, checkpoint])).removesuffix("\n")
        first, _, source = answer.partition("\n")
        step = first.removeprefix("checkpoint ")
        if isinstance(transport, SshTransport):
            target = dest or data_dir() / "checkpoints" / name / step / "pretrained_model"
            transport.pull(source, str(target))
            return Path(target)
        if dest is None:
            return Path(source)
        shutil.copytree(source, dest, dirs_exist_ok=True)
        return Path(dest)

    @staticmethod
    def _run_dir(record: JobRecord) -> str:
        return record.run_dir_abs or record.spec.run_dir


def _settle(record: JobRecord, state: list[str], run_dir: str) -> None:
    """Turn what the host said about a job that was running into its final state."""
    if record.state.done or not state or state[0] == "running":
        return
    record.ended_at = time.time()
    if state[0] == "exited":
        record.exit_code = int(state[1])
        ok = record.exit_code == 0
        record.state = (
            JobState.CANCELLED if record.cancel_requested else (JobState.FINISHED if ok else JobState.FAILED)
        )
    elif state[0] == "gone":
        record.state = JobState.CANCELLED if record.cancel_requested else JobState.FAILED
        record.detail = (
            "it ended without an exit code: killed (SIGKILL, out of memory) or the machine restarted"
        )
        if record.spec.host:
            record.detail += (
                " (or the host kills a user's processes at logout: systemd KillUserProcesses; "
                "run `loginctl enable-linger` there)"
            )
        record.detail += "; see the end of its log"
    else:
        record.state = JobState.FAILED
        record.detail = f"its run directory {run_dir} is gone"
