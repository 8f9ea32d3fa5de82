"""What every robotui screen shares: the command context it stands for, and worker failures sent to the
app, whose single `Worker.StateChanged` handler turns them into one actionable notification.

Textual posts `Worker.StateChanged` only to the node that started the worker (it does not bubble), so a
screen's `@work` failures would otherwise never reach the app.
"""

from __future__ import annotations

from typing import ClassVar, TypeVar

from textual import on
from textual.screen import ModalScreen, Screen
from textual.worker import Worker, WorkerState

ResultType = TypeVar("ResultType")


def forward_worker_failure(screen: Screen[object], event: Worker.StateChanged) -> None:
    """Re-post a failed worker's state change to the app (workers started by this screen only)."""
    if event.state is WorkerState.ERROR:
        screen.app.post_message(Worker.StateChanged(event.worker, event.state))


class RobotuiScreen(Screen[None]):
    """Base of the workflow screens. `COMMAND_CONTEXT` selects which command-table rows (keys, slash
    commands, palette entries) apply while the screen is on top."""

    COMMAND_CONTEXT: ClassVar[str] = "home"

    @on(Worker.StateChanged)
    def _forward_worker_failure(self, event: Worker.StateChanged) -> None:
        forward_worker_failure(self, event)


class RobotuiModal(ModalScreen[ResultType]):
    """Base of modal dialogs; forwards worker failures like RobotuiScreen."""

    COMMAND_CONTEXT: ClassVar[str] = "home"

    @on(Worker.StateChanged)
    def _forward_worker_failure(self, event: Worker.StateChanged) -> None:
        forward_worker_failure(self, event)
