"""VQAService: questions about the live scene, answered by a VLM in a worker, one at a time.

Used by the TUI (`/question`, `/subtask`) and by `robotui ask`. The model loads lazily in its own thread (or
up front with `load()`), reporting each step through `status()` and the `on_status` callback, so "loading…"
is visible instead of a frozen screen. `ask` returns at once with a Future; a second question while one is in
flight raises `VQABusy` at once (no queue of surprise answers later). The answer comes back as a `VQAResult`:
text, labelled points and boxes, timings, model name, or an error message, never an exception.

Camera choice is post-hoc and only when needed: a non-spatial answer needs none; a spatial one is drawn on
the camera the caller asked for, else the only camera, else the one the question or the answer names
("the wrist camera"); otherwise `result.needs_camera` is set and the caller asks the operator, then calls
`draw(result, camera)`.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

import numpy as np

from engine.dataset.language import LanguageRow, event_row
from engine.vqa.answers import ParsedAnswer, parse_answer
from engine.vqa.backend import ModelLoadError, VLMBackend, VLMSettings
from engine.vqa.overlay import Overlay, make_overlay

log = logging.getLogger(__name__)

_CAMERA_WORDS = r"(?:cameras?|cams?|views?|images?)"


class VQAState(StrEnum):
    NOT_LOADED = "not loaded"
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True)
class VQAStatus:
    state: VQAState
    message: str  # one line for the status bar: the loading step, "ready: …", or what went wrong
    model: str
    device: str | None = None
    dtype: str | None = None
    asking: str | None = None  # the question in flight
    asking_since: float | None = None  # time.monotonic() when it was asked

    @property
    def busy(self) -> bool:
        return self.asking is not None


class VQABusy(RuntimeError):
    """A question is already being answered; the new one was not taken."""


@dataclass(frozen=True)
class VQAResult:
    question: str
    model: str
    cameras: tuple[str, ...]  # the frames the model saw, in prompt order
    elapsed_s: float  # from `ask` to the answer, including any wait for the model to load
    load_s: float  # of which: waiting for the model to load
    answer: ParsedAnswer | None = None  # None when there is an error
    error: str | None = None
    camera: str | None = None  # the camera the shapes are drawn on
    overlay: Overlay | None = None
    frames: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def text(self) -> str:
        """What to show: the answer (markup removed), what it points at when it has no words, "(no answer)"
        for an empty one, or the error."""
        if self.error is not None:
            return self.error
        assert self.answer is not None
        if self.answer.text:
            return self.answer.text
        if not self.answer.shapes:
            return "(no answer)"
        kinds = [s.kind for s in self.answer.shapes]
        counts = {k: kinds.count(k) for k in ("box", "point") if k in kinds}
        return ", ".join(f"{n} {k}{'es' if k == 'box' and n > 1 else 's' if n > 1 else ''}" for k, n in counts.items())

    @property
    def spatial(self) -> bool:
        return self.answer is not None and self.answer.spatial

    @property
    def needs_camera(self) -> bool:
        """A spatial answer that names no camera while several were asked about: ask which to draw on."""
        return self.spatial and self.overlay is None

    def language_rows(self) -> list[LanguageRow]:
        """The question and the raw answer as LeRobot `language_events` rows (style `vqa`), for
        `DatasetWriter.add_language_event`. Their camera is the one the answer is drawn on, else the one the
        question or the answer names, else the first camera (LeRobot requires one per `vqa` row)."""
        if self.error is not None or self.answer is None or not self.cameras:
            return []
        camera = self.camera or mentioned_camera(self.question, self.cameras)
        camera = camera or mentioned_camera(self.answer.raw, self.cameras) or self.cameras[0]
        return [
            event_row("user", self.question, style="vqa", camera=camera),
            event_row("assistant", self.answer.raw, style="vqa", camera=camera),
        ]


def mentioned_camera(text: str, cameras: tuple[str, ...] | list[str]) -> str | None:
    """The one camera `text` names as a camera ("wrist camera", "camera 'front'", "observation.images.front");
    None when it names none or several. A bare "front" is not enough: "in front of the mug" is not a camera."""
    found = []
    for name in cameras:
        n = re.escape(name)
        pattern = (
            rf"\b{_CAMERA_WORDS}\s*['\"]?{n}['\"]?(?!\w)|(?<!\w)['\"]?{n}['\"]?\s+{_CAMERA_WORDS}\b"
            rf"|observation\.images\.{n}(?!\w)"
        )
        if re.search(pattern, text, re.IGNORECASE):
            found.append(name)
    return found[0] if len(found) == 1 else None


def subtask_question(task: str) -> str:
    """The question `/subtask` asks: which subtask of the current task is in progress."""
    if not task or not task.strip():
        raise ValueError("no current task: /subtask asks which part of the task is in progress, so start the "
                         "policy on a task first (/action <task>)")
    return (f'The robot is doing the task "{task.strip()}". Which subtask of this task is in progress right '
            'now? Answer with the subtask only, a short imperative phrase such as "grasp the cube".')


class VQAService:
    """One model, one question at a time. Thread-safe; callbacks run on worker threads."""

    def __init__(
        self,
        settings: VLMSettings | None = None,
        *,
        output_dir: Path | None = None,
        on_status: Callable[[VQAStatus], None] | None = None,
    ) -> None:
        self.settings = settings or VLMSettings()
        self.output_dir = output_dir  # overlays go to <output_dir>/vqa/; None keeps them in memory only
        self._backend = VLMBackend(self.settings)
        self._on_status = on_status
        self._lock = threading.Lock()
        self._state = VQAState.NOT_LOADED
        self._message = "not loaded yet (it loads with the first question)"
        self._loaded = threading.Event()
        self._asking: str | None = None
        self._asking_since: float | None = None

    # ----------------------------------------------------------------------------------------- status
    def status(self) -> VQAStatus:
        with self._lock:
            return self._status_locked()

    def _status_locked(self) -> VQAStatus:
        b = self._backend
        return VQAStatus(self._state, self._message, self.settings.model, b.device, b.dtype, self._asking,
                         self._asking_since)

    def _set(self, state: VQAState, message: str) -> None:
        with self._lock:
            self._state, self._message = state, message
            status = self._status_locked()
        self._notify(status)

    def _notify(self, status: VQAStatus) -> None:
        if self._on_status is not None:
            try:
                self._on_status(status)
            except Exception:
                log.exception("VQA status callback failed")

    # ----------------------------------------------------------------------------------------- loading
    def load(self) -> None:
        """Start loading the model in the background (nothing happens if it is loading or loaded; a failed
        load is tried again, e.g. after the operator copied the model over)."""
        with self._lock:
            if self._state in (VQAState.LOADING, VQAState.READY):
                return
            self._state, self._message = VQAState.LOADING, f"loading {self.settings.model}…"
            self._loaded.clear()
            status = self._status_locked()
        self._notify(status)
        threading.Thread(target=self._load, name="vqa-load", daemon=True).start()

    def wait_loaded(self, timeout: float | None = None) -> VQAStatus:
        """Block until a load started by `load` or `ask` has finished (ready or failed)."""
        self._loaded.wait(timeout)
        return self.status()

    def _load(self) -> None:
        t0 = time.perf_counter()
        try:
            self._backend.load(lambda step: self._set(VQAState.LOADING, step))
        except ModelLoadError as e:
            self._set(VQAState.FAILED, str(e))
        except Exception as e:  # an unexpected failure must still end the loading state, with its reason
            log.debug("loading %s failed", self.settings.model, exc_info=True)
            self._set(VQAState.FAILED, f"loading {self.settings.model} failed: {type(e).__name__}: {e}")
        else:
            b = self._backend
            self._set(VQAState.READY, f"ready: {self.settings.model} on {b.device} ({b.dtype}), loaded in "
                                      f"{time.perf_counter() - t0:.1f} s")
        finally:
            self._loaded.set()

    # ----------------------------------------------------------------------------------------- asking
    def ask(
        self, question: str, frames: Mapping[str, np.ndarray], *, camera: str | None = None
    ) -> Future[VQAResult]:
        """Ask about `frames` (camera name -> HxWx3 uint8 RGB, every camera's latest). Returns at once; the
        Future's result is a VQAResult (errors included). `camera` fixes where a spatial answer is drawn.

        Raises VQABusy while another question is in flight, ValueError for an empty question, no frames or
        an unknown `camera`.
        """
        question = question.strip()
        if not question:
            raise ValueError("the question is empty: /question <text>, e.g. /question where is the cube?")
        if not frames:
            raise ValueError("no camera frames to ask about: the robot has no cameras, or none delivered yet")
        if camera is not None and camera not in frames:
            raise ValueError(f"no camera {camera!r}: cameras are {', '.join(frames)}")
        snapshot = {name: np.array(image, copy=True) for name, image in frames.items()}
        with self._lock:
            if self._asking is not None:
                waited = time.monotonic() - (self._asking_since or time.monotonic())
                raise VQABusy(f"busy: still answering {self._asking!r} ({waited:.0f} s so far); ask again when "
                              "its answer is in")
            self._asking, self._asking_since = question, time.monotonic()
            status = self._status_locked()
        self._notify(status)
        future: Future[VQAResult] = Future()
        future.set_running_or_notify_cancel()
        threading.Thread(target=self._answer, args=(question, snapshot, camera, future), name="vqa-ask",
                         daemon=True).start()
        return future

    def ask_subtask(self, task: str, frames: Mapping[str, np.ndarray]) -> Future[VQAResult]:
        """`/subtask` without an argument: which subtask of `task` is in progress."""
        return self.ask(subtask_question(task), frames)

    def _answer(self, question: str, frames: dict[str, np.ndarray], camera: str | None,
                future: Future[VQAResult]) -> None:
        t0 = time.perf_counter()
        base = VQAResult(question, self.settings.model, tuple(frames), 0.0, 0.0, frames=frames)
        try:
            result = self._answer_now(base, camera, t0)
        except Exception as e:  # the future must always complete, and the service must become free again
            log.debug("answering %r failed", question, exc_info=True)
            result = replace(base, error=f"the question could not be answered: {type(e).__name__}: {e}",
                             elapsed_s=time.perf_counter() - t0)
        with self._lock:
            self._asking = self._asking_since = None
            status = self._status_locked()
        self._notify(status)
        future.set_result(result)

    def _answer_now(self, base: VQAResult, camera: str | None, t0: float) -> VQAResult:
        self.load()
        self._loaded.wait()
        load_s = time.perf_counter() - t0
        with self._lock:
            state, message = self._state, self._message
        if state is not VQAState.READY:
            return replace(base, error=message, elapsed_s=time.perf_counter() - t0, load_s=load_s)
        try:
            raw = self._backend.answer(base.question, base.frames)
        except Exception as e:
            log.debug("the model failed on %r", base.question, exc_info=True)
            return replace(base, error=f"the model failed to answer: {type(e).__name__}: {e}",
                           elapsed_s=time.perf_counter() - t0, load_s=load_s)
        result = replace(base, answer=parse_answer(raw), elapsed_s=time.perf_counter() - t0, load_s=load_s)
        if result.spatial:
            chosen = camera or self._obvious_camera(result)
            if chosen is not None:
                result = self.draw(result, chosen)
        return result

    @staticmethod
    def _obvious_camera(result: VQAResult) -> str | None:
        if len(result.cameras) == 1:
            return result.cameras[0]
        assert result.answer is not None
        return mentioned_camera(result.question, result.cameras) or mentioned_camera(
            result.answer.raw, result.cameras
        )

    def draw(self, result: VQAResult, camera: str) -> VQAResult:
        """The result with its shapes drawn on `camera`'s frame (saved under the output folder, if any)."""
        if not result.spatial or result.answer is None:
            raise ValueError("this answer has no points or boxes to draw")
        if camera not in result.frames:
            raise ValueError(f"no camera {camera!r}: the question was asked about {', '.join(result.cameras)}")
        overlay = make_overlay(result.frames[camera], result.answer.shapes, camera, self.output_dir)
        return replace(result, camera=camera, overlay=overlay)
