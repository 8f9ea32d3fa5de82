"""The Record workflow: a set-up form, then live recording into a LeRobotDataset v3.0, then a summary.

While recording, → ends the phase early (the episode is saved in the background), ← drops the episode being
recorded so it is recorded again, Esc stops: what is recorded is saved and the dataset closed. They are
plain Textual bindings from the command table, so they work over SSH with no desktop hotkey library.

The UI thread only reads `Recorder.snapshot()` on a 10 Hz timer and changes the task (in memory); starting,
the keys that touch the writer, and stopping (which waits for the last save and the finalize) run in thread
workers that post messages back. Leaving the screen any way (another workflow, home, quit) stops the
recording on a background thread; the session's own shutdown waits for that stop to finish.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import fields
from typing import Any, ClassVar, Literal

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Checkbox, ContentSwitcher, Footer, Header, Input, Label, Static

from engine.dataset.writer import DatasetMismatchError
from engine.recorder import Phase, Recorder, RecorderSnapshot, RecordSettings
from engine.session import Session
from screens.base import RobotuiScreen
from screens.widgets.camera_preview import CameraPreview
from screens.widgets.record_form import (
    FormError,
    RecordForm,
    RecordRequest,
    check_root,
    default_repo_id,
    field_id,
    parse_form,
)
from screens.widgets.record_status import RecordStatus, SavedEpisodes, Summary, summary_renderable

log = logging.getLogger(__name__)

State = Literal["setup", "starting", "recording", "stopping", "done"]


class TaskInput(Input):
    """The live task line. Esc here abandons the edit; it must not stop the recording."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "abandon", "Cancel edit", show=False)]

    committed: str = ""
    """The task the recorder has; Esc puts it back."""

    def action_abandon(self) -> None:
        self.value = self.committed
        self.screen.set_focus(None)


def _stop_and_release(session: Session, recorder: Recorder) -> None:
    """Save what is recorded and finalize (blocks), then let the session drop the recorder and the demo.
    The session's own shutdown waits on `recorder.stop()` too, so quitting never cuts a save short."""
    try:
        recorder.stop()
    finally:
        if session.recorder is recorder:
            session.stop_recording()


def _leave_stopping(session: Session, recorder: Recorder) -> None:
    try:
        _stop_and_release(session, recorder)
    except Exception:
        log.exception("stopping the recording after leaving the Record screen failed")


