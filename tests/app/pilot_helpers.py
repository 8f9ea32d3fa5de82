"""Shared Pilot helpers for the app tests."""

from __future__ import annotations

from typing import Any

from textual.app import App
from textual.worker import WorkerCancelled, WorkerState


async def settle(pilot: Any, app: App[Any]) -> None:
    """Wait until no worker runs. An exclusive worker replaced by a newer one (home re-checks once the
    session has started) ends cancelled; that is expected."""
    for _ in range(50):
        try:
            await app.workers.wait_for_complete()
        except WorkerCancelled:
            pass
        await pilot.pause()
        if not any(w.state in (WorkerState.PENDING, WorkerState.RUNNING) for w in app.workers):
            return
