"""The rollout set-up form: which policy, on what device, with which strategy and task, recording where.

`parse_form` checks the typed values without touching the disk (UI thread); the folder check and the policy
load run in the start worker. Each failure is a `FormError` naming the field to focus.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from engine.rollout import STRATEGIES, RolloutSettings
from screens.widgets.record_form import FormError

DEVICES: tuple[str, ...] = ("cpu", "cuda", "mps")
TEXT_FIELDS: tuple[str, ...] = ("policy", "task", "root")


@dataclass(frozen=True)
class RolloutRequest:
    policy: str
    device: str
    settings: RolloutSettings
    root: Path | None
    questions: bool = False  # record /question answers in the dataset (language_events)


def field_id(name: str) -> str:
    return "rollout-" + name.replace("_", "-")


def parse_form(values: Mapping[str, str], fps: int) -> RolloutRequest:
    policy = values.get("policy", "").strip()
    if not policy:
        raise FormError("choose a policy: a pretrained_model folder (or its checkpoint folder) or a Hub id "
                        "such as user/act_so101", "policy")
    strategy = values.get("strategy") or "base"
    root_text = values.get("root", "").strip()
    if strategy != "base" and not root_text:
        raise FormError(f"the {strategy} strategy records: choose a dataset folder", "root")
    device = values.get("device") or "cpu"
    if device not in DEVICES:
        raise FormError(f"device must be one of {', '.join(DEVICES)}, got '{device}'", "device")
    try:
        settings = RolloutSettings(strategy=strategy, task=values.get("task", "").strip(), fps=fps,  # type: ignore[arg-type]
                                   record_autonomous=values.get("continuous") == "1")
    except ValueError as e:
        raise FormError(str(e), "strategy") from None
    root = Path(root_text).expanduser().absolute() if strategy != "base" else None
    return RolloutRequest(policy, device, settings, root, questions=root is not None and values.get("questions") == "1")


class RolloutForm(VerticalScroll):
    DEFAULT_CSS = """
    RolloutForm { border: round $primary-darken-1; border-title-color: $text; padding: 0 1; height: 1fr; }
    RolloutForm .form-row { height: auto; margin-top: 1; }
    RolloutForm .form-row > Label { width: 20; padding: 0 1 0 0; text-style: bold; }
    RolloutForm .form-row > Input, RolloutForm .form-row > Select { width: 1fr; }
    RolloutForm .form-row > Input { background: $boost; }
    RolloutForm .form-row > Input:focus { background: $primary 25%; }
    RolloutForm .form-help { color: $text-muted; padding-left: 20; height: auto; }
    RolloutForm #rollout-continuous, RolloutForm #rollout-questions {
        margin-left: 20; margin-top: 1; border: none; padding: 0;
    }
    RolloutForm #rollout-robot { margin-top: 1; height: auto; }
    RolloutForm #form-error { color: $error; height: auto; margin-top: 1; }
    RolloutForm #rollout-buttons { height: auto; align-horizontal: right; }
    """

    HELP: ClassVar[dict[str, str]] = {
        "policy": "checkpoint folder (…/checkpoints/last works) or a Hub repo id; LeRobot ACT checkpoints load as is",
        "task": "what the robot should do; language-conditioned policies are told it (change it with /action <task>)",
        "root": "dagger and highlight record here (a new folder, or an existing dataset to append to)",
        "strategy": "base: no recording · dagger: record your takeovers · highlight: /save keeps the last 10 s",
    }

    def __init__(self, values: Mapping[str, str], robot_line: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.values = dict(values)
        self.robot_line = robot_line
        self.border_title = "Roll out a policy"

    def _row(self, name: str, label: str) -> ComposeResult:
        with Horizontal(classes="form-row"):
            yield Label(label)
            yield Input(self.values.get(name, ""), compact=True, id=field_id(name))
        if name in self.HELP:
            yield Static(self.HELP[name], classes="form-help")

    def _select(self, name: str, label: str, choices: tuple[str, ...]) -> ComposeResult:
        with Horizontal(classes="form-row"):
            yield Label(label)
            yield Select([(c, c) for c in choices], value=self.values.get(name) or choices[0], allow_blank=False,
                         compact=True, id=field_id(name))
        if name in self.HELP:
            yield Static(self.HELP[name], classes="form-help")

    def compose(self) -> ComposeResult:
        yield from self._row("policy", "policy")
        yield from self._select("device", "device", DEVICES)
        yield from self._select("strategy", "strategy", STRATEGIES)
        yield from self._row("task", "task")
        yield from self._row("root", "dataset folder")
        yield Checkbox("dagger: record every frame with the intervention column (continuous), not only takeovers",
                       self.values.get("continuous") == "1", id=field_id("continuous"))
        yield Checkbox("record /question answers in the dataset (language_events column; needs LeRobot ≥ 0.5)",
                       self.values.get("questions", "1") == "1", id=field_id("questions"))
        yield Static(self.robot_line, id="rollout-robot")
        yield Static(id="form-error")
        with Horizontal(id="rollout-buttons"):
            yield Button("Load and start paused", id="rollout-start", variant="primary")

    def current_values(self) -> dict[str, str]:
        values = {name: self.query_one(f"#{field_id(name)}", Input).value for name in TEXT_FIELDS}
        for name in ("device", "strategy"):
            values[name] = str(self.query_one(f"#{field_id(name)}", Select).value)
        for name in ("continuous", "questions"):
            values[name] = "1" if self.query_one(f"#{field_id(name)}", Checkbox).value else ""
        return values

    def show_error(self, error: str | None, field: str | None = None) -> None:
        self.query_one("#form-error", Static).update(error or "")
        if field is not None and self.query(f"#{field_id(field)}"):
            self.query_one(f"#{field_id(field)}").focus()
