"""Live camera preview in any truecolor terminal: each cell is `▀` with the top pixel as foreground and the
bottom pixel as background, so a W×H-cell tile shows W×2H pixels (works over SSH and tmux).

The conversion (resize, 4-bit/channel quantisation, a Style cache keyed by the packed fg/bg pair, runs of
equal cells merged into one Segment) runs on a preview thread, never on the UI thread. The thread polls
`camera.latest()` at the preview rate and hands the finished Strips to the widget through a one-slot
mailbox: the newest frame wins, nothing queues, and while the UI has not taken the last frame the thread
does not convert another (so a busy UI lowers the preview rate instead of falling behind). Preview fps is
independent of the camera's fps; both are shown in the border title.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Literal, Protocol

import cv2
import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.app import ComposeResult
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from drivers.cameras.base import CameraStats, Frame

log = logging.getLogger(__name__)

PreviewMode = Literal["halfblock", "kitty", "sixel", "off"]
PREVIEW_MODES: tuple[str, ...] = ("auto", "halfblock", "kitty", "sixel", "off")

UPPER_HALF = "▀"
_BLOCKS = [UPPER_HALF * n for n in range(1025)]


class PreviewSource(Protocol):
    """What the preview needs from a camera (drivers.cameras.base.Camera satisfies it)."""

    name: str
    stats: CameraStats

    @property
    def is_connected(self) -> bool: ...

    def latest(self) -> Frame | None: ...


# ------------------------------------------------------------------------------------- conversion


class HalfBlockConverter:
    """Turns RGB frames into half-block Strips. Holds the Style cache, so keep one per preview: reusing
    Style objects also lets Rich reuse each style's rendered escape codes."""

    def __init__(self, bits: int = 4, max_styles: int = 65536) -> None:
        if not 1 <= bits <= 8:
            raise ValueError("bits per channel must be 1-8")
        self.bits = bits
        self.max_styles = max_styles
        self._styles: dict[int, Style] = {}
        levels = (1 << bits) - 1
        # code -> 0..255 so that full scale maps to 255 (15 -> 255 at 4 bits)
        self._scale = [round(v * 255 / levels) for v in range(levels + 1)]

    @property
    def cached_styles(self) -> int:
        return len(self._styles)

    def _style(self, key: int) -> Style:
        style = self._styles.get(key)
        if style is None:
            if len(self._styles) >= self.max_styles:
                self._styles.clear()
            b = self.bits
            mask = (1 << b) - 1
            top, bottom = key >> (3 * b), key & ((1 << (3 * b)) - 1)
            scale = self._scale
            fg = Color.from_rgb(scale[top >> 2 * b], scale[(top >> b) & mask], scale[top & mask])
            bg = Color.from_rgb(scale[bottom >> 2 * b], scale[(bottom >> b) & mask], scale[bottom & mask])
            style = self._styles[key] = Style.from_color(fg, bg)
        return style

    def quantised_keys(self, image: np.ndarray, cols: int, rows: int) -> np.ndarray:
        """(rows, cols) int array: the packed quantised (top, bottom) colour pair of every cell."""
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 RGB image, got shape {image.shape}")
        height = rows * 2
        if image.shape[0] != height or image.shape[1] != cols:
            image = cv2.resize(image, (cols, height), interpolation=cv2.INTER_AREA)
        b = self.bits
        q = (image >> (8 - b)).astype(np.int64)
        codes = (q[..., 0] << (2 * b)) | (q[..., 1] << b) | q[..., 2]
        return (codes[0::2] << (3 * b)) | codes[1::2]

    def strips(self, image: np.ndarray, cols: int, rows: int) -> list[Strip]:
        """`rows` Strips of `cols` cells showing `image` scaled to cols×(2·rows) pixels."""
        if cols <= 0 or rows <= 0:
            return []
        keys = self.quantised_keys(image, cols, rows)
        # Run starts: column 0 plus every column whose key differs from its left neighbour.
        changes = np.ones((rows, cols), dtype=bool)
        changes[:, 1:] = keys[:, 1:] != keys[:, :-1]
        style = self._style
        blocks = _BLOCKS
        strips = []
        for row_keys, row_changes in zip(keys.tolist(), changes, strict=True):
            starts = np.flatnonzero(row_changes).tolist()
            starts.append(cols)
            segments = [
                Segment(
                    blocks[end - start] if end - start < len(blocks) else UPPER_HALF * (end - start),
                    style(row_keys[start]),
                )
                for start, end in itertools.pairwise(starts)
            ]
            strips.append(Strip(segments, cols))
        return strips


# --------------------------------------------------------------------------------------- the widget


@dataclass(frozen=True)
class _Rendered:
    """What the preview thread hands over: strips for a size, or a reason there is no picture."""

    size: tuple[int, int]
    strips: list[Strip] | None
    index: int | None
    no_signal: str | None
    image: object | None = None  # PIL image in kitty/sixel mode


