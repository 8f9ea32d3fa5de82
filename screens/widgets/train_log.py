"""The selected job's live log: a follow worker fills a `LogTail`, the screen's timer drains it into `JobLog`.

The worker never touches a widget: it folds every line into the tail's `JobProgress` (the curves) and queues
the lines to show; the UI thread takes them a few times a second, so a fast log (a tqdm bar redrawn ten times
a second) costs one repaint per tick, and catching up on a long log writes only the newest lines. tqdm's
redraws (lines ended by a lone "\\r") feed the figures but are not added to the log.
"""

from __future__ import annotations

import threading
from collections import deque

from textual.widgets import RichLog

from engine.jobs import JobProgress, LogFollower, LogLine

SHOWN_LINES = 1000


class LogTail:
    """What one job's follower has read so far; shared by the follow worker and the UI thread."""

    def __init__(self, name: str, total: int | None, keep: int = SHOWN_LINES) -> None:
        self.name = name
        self.progress = JobProgress(total=total)
        self.version = 0  # bumped whenever the figures change
        self.error: str | None = None
        self._lines: deque[str] = deque(maxlen=keep)
        self._last_note: str | None = None
        self._lock = threading.Lock()
        self._follower: LogFollower | None = None
        self._stopped = False

    # --- the follow worker
    def attach(self, follower: LogFollower) -> bool:
        """Keep the follower so `stop` can end it; False when the tail was stopped already."""
        with self._lock:
            self._follower = follower
            return not self._stopped

    def feed(self, line: LogLine) -> None:
        with self._lock:
            if self.progress.feed_line(line.text):
                self.version += 1
            if not line.overwrite:
                self._lines.append(line.text)

    def note(self, text: str) -> None:
        """A line of robotui's own (a dropped connection); repeats of the same note are not shown again."""
        with self._lock:
            if text != self._last_note:
                self._lines.append(f"[{text}]")
            self._last_note = text

    def fail(self, error: str) -> None:
        with self._lock:
            self.error = error

    # --- the UI thread
    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            follower = self._follower
        if follower is not None:
            follower.stop()

    def take_lines(self) -> list[str]:
        with self._lock:
            lines = list(self._lines)
            self._lines.clear()
        return lines

    def curve(self, name: str) -> tuple[list[float], list[float]]:
        with self._lock:
            series = self.progress.series.get(name)
            return (list(series.steps), list(series.values)) if series is not None else ([], [])


class JobLog(RichLog):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(max_lines=SHOWN_LINES, wrap=True, markup=False, highlight=False, id=id)
        self.border_title = "log"

    def pull(self, tail: LogTail) -> int:
        lines = tail.take_lines()
        for line in lines:
            self.write(line)
        return len(lines)
