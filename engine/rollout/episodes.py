"""An ordered, non-blocking front for the dataset writer, for recording while a policy runs.

During a rollout episodes begin and end at any tick (a takeover starts, a continuous episode rotates, the
operator saves a highlight), often while the previous episode is still being saved. The control loop only
appends operations here; one feeder thread applies them to the writer in order (begin, frames, save,
discard), so the loop never waits on a save, and a burst of frames (a highlight's ring buffer) is paced to
what the video encoders can take instead of overflowing them.

Before an episode begins, frames can go to a ring buffer (bounded in frames and memory): `begin(..., ring=True)`
starts the episode with the last seconds that were buffered.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.dataset.writer import DatasetWriter, EpisodeRefused
from engine.recorder import SavedEpisode

log = logging.getLogger(__name__)

Frame = Mapping[str, Any]


@dataclass(frozen=True)
class _Op:
    kind: str  # begin | frame | save | discard | finalize
    payload: Any = None


class EpisodeFeed:
    def __init__(self, writer: DatasetWriter, *, ring_frames: int = 0, max_backlog_frames: int = 600) -> None:
        self.writer = writer
        self.ring: deque[Frame] | None = deque(maxlen=ring_frames) if ring_frames > 0 else None
        self.max_backlog = max(max_backlog_frames, ring_frames + 2 * writer.fps)
        self._ops: deque[_Op] = deque()
        self._cond = threading.Condition()
        self._recording = False
        self._frames = 0  # frames put into the episode in progress (control side)
        self._saved: list[SavedEpisode] = []
        self._saving = False
        self._broken = False  # the episode in progress failed in the writer: drop its frames until the next begin
        self.error: str | None = None
        self.message: str | None = None
        self._finalized = threading.Event()
        self._thread = threading.Thread(target=self._run, name="episode-feed", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------------------------ control side
    @property
    def recording(self) -> bool:
        return self._recording

    @property
    def episode_frames(self) -> int:
        return self._frames

    @property
    def saved(self) -> tuple[SavedEpisode, ...]:
        with self._cond:
            return tuple(self._saved)

    @property
    def saving(self) -> bool:
        return self._saving

    @property
    def backlog(self) -> int:
        return len(self._ops)

    def begin(self, task: str, *, ring: bool = False) -> None:
        """Start an episode; with `ring`, it starts with the buffered frames."""
        if self._recording:
            raise RuntimeError("an episode is already being recorded")
        buffered = list(self.ring) if ring and self.ring is not None else []
        if self.ring is not None:
            self.ring.clear()
        with self._cond:
            self._ops.append(_Op("begin", task))
            self._ops.extend(_Op("frame", f) for f in buffered)
            self._recording = True
            self._frames = len(buffered)
            self._cond.notify_all()

    def put(self, frame: Frame) -> None:
        """A frame for the episode in progress, or for the ring buffer when none is."""
        if not self._recording:
            if self.ring is not None:
                self.ring.append(frame)
            return
        with self._cond:
            if len(self._ops) >= self.max_backlog:
                self._ops.append(_Op("discard"))
                self._recording = False
                self.message = (f"episode dropped: the dataset writer fell {len(self._ops)} frames behind "
                                "(disk or CPU too slow); lower the camera resolution or fps")
                log.warning(self.message)
            else:
                self._ops.append(_Op("frame", frame))
                self._frames += 1
            self._cond.notify_all()

    def save(self) -> bool:
        """End the episode in progress and save it in the background; False when there was none."""
        return self._end("save")

    def discard(self) -> bool:
        return self._end("discard")

    def _end(self, kind: str) -> bool:
        if not self._recording:
            return False
        with self._cond:
            self._ops.append(_Op(kind if self._frames else "discard"))
            self._recording = False
            self._frames = 0
            self._cond.notify_all()
        return True

    def close(self, timeout: float = 120.0) -> None:
        """Save the episode in progress, apply everything queued, finalize the dataset (blocks)."""
        self.save()
        with self._cond:
            self._ops.append(_Op("finalize"))
            self._cond.notify_all()
        if not self._finalized.wait(timeout):
            log.error("the dataset was not finalized within %.0f s", timeout)

    # ------------------------------------------------------------------------------------ feeder thread
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._ops:
                    self._cond.wait()
                op = self._ops.popleft()
            try:
                if op.kind == "finalize":
                    self._finalize()
                    return
                self._apply(op)
            except Exception as e:
                self.error = f"recording failed: {e}"
                log.exception("recording failed")
                self._drop_episode()

    def _apply(self, op: _Op) -> None:
        writer = self.writer
        if op.kind == "begin":
            self._broken = False
            writer.begin_episode(op.payload)
        elif op.kind == "frame":
            if self._broken or not writer.recording:
                return
            self._pace()
            try:
                writer.add_frame(op.payload)
            except ValueError as e:
                self.message = f"episode dropped: {e}"
                self._drop_episode()
        elif op.kind == "save":
            if self._broken or not writer.recording:
                return
            self._saving = True
            try:
                info = writer.save_episode()
                with self._cond:
                    self._saved.append(
                        SavedEpisode(info.episode_index, info.length, info.duration_s, info.save_latency_s)
                    )
                log.info("episode %d saved: %d frames", info.episode_index, info.length)
            except EpisodeRefused as e:
                self.message = f"episode not saved: {e}"
                log.warning(self.message)
            finally:
                self._saving = False
        elif op.kind == "discard":
            writer.discard_episode()

    def _pace(self) -> None:
        """Hold a burst back while any camera's encoder queue is nearly full (never true at live rates)."""
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            if all(c.queue_depth < c.queue_cap - 2 for c in self.writer.camera_status()):
                return
            time.sleep(0.005)

    def _drop_episode(self) -> None:
        self._broken = True
        try:
            self.writer.discard_episode()
        except Exception:
            log.exception("discarding the broken episode failed")

    def _finalize(self) -> None:
        try:
            if self.writer.recording:
                self.writer.discard_episode()
            self.writer.finalize()
        except Exception as e:
            self.error = self.error or f"finalizing the dataset failed: {e}"
            log.exception("finalizing the dataset failed")
        finally:
            self._finalized.set()
