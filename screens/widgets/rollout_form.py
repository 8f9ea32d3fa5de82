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
from textual.containers import Horizontal
from textual.widgets import Button, Checkbox, Input, Select, Static

from engine.rollout import STRATEGIES, RolloutSettings
from screens.widgets.field_form import FieldForm, FormError, prefixed_id

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
    return prefixed_id(RolloutForm.ID_PREFIX, name)


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


class RolloutForm(FieldForm):
    ID_PREFIX: ClassVar[str] = "rollout"
    HELP: ClassVar[dict[str, str]] = {
        "policy": "checkpoint folder (…/checkpoints/last works) or a Hub repo id; LeRobot ACT checkpoints load as is",
        "task": "what the robot should do; language-conditioned policies are told it (change it with /action <task>)",
        "root": "dagger and highlight record here (a new folder, or an existing dataset to append to)",
        "strategy": "base: no recording · dagger: record your takeovers · highlight: /save keeps the last 10 s",
    }

    def __init__(self, values: Mapping[str, str], robot_line: str, *, id: str | None = None) -> None:
        super().__init__(dict(values), id=id)
        self.robot_line = robot_line
        self.border_title = "Roll out a policy"

    def compose(self) -> ComposeResult:
        yield from self.input_row("policy", "policy")
        yield from self.select_row("device", "device", DEVICES)
        yield from self.select_row("strategy", "strategy", STRATEGIES)
        yield from self.input_row("task", "task")
        yield from self.input_row("root", "dataset folder")
        yield Checkbox("dagger: record every frame with the intervention column (continuous), not only takeovers",
                       self.values.get("continuous") == "1", id=field_id("continuous"), classes="form-checkbox")
        yield Checkbox("record /question answers in the dataset (language_events column; needs LeRobot ≥ 0.5)",
                       self.values.get("questions", "1") == "1", id=field_id("questions"), classes="form-checkbox")
        yield Static(self.robot_line, classes="form-note")
        yield Static(id="form-error")
        with Horizontal(classes="form-buttons"):
            yield Button("Load and start paused", id="rollout-start", variant="primary")

    def current_values(self) -> dict[str, str]:
        values = {name: self.query_one(f"#{field_id(name)}", Input).value for name in TEXT_FIELDS}
        for name in ("device", "strategy"):
            values[name] = str(self.query_one(f"#{field_id(name)}", Select).value)
        for name in ("continuous", "questions"):
            values[name] = "1" if self.query_one(f"#{field_id(name)}", Checkbox).value else ""
        return values
