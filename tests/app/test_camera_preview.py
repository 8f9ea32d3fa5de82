"""Camera preview: half-block conversion puts each pixel pair in the right cell, and the widget shows a
camera's newest frames (converted off the UI thread) and a no-signal state when the camera stops."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from rich.segment import Segment
from textual.app import App, ComposeResult

from drivers.cameras.base import Camera
from screens.widgets.camera_preview import UPPER_HALF, CameraPreview, HalfBlockConverter, detect_preview_mode


def rgb(segment: Segment) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(foreground, background) of a segment as RGB triplets."""
    style = segment.style
    assert style is not None and style.color is not None and style.bgcolor is not None
    return tuple(style.color.get_truecolor()), tuple(style.bgcolor.get_truecolor())  # type: ignore[return-value]


def cells(strip_segments: list[Segment]) -> list[tuple[tuple[int, int, int], tuple[int, int, int]]]:
    """One (fg, bg) per cell, expanding merged runs."""
    out = []
    for segment in strip_segments:
        assert set(segment.text) == {UPPER_HALF}
        out.extend([rgb(segment)] * len(segment.text))
    return out


# Colours on the 4-bit grid (multiples of 17) survive quantisation exactly.
RED, GREEN, BLUE, WHITE, BLACK, TEAL = (
    (255, 0, 0),
    (0, 255, 0),
    (0, 0, 255),
    (255, 255, 255),
    (0, 0, 0),
    (34, 136, 119),
)


def test_top_pixel_is_foreground_and_bottom_pixel_is_background() -> None:
    image = np.array(
        [
            [RED, GREEN, TEAL],  # row 0: tops of cell row 0
            [BLUE, WHITE, BLACK],  # row 1: bottoms of cell row 0
            [WHITE, BLACK, RED],  # row 2: tops of cell row 1
            [TEAL, RED, GREEN],  # row 3: bottoms of cell row 1
        ],
        dtype=np.uint8,
    )
    strips = HalfBlockConverter().strips(image, cols=3, rows=2)
    assert len(strips) == 2
    assert [strip.cell_length for strip in strips] == [3, 3]
    assert cells(list(strips[0])) == [(RED, BLUE), (GREEN, WHITE), (TEAL, BLACK)]
    assert cells(list(strips[1])) == [(WHITE, TEAL), (BLACK, RED), (RED, GREEN)]


def test_equal_cells_are_merged_into_one_segment_with_one_cached_style() -> None:
    image = np.zeros((2, 6, 3), dtype=np.uint8)
    image[0, :] = RED
    image[1, :4] = BLUE
    image[1, 4:] = GREEN
    converter = HalfBlockConverter()
    (strip,) = converter.strips(image, cols=6, rows=1)
    segments = list(strip)
    assert [s.text for s in segments] == [UPPER_HALF * 4, UPPER_HALF * 2]
    assert [rgb(s) for s in segments] == [(RED, BLUE), (RED, GREEN)]
    (again,) = converter.strips(image, cols=6, rows=1)
    assert next(iter(again)).style is segments[0].style  # the Style object is reused, not rebuilt
    assert converter.cached_styles == 2


def test_colours_are_quantised_to_4_bits_per_channel() -> None:
    image = np.array([[[200, 100, 50]], [[15, 16, 255]]], dtype=np.uint8)
    (strip,) = HalfBlockConverter().strips(image, cols=1, rows=1)
    fg, bg = rgb(next(iter(strip)))
    assert fg == (204, 102, 51)  # 200>>4=12 -> 12*17, 100>>4=6 -> 102, 50>>4=3 -> 51
    assert bg == (0, 17, 255)


def test_a_large_frame_is_scaled_to_the_tile() -> None:
    image = np.zeros((480, 640, 3), dtype=np.uint8)
    image[:240] = RED  # top half red, bottom half blue, left..right
    image[240:] = BLUE
    strips = HalfBlockConverter().strips(image, cols=8, rows=3)  # 8x6 pixels: rows 0-2 red, 3-5 blue
    assert [cells(list(s))[0] for s in strips] == [(RED, RED), (RED, BLUE), (BLUE, BLUE)]
    assert all(s.cell_length == 8 for s in strips)
    assert HalfBlockConverter().strips(image, cols=0, rows=3) == []
    with pytest.raises(ValueError, match="HxWx3"):
        HalfBlockConverter().strips(np.zeros((4, 4), dtype=np.uint8), 2, 2)


