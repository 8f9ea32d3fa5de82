"""Draw an answer's points and boxes, with their labels, on a camera frame and keep it as a PNG.

The drawing is plain Pillow on a copy of the frame (numpy RGB in, numpy RGB out), so the TUI preview, the
saved file and the tests all see the same pixels. Files go to `<output>/vqa/<timestamp>-<camera>.png`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from engine.vqa.answers import Shape

# Saturated colours that stand out on a grey/wooden workspace; shape i uses PALETTE[i % len].
PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 40, 40),
    (40, 220, 40),
    (40, 120, 255),
    (255, 210, 0),
    (255, 0, 255),
    (0, 230, 230),
)
LABEL_TEXT = (255, 255, 255)


@dataclass(frozen=True)
class Overlay:
    camera: str
    image: np.ndarray  # HxWx3 uint8 RGB, the frame with the shapes drawn
    path: Path | None  # the PNG, when saved


def line_width(width: int, height: int) -> int:
    return max(2, round(min(width, height) / 160))


def point_radius(width: int, height: int) -> int:
    return max(3, round(min(width, height) / 60))


def draw_shapes(frame: np.ndarray, shapes: Sequence[Shape]) -> np.ndarray:
    """A copy of `frame` (HxWx3 uint8 RGB) with each box outlined and each point as a filled dot, labelled."""
    image = Image.fromarray(np.ascontiguousarray(frame[..., :3], dtype=np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    w, h = image.size
    width, radius = line_width(w, h), point_radius(w, h)
    font = ImageFont.load_default(size=max(10, min(w, h) // 30))
    for i, shape in enumerate(shapes):
        colour = PALETTE[i % len(PALETTE)]
        coords = shape.to_pixels(w, h)
        if shape.kind == "box":
            x1, y1, x2, y2 = coords
            draw.rectangle((x1, y1, x2, y2), outline=colour, width=width)
            anchor = (x1, y1)
        else:
            x, y = coords
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour, outline=LABEL_TEXT)
            anchor = (x + radius + 2, y - radius)
        if shape.label:
            _label(draw, anchor, shape.label, colour, font, (w, h), above=shape.kind == "box")
    return np.asarray(image)


def _label(
    draw: ImageDraw.ImageDraw,
    anchor: tuple[int, int],
    text: str,
    colour: tuple[int, int, int],
    font: ImageFont.ImageFont | ImageFont.FreeTypeFont,
    size: tuple[int, int],
    *,
    above: bool,
) -> None:
    """The label on a filled tag of the shape's colour: above a box's corner, beside a point, kept on screen."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    tw, th = right - left + 4, bottom - top + 4
    x = min(max(anchor[0], 0), max(size[0] - tw, 0))
    y = anchor[1] - th if above else anchor[1]
    y = min(max(y, 0), max(size[1] - th, 0))
    draw.rectangle((x, y, x + tw, y + th), fill=colour)
    draw.text((x + 2 - left, y + 2 - top), text, fill=LABEL_TEXT, font=font)


def overlay_path(output_dir: Path, camera: str, when: float | None = None) -> Path:
    """`<output_dir>/vqa/<YYYYmmdd-HHMMSS-mmm>-<camera>.png` (milliseconds, so two answers never collide)."""
    when = time.time() if when is None else when
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when)) + f"-{int(when * 1000) % 1000:03d}"
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", camera).strip("_") or "camera"
    return Path(output_dir) / "vqa" / f"{stamp}-{safe}.png"


def make_overlay(frame: np.ndarray, shapes: Sequence[Shape], camera: str, output_dir: Path | None) -> Overlay:
    """Draw the shapes on `camera`'s frame and, with an output folder, save the PNG there."""
    image = draw_shapes(frame, shapes)
    path = None
    if output_dir is not None:
        path = overlay_path(output_dir, camera)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)
    return Overlay(camera, image, path)
