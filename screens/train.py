"""The Train workflow: training jobs here or on an SSH host, their loss and lr curves and live logs, and the
way home for their checkpoints (fetch, then open in Rollout).

The job list is the launcher's registry, so jobs started by an earlier robotui (or by `robotui jobs`) are
listed too: robotui re-attaches to them. Every launcher call may block (a local `sh`, or `ssh` to a host that
is slow or gone), so each runs in a thread worker that posts a message back and the UI never waits on a host:
the list is polled every couple of seconds (each job posted as soon as its host answered; finished jobs once),
the selected job's log is followed from a byte offset by its own worker (selecting another job stops it), and
start, cancel and fetch are workers of their own. A failure is one line, in a notification and in the detail
pane.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.widgets import Button, ContentSwitcher, DataTable, Footer, Header, Input, Static

from engine.jobs import JobError, JobLauncher, JobRecord, JobSnapshot, plan_training_job
from screens.base import RobotuiScreen
from screens.widgets.command_bar import CommandBar
from screens.widgets.field_form import FormError
from screens.widgets.loss_plot import CurvePlot
from screens.widgets.train_confirm import ConfirmCancel
from screens.widgets.train_form import (
    TrainForm,
    TrainRequest,
    check_dataset,
    field_id,
    field_of,
    parse_form,
    trainer_program,
)
from screens.widgets.train_jobs import JobTable, job_cells, summary
from screens.widgets.train_log import JobLog, LogTail

CURVE_BYTES = 4 * 1024 * 1024
"""The detail view reads this much of the end of a log for its curves (the log view keeps the newest
lines)."""

EMPTY_TEXT = (
    "No training jobs yet.\n\n"
    "n opens the new-job form: train here or on a GPU box over SSH, on a dataset folder or a Hub repo id, "
    "with robotui's trainer or lerobot-train.\n"
    "Jobs keep running when robotui exits; it finds them again when you come back."
)


class TrainScreen(RobotuiScreen):
    COMMAND_CONTEXT: ClassVar[str] = "train"

    BINDINGS: ClassVar[list[BindingType]] = [Binding("slash", "command_line", "Command", show=False)]

    DEFAULT_CSS = """
    TrainScreen #train-views { height: 1fr; }
    TrainScreen #train-list { height: 1fr; }
    TrainScreen #train-jobs { height: auto; max-height: 12; border: round $primary-darken-1; }
    TrainScreen #train-empty { height: 1fr; padding: 1 2; color: $text-muted; }
    TrainScreen #train-detail { height: 1fr; }
    TrainScreen #train-curves { width: 1fr; height: 1fr; }
    TrainScreen #train-loss { height: 1fr; min-height: 8; }
    TrainScreen #train-lr { height: 9; }
    TrainScreen #train-side { width: 1fr; height: 1fr; }
    TrainScreen #train-summary { height: auto; border: round $primary-darken-1; padding: 0 1; }
    TrainScreen #train-log { height: 1fr; border: round $primary-darken-1; }
    TrainScreen #train-command { margin: 0 1; background: $boost; }
    TrainScreen #train-command:focus { background: $primary 25%; }
    """

    poll_interval: ClassVar[float] = 2.0
    refresh_interval: ClassVar[float] = 0.25

    class JobsListed(Message):
        def __init__(self, records: list[JobRecord], warning: str | None) -> None:
            super().__init__()
            self.records = records
            self.warning = warning

    class JobSeen(Message):
        def __init__(self, snapshot: JobSnapshot) -> None:
            super().__init__()
            self.snapshot = snapshot

    class PollDone(Message):
        pass

    class StartStatus(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class StartFailed(Message):
        def __init__(self, error: str, field: str | None) -> None:
            super().__init__()
            self.error = error
            self.field = field

    class JobStarted(Message):
        def __init__(self, record: JobRecord) -> None:
            super().__init__()
            self.record = record

    class Cancelled(Message):
        def __init__(self, record: JobRecord) -> None:
            super().__init__()
            self.record = record

    class Fetched(Message):
        def __init__(self, name: str, path: Path, open_after: bool) -> None:
            super().__init__()
            self.name = name
            self.path = path
            self.open_after = open_after

    class Failed(Message):
        """An operation on a job (or the registry, `name` None) failed: `error` is the line to show."""

        def __init__(self, name: str | None, error: str) -> None:
            super().__init__()
            self.name = name
            self.error = error

    def __init__(self) -> None:
        super().__init__()
        self.launcher = JobLauncher()
        self.records: dict[str, JobRecord] = {}
        self.snapshots: dict[str, JobSnapshot] = {}
        self.fetched: dict[str, Path] = {}
        self.problems: dict[str, str] = {}  # the last failed operation's line, per job
        self.busy: dict[str, str] = {}  # what is being done to a job ("cancelling"...)
        self.selected: str | None = None
        self.tail: LogTail | None = None
        self.starting = False
        self._polling = False
        self._closed = False
        self._fresh: set[str] = set()  # started here and not yet in a registry listing
        self._told: set[str] = set()  # problems already notified (a host stays unreachable for a while)
        self._tail_version = -1
        self._tail_error: str | None = None

    # ------------------------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header()
        with ContentSwitcher(initial="train-list", id="train-views"):
            with Vertical(id="train-list"):
                table = JobTable(id="train-jobs")
                table.border_title = "Training jobs"
                yield table
                yield Static(EMPTY_TEXT, id="train-empty")
                with Horizontal(id="train-detail"):
                    with Vertical(id="train-curves"):
                        yield CurvePlot("loss", color="cyan", id="train-loss")
                        yield CurvePlot("lr", color="magenta", id="train-lr")
                    with Vertical(id="train-side"):
                        yield Static(id="train-summary")
                        yield JobLog(id="train-log")
                bar = CommandBar(self._complete, id="train-command")
                bar.placeholder = (
                    "/ to type a command: /new, /cancel [job], /fetch [job], /open [job] (/help: all)"
                )
                yield bar
            yield TrainForm({}, id="train-new")
        yield Footer()

    def _complete(self, prefix: str) -> list[str]:
        table = getattr(self.app, "table", None)
        return table.completions(prefix, self.COMMAND_CONTEXT) if table is not None else []

    def on_mount(self) -> None:
        self._show_rows()
        self.query_one(JobTable).focus()
        self._poll_now()
        self.set_interval(self.poll_interval, self._poll_now)
        self.set_interval(self.refresh_interval, self._refresh_detail)

    def on_unmount(self) -> None:
        self._closed = True
        self._stop_tail()

    @property
    def form_shown(self) -> bool:
        return self.query_one(ContentSwitcher).current == "train-new"

    # ------------------------------------------------------------------------------------ the job list
    def _poll_now(self) -> None:
        if self._polling or self._closed:
            return
        self._polling = True
        settled = frozenset(
            name for name, snap in self.snapshots.items() if snap.record.state.done and snap.problem is None
        )
        self._poll(settled)

    @work(thread=True, group="train-poll", description="checking the training jobs")
    def _poll(self, settled: frozenset[str]) -> None:
        """The registry, then each job's host in turn; a finished job already seen is not asked again."""
        try:
            registry = self.launcher.registry
            records = registry.records()
            self.post_message(self.JobsListed(records, registry.warning))
            registry.warning = None
            for record in records:
                if self._closed:
                    return
                if record.name in settled and record.state.done:
                    continue
                try:
                    self.post_message(self.JobSeen(self.launcher.snapshot(record.name)))
                except JobError:  # removed from the registry meanwhile: the next listing drops it
                    continue
        except JobError as e:
            self.post_message(self.Failed(None, str(e)))
        finally:
            self.post_message(self.PollDone())

    @on(PollDone)
    def _poll_done(self) -> None:
        self._polling = False

    def _newer(self, record: JobRecord) -> JobRecord:
        """`record` unless what the screen knows is later: a job never goes from ended back to running, so
        a listing or status read before a cancel landed does not undo it."""
        known = self.records.get(record.name)
        return known if known is not None and known.state.done and not record.state.done else record

    @on(JobsListed)
    def _listed(self, event: JobsListed) -> None:
        if event.warning:
            self._tell(event.warning, title="job registry")
        records = {r.name: self._newer(r) for r in event.records}
        for name in self._fresh - records.keys():  # started after this listing was read
            records[name] = self.records[name]
        self._fresh -= {r.name for r in event.records}
        self.records = records
        for name in [n for n in self.snapshots if n not in self.records]:
            del self.snapshots[name]
        if self.selected is not None and self.selected not in self.records:
            self._stop_tail()
            self.selected = None
        self._show_rows()

    @on(JobSeen)
    def _seen(self, event: JobSeen) -> None:
        snap = event.snapshot
        if snap.record.name not in self.records or self._newer(snap.record) is not snap.record:
            return  # dropped, or read before the job's end was known
        self.records[snap.record.name] = snap.record
        self.snapshots[snap.record.name] = snap
        if snap.problem:
            self._tell(f"{snap.record.name}: {snap.problem}", title="job not reachable")
        self._show_rows()

    def _show_rows(self) -> None:
        table = self.query_one(JobTable)
        table.show(
            [(name, job_cells(record, self.snapshots.get(name))) for name, record in self.records.items()]
        )
        has_jobs = bool(self.records)
        table.display = has_jobs
        self.query_one("#train-empty").display = not has_jobs
        self.query_one("#train-detail").display = has_jobs
        if has_jobs and self.selected is None:
            running = [n for n, r in self.records.items() if not r.state.done]
            self._select((running or list(self.records))[-1])
        self._show_summary()

    @on(DataTable.RowHighlighted, "#train-jobs")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.cursor_row != self.query_one(JobTable).cursor_row:
            return  # stale: the cursor has moved on since (rows added, a job selected by the screen)
        if event.row_key.value is not None:
            self._select(str(event.row_key.value), move_cursor=False)

    # ------------------------------------------------------------------------------------ the detail view
    def _select(self, name: str, *, move_cursor: bool = True) -> None:
        if name == self.selected or name not in self.records:
            return
        self._stop_tail()
        self.selected = name
        table = self.query_one(JobTable)
        names = table.names()
        if move_cursor and name in names:
            table.move_cursor(row=names.index(name))
        self.query_one(JobLog).clear()
        for plot in self.query(CurvePlot):
            plot.clear()
        self.tail = LogTail(name, self.records[name].spec.total_steps)
        self._tail_version, self._tail_error = -1, None
        self._follow(self.tail)
        self._show_summary()

    def _stop_tail(self) -> None:
        if self.tail is not None:
            self.tail.stop()
            self.tail = None

    @work(thread=True, group="train-follow", description="following the job's log")
    def _follow(self, tail: LogTail) -> None:
        """The job's log from CURVE_BYTES before its end until the job ends (or the tail is stopped)."""
        try:
            follower = self.launcher.follow(
                tail.name,
                -CURVE_BYTES,
                on_reconnect=lambda why: tail.note(f"connection lost: {why}; reconnecting"),
            )
            if not tail.attach(follower):
                return
            for line in follower:
                tail.feed(line)
        except JobError as e:
            tail.fail(f"{tail.name}: the log cannot be read: {e}")

    def _refresh_detail(self) -> None:
        tail = self.tail
        if tail is None:
            return
        self.query_one(JobLog).pull(tail)
        if tail.version != self._tail_version:
            self._tail_version = tail.version
            self.query_one("#train-loss", CurvePlot).show(*tail.curve("loss"))
            self.query_one("#train-lr", CurvePlot).show(*tail.curve("lr"))
            self._show_summary()
        if tail.error and tail.error != self._tail_error:
            self._tail_error = tail.error
            self.problems[tail.name] = tail.error
            self._tell(tail.error, title="log")
            self._show_summary()

    def _show_summary(self) -> None:
        name = self.selected
        panel = self.query_one("#train-summary", Static)
        if name is None or name not in self.records:
            panel.update("")
            return
        snap = self.snapshots.get(name)
        tail = self.tail if self.tail is not None and self.tail.name == name else None
        progress = tail.progress if tail is not None and tail.progress.step is not None else None
        if progress is None and snap is not None:
            progress = snap.progress
        panel.update(
            summary(
                self.records[name],
                snap,
                progress,
                fetched=self.fetched.get(name),
                doing=self.busy.get(name),
                problem=self.problems.get(name),
            )
        )
        panel.border_title = name

    def _tell(self, text: str, *, title: str, severity: SeverityLevel = "error") -> None:
        """Notify once per distinct problem: a host that stays unreachable is reported when it becomes so."""
        if text in self._told:
            return
        self._told.add(text)
        self._say(text, title=title, severity=severity)

    def _say(self, text: str, *, title: str = "training", severity: SeverityLevel = "information") -> None:
        """A notification; never markup: messages hold [user@]host forms and paths."""
        self.app.notify(
            text, title=title, severity=severity, timeout=12 if severity == "error" else 5, markup=False
        )

    @on(Failed)
    def _failed(self, event: Failed) -> None:
        if event.name is None:
            self._tell(event.error, title="training jobs")
            return
        self.busy.pop(event.name, None)
        self.problems[event.name] = event.error
        self._told.discard(event.error)  # an action the user asked for again deserves an answer again
        self._tell(event.error, title=event.name)
        self._show_summary()

    # ------------------------------------------------------------------------------------ new job
    def action_new_job(self) -> None:
        self.query_one(ContentSwitcher).current = "train-new"
        self.query_one(f"#{field_id('dataset')}").focus()

    @on(Button.Pressed, "#train-back")
    def _back(self) -> None:
        self.query_one(ContentSwitcher).current = "train-list"
        self.query_one(JobTable).focus()

    @on(Button.Pressed, "#train-start")
    def _start_pressed(self) -> None:
        self.action_launch()

    def action_launch(self) -> None:
        if not self.form_shown:
            self.action_new_job()
            return
        if self.starting:
            return
        form = self.query_one(TrainForm)
        try:
            request = parse_form(form.current_values())
        except FormError as e:
            form.show_error(str(e), e.field)
            return
        self.starting = True
        form.show_status(f"starting {request.name} on {request.host or 'this machine'}…")
        self._start(request)

    @work(thread=True, exclusive=True, group="train-start", description="starting the training job")
    def _start(self, request: TrainRequest) -> None:
        try:
            check_dataset(request.dataset)
            spec = plan_training_job(
                request.name,
                request.preset,
                request.hyper,
                request.dataset,
                host=request.host,
                identity=request.identity,
                program=trainer_program(request),
                extra=request.extra,
            )
            record = self.launcher.start(
                spec, on_status=lambda text: self.post_message(self.StartStatus(text))
            )
        except FormError as e:
            self.post_message(self.StartFailed(str(e), e.field))
        except JobError as e:
            self.post_message(self.StartFailed(str(e), field_of(str(e))))
        else:
            self.post_message(self.JobStarted(record))

    @on(StartStatus)
    def _start_status(self, event: StartStatus) -> None:
        self.query_one(TrainForm).show_status(event.text + "…")

    @on(StartFailed)
    def _start_failed(self, event: StartFailed) -> None:
        self.starting = False
        self.query_one(TrainForm).show_error(event.error, event.field)
        self._say(event.error, title="job not started", severity="error")

    @on(JobStarted)
    def _started(self, event: JobStarted) -> None:
        self.starting = False
        record = event.record
        form = self.query_one(TrainForm)
        form.show_status("")
        form.query_one(f"#{field_id('name')}", Input).value = ""  # the next job needs a name of its own
        self.records[record.name] = record
        self._fresh.add(record.name)
        self.query_one(ContentSwitcher).current = "train-list"
        self._show_rows()
        self._select(record.name)
        self._poll_now()  # its first status now, not at the next tick
        self.query_one(JobTable).focus()
        self._say(f"{record.name} started on {record.spec.where} (pid {record.pid})")

    # ------------------------------------------------------------------------------------ job actions
    def _job(self, job: str | None, verb: str) -> str | None:
        """The job an action is for: the one named, else the selected one; None (and why) if there is none."""
        name = job.strip() if job else self.selected
        if name is None:
            self._say(f"no job to {verb}: select one in the list (or start one with n)", severity="warning")
            return None
        if name not in self.records:
            known = ", ".join(self.records) or "none yet"
            self._say(f"no job named {name!r} (jobs: {known})", severity="warning")
            return None
        return name

    def action_cancel_job(self, job: str | None = None) -> None:
        name = self._job(job, "cancel")
        if name is None:
            return
        record = self.records[name]
        if record.state.done:
            self._say(
                f"{name} is not running (it {record.state.value}): nothing to cancel", severity="warning"
            )
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.problems.pop(name, None)
                self.busy[name] = f"cancelling {name}: SIGTERM to its process group…"
                self._show_summary()
                self._cancel(name)

        self.app.push_screen(ConfirmCancel(name, record.spec.where, self.launcher.cancel_grace_s), confirmed)

    @work(thread=True, group="train-action", description="cancelling the job")
    def _cancel(self, name: str) -> None:
        try:
            self.post_message(self.Cancelled(self.launcher.cancel(name)))
        except JobError as e:
            self.post_message(self.Failed(name, f"{name} not cancelled: {e}"))

    @on(Cancelled)
    def _cancelled(self, event: Cancelled) -> None:
        record = event.record
        self.busy.pop(record.name, None)
        self.problems.pop(record.name, None)
        self.records[record.name] = record
        snap = self.snapshots.get(record.name)
        if snap is not None:
            snap.record = record
        self._show_rows()
        self._say(f"{record.name} {record.state.value}")

    def action_fetch(self, job: str | None = None) -> None:
        name = self._job(job, "fetch")
        if name is not None:
            self._start_fetch(name, open_after=False)

    def action_open_in_rollout(self, job: str | None = None) -> None:
        """Open the job's fetched checkpoint in Rollout; a checkpoint not fetched yet is fetched first."""
        name = self._job(job, "open")
        if name is None:
            return
        path = self.fetched.get(name)
        if path is None:
            self._start_fetch(name, open_after=True)
        else:
            self.app.open_rollout(str(path))  # type: ignore[attr-defined]

    def _start_fetch(self, name: str, *, open_after: bool) -> None:
        where = self.records[name].spec.where
        self.problems.pop(name, None)
        self.busy[name] = f"fetching the last checkpoint of {name} from {where}…"
        self._show_summary()
        self._fetch(name, open_after)

    @work(thread=True, group="train-action", description="fetching the checkpoint")
    def _fetch(self, name: str, open_after: bool) -> None:
        try:
            self.post_message(self.Fetched(name, self.launcher.fetch(name), open_after))
        except JobError as e:
            self.post_message(self.Failed(name, f"{name}: checkpoint not fetched: {e}"))

    @on(Fetched)
    def _fetched(self, event: Fetched) -> None:
        self.busy.pop(event.name, None)
        self.problems.pop(event.name, None)
        self.fetched[event.name] = event.path
        self._show_summary()
        self._say(f"{event.name}: checkpoint in {event.path}", title="fetched")
        if event.open_after:
            self.app.open_rollout(str(event.path))  # type: ignore[attr-defined]

    # ------------------------------------------------------------------------------------ command line
    def action_command_line(self) -> None:
        if not self.form_shown:
            self.query_one(CommandBar).start()

    @on(CommandBar.Run)
    async def _typed(self, event: CommandBar.Run) -> None:
        await self.app.execute(event.text)  # type: ignore[attr-defined]
