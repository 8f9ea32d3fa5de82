"""The new-job form: where the training runs (here or an SSH host), on which dataset, with which preset, and
the hyperparameters users change most.

`parse_form` checks the typed values without touching the disk or the network (it runs on the UI thread);
`check_dataset` looks at the folder in the start worker, where `plan_training_job` then builds the command.
Each failure is a `FormError` naming the field to focus. Empty hyperparameters mean the preset's value, which
the fields show as their placeholder.
"""

from __future__ import annotations

import math
import re
import shlex
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Input, Select, Static

from engine.jobs import PRESETS, Hyperparameters, JobError, SshHost
from engine.jobs.presets import ROBOTUI
from engine.jobs.spec import check_name, remote_path
from screens.widgets.field_form import FieldForm, FormError, prefixed_id

DEFAULT_PRESET = "robotui-act"
DEVICES: tuple[str, ...] = ("default", "cuda", "cpu", "mps")
"""`default` leaves the device to the trainer (robotui: cuda, then mps, then cpu; lerobot-train: cuda)."""

TEXT_FIELDS: tuple[str, ...] = (
    "name",
    "host",
    "identity",
    "dataset",
    "steps",
    "batch_size",
    "lr",
    "chunk_size",
    "program",
    "extra",
)
SELECT_FIELDS: tuple[str, ...] = ("preset", "device")
HYPER_FIELDS: tuple[str, ...] = ("steps", "batch_size", "lr", "chunk_size")

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class TrainRequest:
    """A validated form: what `plan_training_job` is called with."""

    name: str
    preset: str
    hyper: Hyperparameters
    dataset: str
    host: str | None
    identity: str | None
    program: str | None  # the trainer's path on the job's machine; None: the preset's (see trainer_program)
    extra: tuple[str, ...]


def field_id(name: str) -> str:
    return prefixed_id(TrainForm.ID_PREFIX, name)


def _count(values: Mapping[str, str], name: str, what: str) -> int | None:
    text = values.get(name, "").strip()
    if not text:
        return None
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise FormError(f"{what} must be a whole number, got '{text}' (empty: the preset's)", name) from None
    if value < 1:
        raise FormError(f"{what} must be at least 1, got {value}", name)
    return value


