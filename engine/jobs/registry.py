"""The job registry: one JSON file in the user data dir listing every job robotui started.

It is what lets robotui (or another robotui in a second terminal) find its running jobs again after a
restart. Every change is a locked read-modify-write (flock on a side file) and lands atomically (temp file,
fsync, rename), so two robotui processes never lose each other's jobs and a crash never leaves half a file.
A file that cannot be read is moved aside, never overwritten, and `warning` says where it went.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from engine.jobs.errors import JobError, RegistryError
from engine.jobs.spec import JobRecord, data_dir

VERSION = 1


def registry_path() -> Path:
    return data_dir() / "jobs.json"


class JobRegistry:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or registry_path()
        self.warning: str | None = None

    # ---------------------------------------------------------------------------------------------- reading

    def records(self) -> list[JobRecord]:
        """Every job, oldest first."""
        with self._locked():
            return self._read()

    def get(self, name: str) -> JobRecord:
        for record in self.records():
            if record.name == name:
                return record
        raise JobError(self._unknown(name))

    # ---------------------------------------------------------------------------------------------- writing

    def add(self, record: JobRecord) -> None:
        with self._locked():
            records = self._read()
            if any(r.name == record.name for r in records):
                raise JobError(f"a job named {record.name!r} already exists: choose another name")
            self._write([*records, record])

    def update(self, name: str, change: Callable[[JobRecord], None]) -> JobRecord:
        """Apply `change` to the stored record under the lock and save it; the updated record."""
        with self._locked():
            records = self._read()
            for record in records:
                if record.name == name:
                    change(record)
                    self._write(records)
                    return record
        raise JobError(self._unknown(name))

    # ---------------------------------------------------------------------------------------------- the file

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = open(self.path.with_name(self.path.name + ".lock"), "a")  # noqa: SIM115
        except OSError as exc:
            raise RegistryError(
                f"cannot open the job registry in {self.path.parent}: {exc.strerror}"
            ) from exc
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _read(self) -> list[JobRecord]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise RegistryError(f"cannot read the job registry {self.path}: {exc.strerror}") from exc
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
                raise ValueError('expected {"version": 1, "jobs": [...]}')
            return [JobRecord.from_json(item) for item in data["jobs"]]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
            os.replace(self.path, aside)
            self.warning = (
                f"the job registry {self.path} could not be read ({exc}); it was kept as {aside} and a new "
                "one "
                "started: jobs listed only there are no longer tracked (their runs are untouched)"
            )
            return []

    def _write(self, records: list[JobRecord]) -> None:
        text = json.dumps({"version": VERSION, "jobs": [r.to_json() for r in records]}, indent=2)
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(text + "\n")
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise RegistryError(f"cannot write the job registry {self.path}: {exc.strerror}") from exc

    def _unknown(self, name: str) -> str:
        names = [r.name for r in self._read()] if self.path.exists() else []
        known = f"known jobs: {', '.join(names)}" if names else "there are no jobs yet"
        return f"no job named {name!r} ({known}; see `robotui jobs list`)"