class _FpsMeter:
    def __init__(self, window: int = 30) -> None:
        self._times: deque[float] = deque(maxlen=window)

    def tick(self, now: float) -> None:
        self._times.append(now)

    def fps(self, now: float, stale_after: float = 2.0) -> float:
        times = self._times
        if len(times) < 2 or now - times[-1] > stale_after:
            return 0.0
        span = times[-1] - times[0]
        return (len(times) - 1) / span if span > 0 else 0.0


class CameraPreview(Widget):
    """One camera tile. Give it a camera (or None until the session connects one)."""

    DEFAULT_CSS = """
    CameraPreview {
        border: round $primary-darken-1;
        border-title-align: left;
        height: 1fr;
        width: 1fr;
    }
    CameraPreview.-no-signal {
        border: round $warning-darken-2;
    }
    CameraPreview > #preview-pixels {
        width: 1fr;
        height: 1fr;
    }
    """

    class FrameReady(Message, bubble=False):
        """The preview thread put a new picture in the mailbox."""

    def __init__(
        self,
        camera: PreviewSource | None,
        *,
        label: str | None = None,
        fps: float = 20.0,
        stale_after: float = 1.0,
        mode: PreviewMode = "halfblock",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._camera = camera
        self._label_given = label is not None
        self.label = label or (camera.name if camera is not None else "camera")
        self.target_fps = fps
        self.stale_after = stale_after
        self.mode: PreviewMode = mode
        self.converter = HalfBlockConverter()
        self._lock = threading.Lock()
        self._mailbox: _Rendered | None = None
        self._pending = False
        self._shown: _Rendered | None = None
        self._cells = (0, 0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._painted = _FpsMeter()
        self._painted_index: int | None = None
        self.frames_painted = 0
        self.frames_converted = 0
        self.convert_seconds = 0.0
        self._still: tuple[np.ndarray, float, str] | None = None  # image, shown until, caption
        self._still_serial = 0

    def show_still(self, image: np.ndarray, seconds: float = 10.0, caption: str = "still") -> None:
        """Show `image` instead of the live picture for `seconds` (a scene question's overlay)."""
        self._still_serial += 1
        self._still = (image, time.perf_counter() + seconds, caption)

    @property
    def still_caption(self) -> str | None:
        still = self._still
        return still[2] if still is not None and time.perf_counter() < still[1] else None

    # --- public state
    @property
    def camera(self) -> PreviewSource | None:
        return self._camera

    @camera.setter
    def camera(self, camera: PreviewSource | None) -> None:
        """Swap the source (the session connects cameras after the screen is up)."""
        self._camera = camera
        if camera is not None and not self._label_given:
            self.label = camera.name
        self._update_title()

    @property
    def frame_index(self) -> int | None:
        """Index of the camera frame on screen now (None while there is no picture)."""
        return self._shown.index if self._shown is not None else None

    @property
    def no_signal(self) -> str | None:
        """Why there is no picture, or None while frames arrive."""
        return self._shown.no_signal if self._shown is not None else "waiting for the first frame"

    @property
    def preview_fps(self) -> float:
        """Distinct frames actually painted per second (not converted, not captured)."""
        return self._painted.fps(time.perf_counter())

    # --- lifecycle
    def compose(self) -> ComposeResult:
        if self.mode in ("kitty", "sixel"):
            yield _pixel_widget(self.mode)

    def on_mount(self) -> None:
        self._update_title()
        self.set_interval(0.5, self._update_title)
        if self.mode != "off":
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=f"preview-{self.label}", daemon=True)
            self._thread.start()

    def on_unmount(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the preview thread (idempotent); called on unmount."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        self._thread = None

    def on_resize(self) -> None:
        self._cells = (self.content_size.width, self.content_size.height)

    # --- preview thread
    def _run(self) -> None:
        next_tick = time.perf_counter()
        last: tuple[tuple[int, int], int | None, str | None] | None = None
        while not self._stop.is_set():
            period = 1.0 / max(self.target_fps, 0.5)
            next_tick += period
            delay = next_tick - time.perf_counter()
            if delay < 0:
                next_tick = time.perf_counter()
                delay = 0.0
            if self._stop.wait(delay):
                break
            if self._pending:
                continue  # the UI has not taken the last picture: do not convert another
            size = self._cells
            camera = self._camera
            frame, reason = self._sample(camera)
            index = frame.index if frame is not None else None
            state = (size, index, reason)
            if state == last or size[0] <= 0 or size[1] <= 0:
                continue
            last = state
            try:
                rendered = self._render(frame, reason, size)
            except Exception:
                log.exception("camera preview '%s': conversion failed", self.label)
                rendered = _Rendered(size, None, None, "preview error (see log)")
            with self._lock:
                self._mailbox = rendered
                self._pending = True
            if not self.post_message(self.FrameReady()):
                with self._lock:  # the widget is closing: nobody will empty the mailbox
                    self._pending = False

    def _sample(self, camera: PreviewSource | None) -> tuple[Frame | None, str | None]:
        still = self._still
        if still is not None:
            if time.perf_counter() < still[1]:
                return Frame(image=still[0], timestamp=time.perf_counter(), index=-self._still_serial), None
            self._still = None
        if camera is None:
            return None, "no camera"
        frame = camera.latest()
        if not camera.is_connected:
            return None, "no signal: camera not connected"
        if frame is None:
            return None, "no signal: waiting for the first frame"
        age = time.perf_counter() - frame.timestamp
        if age > self.stale_after:
            return None, f"no signal: last frame {age:.1f} s ago"
        return frame, None

    def _render(self, frame: Frame | None, reason: str | None, size: tuple[int, int]) -> _Rendered:
        if frame is None:
            return _Rendered(size, None, None, reason)
        start = time.perf_counter()
        if self.mode in ("kitty", "sixel"):
            rendered = _Rendered(size, None, frame.index, None, image=_pil_image(frame.image, size))
        else:
            rendered = _Rendered(size, self.converter.strips(frame.image, *size), frame.index, None)
        self.convert_seconds += time.perf_counter() - start
        self.frames_converted += 1
        return rendered

    # --- UI thread
    def on_camera_preview_frame_ready(self, _: FrameReady) -> None:
        with self._lock:
            rendered, self._mailbox = self._mailbox, None
            self._pending = False
        if rendered is None:
            return
        had_signal = self._shown is not None and self._shown.no_signal is None
        self._shown = rendered
        self.set_class(rendered.no_signal is not None, "-no-signal")
        if rendered.image is not None:
            self.query_one(_PIXEL_WIDGET_ID).image = rendered.image  # type: ignore[attr-defined]
            self._painted.tick(time.perf_counter())
            self.frames_painted += 1
        if had_signal != (rendered.no_signal is None):
            self._update_title()
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width, height = self.content_size.width, self.content_size.height
        shown = self._shown
        if (
            shown is not None
            and shown.strips is not None
            and shown.size == (width, height)
            and y < len(shown.strips)
        ):
            if y == 0 and shown.index != self._painted_index:
                self._painted_index = shown.index
                self._painted.tick(time.perf_counter())
                self.frames_painted += 1
            return shown.strips[y]
        if self.mode in ("kitty", "sixel") and shown is not None and shown.no_signal is None:
            return Strip.blank(width)
        message = "preview off" if self.mode == "off" else self.no_signal or ""
        if y == height // 2 and message:
            text = message[:width].center(width)
            return Strip([Segment(text, Style(dim=True))], width)
        return Strip.blank(width)

    def _update_title(self) -> None:
        camera = self._camera
        source = camera.stats.fps if camera is not None else 0.0
        if self.mode == "off":
            self.border_title = f"{self.label} · source {source:.0f} fps"
        elif self.still_caption is not None:
            self.border_title = f"{self.label} · {self.still_caption}"
        else:
            self.border_title = f"{self.label} · preview {self.preview_fps:.0f} fps · source {source:.0f} fps"


# ------------------------------------------------------------------------------ kitty / sixel (optional)

_PIXEL_WIDGET_ID = "#preview-pixels"


def detect_preview_mode(requested: str) -> PreviewMode:
    """Resolve `--preview` before App.run(): textual-image can only query the terminal before Textual
    owns it. `auto` picks kitty graphics where the terminal has it and half-block otherwise (sixel
    flickers when animated inside Textual, so it is only used when asked for)."""
    if requested not in PREVIEW_MODES:
        raise ValueError(f"--preview must be one of {', '.join(PREVIEW_MODES)}, not {requested!r}")
    if requested in ("halfblock", "off"):
        return requested  # type: ignore[return-value]
    try:
        import textual_image.renderable as renderables
        import textual_image.widget  # noqa: F401  (runs the cell-size query now, while it still can)
    except Exception as e:  # a terminal query can fail in odd ways; the preview must not
        log.warning("image protocols unavailable (%s); using half-block previews", e)
        return "halfblock"
    if requested == "auto":
        return "kitty" if renderables.Image is renderables.TGPImage else "halfblock"
    return requested  # type: ignore[return-value]


def _pixel_widget(mode: str) -> Widget:
    from textual_image.widget import SixelImage, TGPImage

    cls = TGPImage if mode == "kitty" else SixelImage
    return cls(None, id=_PIXEL_WIDGET_ID[1:])


def _pil_image(image: np.ndarray, size: tuple[int, int]) -> object:
    from PIL import Image

    # Enough pixels for a sharp tile without sending full-resolution PNGs every frame.
    cols, rows = size
    scale = min(1.0, (cols * 10) / image.shape[1], (rows * 20) / image.shape[0])
    if scale < 1.0:
        image = cv2.resize(
            image,
            (max(1, int(image.shape[1] * scale)), max(1, int(image.shape[0] * scale))),
            interpolation=cv2.INTER_AREA,
        )
    return Image.fromarray(np.ascontiguousarray(image))
