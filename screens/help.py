"""The help screen, generated from the command table the app passes in, so it lists exactly the keys and
slash commands that exist. Commands that do not apply on the screen underneath are dimmed, not hidden:
the operator learns where a command works without leaving help.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Protocol

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from screens.base import RobotuiModal


class CommandInfo(Protocol):
    """What help shows of a command (robotui.command_table.Command has these)."""

    name: str
    help: str
    aliases: tuple[str, ...]
    key: str | None
    example: str

    @property
    def usage(self) -> str: ...

    @property
    def where(self) -> str: ...

    def applies_in(self, context: str) -> bool: ...


class HelpScreen(RobotuiModal[None]):
    """Every key and slash command, grouped by where it works."""

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen > VerticalScroll {
        width: 110;
        max-width: 100%;
        height: auto;
        max-height: 90%;
        border: round $primary;
        border-title-align: center;
        border-subtitle-align: center;
        background: $surface;
        padding: 0 1;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close"),
        Binding("q", "dismiss", "Close", show=False),
        Binding("question_mark", "dismiss", "Close", show=False),
    ]

    def __init__(self, commands: Sequence[CommandInfo], context: str, focus: str | None = None) -> None:
        super().__init__()
        self.commands = list(commands)
        self.context = context
        self.focus_command = focus

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body") as body:
            body.border_title = "robotui — keys and slash commands"
            body.border_subtitle = "esc close"
            yield Static(self._tables(), id="help-table")
            yield Static(
                Text.from_markup(
                    "Type slash commands in a workflow's command bar; arguments need no quotes "
                    "([b]/q is the cube in the box?[/b]). [b]ctrl+p[/b] opens the command palette. "
                    "Dimmed rows work on another screen."
                ),
                id="help-notes",
            )

    def _key(self, command: CommandInfo) -> str:
        return self.app.get_key_display(Binding(command.key, "")) if command.key else ""

    def _tables(self) -> Group:
        """One table per group of commands (where they work), with the same column widths."""
        accent = self.app.theme_variables.get("accent", "cyan")
        groups: dict[str, list[CommandInfo]] = {}
        for command in self.commands:
            groups.setdefault(command.where, []).append(command)
        tables = []
        for where, commands in groups.items():
            plural = "s" if " and " in where else ""
            title = "Everywhere" if where == "every" else f"On the {where} screen{plural}"
            table = Table(
                title=title,
                title_justify="left",
                title_style="bold underline",
                box=None,
                expand=True,
                padding=(0, 1),
                show_edge=False,
                show_header=False,
            )
            table.add_column("key", style=f"bold {accent}", no_wrap=True, width=6)
            table.add_column("command", no_wrap=True, width=24)
            table.add_column("also", no_wrap=True, width=8)
            table.add_column("what it does", ratio=1)
            for command in commands:
                dim = not command.applies_in(self.context)
                what = Text(command.help)
                if command.example:
                    what.append(f"  e.g. {command.example}", style="italic")
                table.add_row(
                    self._key(command),
                    Text(command.usage, style="" if dim else "bold"),
                    " ".join(f"/{a}" for a in command.aliases),
                    what,
                    style="reverse" if command.name == self.focus_command else ("dim" if dim else ""),
                )
            tables.append(table)
        return Group(*tables)
