"""The Rollout workflow: load a policy, watch it drive the arm, pause it, take over with the leader, hand back.

A set-up form (policy, device, strategy, task, dataset), then the live view: camera previews, the status panel
(mode, inference and queue figures, takeovers, saved episodes), the conversation pane and the command line.
The rollout starts PAUSED: nothing moves until `/action` (or `a`). Keys run the frequent commands (space
pause/resume, tab takeover, → save, ← redo, esc stop); everything else is typed after `/`, and every command
is echoed with what it understood.

The engine applies commands at its next control tick, so the handlers here only post them and echo; loading
the policy, starting and stopping run in thread workers. The panel is redrawn from `Rollout.snapshot()` on a
10 Hz timer. Leaving the screen stops the rollout (saving what is recorded) on a background thread.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, ContentSwitcher, Footer, Header, Static

from drivers.cameras.base import CameraError
from engine.dataset.format import INFO_PATH
from engine.dataset.writer import LanguageAnchor
from engine.rollout import Mode, PreflightError, Rollout, RolloutSnapshot
from engine.vqa import VQABusy, VQAResult, VQAState
from engine.vqa.cameras import latest_frames
from screens.base import RobotuiScreen
from screens.widgets.camera_choice import CameraChoice
from screens.widgets.camera_preview import CameraPreview
from screens.widgets.command_bar import CommandBar
from screens.widgets.conversation import Conversation
from screens.widgets.field_form import FormError
from screens.widgets.rollout_form import RolloutForm, RolloutRequest, parse_form
from screens.widgets.rollout_status import RolloutStatus

if TYPE_CHECKING:
    from engine.session import Session

log = logging.getLogger(__name__)


def _stop_quietly(session: Session, rollout: Rollout) -> None:
    try:
        rollout.stop()
    except Exception:
        log.exception("stopping the rollout failed")
    finally:
        if session.rollout is rollout:
            session.stop_rollout()


class RolloutScreen(RobotuiScreen):
    COMMAND_CONTEXT: ClassVar[str] = "rollout"
    AUTO_FOCUS: ClassVar[str | None] = ""  # a focused input would eat space, tab and the arrows

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "command_line", "Command", show=False),
        # The screen's own focus_next would take tab before the app's table binding sees it.
        Binding("tab", "app.command('takeover')", "Takeover"),
    ]

    DEFAULT_CSS = """
    RolloutScreen #rollout-views { height: 1fr; }
    RolloutScreen #rollout-live { height: 1fr; }
    RolloutScreen #rollout-top { height: 1fr; }
    RolloutScreen #rollout-previews { width: 1fr; height: 1fr; }
    RolloutScreen #rollout-previews > CameraPreview { height: 1fr; }
    RolloutScreen #rollout-no-cameras { height: 1fr; content-align: center middle; color: $text-muted; }
    RolloutScreen #rollout-status {
        width: 56; height: 1fr; border: round $primary-darken-1; border-title-color: $text; padding: 0 1;
    }
    RolloutScreen #rollout-command { margin: 0 1; background: $boost; }
    RolloutScreen #rollout-command:focus { background: $primary 25%; }
    """

    refresh_interval: ClassVar[float] = 0.1
    preview_fps: ClassVar[float] = 12.0

    class Started(Message):
        def __init__(self, rollout: Rollout, resumed: bool) -> None:
            super().__init__()
            self.rollout = rollout
            self.resumed = resumed

    class StartFailed(Message):
        def __init__(self, error: str, field: str | None) -> None:
            super().__init__()
            self.error = error
            self.field = field

    class Answered(Message):
        def __init__(self, line: str, result: VQAResult, anchor: LanguageAnchor | None, drawn: bool = False) -> None:
            super().__init__()
            self.line = line
            self.result = result
            self.anchor = anchor
            self.drawn = drawn  # drawn after the operator chose the camera: the answer is already shown

    class Stopped(Message):
        def __init__(self, snapshot: RolloutSnapshot) -> None:
            super().__init__()
            self.snapshot = snapshot

    def __init__(self) -> None:
        super().__init__()
        self.state = "setup"  # setup | loading | running | stopping | done
        self.rollout: Rollout | None = None
        self._handoff = threading.Lock()
        self._closed = False
        self._seen_message: str | None = None
        self._seen_error: str | None = None
        self._seen_saved = 0
        self.values: dict[str, str] = {}

    @property
    def session(self) -> Session:
        return self.app.session  # type: ignore[attr-defined,no-any-return]

    # ------------------------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        profile = self.session.profile
        yield Header()
        with ContentSwitcher(initial="rollout-setup", id="rollout-views"):
            yield RolloutForm(self.values, self._robot_line(), id="rollout-setup")
            with Vertical(id="rollout-live"):
                with Horizontal(id="rollout-top"):
                    yield Vertical(id="rollout-previews")
                    status = RolloutStatus(id="rollout-status")
                    status.border_title = f"Rollout · {profile.robot.type}"
                    yield status
                yield Conversation(id="rollout-conversation")
                yield CommandBar(self._complete, id="rollout-command")
        yield Footer()

    def _robot_line(self) -> str:
        profile = self.session.profile
        takeover = "the leader arm" if profile.teleop.has_bus else "keyboard jogging"
        cams = ", ".join(profile.cameras) or "no cameras"
        sim = " (simulated)" if profile.sim else ""
        return (f"Runs on {profile.robot.type}{sim} at {profile.record_fps} fps · cameras: {cams} · takeover with "
                f"{takeover}. Nothing moves until /action.")

    def _complete(self, prefix: str) -> list[str]:
        table = getattr(self.app, "table", None)
        return table.completions(prefix, self.COMMAND_CONTEXT) if table is not None else []

    def on_mount(self) -> None:
        self.set_interval(self.refresh_interval, self._refresh)

    @property
    def conversation(self) -> Conversation:
        return self.query_one(Conversation)

    # ------------------------------------------------------------------------------------ start
    @on(Button.Pressed, "#rollout-start")
    def _start_pressed(self) -> None:
        self.action_start()

    def action_start(self) -> None:
        if self.state != "setup":
            return
        form = self.query_one(RolloutForm)
        self.values = form.current_values()
        try:
            request = parse_form(self.values, self.session.profile.record_fps)
        except FormError as e:
            form.show_error(str(e), e.field)
            return
        form.show_error(f"loading {request.policy} on {request.device}… (a big model takes a while)")
        self.state = "loading"
        self._start(request)

    @work(thread=True, exclusive=True, group="rollout-start")
    def _start(self, request: RolloutRequest) -> None:
        try:
            resumed = request.root is not None and (request.root / INFO_PATH).is_file()
            if request.root is not None and request.root.exists() and not resumed and any(request.root.iterdir()):
                raise FormError(f"{request.root} is not empty and holds no dataset: choose another folder",
                                "root")
            from policies import load_policy  # torch is imported only when a policy is really loaded

            policy = load_policy(request.policy, device=request.device, rtc="auto")
            with self._handoff:
                if self._closed:
                    return
                rollout = self.session.start_rollout(policy, request.settings, request.root, resume=resumed,
                                                     language_events=request.questions)
            self.post_message(self.Started(rollout, resumed))
        except FormError as e:
            self.post_message(self.StartFailed(str(e), e.field))
        except PreflightError as e:
            self.post_message(self.StartFailed(f"refused before anything moved: {e}", None))
        except Exception as e:
            log.warning("rollout could not start: %s", e)
            self.post_message(self.StartFailed(str(e), "policy" if "polic" in str(e).lower() else None))

    @on(StartFailed)
    def _start_failed(self, event: StartFailed) -> None:
        self.state = "setup"
        self.query_one(RolloutForm).show_error(event.error, event.field)

    @on(Started)
    def _started(self, event: Started) -> None:
        self.rollout = event.rollout
        self.state = "running"
        self.query_one(ContentSwitcher).current = "rollout-live"
        self._mount_previews()
        conv = self.conversation
        if event.resumed:
            conv.note("appending to the existing dataset")
        for line in event.rollout.snapshot().preflight:
            conv.note(f"preflight: {line}")
        conv.note("ready and paused: /action (a) runs the policy, space pauses, tab takes over, / for commands")
        self._refresh()

    def _mount_previews(self) -> None:
        box = self.query_one("#rollout-previews", Vertical)
        robot = self.session.robot
        cameras = dict(robot.cameras) if robot is not None else {}
        if not cameras:
            box.mount(Static("no cameras in the profile", id="rollout-no-cameras"))
            return
        mode = getattr(self.app, "preview_mode", "halfblock")
        for name, cam in cameras.items():
            box.mount(CameraPreview(cam, label=name, fps=self.preview_fps, mode=mode, id=f"preview-{name}"))

    # ------------------------------------------------------------------------------------ refresh
    def _refresh(self) -> None:
        rollout = self.rollout
        if rollout is None or self.state not in ("running", "stopping", "done"):
            return
        snap = rollout.snapshot()
        self.query_one(RolloutStatus).show(snap)
        conv = self.conversation
        for ep in snap.saved[self._seen_saved:]:
            conv.note(f"saved episode {ep.index}: {ep.length} frames ({ep.duration_s:.1f} s)")
        self._seen_saved = len(snap.saved)
        if snap.message and snap.message != self._seen_message:
            conv.note(snap.message)
        self._seen_message = snap.message
        if snap.error and snap.error != self._seen_error:
            conv.error(snap.error)
            self.app.notify(snap.error, title="rollout stopped", severity="error", timeout=15)
        self._seen_error = snap.error
        if snap.finished and self.state == "running":
            self.state = "done"
            conv.note("the rollout has ended: esc leaves, and the arm is released")

    # ------------------------------------------------------------------------------------ commands
    def _run(self, line: str, command: Any) -> None:
        """Echo a command's own words (what it understood) or its refusal."""
        if self.rollout is None or self.state != "running":
            self.conversation.error(f"{line}: load a policy first (the form's button, or ctrl+s)")
            return
        try:
            self.conversation.command(line, command())
        except ValueError as e:
            self.conversation.error(f"{line}: {e}")

    def action_action(self, argument: str | float | None = None) -> None:
        shown = "" if argument is None else f" {argument:g}" if isinstance(argument, float) else f" {argument}"
        self._run(f"/action{shown}", lambda: self.rollout.action(argument))  # type: ignore[union-attr]

    def action_pause(self) -> None:
        self._run("/pause", lambda: self.rollout.pause())  # type: ignore[union-attr]

    def action_pause_resume(self) -> None:
        if self.rollout is not None and self.rollout.mode is Mode.PAUSED:
            self.action_resume()
        else:
            self.action_pause()

    def action_takeover(self) -> None:
        self._run("/takeover", lambda: self.rollout.takeover())  # type: ignore[union-attr]

    def action_resume(self) -> None:
        self._run("/resume", lambda: self.rollout.resume())  # type: ignore[union-attr]

    def action_save(self) -> None:
        self._run("/save", lambda: self.rollout.save())  # type: ignore[union-attr]

    def action_redo(self) -> None:
        self._run("/redo", lambda: self.rollout.redo())  # type: ignore[union-attr]

    def action_subtask(self, text: str | None = None) -> None:
        """With text: the instruction a language-conditioned policy is given. Alone: ask the model which
        subtask of the task is in progress."""
        if text is not None:
            self._run(f"/subtask {text}", lambda: self.rollout.set_subtask(text))  # type: ignore[union-attr]
            return
        self._ask("/subtask", None)

    # ------------------------------------------------------------------------------------ scene questions
    def action_question(self, text: str) -> None:
        """`/question <text>` pauses the policy first; `/question --run <text>` lets it keep running."""
        keep_running = text.startswith("--run ")
        self._ask(f"/question {text}", text.removeprefix("--run ").strip(), keep_running=keep_running)

    def _ask(self, line: str, question: str | None, *, keep_running: bool = False) -> None:
        """Ask about every camera's frame of this moment; `question` None asks for the current subtask."""
        rollout = self.rollout
        conv = self.conversation
        if rollout is None or self.state != "running":
            conv.error(f"{line}: load a policy first (the form's button, or ctrl+s)")
            return
        robot = self.session.robot
        service = self.session.vqa_service()
        try:
            frames = latest_frames(robot.cameras if robot is not None else {}, timeout_s=1.0)
            anchor = rollout.language_anchor()
            if question is None:
                future = service.ask_subtask(rollout.task, frames)
            else:
                future = service.ask(question, frames)
        except (VQABusy, ValueError, CameraError) as e:
            conv.error(f"{line}: {e}")
            return
        held = ""
        if not keep_running and rollout.mode is Mode.AUTONOMOUS:
            rollout.pause()
            held = "; the arm holds still (/question --run keeps the policy going)"
        status = service.status()
        loading = "" if status.state is VQAState.READY else f" (loading it first: {status.message})"
        conv.command(line, f"asking {service.settings.model} about {', '.join(frames)}{loading}{held}")
        self._await_answer(line, future, anchor)

    @work(thread=True, group="vqa")
    def _await_answer(self, line: str, future: Future[VQAResult], anchor: LanguageAnchor | None) -> None:
        self.post_message(self.Answered(line, future.result(), anchor))

    @work(thread=True, group="vqa")
    def _draw(self, line: str, result: VQAResult, camera: str, anchor: LanguageAnchor | None) -> None:
        service = self.session.vqa_service()
        self.post_message(self.Answered(line, service.draw(result, camera), anchor, drawn=True))

    @on(Answered)
    def _answered(self, event: Answered) -> None:
        result, conv = event.result, self.conversation
        if result.error:
            conv.error(f"{event.line}: {result.error}")
            return
        if result.needs_camera:
            conv.answer(result.question, result.text, result.elapsed_s, extra="points on which camera?")

            def chosen(camera: str | None) -> None:
                if camera is None:
                    self._record(event.anchor, result)
                else:
                    self._draw(event.line, result, camera, event.anchor)

            self.app.push_screen(CameraChoice(list(result.cameras), result.text), chosen)
            return
        if not event.drawn:
            conv.answer(result.question, result.text, result.elapsed_s)
        if result.overlay is not None:
            overlay = result.overlay
            for preview in self.query(CameraPreview):
                if preview.camera is not None and preview.camera.name == overlay.camera:
                    preview.show_still(overlay.image, caption=f"answer to: {result.question[:40]}")
            where = f" — saved {overlay.path}" if overlay.path is not None else ""
            conv.note(f"drawn on {overlay.camera}{where}")
        self._record(event.anchor, result)

    def _record(self, anchor: LanguageAnchor | None, result: VQAResult) -> None:
        """While recording, the question and the answer go into the dataset on the frame it was asked at."""
        if anchor is None or self.rollout is None:
            return
        if self.rollout.add_language_event(result.language_rows(), anchor):
            self.conversation.note(f"recorded in episode {anchor.episode_index} at frame {anchor.frame_index}")
        else:
            self.conversation.note("not recorded: that episode had already ended")

    def action_toggle_demo(self) -> None:
        sim = self.session.sim
        if sim is None:
            self.conversation.error("/demo: only the simulator has a scripted demonstrator")
            return
        if sim.scripted_leader.running:
            sim.stop_demo()
            self.conversation.command("/demo", "the scripted demonstrator let go of the leader")
        else:
            sim.start_demo()
            self.conversation.command("/demo", "the scripted demonstrator moves the leader (use it in a takeover)")

    async def action_stop(self) -> None:
        if self.state == "running" and self.rollout is not None:
            self.state = "stopping"
            self.conversation.command("/stop", "stopping: saving what is recorded, releasing the arm")
            self._stop(self.rollout)
        elif self.state in ("setup", "done"):
            self.app.action_go_home()  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, group="rollout-stop")
    def _stop(self, rollout: Rollout) -> None:
        _stop_quietly(self.session, rollout)
        self.post_message(self.Stopped(rollout.snapshot()))

    @on(Stopped)
    def _stopped(self, event: Stopped) -> None:
        self.state = "done"
        self._refresh()
        snap = event.snapshot
        saved = f", {len(snap.saved)} episode(s) saved" if snap.strategy != "base" else ""
        self.conversation.note(f"stopped: {snap.actions_dispatched} actions, {snap.interventions} takeovers{saved}. "
                               "esc leaves")

    # ------------------------------------------------------------------------------------ command line
    def action_command_line(self) -> None:
        if self.state in ("running", "stopping", "done"):
            self.query_one(CommandBar).start()

    @on(CommandBar.Run)
    async def _typed(self, event: CommandBar.Run) -> None:
        await self.app.execute(event.text, on_error=self.conversation.error)  # type: ignore[attr-defined]

    # ------------------------------------------------------------------------------------ leaving
    def on_unmount(self) -> None:
        with self._handoff:
            self._closed = True
            rollout = self.rollout
        if rollout is not None and not rollout.finished and self.state != "stopping":
            threading.Thread(target=_stop_quietly, args=(self.session, rollout), name="rollout-leave",
                             daemon=True).start()
