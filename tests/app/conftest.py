"""App-test setup: Pilot's idle detection measures the UI thread, not the whole process.

Textual's `wait_for_idle` waits until the *process* uses < 5 % CPU. With the simulator's physics and the servo
emulator running on their own threads that never happens, so every `pilot.press`/`pause` ran into its 1 s cap.
What a test means by "idle" is that the app's event loop has finished handling input, which is the CPU time
of the thread running the loop.
"""

from __future__ import annotations

import asyncio
import time

import pytest
import textual.app
import textual.pilot

GRANULARITY = 1 / 50
IDLE_CPU = GRANULARITY / 20.0


async def _wait_for_ui_idle(min_sleep: float = GRANULARITY, max_sleep: float = 1) -> None:
    start = time.monotonic()
    while True:
        cpu = time.thread_time()
        await asyncio.sleep(GRANULARITY)
        busy = time.thread_time() - cpu
        elapsed = time.monotonic() - start
        if elapsed >= max_sleep or (elapsed > min_sleep and busy < IDLE_CPU):
            return


@pytest.fixture(autouse=True)
def _ui_thread_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(textual.app, "wait_for_idle", _wait_for_ui_idle)
    monkeypatch.setattr(textual.pilot, "wait_for_idle", _wait_for_ui_idle)
