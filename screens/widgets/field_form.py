"""What the set-up forms (record, rollout, train) share: labelled rows of inputs and selects, each with its help
line, one look, and an error line that puts the cursor in the field to fix.

Parsing stays with each form (`parse_form` in its module) so every message can be tested without a UI; a
failure is a `FormError` naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Input, Label, Select, Static


class FormError(ValueError):
    """A value the workflow cannot start with; `field` names the form field to fix (or None)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def prefixed_id(prefix: str, name: str) -> str:
    """The widget id of form field `name` (`repo_id` -> `record-repo-id`)."""
    return f"{prefix}-" + name.replace("_", "-")


class FieldForm(VerticalScroll):
    """Base of the set-up forms; a subclass sets `ID_PREFIX` and `HELP` and composes its rows."""

    DEFAULT_CSS = """
    FieldForm { border: round $primary-darken-1; border-title-color: $text; padding: 0 1; height: 1fr; }
    FieldForm .form-row { height: auto; margin-top: 1; }
    FieldForm .form-row > Label { width: 20; padding: 0 1 0 0; text-style: bold; }
    FieldForm .form-row > Input, FieldForm .form-row > Select { width: 1fr; }
    FieldForm .form-row > Input { background: $boost; }
    FieldForm .form-row > Input:focus { background: $primary 25%; }
    FieldForm .form-help { color: $text-muted; padding-left: 20; height: auto; }
    FieldForm .form-checkbox { margin-left: 20; margin-top: 1; border: none; padding: 0; }
    FieldForm .form-note { margin-top: 1; height: auto; }
    FieldForm #form-error { color: $error; height: auto; margin-top: 1; }
    FieldForm .form-buttons { height: auto; align-horizontal: right; }
    FieldForm .form-buttons > Button { margin-left: 2; }
    """

    ID_PREFIX: ClassVar[str] = "form"
    HELP: ClassVar[dict[str, str]] = {}

    def __init__(self, values: dict[str, str], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.values = values

    def field_id(self, name: str) -> str:
        return prefixed_id(self.ID_PREFIX, name)

    def _help(self, name: str) -> ComposeResult:
        if name in self.HELP:
            yield Static(self.HELP[name], classes="form-help", markup=False)  # help holds <paths> and [user@]

    def input_row(self, name: str, label: str) -> ComposeResult:
        with Horizontal(classes="form-row"):
            yield Label(label)
            yield Input(self.values.get(name, ""), compact=True, id=self.field_id(name))
        yield from self._help(name)

    def select_row(self, name: str, label: str, choices: Sequence[str], default: str | None = None) -> ComposeResult:
        with Horizontal(classes="form-row"):
            yield Label(label)
            yield Select([(c, c) for c in choices], value=self.values.get(name) or default or choices[0],
                         allow_blank=False, compact=True, id=self.field_id(name))
        yield from self._help(name)

    def show_error(self, error: str | None, field: str | None = None) -> None:
        """Say what is wrong under the fields and put the cursor in the field to fix."""
        self.query_one("#form-error", Static).update(error or "")
        self.focus_field(field)

    def focus_field(self, field: str | None) -> None:
        if field is not None and self.query(f"#{self.field_id(field)}"):
            self.query_one(f"#{self.field_id(field)}").focus()
