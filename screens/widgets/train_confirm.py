"""Asked before a job is cancelled: a run of hours is not stopped by a stray key."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Label

from screens.base import RobotuiModal


class ConfirmCancel(RobotuiModal[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(False)", "Keep it running")]

    DEFAULT_CSS = """
    ConfirmCancel { align: center middle; }
    ConfirmCancel > Vertical {
        width: 72; height: auto; border: round $error; padding: 0 1; background: $surface;
    }
    ConfirmCancel Label { width: 1fr; }
    ConfirmCancel Horizontal { height: auto; align-horizontal: right; margin-top: 1; }
    ConfirmCancel Button { margin-left: 2; }
    """

    def __init__(self, name: str, where: str, grace_s: float) -> None:
        super().__init__()
        self.job = name
        self.where = where
        self.grace_s = grace_s

    def compose(self) -> ComposeResult:
        with Vertical():
            question = Text.assemble("Cancel job ", (self.job, "bold"), f" on {self.where}?\n")
            question.append(
                f"Its whole process group gets SIGTERM, then SIGKILL after {self.grace_s:g} s. Checkpoints "
                "already saved are kept.",
                style="dim",
            )
            yield Label(question)
            with Horizontal():
                yield Button("Keep it running", id="confirm-keep")
                yield Button("Cancel the job", id="confirm-cancel", variant="error")

    def on_mount(self) -> None:
        self.query_one("#confirm-keep", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-cancel")
