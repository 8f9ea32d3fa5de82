"""Overlays: the drawn pixels are where the coordinates say, on a copy; the PNG is saved where documented."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from engine.vqa.answers import Shape, parse_answer
from engine.vqa.overlay import PALETTE, draw_shapes, line_width, make_overlay, point_radius

GREY = (90, 90, 90)
W, H = 320, 240


def grey_frame() -> np.ndarray:
    return np.full((H, W, 3), GREY, np.uint8)


def colour(image: np.ndarray, x: int, y: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in image[y, x])


def test_box_edges_land_on_the_coordinates() -> None:
    frame = grey_frame()
    box = Shape("box", (0.25, 0.5, 0.75, 0.9), "cube")  # x 80..240, y 120..216
    image = draw_shapes(frame, [box])
    x1, y1, x2, y2 = box.to_pixels(W, H)
    assert (x1, y1, x2, y2) == (80, 120, 240, 216)
    red = PALETTE[0]
    mid_x, mid_y = (x1 + x2) // 2, (y1 + y2) // 2
    assert colour(image, x1, mid_y) == red  # left edge
    assert colour(image, x2, mid_y) == red  # right edge
    assert colour(image, mid_x, y2) == red  # bottom edge
    assert colour(image, x1 + 5, y1) == red  # top edge, next to the corner (the label sits above it)
    width = line_width(W, H)
    assert colour(image, x1 - 2, mid_y) == GREY  # just outside
    assert colour(image, x1 + width + 1, mid_y) == GREY  # just inside the outline
    assert colour(image, mid_x, mid_y) == GREY  # the inside is not filled
    label_area = image[y1 - 12 : y1, x1 : x1 + 20]
    assert (label_area == red).all(axis=-1).any() and (label_area.min(axis=-1) > 200).any()  # tag, light text
    assert colour(frame, x1, mid_y) == GREY  # the camera frame itself is untouched


def test_points_land_on_the_coordinates_in_their_own_colours() -> None:
    parsed = parse_answer('[{"point_2d": [100, 200], "label": "a"}, {"point_2d": [900, 800], "label": "b"}]')
    image = draw_shapes(grey_frame(), parsed.shapes)
    r = point_radius(W, H)
    (ax, ay), (bx, by) = (s.to_pixels(W, H) for s in parsed.shapes)
    assert (ax, ay, bx, by) == (32, 48, 288, 192)
    assert colour(image, ax, ay) == PALETTE[0]
    assert colour(image, bx, by) == PALETTE[1]
    assert colour(image, ax - r + 2, ay) == PALETTE[0]
    assert colour(image, ax - r - 3, ay) == GREY
    assert colour(image, ax, ay + r + 3) == GREY


def test_pixel_coordinates_and_a_paligemma_box() -> None:
    parsed = parse_answer("<loc0512><loc0256><loc1023><loc0768> mug")  # y1 x1 y2 x2
    image = draw_shapes(grey_frame(), parsed.shapes)
    x1, y1, x2, y2 = parsed.shapes[0].to_pixels(W, H)
    assert (x1, y1, x2, y2) == (80, 120, 240, 239)  # 1023/1024 of the height: the last row
    assert colour(image, x2, (y1 + y2) // 2) == PALETTE[0]
    shapes = [Shape("point", (300.0, 20.0), pixels=True)]
    assert colour(draw_shapes(grey_frame(), shapes), 300, 20) == PALETTE[0]


def test_overlay_png_is_saved_under_vqa_with_time_and_camera(tmp_path: Path) -> None:
    overlay = make_overlay(grey_frame(), [Shape("point", (0.5, 0.5), "x")], "wrist cam", tmp_path)
    assert overlay.path is not None and overlay.path.parent == tmp_path / "vqa"
    assert re.fullmatch(r"\d{8}-\d{6}-\d{3}-wrist_cam\.png", overlay.path.name)
    saved = np.asarray(Image.open(overlay.path).convert("RGB"))
    assert np.array_equal(saved, overlay.image)
    assert make_overlay(grey_frame(), [], "front", None).path is None
