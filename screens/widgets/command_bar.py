"""The slash-command line of the run screens.

An ordinary focusable Input, independent of the panels that refresh around it, so what the operator is typing
is never wiped by a redraw (the lesson of LeRobot's interactive runtime). `/` from anywhere on the screen
focuses it with the slash typed; Enter posts `CommandBar.Run` for the app to run through its command
table and leaves the line, so the single-key shortcuts work again; Esc leaves the line without running it; ↑/↓ walk through what was run before. Completion of command
words comes from the callable the screen passes in (the app's table), shown as Textual's inline suggestion.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual import on
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.suggester import Suggester
from textual.widgets import Input


class CommandSuggester(Suggester):
    """Completes the command word (`/qu` → `/question `) from `complete(prefix) -> [words]`."""

    def __init__(self, complete: Callable[[str], list[str]]) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self._complete = complete

    async def get_suggestion(self, value: str) -> str | None:
        if not value.startswith("/") or " " in value or len(value) < 2:
            return None
        words = self._complete(value[1:])
        return f"/{words[0]} " if words else None


class CommandBar(Input):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "leave", "Leave the command line", show=False),
        Binding("up", "history(-1)", "Previous command", show=False),
        Binding("down", "history(1)", "Next command", show=False),
    ]

    class Run(Message):
        """A line to run (already stripped, never empty). Not `Submitted`: that is Input's own message."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, complete: Callable[[str], list[str]] | None = None, *, id: str | None = None) -> None:
        super().__init__(
            placeholder="/ to type a command: /action, /pause, /takeover, /question …  (/help lists them)",
            suggester=CommandSuggester(complete) if complete is not None else None,
            select_on_focus=False,  # `/` focuses it with the slash typed: the next key must not replace it
            compact=True,
            id=id,
        )
        self.history: list[str] = []
        self._cursor = 0

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text:
            return
        if not text.startswith("/"):
            text = "/" + text  # typed after the `/` was deleted: still meant as a command
        self.history.append(text)
        self._cursor = len(self.history)
        self.value = ""
        self.screen.set_focus(None)  # back to the single-key shortcuts (space, tab...); `/` types the next one
        self.post_message(self.Run(text))

    def action_leave(self) -> None:
        self.value = ""
        self.screen.set_focus(None)

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        self._cursor = min(max(self._cursor + step, 0), len(self.history))
        self.value = self.history[self._cursor] if self._cursor < len(self.history) else ""
        self.cursor_position = len(self.value)

    def start(self) -> None:
        """Focus with a `/` already typed (the key that opened it)."""
        self.focus()
        if not self.value:
            self.value = "/"
        self.cursor_position = len(self.value)
