"""Optional desktop-wide hotkeys (pynput) for the record and rollout controls, so the operator can pause
or save while the terminal is not focused. Never required: keys inside the terminal always work.

pynput cannot work without an X display (over SSH, headless) or under Wayland, and fails at import time
there, so it is imported lazily and the reason it is off is logged in one line. The combos come from the
command table's `hotkey` column (`<ctrl>+<alt>+p`), chosen so the terminal never binds them: a press
is never handled twice when the terminal does have focus.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from textual.message import Message

from robotui.command_table import Command

log = logging.getLogger(__name__)


class HotkeyPressed(Message):
    """Posted to the app from pynput's listener thread (post_message is thread-safe)."""

    def __init__(self, command: str) -> None:
        super().__init__()
        self.command = command


class MessageTarget(Protocol):
    def post_message(self, message: Message) -> bool: ...


def unavailable_reason(env: Mapping[str, str] = os.environ, platform: str = sys.platform) -> str | None:
    """Why global hotkeys cannot work here, or None if pynput may work."""
    if not platform.startswith("linux"):
        return None  # macOS (needs the accessibility permission) and Windows are pynput's own business
    if env.get("WAYLAND_DISPLAY") or env.get("XDG_SESSION_TYPE") == "wayland":
        return "Wayland does not let programs read global keys"
    if not env.get("DISPLAY"):
        return "no X display (SSH or headless)"
    return None


def hotkey_map(commands: Iterable[Command]) -> dict[str, str]:
    """pynput combo -> command name, for the commands that have one."""
    combos: dict[str, str] = {}
    for command in commands:
        if command.hotkey:
            if command.hotkey in combos:
                raise ValueError(
                    f"hotkey {command.hotkey} is bound to /{combos[command.hotkey]} and /{command.name}"
                )
            combos[command.hotkey] = command.name
    return combos


class GlobalHotkeys:
    """A running pynput GlobalHotKeys listener; `stop()` ends its thread."""

    def __init__(self, listener: Any, combos: Mapping[str, str]) -> None:
        self.listener = listener
        self.combos = dict(combos)

    def stop(self) -> None:
        try:
            self.listener.stop()
        except Exception as e:  # pynput's dummy backend cannot stop; nothing else to do at exit
            log.debug("stopping the hotkey listener: %s", e)


def start_hotkeys(
    target: MessageTarget, commands: Iterable[Command], env: Mapping[str, str] = os.environ
) -> GlobalHotkeys | None:
    """Start listening, or log in one line why not and return None."""
    reason = unavailable_reason(env)
    if reason is not None:
        log.info("global hotkeys off: %s — keys inside the terminal work as usual", reason)
        return None
    try:
        from pynput import keyboard
    except Exception as e:  # ImportError, or pynput's own "platform is not supported"
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        log.info(
            "global hotkeys off: pynput unavailable (%s) — keys inside the terminal work as usual", first_line
        )
        return None
    combos = hotkey_map(commands)

    def press(name: str) -> Any:
        return lambda: target.post_message(HotkeyPressed(name))

    listener = keyboard.GlobalHotKeys({combo: press(name) for combo, name in combos.items()})
    listener.daemon = True
    listener.start()
    log.info("global hotkeys on: %s", ", ".join(f"{combo} /{name}" for combo, name in combos.items()))
    return GlobalHotkeys(listener, combos)
