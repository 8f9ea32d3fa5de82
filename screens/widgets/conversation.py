"""The conversation pane of the run screens: every command echoed with what it understood, notices from the
engine, and questions with their answers and how long they took. It keeps a bounded scrollback that no
status refresh clears."""

from __future__ import annotations

import time

from rich.text import Text
from textual.widgets import RichLog


class Conversation(RichLog):
    DEFAULT_CSS = """
    Conversation { height: 8; border: round $primary-darken-1; border-title-color: $text; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None, max_lines: int = 500) -> None:
        super().__init__(id=id, max_lines=max_lines, wrap=True, markup=False, auto_scroll=True)
        self.border_title = "Commands and answers"
        self.lines_written: list[str] = []  # plain text of every line, for tests and copy-out

    def _say(self, text: Text) -> None:
        stamp = Text(time.strftime("%H:%M:%S "), style="dim")
        self.write(stamp + text)
        self.lines_written.append(text.plain)
        if self.max_lines is not None and len(self.lines_written) > self.max_lines:
            del self.lines_written[0]

    def command(self, line: str, echo: str) -> None:
        self._say(Text.assemble((f"> {line}", "bold"), "  ", (echo, "green")))

    def error(self, message: str) -> None:
        self._say(Text(message, style="bold red"))

    def note(self, message: str) -> None:
        self._say(Text(message, style="yellow"))

    def answer(self, question: str, answer: str, seconds: float, extra: str = "") -> None:
        self._say(Text.assemble(("Q ", "bold cyan"), question))
        tail = f"  ({seconds:.1f} s{', ' + extra if extra else ''})"
        self._say(Text.assemble(("A ", "bold magenta"), answer or "(no text)", (tail, "dim")))
