"""Which camera a spatial answer is drawn on, asked only when the answer has points or boxes and nothing in the
question or the answer says which camera they belong to (pixel coordinates need a target frame)."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from screens.base import RobotuiModal


class CameraChoice(RobotuiModal[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Do not draw")]

    DEFAULT_CSS = """
    CameraChoice { align: center middle; }
    CameraChoice > Vertical {
        width: 60; height: auto; border: round $primary; padding: 0 1; background: $surface;
    }
    CameraChoice OptionList { height: auto; max-height: 10; }
    """

    def __init__(self, cameras: list[str], answer: str) -> None:
        super().__init__()
        self.cameras = cameras
        self.answer = answer

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"The answer has points or boxes: which camera are they on?\n[dim]{self.answer[:200]}[/]")
            yield OptionList(*(Option(name, id=name) for name in self.cameras))

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)