class RecordScreen(RobotuiScreen):
    """Form → live recording → summary, one screen: `state` says which (setup, starting, recording,
    stopping, done) and decides what each key does."""

    COMMAND_CONTEXT: ClassVar[str] = "record"
    AUTO_FOCUS: ClassVar[str | None] = ""  # focus is placed by hand: a focused input would eat → and ←

    DEFAULT_CSS = """
    RecordScreen #record-views { height: 1fr; }
    RecordScreen #record-live { height: 1fr; }
    RecordScreen #record-previews { height: 1fr; min-height: 6; }
    RecordScreen #record-no-cameras { height: 1fr; content-align: center middle; color: $text-muted; }
    RecordScreen #record-summary {
        height: 1fr; border: round $success; border-title-color: $text; padding: 0 1; display: none;
    }
    RecordScreen #record-panels { height: 14; }
    RecordScreen #record-status, RecordScreen #record-saved-box {
        border: round $primary-darken-1; border-title-color: $text; padding: 0 1; height: 100%;
    }
    RecordScreen #record-status { width: 1fr; }
    RecordScreen #record-saved-box { width: 42; }
    RecordScreen #record-task-row { height: 1; margin: 0 1; }
    RecordScreen #record-task-row > Label { width: 7; text-style: bold; }
    RecordScreen #record-task-row > TaskInput { width: 1fr; background: $boost; }
    RecordScreen #record-task-row > TaskInput:focus { background: $primary 25%; }
    """

    refresh_interval: ClassVar[float] = 0.1
    preview_fps: ClassVar[float] = 15.0
    """Previews are for aiming the cameras: a lower rate leaves the CPU to the control loop and encoders."""

    class Started(Message):
        def __init__(self, recorder: Recorder) -> None:
            super().__init__()
            self.recorder = recorder

    class StartFailed(Message):
        def __init__(self, error: str, field: str | None, unexpected: bool) -> None:
            super().__init__()
            self.error = error
            self.field = field
            self.unexpected = unexpected

    class Stopped(Message):
        def __init__(self, summary: Summary, snapshot: RecorderSnapshot) -> None:
            super().__init__()
            self.summary = summary
            self.snapshot = snapshot

    def __init__(self) -> None:
        super().__init__()
        self.state: State = "setup"
        self.recorder: Recorder | None = None
        self.request: RecordRequest | None = None
        self.summary: Summary | None = None
        self._handoff = threading.Lock()  # between leaving the screen and a start still connecting
        self._closed = False
        self._seen_message: str | None = None
        self._seen_error: str | None = None
        self._last_snap: RecorderSnapshot | None = None

    @property
    def session(self) -> Session:
        return self.app.session  # type: ignore[attr-defined,no-any-return]

    # ------------------------------------------------------------------------------------ layout
    def _form_values(self) -> dict[str, str]:
        profile = self.session.profile
        datasets = profile.dataset_root_path()
        repo_id = default_repo_id(profile.name, datasets)
        defaults = {f.name: f.default for f in fields(RecordSettings)}
        return {
            "repo_id": repo_id,
            "root": str(datasets / repo_id),
            "task": "",
            "episodes": str(defaults["num_episodes"]),
            "episode_time": f"{defaults['episode_time_s']:g}",
            "reset_time": f"{defaults['reset_time_s']:g}",
        }

    def _robot_line(self) -> str:
        p = self.session.profile
        driver = f"driven by {p.teleop.type}" + (" (the scripted demonstrator moves it)" if p.sim else "")
        cameras = ", ".join(p.cameras) or "no cameras"
        return (
            f"Records {p.robot.type} {driver} · cameras: {cameras} · {p.record_fps} fps. "
            "fps and cameras come from the profile (e on Home)."
        )

    def compose(self) -> ComposeResult:
        yield Header()
        with ContentSwitcher(initial="record-setup", id="record-views"):
            yield RecordForm(
                self._form_values(),
                self._robot_line(),
                self.session.profile.dataset_root_path(),
                id="record-setup",
            )
            with Vertical(id="record-live"):
                yield Horizontal(id="record-previews")
                yield Static(id="record-summary")
                with Horizontal(id="record-panels"):
                    yield RecordStatus(id="record-status")
                    with VerticalScroll(id="record-saved-box"):
                        yield SavedEpisodes(id="record-saved")
                with Horizontal(id="record-task-row"):
                    yield Label("task")
                    yield TaskInput(compact=True, id="record-task-edit")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "Record"
        self.query_one("#record-status", RecordStatus).border_title = "Status"
        self.query_one("#record-saved-box").border_title = "Saved episodes"
        self.query_one("#record-summary").border_title = "Summary"
        self.query_one(f"#{field_id('task')}", Input).focus()
        self.set_interval(self.refresh_interval, self._refresh)

    def on_unmount(self) -> None:
        with self._handoff:  # a start still connecting sees `_closed` and stops what it started itself
            self._closed = True
            recorder = self.recorder
        if recorder is not None and not recorder.finished:
            threading.Thread(
                target=_leave_stopping, args=(self.session, recorder), name="record-leave", daemon=True
            ).start()

    # ------------------------------------------------------------------------------------ keys
    def _key(self, command: str) -> str:
        """The key the command table gives `command` (shown in hints), or ''."""
        table: Any = getattr(self.app, "table", None)
        found = table.get(command) if table is not None else None
        return self.app.get_key_display(Binding(found.key, "")) if found is not None and found.key else ""

    def _not_recording(self) -> None:
        if self.state == "setup":
            start = self._key("start")
            self.notify(
                f"Not recording yet: fill in the form and start ({start})."
                if start
                else "Not recording yet: fill in the form and start.",
                severity="warning",
            )
        elif self.state == "starting":
            self.notify("Still connecting: the keys work once the recording has started.", severity="warning")
        else:
            self.notify("The recording has ended.", severity="warning")

    def action_start(self) -> None:
        """Validate the form and start recording (the connection and the dataset open in a worker)."""
        if self.state == "done":
            self._back_to_form()
            return
        if self.state != "setup":
            self.notify("Already recording: esc stops it.", severity="warning")
            return
        form = self.query_one(RecordForm)
        values = form.current_values()
        try:
            request = parse_form(values, resume=bool(values["resume"]))
        except FormError as e:
            form.show_error(str(e), e.field)
            return
        form.show_error("Connecting the arms and opening the dataset…")
        self.query_one("#record-start", Button).disabled = True
        self.state = "starting"
        self.request = request
        self._start(request)

    def action_save(self) -> None:
        """→: end the phase early; the episode being recorded is saved, a reset ends."""
        if self.state == "recording" and self.recorder is not None:
            self._send(self.recorder.next)
        else:
            self._not_recording()

    def action_redo(self) -> None:
        """←: drop the episode being recorded; it is recorded again after the reset."""
        if self.state == "recording" and self.recorder is not None:
            self._send(self.recorder.redo)
        else:
            self._not_recording()

    async def action_stop(self) -> None:
        """Esc: stop recording (save, finalize, release the arm); on the form or the summary, go home."""
        if self.state == "recording" and self.recorder is not None:
            self._begin_stop(self.recorder)
        elif self.state == "stopping":
            self.notify("Stopping: saving what is recorded and closing the dataset…")
        elif self.state == "starting":
            self.notify(
                "Still connecting: press esc again once the recording has started.", severity="warning"
            )
        else:
            await self.run_action("app.go_home")

    def action_task(self, text: str | None = None) -> None:
        """`/task pick the cube` sets the task of the next episodes; the key (or no text) edits it."""
        if self.state in ("setup", "starting", "done"):
            task_field = self.query_one(f"#{field_id('task')}", Input)
            if text is not None:
                task_field.value = text
            if self.state == "setup":
                task_field.focus()
            return
        if text is not None:
            self._set_task(text)
        else:
            self.query_one(TaskInput).focus()

    # ------------------------------------------------------------------------------------ form events
    @on(Button.Pressed, "#record-start")
    def _start_pressed(self) -> None:
        self.action_start()

    @on(Input.Submitted, "#record-setup Input")
    def _form_submitted(self) -> None:
        self.action_start()

    @on(Input.Submitted, "#record-task-edit")
    def _task_submitted(self, event: Input.Submitted) -> None:
        self._set_task(event.value)

    def _set_task(self, text: str) -> None:
        recorder = self.recorder
        if recorder is None or self.state != "recording":
            return
        try:
            recorder.set_task(text)
        except ValueError as e:
            self.notify(f"{e}; the task stays '{recorder.snapshot().task}'.", severity="warning")
            return
        task_input = self.query_one(TaskInput)
        task_input.committed = task_input.value = text.strip()
        self.set_focus(None)
        keeps = "" if recorder.phase is Phase.RESET else " (the episode in progress keeps its task)"
        self.notify(f"Task set to '{text.strip()}' from the next episode on{keeps}.")

    def _back_to_form(self) -> None:
        """After a recording: the form again, set to append to the same dataset."""
        form = self.query_one(RecordForm)
        self.query_one("#record-start", Button).disabled = False
        form.show_error(None)
        if self.request is not None:
            form.query_one(f"#{field_id('root')}", Input).value = str(self.request.root)
            form.query_one(f"#{field_id('resume')}", Checkbox).value = True
        if self._last_snap is not None:  # a task edited while recording carries over
            form.query_one(f"#{field_id('task')}", Input).value = self._last_snap.task
        self.recorder = None
        self.state = "setup"
        self.query_one(ContentSwitcher).current = "record-setup"
        form.query_one(f"#{field_id('task')}", Input).focus()

    # ------------------------------------------------------------------------------------ workers
    @work(
        thread=True,
        exclusive=True,
        group="record-start",
        exit_on_error=False,
        description="starting the recording",
    )
    def _start(self, request: RecordRequest) -> None:
        session = self.session
        recorder: Recorder | None = None
        failed: RecordScreen.StartFailed | None = None
        try:
            check_root(request.root, resume=request.resume)
            recorder = session.start_recording(
                request.settings,
                request.root,
                resume=request.resume,
                vcodec=None if request.resume else request.vcodec,  # a resumed dataset keeps its codec
                repo_id=request.repo_id,
            )
        except FormError as e:
            failed = self.StartFailed(str(e), e.field, unexpected=False)
        except DatasetMismatchError as e:
            failed = self.StartFailed(
                f"{e}\nRecord into a new folder (untick resume), or make the profile match the dataset.",
                "root",
                unexpected=False,
            )
        except Exception as e:
            log.warning("could not start recording: %s", e)
            failed = self.StartFailed(str(e) or type(e).__name__, None, unexpected=True)
        with self._handoff:
            closed = self._closed
            if not closed:
                self.recorder = recorder
        if closed and recorder is not None:  # the operator left while we were connecting
            _leave_stopping(session, recorder)
        elif failed is not None:
            self.post_message(failed)
        elif recorder is not None:
            self.post_message(self.Started(recorder))

    @work(
        thread=True, group="record-keys", exit_on_error=False, description="sending the key to the recorder"
    )
    def _send(self, call: Callable[[], None]) -> None:
        call()

    def _begin_stop(self, recorder: Recorder) -> None:
        self.state = "stopping"
        self.query_one(TaskInput).disabled = True
        if self._last_snap is not None:
            self._show(self._last_snap, stopping=True)
        self._stop(recorder, self.request)

    @work(
        thread=True,
        exclusive=True,
        group="record-stop",
        exit_on_error=False,
        description="stopping the recording",
    )
    def _stop(self, recorder: Recorder, request: RecordRequest | None) -> None:
        failure = None
        try:
            _stop_and_release(self.session, recorder)
        except Exception as e:  # the summary must still come, with what went wrong
            log.exception("stopping the recording failed")
            failure = f"stopping the recording failed: {e}"
        snap = recorder.snapshot()
        writer = recorder.writer
        summary = Summary(
            root=writer.root,
            repo_id=request.repo_id if request is not None else "",
            recorded=snap.recorded,
            frames=sum(ep.length for ep in snap.saved),
            total_episodes=writer.total_episodes,
            total_frames=writer.total_frames,
            fps=recorder.fps,
            error=snap.error or failure,
        )
        self.post_message(self.Stopped(summary, snap))

    # ------------------------------------------------------------------------------------ messages
    def on_record_screen_start_failed(self, message: StartFailed) -> None:
        self.state = "setup"
        self.query_one("#record-start", Button).disabled = False
        self.query_one(RecordForm).show_error(message.error, message.field)
        if message.unexpected:
            self.notify(message.error, title="could not start recording", severity="error", timeout=10)

    async def on_record_screen_started(self, message: Started) -> None:
        recorder = message.recorder
        self._seen_message = self._seen_error = self._last_snap = None
        task_input = self.query_one(TaskInput)
        task_input.committed = task_input.value = recorder.settings.task
        task_input.disabled = False
        self.query_one("#record-task-row").display = True
        previews = self.query_one("#record-previews")
        previews.display = True
        self.query_one("#record-summary").display = False
        await previews.remove_children()
        cameras = recorder.robot.cameras
        mode = getattr(self.app, "preview_mode", "halfblock")
        if cameras:
            await previews.mount_all(
                CameraPreview(cam, fps=self.preview_fps, mode=mode, id=f"preview-{name}")
                for name, cam in cameras.items()
            )
        else:
            await previews.mount(
                Static(
                    "No cameras in this profile: only joint positions are recorded.", id="record-no-cameras"
                )
            )
        self.query_one(SavedEpisodes).show(())
        self.query_one(ContentSwitcher).current = "record-live"
        self.set_focus(None)  # → and ← must reach the screen, not the form's last input
        self.state = "recording"
        self._refresh()

    async def on_record_screen_stopped(self, message: Stopped) -> None:
        self.state = "done"
        self.summary = message.summary
        self._show(message.snapshot, ended=True)
        await self.query_one("#record-previews").remove_children()  # their threads stop with them
        self.query_one("#record-previews").display = False
        self.query_one("#record-task-row").display = False
        panel = self.query_one("#record-summary", Static)
        panel.update(
            summary_renderable(message.summary, train_key=self._key("train"), start_key=self._key("start"))
        )
        panel.display = True
        s = message.summary
        if s.error is None:
            episodes = f"{s.recorded} episode{'s' if s.recorded != 1 else ''}"
            self.notify(f"Recording finished: {episodes} saved to {s.root}.")
        elif s.error != self._seen_error:
            self._seen_error = s.error
            self.notify(s.error, title="recording stopped", severity="error", timeout=15)

    # ------------------------------------------------------------------------------------ status
    def _refresh(self) -> None:
        recorder = self.recorder
        if recorder is None or self.state not in ("recording", "stopping"):
            return
        if recorder.phase is Phase.DONE and not recorder.finished:
            # Finishing (last save, finalize, torque off) on its own thread: do not wait on its lock.
            if self._last_snap is not None:
                self._show(self._last_snap, stopping=True)
            return
        snap = recorder.snapshot()
        self._show(snap, stopping=self.state == "stopping")
        if recorder.finished and self.state == "recording":  # all episodes done, or an error ended it
            self._begin_stop(recorder)

    def _show(self, snap: RecorderSnapshot, *, stopping: bool = False, ended: bool = False) -> None:
        self._last_snap = snap
        self.query_one(RecordStatus).show(snap, stopping=stopping, ended=ended)
        self.query_one(SavedEpisodes).show(snap.saved)
        if snap.error and snap.error != self._seen_error:
            self._seen_error = snap.error
            self.notify(snap.error, title="recording stopped", severity="error", timeout=15)
        if snap.message and snap.message != self._seen_message:
            self._seen_message = snap.message
            severity = "warning" if snap.message.startswith("episode not saved") else "information"
            self.notify(snap.message, severity=severity, timeout=8)
