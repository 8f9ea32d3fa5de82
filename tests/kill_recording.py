"""SIGKILL a real `robotui record --sim` process at a chosen moment of its episode loop, then repair and check
the dataset: the reliability suite's test (a few moments) and `bench/soak.py` (many random ones) share it.

The moments: `start` (connecting, opening the dataset), `episode` (mid-recording), `save` (an episode has just
ended and is being made durable) and `reset` (between episodes, after the save). The promise checked
afterwards: the dataset repairs to a valid one holding every episode the process had reported saved, whole.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from engine.dataset.reader import LeRobotDatasetReader
from engine.dataset.validate import has_errors, repair_and_check
from robotui.cli import main

REPO = Path(__file__).resolve().parents[1]
FPS = 30
EPISODE_S = 1.0
MOMENTS = ("start", "episode", "save", "reset")
_MARKERS = {"start": "recording ", "episode": "● recording", "save": "○ reset", "reset": "✓ saved"}


@dataclass(frozen=True)
class KillResult:
    moment: str
    delay_s: float
    saved_before_kill: int  # episodes the process reported durable before it died
    episodes_after_repair: int
    problems: tuple[str, ...]  # validation errors after repair (must be empty)

    @property
    def ok(self) -> bool:
        return not self.problems and self.episodes_after_repair >= self.saved_before_kill


def kill_recording(root: Path, moment: str, rng: random.Random, *, episode: int = 2) -> KillResult:
    """Record with the sim, SIGKILL at `moment` of episode number `episode` (1-based), repair, check. A
    dataset left with no episode at all (killed while the first was recorded) must take a resumed recording."""
    marker = _MARKERS[moment]
    delay = {"start": rng.uniform(0.0, 0.5), "episode": rng.uniform(0.1, EPISODE_S * 0.9),
             "save": rng.uniform(0.0, 0.25), "reset": rng.uniform(0.0, 0.2)}[moment]
    cmd = [sys.executable, "-m", "robotui", "record", "--sim", "--episodes", "4", "--episode-time", str(EPISODE_S),
           "--reset-time", "0.6", "--task", "pick", "--vcodec", "libx264", "--dataset-root", str(root)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "250"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    saved = 0
    seen = 0
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            saved += line.startswith("✓ saved episode")
            if marker in line and (moment == "start" or line.startswith(marker)):
                seen += 1
                if seen >= (1 if moment == "start" else episode):
                    time.sleep(delay)
                    break
        proc.send_signal(signal.SIGKILL)
        rest, _ = proc.communicate(timeout=30)
        saved += sum(1 for line in rest.splitlines() if line.startswith("✓ saved episode"))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if not root.exists():  # killed before the dataset was created: nothing to lose
        return KillResult(moment, delay, saved, 0, ())
    if saved == 0:
        with contextlib.redirect_stdout(io.StringIO()):  # the bench's stdout is its JSON
            resumed = main(["record", "--sim", "--resume", "--episodes", "1", "--episode-time", str(EPISODE_S),
                            "--reset-time", "0", "--task", "pick", "--dataset-root", str(root)])
        if resumed != 0:
            return KillResult(moment, delay, saved, 0, (f"recording again into the dataset exited {resumed}",))
        saved = 1
    _, problems = repair_and_check(root)
    errors = tuple(str(p) for p in problems if has_errors([p]))
    episodes = LeRobotDatasetReader.open(root).total_episodes if not errors and (root / "meta/info.json").exists() else 0
    if not errors and episodes:
        ds = LeRobotDatasetReader.open(root)
        for index in ds.episode_indices[:saved]:
            length = len(ds.frames(index)["index"])
            if length != round(EPISODE_S * FPS):
                errors += (f"episode {index} has {length} frames, not {round(EPISODE_S * FPS)}",)
    return KillResult(moment, delay, saved, episodes, errors)
