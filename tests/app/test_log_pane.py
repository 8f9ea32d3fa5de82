"""The log pane: repeats collapsed with a count, third-party chatter muted, bounded and thread-safe."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator

import pytest
from textual.app import App, ComposeResult

from robotui.app import capture_logging
from screens.widgets.log_pane import LogPane, LogPaneHandler, ThirdPartyFilter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def handler(clock: FakeClock) -> Iterator[LogPaneHandler]:
    """A handler on a private logger tree, so tests never depend on the root logger's state."""
    handler = LogPaneHandler(max_lines=100, repeat_window=2.0, clock=clock)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    yield handler


def _logger(name: str, handler: logging.Handler, level: int = logging.DEBUG) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(level)
    return logger


def texts(handler: LogPaneHandler) -> list[str]:
    return [line.text for line in handler.lines]


def test_repeats_are_counted_and_summarised_after_the_window(
    handler: LogPaneHandler, clock: FakeClock
) -> None:
    log = _logger("drivers.robots.test_repeat", handler)
    for step in range(38):
        clock.now += 0.033  # a 30 Hz warning
        log.warning("clamped %s by %.1f deg", "shoulder_pan", 1 + step / 10)
    assert texts(handler) == ["WARNING drivers.robots.test_repeat: clamped shoulder_pan by 1.0 deg"]
    handler.flush_repeats()  # still inside the window: nothing yet
    assert len(handler.lines) == 1
    clock.now += 2.0
    handler.flush_repeats()
    assert (
        texts(handler)[1]
        == "WARNING drivers.robots.test_repeat: clamped shoulder_pan by 4.7 deg … (repeated 37×)"
    )
    clock.now += 5.0
    handler.flush_repeats()
    assert len(handler.lines) == 2  # nothing new was suppressed, so no second summary
    log.warning("clamped %s by %.1f deg", "shoulder_pan", 9.0)  # after a quiet window it shows again
    assert texts(handler)[2] == "WARNING drivers.robots.test_repeat: clamped shoulder_pan by 9.0 deg"


def test_a_steady_flood_gives_one_summary_per_window(handler: LogPaneHandler, clock: FakeClock) -> None:
    log = _logger("engine.test_flood", handler)
    for _ in range(300):  # 10 s at 30 Hz
        clock.now += 1 / 30
        log.warning("loop overrun")
    lines = texts(handler)
    assert lines[0] == "WARNING engine.test_flood: loop overrun"
    assert 4 <= len(lines) <= 6
    assert all(line.endswith("×)") for line in lines[1:])
    counted = sum(int(line.rsplit("(repeated ", 1)[1].rstrip("×)")) for line in lines[1:])
    handler.flush_repeats()
    clock.now += 3
    handler.flush_repeats()
    total = sum(int(t.rsplit("(repeated ", 1)[1].rstrip("×)")) for t in texts(handler)[1:])
    assert counted <= total == 299  # every suppressed record is accounted for


def test_different_messages_and_levels_are_not_collapsed(handler: LogPaneHandler, clock: FakeClock) -> None:
    log = _logger("robotui.test_distinct", handler)
    log.info("connected")
    log.warning("connected")
    log.info("disconnected")
    _logger("robotui.other", handler).info("connected")
    assert len(handler.lines) == 4


def test_third_party_loggers_are_muted_below_warning(handler: LogPaneHandler) -> None:
    _logger("httpx", handler).info("HTTP Request: GET https://huggingface.co")
    _logger("huggingface_hub.file_download", handler).debug("downloading")
    _logger("PIL.PngImagePlugin", handler).warning("odd chunk")
    _logger("drivers.motors.test_ours", handler).debug("read 6 registers")
    _logger("robotuix", handler).info("a package whose name only starts like ours")
    assert texts(handler) == [
        "WARNING PIL.PngImagePlugin: odd chunk",
        "DEBUG drivers.motors.test_ours: read 6 registers",
    ]
    assert (
        ThirdPartyFilter(logging.ERROR).filter(logging.makeLogRecord({"name": "x", "levelno": 30})) is False
    )


def test_scrollback_is_bounded_and_multiline_records_split(clock: FakeClock) -> None:
    handler = LogPaneHandler(max_lines=10, clock=clock)
    log = _logger("engine.test_bounded", handler)
    for i in range(25):
        log.info(f"line {i}")  # distinct templates: nothing is collapsed
    held = handler.lines
    assert len(held) == 10
    assert held[-1].text.endswith("line 24") and held[0].text.endswith("line 15")
    assert handler.lines_since(held[-2].seq) == [held[-1]]
    assert handler.lines_since(held[-1].seq) == []
    try:
        raise RuntimeError("bus lost")
    except RuntimeError:
        log.exception("control loop stopped")
    tail = [line.text for line in handler.lines[-3:]]
    assert tail[-1] == "RuntimeError: bus lost"


def test_emit_from_many_threads_loses_nothing(clock: FakeClock) -> None:
    handler = LogPaneHandler(max_lines=10_000, clock=clock)
    log = _logger("drivers.test_threads", handler)

    def work(worker: int) -> None:
        for i in range(200):
            log.info("worker %d message %d", worker, i)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = handler.lines
    # one template for all: only the first line of the flood is shown, the rest are counted
    assert len(lines) == 1
    clock.now += 5
    handler.flush_repeats()
    assert handler.lines[-1].text.endswith("(repeated 799×)")
    assert len({line.seq for line in handler.lines}) == len(handler.lines)


def test_capture_logging_replaces_console_handlers_and_restores_them(clock: FakeClock) -> None:
    root = logging.getLogger()
    console = logging.StreamHandler(sys.stderr)
    root.addHandler(console)
    level = root.level
    try:
        handler = LogPaneHandler(clock=clock)
        with capture_logging(handler, verbose=True):
            assert console not in root.handlers and handler in root.handlers
            logging.getLogger("engine.session_test").debug("debug shows with -v")
            logging.getLogger("urllib3.connectionpool").info("muted")
            logging.getLogger("urllib3.connectionpool").warning("shown")
        assert [line.text.split(" ", 1)[1] for line in handler.lines] == [
            "DEBUG   engine.session_test: debug shows with -v",
            "WARNING urllib3.connectionpool: shown",
        ]
        assert console in root.handlers and handler not in root.handlers
        assert root.level == level
    finally:
        root.removeHandler(console)


class PaneApp(App[None]):
    def __init__(self, handler: LogPaneHandler) -> None:
        super().__init__()
        self.handler = handler

    def compose(self) -> ComposeResult:
        yield LogPane(self.handler, poll_interval=0.05)


async def test_pane_shows_backlog_and_lines_from_other_threads(clock: FakeClock) -> None:
    handler = LogPaneHandler(clock=clock)
    log = _logger("engine.test_pane", handler)
    log.info("before the pane existed")
    app = PaneApp(handler)
    async with app.run_test() as pilot:
        pane = app.query_one(LogPane)
        worker = threading.Thread(target=lambda: [log.warning(f"from thread {i}") for i in range(3)])
        worker.start()
        worker.join()
        for _ in range(50):
            await pilot.pause(0.05)
            if len(pane.lines) >= 4:
                break
        rendered = [strip.text for strip in pane.lines]
        assert rendered[0].endswith("before the pane existed")
        assert [r.rsplit(": ", 1)[1] for r in rendered[1:4]] == [
            "from thread 0",
            "from thread 1",
            "from thread 2",
        ]
