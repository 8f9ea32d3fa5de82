"""The log pane: every log record of the process, shown inside the TUI instead of scribbled over it.

The handler is fed from any thread (control loop, camera readers, workers) and only appends to a bounded
scrollback under its lock; the pane pulls new lines on a timer on the UI thread, so logging never blocks
on the UI and a 30 Hz warning costs one line per second, not a repaint per record. Identical records
(same logger, level and message template) are collapsed: the first is shown, the rest are counted and
shown as "… (repeated 37×)". Third-party loggers only get through from WARNING up.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rich.text import Text
from textual.widgets import RichLog

OUR_PACKAGES = ("robotui", "screens", "engine", "drivers", "policies")
"""Loggers under these names are ours: shown at the app's level (DEBUG with -v)."""

LEVEL_STYLES = {
    logging.DEBUG: "dim",
    logging.INFO: "",
    logging.WARNING: "yellow",
    logging.ERROR: "bold red",
    logging.CRITICAL: "bold white on red",
}


def is_ours(logger_name: str, packages: Iterable[str] = OUR_PACKAGES) -> bool:
    return any(logger_name == p or logger_name.startswith(p + ".") for p in packages)


class ThirdPartyFilter(logging.Filter):
    """Let our records through at any level and everyone else's only from `level` up, so httpx,
    huggingface_hub or PIL debug chatter never buries the operator's messages."""

    def __init__(self, level: int = logging.WARNING, packages: Iterable[str] = OUR_PACKAGES) -> None:
        super().__init__()
        self.level = level
        self.packages = tuple(packages)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level or is_ours(record.name, self.packages)


@dataclass(frozen=True)
class LogLine:
    seq: int
    level: int
    text: str


@dataclass
class _Repeat:
    shown_at: float
    suppressed: int = 0
    last: logging.LogRecord | None = None


class LogPaneHandler(logging.Handler):
    """Keeps the newest `max_lines` formatted lines; collapses repeats within `repeat_window` seconds."""

    def __init__(
        self,
        max_lines: int = 2000,
        repeat_window: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        level: int = logging.NOTSET,
    ) -> None:
        super().__init__(level)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
        self.addFilter(ThirdPartyFilter())
        self.repeat_window = repeat_window
        self._clock = clock
        self._lines: deque[LogLine] = deque(maxlen=max_lines)
        self._seq = 0
        self._repeats: dict[tuple[str, int, str], _Repeat] = {}

    # called with self.lock held (logging.Handler.handle)
    def emit(self, record: logging.LogRecord) -> None:
        try:
            now = self._clock()
            self._flush_due(now)
            key = (record.name, record.levelno, str(record.msg))
            repeat = self._repeats.get(key)
            if repeat is not None and now - repeat.shown_at < self.repeat_window:
                repeat.suppressed += 1
                repeat.last = record
                return
            self._repeats[key] = _Repeat(shown_at=now)
            self._append(record.levelno, self.format(record))
            if len(self._repeats) > 512:
                self._forget_quiet(now)
        except Exception:
            self.handleError(record)

    def _append(self, level: int, text: str) -> None:
        # One record can be several lines (tracebacks); each becomes its own line of scrollback.
        for part in text.splitlines() or [""]:
            self._seq += 1
            self._lines.append(LogLine(self._seq, level, part))

    def _flush_due(self, now: float) -> None:
        for repeat in self._repeats.values():
            if repeat.suppressed and repeat.last is not None and now - repeat.shown_at >= self.repeat_window:
                first_line = self.format(repeat.last).partition("\n")[0]
                self._append(repeat.last.levelno, f"{first_line} … (repeated {repeat.suppressed}×)")
                repeat.shown_at = now
                repeat.suppressed = 0
                repeat.last = None

    def _forget_quiet(self, now: float) -> None:
        for key in [
            k for k, r in self._repeats.items() if not r.suppressed and now - r.shown_at >= self.repeat_window
        ]:
            del self._repeats[key]

    def flush_repeats(self) -> None:
        """Emit the "(repeated N×)" summaries whose window has passed, even if no new record arrived."""
        with self.lock:
            self._flush_due(self._clock())

    def lines_since(self, seq: int) -> list[LogLine]:
        """Lines newer than `seq` (all held lines for 0); older ones may have left the scrollback."""
        with self.lock:
            if not self._lines or self._lines[-1].seq <= seq:
                return []
            return [line for line in self._lines if line.seq > seq]

    @property
    def lines(self) -> list[LogLine]:
        return self.lines_since(0)


class LogPane(RichLog):
    """Shows a LogPaneHandler's scrollback and follows it; several panes can follow one handler."""

    DEFAULT_CSS = """
    LogPane {
        height: 12;
        border-top: solid $primary-darken-2;
        background: $surface;
    }
    """

    def __init__(
        self,
        handler: LogPaneHandler,
        *,
        poll_interval: float = 0.1,
        max_lines: int = 1000,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(
            max_lines=max_lines, wrap=False, markup=False, highlight=False, id=id, classes=classes
        )
        self.handler = handler
        self.poll_interval = poll_interval
        self._seen = 0
        self.border_title = "log"

    def on_mount(self) -> None:
        self.pull()
        self.set_interval(self.poll_interval, self.pull)

    def pull(self) -> int:
        """Write the lines that arrived since the last pull; returns how many."""
        self.handler.flush_repeats()
        new = self.handler.lines_since(self._seen)
        for line in new:
            self.write(Text(line.text, style=LEVEL_STYLES.get(line.level, "")))
        if new:
            self._seen = new[-1].seq
        return len(new)
