"""Reading a job's log by byte offset, locally or over SSH, and following it across dropped connections.

Offsets count bytes of the file, and a follower only advances its offset past *complete* lines, so after a
drop it asks again from the start of the first line it has not delivered: nothing lost, nothing twice.
A line ends at "\n", "\r\n" or a lone "\r" (tqdm redraws its bar with "\r"); `LogLine.overwrite` marks the
"\r" ones, which a terminal view draws over in place.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable, Iterator
from typing import NamedTuple

from engine.jobs.errors import JobError, SshError
from engine.jobs.shell import STREAM, STREAM_MARKER
from engine.jobs.transport import Transport

RECONNECT_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0)  # the last repeats until stopped


class LogLine(NamedTuple):
    text: str
    overwrite: bool = False  # ended with a lone "\r": a progress redraw


class LineSplitter:
    """Bytes in, complete lines out; `consumed` is the byte count up to the end of the last line given."""

    def __init__(self) -> None:
        self.buffer = b""
        self.consumed = 0

    def feed(self, data: bytes) -> list[LogLine]:
        self.buffer += data
        lines: list[LogLine] = []
        start = 0
        buf = self.buffer
        n = len(buf)
        i = 0
        while i < n:
            byte = buf[i]
            if byte == 0x0A:  # \n
                lines.append(LogLine(_decode(buf[start:i])))
                start = i = i + 1
            elif byte == 0x0D:  # \r: wait for the next byte to tell "\r\n" from a lone "\r"
                if i + 1 == n:
                    break
                if buf[i + 1] == 0x0A:
                    lines.append(LogLine(_decode(buf[start:i])))
                    start = i = i + 2
                else:
                    lines.append(LogLine(_decode(buf[start:i]), overwrite=True))
                    start = i = i + 1
            else:
                i += 1
        self.consumed += start
        self.buffer = buf[start:]
        return lines

    def flush(self) -> list[LogLine]:
        """At the end of the file: the unterminated rest is a line too."""
        rest, self.buffer = self.buffer, b""
        self.consumed += len(rest)
        if rest.endswith(b"\r"):
            return [LogLine(_decode(rest[:-1]), overwrite=True)]
        return [LogLine(_decode(rest))] if rest else []


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def split_stream(raw: bytes) -> tuple[int, bytes]:
    """(start offset, payload) of a STREAM/SNAPSHOT output, skipping whatever a login shell printed first."""
    at = raw.find(STREAM_MARKER)
    if at < 0:
        raise JobError("the host's reply had no stream marker: does the login shell print to stdout?")
    end = raw.index(b"\n", at)
    return int(raw[at + len(STREAM_MARKER) : end]), raw[end + 1 :]


def read_bytes(transport: Transport, run_dir: str, path: str, offset: int) -> tuple[int, bytes]:
    """The file's bytes from `offset` (negative: that many from the end) to its current end, and where they
    start."""
    return split_stream(transport.run(STREAM, [run_dir, path, str(offset), "once"]))


class LogFollower:
    """Iterate over a job file's lines as they are written, until the job has ended and all is read.

    Each connection streams from `offset`; when it drops (network, sleep, the ssh client killed) the
    follower reconnects with growing delays and resumes at `offset`. A failure that retrying cannot fix
    (login refused, run directory gone) is raised. `stop()` ends the iteration from another thread.
    """

    def __init__(
        self,
        transport: Transport,
        run_dir: str,
        path: str = "job.log",
        offset: int = 0,
        *,
        on_reconnect: Callable[[str], None] | None = None,
    ) -> None:
        self.transport = transport
        self.run_dir = run_dir
        self.path = path
        self.offset = offset
        self.on_reconnect = on_reconnect
        self.reconnects = 0
        self.connection_pid: int | None = None
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def __iter__(self) -> Iterator[LogLine]:
        failures = 0
        while not self._stop.is_set():
            splitter = LineSplitter()
            delivered = False
            try:
                for line in self._connection(splitter):
                    delivered = True
                    yield line
                return
            except SshError as exc:
                if not exc.retryable:
                    raise
                failures = 0 if delivered else failures + 1
                self.reconnects += 1
                if self.on_reconnect:
                    self.on_reconnect(str(exc))
                delay = RECONNECT_DELAYS_S[min(failures, len(RECONNECT_DELAYS_S) - 1)]
                self._stop.wait(delay)

    def _connection(self, splitter: LineSplitter) -> Iterator[LogLine]:
        """One stream from `self.offset`; returns normally only when the job ended and everything is read."""
        proc, err = self.transport.popen(STREAM, [self.run_dir, self.path, str(self.offset), "follow"])
        self.connection_pid = proc.pid
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        head = b""
        started = False
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([fd], [], [], 0.2)
                if not ready:
                    if proc.poll() is None:
                        continue
                    # Ended, maybe while something it started (an ssh shared connection) holds the pipe open:
                    # take what is left, then stop waiting for an EOF that may not come.
                    ready, _, _ = select.select([fd], [], [], 0)
                    if not ready:
                        break
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                if not started:
                    head += chunk
                    if STREAM_MARKER not in head or b"\n" not in head[head.find(STREAM_MARKER) :]:
                        continue
                    start, chunk = split_stream(head)
                    splitter.consumed = self.offset = start
                    started = True
                for line in splitter.feed(chunk):
                    self.offset = splitter.consumed
                    yield line
            if self._stop.is_set():
                return
            returncode = proc.wait()
            err.seek(0)
            stderr = err.read().decode(errors="replace")
            if returncode < 0:  # the client was killed: the host is probably fine, so try again
                raise SshError(f"the log stream was interrupted (signal {-returncode})", retryable=True)
            if returncode != 0:
                raise self.transport.failure(returncode, stderr)
            if not started:
                raise SshError("the log stream ended before it began", retryable=True)
            for line in splitter.flush():
                self.offset = splitter.consumed
                yield line
        finally:
            self.connection_pid = None
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            err.close()


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll `predicate` until true or `timeout` seconds have passed; whether it became true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True