def test_preview_mode_resolution_without_a_terminal() -> None:
    assert detect_preview_mode("halfblock") == "halfblock"
    assert detect_preview_mode("off") == "off"
    assert detect_preview_mode("auto") == "halfblock"  # no tty in tests: never kitty
    with pytest.raises(ValueError, match="--preview must be one of"):
        detect_preview_mode("ascii")


# ------------------------------------------------------------------------------------------ the widget


class GeneratorCamera(Camera):
    """A real Camera (reader thread, stats, staleness) whose frames come from a generator."""

    def __init__(self, name: str, frames: Callable[[], Iterator[np.ndarray]], fps: float = 60.0) -> None:
        super().__init__(name, width=16, height=12, fps=fps)
        self._make = frames
        self._frames: Iterator[np.ndarray] | None = None
        self.paused = threading.Event()

    def _open(self) -> None:
        self._frames = self._make()

    def _grab(self) -> np.ndarray | None:
        time.sleep(1.0 / self.fps)
        while self.paused.is_set() and not self._stop.is_set():
            time.sleep(0.01)
        assert self._frames is not None
        return next(self._frames)

    def _close(self) -> None:
        self._frames = None


def solid_frames() -> Iterator[np.ndarray]:
    """Frame i is one solid colour on the 4-bit grid, so the painted cell tells which frame is shown."""
    i = 0
    while True:
        frame = np.empty((12, 16, 3), dtype=np.uint8)
        frame[:] = ((i * 17) % 256, 136, 255 - (i * 17) % 256)
        yield frame
        i += 1


class PreviewApp(App[None]):
    def __init__(self, camera: Camera | None) -> None:
        super().__init__()
        self.camera = camera

    def compose(self) -> ComposeResult:
        yield CameraPreview(self.camera, fps=30, stale_after=1.0)


async def wait_until(pilot, condition: Callable[[], bool], timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await pilot.pause(0.05)


def painted_colour(app: App[None], preview: CameraPreview) -> tuple[int, int, int]:
    """The foreground colour of the preview's first content cell as actually composed on screen."""
    region = preview.content_region
    strip = app.screen._compositor.render_strips()[region.y]
    x = 0
    for segment in strip:
        if x + len(segment.text) > region.x:
            assert segment.text[region.x - x] == UPPER_HALF
            return rgb(segment)[0]
        x += len(segment.text)
    raise AssertionError("preview cell not found")


async def test_preview_shows_the_newest_frames_and_then_no_signal() -> None:
    camera = GeneratorCamera("front", solid_frames)
    camera.connect()
    app = PreviewApp(camera)
    try:
        async with app.run_test(size=(40, 12)) as pilot:
            preview = app.query_one(CameraPreview)
            await wait_until(pilot, lambda: preview.frame_index is not None)
            first = preview.frame_index
            assert first is not None
            await wait_until(pilot, lambda: (preview.frame_index or 0) > first + 3)
            assert preview.no_signal is None
            assert preview.frames_painted >= 2
            # what is on screen is the frame the widget says it shows (the camera moves on meanwhile)
            camera.paused.set()
            await pilot.pause(0.15)  # let a frame grabbed just before the pause reach the screen
            shown = preview.frame_index
            assert shown is not None
            await pilot.pause(0.05)
            r = (shown * 17) % 256
            assert painted_colour(app, preview) == (r, 136, 255 - r)
            await wait_until(
                pilot,
                lambda: (
                    preview.preview_fps > 0
                    and preview.border_title is not None
                    and "preview" in str(preview.border_title)
                ),
            )
            assert str(preview.border_title).startswith("front · preview ")
            assert "source" in str(preview.border_title)
            # the camera stalls: after stale_after the tile says so instead of freezing on the last frame
            await wait_until(pilot, lambda: preview.no_signal is not None)
            assert "no signal" in str(preview.no_signal)
            assert preview.has_class("-no-signal")
            camera.paused.clear()
            await wait_until(pilot, lambda: preview.no_signal is None)
            camera.disconnect()
            await wait_until(pilot, lambda: preview.no_signal == "no signal: camera not connected")
        assert not [t for t in threading.enumerate() if t.name.startswith("preview-")]
    finally:
        camera.disconnect()


async def test_a_preview_without_a_camera_says_so_and_accepts_one_later() -> None:
    app = PreviewApp(None)
    async with app.run_test(size=(40, 12)) as pilot:
        preview = app.query_one(CameraPreview)
        await wait_until(pilot, lambda: preview.no_signal == "no camera")
        camera = GeneratorCamera("wrist", solid_frames)
        camera.connect()
        try:
            preview.camera = camera
            await wait_until(pilot, lambda: preview.frame_index is not None)
            assert str(preview.border_title).startswith("wrist · ")
        finally:
            camera.disconnect()
