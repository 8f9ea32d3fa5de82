"""The "never left energised" guarantee: every connected arm is released on every way out of the process.

A follower holding torque after its program died keeps pushing against whatever it last aimed at. So each
arm registers here while connected, and this module disconnects all of them (torque off, or held where the
arm is configured to hold, then the port closed) on:

- interpreter exit (`atexit`), which also covers an uncaught Ctrl-C / KeyboardInterrupt;
- SIGTERM and SIGHUP (a `kill`, a systemd stop, the SSH session to the robot laptop dropping), whose
  default action would skip `atexit`. The handler releases the arms, then chains to the handler that was
  installed before it, or, if that was the default, raises SystemExit(128 + signal) so `finally` blocks
  elsewhere (dataset writers) still run.

Normal `disconnect()` and `with arm:` unregister as they go. Errors while releasing (a bus that vanished,
a motor that stopped answering) are logged and never raised: shutdown must reach every arm.
"""

from __future__ import annotations

import atexit
import logging
import signal
import threading
from types import FrameType
from typing import Any, Protocol

log = logging.getLogger(__name__)

HANDLED_SIGNALS: tuple[signal.Signals, ...] = tuple(
    s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None
)


class Releasable(Protocol):
    """What the registry needs from an arm: a label for the log and an idempotent disconnect."""

    @property
    def label(self) -> str: ...

    def disconnect(self) -> None: ...


_lock = threading.RLock()  # re-entrant: a signal may land while the main thread holds it
_arms: dict[int, Releasable] = {}
_atexit_installed = False
_previous_handlers: dict[int, Any] = {}


def register(arm: Releasable) -> None:
    """Track a connected arm; install the exit and signal hooks on first use."""
    with _lock:
        _arms[id(arm)] = arm
    _install_hooks()


def unregister(arm: Releasable) -> None:
    with _lock:
        _arms.pop(id(arm), None)


def registered() -> list[Releasable]:
    with _lock:
        return list(_arms.values())


def release_all(reason: str = "shutdown") -> int:
    """Disconnect every registered arm, newest first. Returns how many were released. Never raises
    (except KeyboardInterrupt/SystemExit from the caller's side); calling it again is a no-op."""
    with _lock:
        arms = list(_arms.values())[::-1]
        _arms.clear()
    for arm in arms:
        try:
            log.info("%s: releasing %s", reason, arm.label)
            arm.disconnect()
        except Exception as e:
            log.warning("%s: could not release %s cleanly: %s", reason, arm.label, e)
    return len(arms)


def _on_exit() -> None:
    release_all("interpreter exit")


def _on_signal(signum: int, frame: FrameType | None) -> None:
    name = signal.Signals(signum).name
    release_all(name)
    previous = _previous_handlers.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_IGN:
        return
    else:  # SIG_DFL (or unknown, e.g. set from C): terminate, but let `finally` blocks run
        raise SystemExit(128 + signum)


def _install_hooks() -> None:
    global _atexit_installed
    with _lock:
        if not _atexit_installed:
            atexit.register(_on_exit)
            _atexit_installed = True
        # signal.signal only works in the main thread; arms connected from worker threads still get the
        # handlers as soon as any arm connects from the main thread, and always get atexit.
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in HANDLED_SIGNALS:
            current = signal.getsignal(sig)
            if current is _on_signal:
                continue
            _previous_handlers[int(sig)] = current
            try:
                signal.signal(sig, _on_signal)
            except (ValueError, OSError) as e:  # embedded interpreters may refuse
                log.debug("cannot install %s handler: %s", sig.name, e)


def uninstall_signal_handlers() -> None:
    """Put back the handlers that were there before (for embedding apps and tests)."""
    if threading.current_thread() is not threading.main_thread():
        return
    with _lock:
        for signum, previous in list(_previous_handlers.items()):
            if signal.getsignal(signum) is _on_signal:
                signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
            del _previous_handlers[signum]
