"""The record set-up form: where the dataset goes, what is recorded, for how long, and how it is encoded.

Parsing is split from the widget so each message can be tested on its own: `parse_form` checks the typed
values without touching the disk (it runs on the UI thread), `check_root` looks at the folder (it runs in
the start worker, with the connection). Each failure is a `FormError` naming the field to focus (it lives in field_form; re-exported here).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Button, Checkbox, Input, Select, Static

from engine.dataset.format import INFO_PATH
from engine.recorder import RecordSettings
from screens.widgets.field_form import FieldForm, FormError, prefixed_id

VCODECS: tuple[str, ...] = ("libsvtav1", "libx264", "auto")
"""libsvtav1 is LeRobot's default; libx264 is faster on a small CPU; auto picks what this machine opens."""

FIELDS: tuple[str, ...] = (
    "repo_id",
    "root",
    "task",
    "episodes",
    "episode_time",
    "reset_time",
    "vcodec",
    "resume",
)

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class RecordRequest:
    """A validated form: what `Session.start_recording` is called with."""

    root: Path
    repo_id: str
    settings: RecordSettings
    vcodec: str
    resume: bool


def field_id(name: str) -> str:
    return prefixed_id(RecordForm.ID_PREFIX, name)


def default_repo_id(profile_name: str, datasets: Path, env: Mapping[str, str] = os.environ) -> str:
    """`$HF_USER/<profile>-record` (LeRobot's docs set HF_USER), with `-2`, `-3`... if that folder is taken,
    so the default never collides with an earlier recording."""
    user = env.get("HF_USER") or "local"
    base = f"{user}/{re.sub(r'[^A-Za-z0-9_.-]+', '-', profile_name) or 'robot'}-record"
    candidate, n = base, 1
    while (datasets / candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _number(text: str, field: str, what: str) -> float:
    try:
        value = float(text.strip().removesuffix("s").strip())
    except ValueError:
        raise FormError(f"{what} must be a number of seconds, got '{text}'", field) from None
    if not math.isfinite(value):
        raise FormError(f"{what} must be a finite number of seconds, got '{text}'", field)
    return value


def parse_form(values: Mapping[str, str], *, resume: bool) -> RecordRequest:
    """The typed values as a request, or a FormError for the first field that is wrong (top to bottom)."""
    repo_id = values.get("repo_id", "").strip()
    if not _REPO_ID.match(repo_id):
        raise FormError(
            f"repo id must look like user/name (letters, digits, - _ .), got '{repo_id}'"
            if repo_id
            else "a repo id is required, e.g. alice/so101_pick_cube (its name on the Hub)",
            "repo_id",
        )
    root_text = values.get("root", "").strip()
    if not root_text:
        raise FormError("choose a folder for the dataset", "root")
    task = values.get("task", "").strip()
    if not task:
        raise FormError("a task description is required (what the robot does, e.g. 'pick the cube')", "task")
    episodes_text = values.get("episodes", "").strip()
    if not episodes_text.isdecimal() or int(episodes_text) < 1:
        raise FormError(
            f"the number of episodes must be a whole number ≥ 1, got '{episodes_text}'", "episodes"
        )
    episode_time = _number(values.get("episode_time", ""), "episode_time", "episode time")
    if episode_time <= 0:
        raise FormError(
            f"episode time must be more than 0 seconds, got '{values['episode_time']}'", "episode_time"
        )
    reset_time = _number(values.get("reset_time", ""), "reset_time", "reset time")
    if reset_time < 0:
        raise FormError(f"reset time cannot be negative, got '{values['reset_time']}'", "reset_time")
    vcodec = values.get("vcodec", "") or VCODECS[0]
    if vcodec not in VCODECS:
        raise FormError(f"video codec must be one of {', '.join(VCODECS)}, got '{vcodec}'", "vcodec")
    try:
        settings = RecordSettings(int(episodes_text), episode_time, reset_time, task)
    except ValueError as e:
        raise FormError(str(e)) from None
    return RecordRequest(Path(root_text).expanduser().absolute(), repo_id, settings, vcodec, resume)


def check_root(root: Path, *, resume: bool) -> None:
    """Refuse a folder the writer would refuse, with what to do instead (reads the disk: call off the UI)."""
    if resume:
        if not root.exists():
            raise FormError(f"{root} does not exist: untick resume to create a new dataset there", "root")
        if not (root / INFO_PATH).is_file():
            raise FormError(
                f"{root} is not a LeRobot dataset (no {INFO_PATH}): untick resume and choose a new folder",
                "root",
            )
        return
    if root.exists() and not root.is_dir():
        raise FormError(f"{root} is a file: choose a folder for the dataset", "root")
    if root.exists() and any(root.iterdir()):
        raise FormError(
            f"{root} exists and is not empty: tick resume to append to it, or choose another folder", "root"
        )


class RecordForm(FieldForm):
    """The fields, a line on the robot that will record, the error line and the Start button."""

    ID_PREFIX: ClassVar[str] = "record"
    HELP: ClassVar[dict[str, str]] = {
        "repo_id": "user/name: the dataset's name on the Hub (push later with `robotui dataset push`)",
        "root": "new or empty folder; LeRobot finds <datasets>/<repo id> by the repo id alone",
        "task": "what the robot does, stored with every episode; editable between episodes",
        "vcodec": "libsvtav1 is LeRobot's default (AV1); libx264 is faster on a small CPU; auto: what works here",
    }

    def __init__(
        self, values: Mapping[str, str], robot_line: str, datasets: Path, *, id: str | None = None
    ) -> None:
        super().__init__(dict(values), id=id)
        self.robot_line = robot_line
        self.datasets = datasets
        self._auto_root = str(datasets / self.values.get("repo_id", ""))
        self.border_title = "New recording"

    def compose(self) -> ComposeResult:
        yield from self.input_row("repo_id", "repo id")
        yield from self.input_row("root", "dataset folder")
        yield from self.input_row("task", "task")
        yield from self.input_row("episodes", "episodes")
        yield from self.input_row("episode_time", "episode time (s)")
        yield from self.input_row("reset_time", "reset time (s)")
        yield from self.select_row("vcodec", "video codec", VCODECS)
        yield Checkbox(
            "resume: append to this dataset (same fps, robot and cameras; keeps its codec)",
            self.values.get("resume") == "1",
            id=field_id("resume"),
            classes="form-checkbox",
        )
        yield Static(self.robot_line, classes="form-note")
        yield Static(id="form-error")
        with Horizontal(classes="form-buttons"):
            yield Button("Start recording", id="record-start", variant="primary")

    @on(Input.Changed, "#record-repo-id")
    def _root_follows_repo_id(self, event: Input.Changed) -> None:
        """Until the folder is edited by hand it stays <datasets>/<repo id>, LeRobot's layout."""
        root = self.query_one(f"#{field_id('root')}", Input)
        if root.value == self._auto_root:
            self._auto_root = str(self.datasets / event.value.strip())
            root.value = self._auto_root

    def current_values(self) -> dict[str, str]:
        values = {
            name: self.query_one(f"#{field_id(name)}", Input).value
            for name in FIELDS
            if name not in ("vcodec", "resume")
        }
        values["vcodec"] = str(self.query_one(f"#{field_id('vcodec')}", Select).value)
        values["resume"] = "1" if self.query_one(f"#{field_id('resume')}", Checkbox).value else ""
        return values