def _learning_rate(values: Mapping[str, str]) -> float | None:
    text = values.get("lr", "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise FormError(f"the learning rate must be a number such as 1e-5, got '{text}'", "lr") from None
    if not (math.isfinite(value) and value > 0):
        raise FormError(f"the learning rate must be a positive number such as 1e-5, got '{text}'", "lr")
    return value


def parse_form(values: Mapping[str, str]) -> TrainRequest:
    """The typed values as a request, or a FormError for the first field that is wrong (top to bottom)."""
    preset_name = values.get("preset") or DEFAULT_PRESET
    preset = PRESETS.get(preset_name)
    if preset is None:
        raise FormError(f"no preset '{preset_name}': choose one of {', '.join(PRESETS)}", "preset")
    name = values.get("name", "").strip() or f"{preset_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        check_name(name)
    except JobError as e:
        raise FormError(str(e), "name") from None
    host = values.get("host", "").strip() or None
    if host is not None:
        try:
            SshHost.parse(host)
        except JobError:
            raise FormError(
                f"host '{host}' is not [user@]host[:port] (IPv6 as [addr]), e.g. me@gpu-box:2222; "
                "leave it empty to train on this machine",
                "host",
            ) from None
    identity = values.get("identity", "").strip() or None
    if identity is not None and host is None:
        raise FormError(
            "an identity file is only used with an SSH host: fill in the host or clear it", "identity"
        )
    dataset = values.get("dataset", "").strip()
    if not dataset:
        raise FormError(
            "choose a dataset: its folder (the one holding meta/) or a Hub repo id such as user/so101_pick",
            "dataset",
        )
    steps = _count(values, "steps", "steps")
    batch_size = _count(values, "batch_size", "the batch size")
    lr = _learning_rate(values)
    chunk_size = _count(values, "chunk_size", "the chunk size")
    device = values.get("device") or DEVICES[0]
    if device not in DEVICES:
        raise FormError(f"device must be one of {', '.join(DEVICES)}, got '{device}'", "device")
    program = values.get("program", "").strip() or None
    if program is not None and program.startswith("-"):
        raise FormError(
            f"the trainer program cannot start with '-' (got '{program}'): give its path", "program"
        )
    try:
        extra = tuple(shlex.split(values.get("extra", "")))
    except ValueError as e:
        raise FormError(f"extra arguments: {e}: quote them as in a shell", "extra") from None
    # A smaller chunk than the preset's would leave n_action_steps above it, which no trainer accepts.
    default_steps = preset.defaults.n_action_steps
    n_action_steps = chunk_size if chunk_size and default_steps and chunk_size < default_steps else None
    hyper = Hyperparameters(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        chunk_size=chunk_size,
        n_action_steps=n_action_steps,
        device=None if device == "default" else device,
    )
    return TrainRequest(name, preset_name, hyper, dataset, host, identity, program, extra)


def check_dataset(dataset: str) -> None:
    """A path must be a LeRobot dataset's root folder here; anything else must read as a Hub repo id
    (reads the disk: call it off the UI thread)."""
    path = Path(dataset).expanduser()
    if not (dataset.startswith(("/", "~", ".")) or path.exists()):
        if not _REPO_ID.match(dataset):
            raise FormError(
                f"dataset '{dataset}' is neither a folder here nor a Hub repo id (user/name)", "dataset"
            )
        return
    if not path.is_dir():
        raise FormError(
            f"dataset folder {path} does not exist: give the dataset's root folder (the one holding meta/) "
            "or a Hub repo id",
            "dataset",
        )
    if not (path / "meta" / "info.json").is_file():
        raise FormError(
            f"{path} is not a LeRobot dataset (no meta/info.json): give its root folder", "dataset"
        )


def trainer_program(request: TrainRequest) -> str | None:
    """The program given, else for a local robotui-trainer job the `robotui` installed next to this Python
    (the one running now) rather than whichever one PATH finds first; None leaves the preset's program."""
    if request.program is not None:  # `~/x` as the job's machine reads it (remote paths start at home anyway)
        return remote_path(request.program) if request.host else str(Path(request.program).expanduser())
    if request.host is not None or PRESETS[request.preset].program != ROBOTUI:
        return None
    here = Path(sys.executable).with_name("robotui")
    return str(here) if here.is_file() else None


def field_of(message: str) -> str | None:
    """The form field a launcher message is about, to put the cursor there."""
    for word, name in (
        ("is not found on", "program"),
        ("identity", "identity"),
        ("dataset", "dataset"),
        ("job name", "name"),
        ("a job named", "name"),
        ("chunk", "chunk_size"),
        ("learning rate", "lr"),
        ("batch", "batch_size"),
        ("steps", "steps"),
    ):
        if word in message:
            return name
    return None


def _default(value: float | int | None) -> str:
    if value is None:
        return "the trainer's default"
    return f"preset: {value:g}" if isinstance(value, float) else f"preset: {value}"


class TrainForm(FieldForm):
    """The fields, the preset's summary, a message line (errors, the launcher's progress) and the buttons."""

    DEFAULT_CSS = """
    TrainForm #train-message { height: auto; margin-top: 1; }
    TrainForm #train-message.error { color: $error; }
    TrainForm #train-message.status { color: $text-muted; }
    """
    ID_PREFIX: ClassVar[str] = "train-form"

    HELP: ClassVar[dict[str, str]] = {
        "name": "letters, digits, . _ - (empty: PRESET-DATE-TIME); the run folder and the registry use it",
        "host": "[user@]host[:port] of a GPU box (your ~/.ssh/config applies); empty: this machine",
        "identity": "SSH private key for the host (empty: ssh's own choice, e.g. your agent)",
        "dataset": "dataset root folder (copied to the host with rsync) or a Hub repo id",
        "program": "the trainer's path on the job's machine, e.g. "
        "~/miniforge3/envs/lerobot/bin/lerobot-train (empty: found on PATH)",
        "extra": "more arguments for the trainer, as in a shell, e.g. --num-workers 2 --set dim_model=256",
    }

    def __init__(self, values: Mapping[str, str], *, id: str | None = None) -> None:
        super().__init__(dict(values), id=id)
        self.border_title = "New training job"

    def compose(self) -> ComposeResult:
        yield from self.input_row("name", "job name")
        yield from self.input_row("host", "SSH host")
        yield from self.input_row("identity", "identity file")
        yield from self.input_row("dataset", "dataset")
        yield from self.select_row("preset", "preset", tuple(PRESETS), DEFAULT_PRESET)
        yield Static(id="train-preset-help", classes="form-help")
        yield from self.input_row("steps", "steps")
        yield from self.input_row("batch_size", "batch size")
        yield from self.input_row("lr", "learning rate")
        yield from self.input_row("chunk_size", "chunk size")
        yield from self.select_row("device", "device", DEVICES, DEVICES[0])
        yield from self.input_row("program", "trainer program")
        yield from self.input_row("extra", "extra arguments")
        yield Static(id="train-message")
        with Horizontal(id="train-buttons", classes="form-buttons"):
            yield Button("Back to the jobs", id="train-back")
            yield Button("Start training", id="train-start", variant="primary")

    def on_mount(self) -> None:
        self._show_preset(str(self.query_one(f"#{field_id('preset')}", Select).value))

    @on(Select.Changed, "#train-form-preset")
    def _preset_changed(self, event: Select.Changed) -> None:
        self._show_preset(str(event.value))

    def _show_preset(self, name: str) -> None:
        """The preset's summary under it, and its values as the hyperparameter fields' placeholders."""
        preset = PRESETS.get(name)
        if preset is None:
            return
        program = "robotui train" if preset.program == ROBOTUI else preset.program
        self.query_one("#train-preset-help", Static).update(Text(f"{preset.summary} · runs {program}"))
        for field in HYPER_FIELDS:
            self.query_one(f"#{field_id(field)}", Input).placeholder = _default(
                getattr(preset.defaults, field)
            )

    def current_values(self) -> dict[str, str]:
        values = {name: self.query_one(f"#{field_id(name)}", Input).value for name in TEXT_FIELDS}
        for name in SELECT_FIELDS:
            values[name] = str(self.query_one(f"#{field_id(name)}", Select).value)
        return values

    def _message(self, text: str, kind: str) -> None:
        line = self.query_one("#train-message", Static)
        line.set_classes(kind)
        line.update(Text(text))  # not markup: messages hold [user@]host and paths

    def show_error(self, error: str, field: str | None = None) -> None:
        """Say what is wrong under the fields and put the cursor in the field to fix."""
        self._message(error, "error")
        self.focus_field(field)

    def show_status(self, text: str) -> None:
        self._message(text, "status")
