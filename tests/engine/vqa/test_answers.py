"""Answer parsing: every grounding format, label orders, units, and malformed or truncated output."""

from __future__ import annotations

import random
import re

import pytest

from engine.vqa.answers import Shape, parse_answer

P = "point"
B = "box"

# (answer, format, [(kind, coords, label, pixels)], text)
TABLE = [
    # PaliGemma: y x / y1 x1 y2 x2, loc / 1024; label after (one per ';' segment) or label first.
    ("<loc0256><loc0512><loc0768><loc0896> red cube ; <loc0128><loc0064> mug", "paligemma",
     [(B, (0.5, 0.25, 0.875, 0.75), "red cube", False), (P, (0.0625, 0.125), "mug", False)], "red cube, mug"),
    ("green box <loc0162><loc0759>", "paligemma", [(P, (759 / 1024, 162 / 1024), "green box", False)], "green box"),
    ("<loc0768><loc0896><loc0256><loc0512> cube", "paligemma",  # corners given the wrong way round
     [(B, (0.5, 0.25, 0.875, 0.75), "cube", False)], "cube"),
    ("The cube is here <loc0512><loc0256>.", "paligemma", [(P, (0.25, 0.5), "", False)], "The cube is here"),
    ("<loc0000><loc0000><loc1023><loc1023> table", "paligemma",
     [(B, (0.0, 0.0, 1023 / 1024, 1023 / 1024), "table", False)], "table"),
    ("<loc0100><loc0100><loc0200><loc0200><loc0300><loc0300><loc0400><loc0400> cubes", "paligemma",
     [(B, (100 / 1024, 100 / 1024, 200 / 1024, 200 / 1024), "cubes", False),
      (B, (300 / 1024, 300 / 1024, 400 / 1024, 400 / 1024), "cubes", False)], "cubes"),
    ("<seg012><loc0512><loc0512> cube", "paligemma", [(P, (0.5, 0.5), "cube", False)], "cube"),
    # Qwen-style JSON: 0-1000 unless > 1000 or "pixels"; fractions when all <= 1 with a decimal.
    ('```json\n[{"bbox_2d": [100, 200, 300, 400], "label": "cube"}, {"point_2d": [500, 250], "label": "mug"}]\n```',
     "qwen-json", [(B, (0.1, 0.2, 0.3, 0.4), "cube", False), (P, (0.5, 0.25), "mug", False)], "cube, mug"),
    ('The cube: {"bbox_2d": [10, 20, 1200, 40], "label": "cube"}', "qwen-json",
     [(B, (10.0, 20.0, 1200.0, 40.0), "cube", True)], "The cube:"),
    ('In pixels: {"point_2d": [50, 25], "label": "tip"}', "qwen-json", [(P, (50.0, 25.0), "tip", True)],
     "In pixels:"),
    ('{"point_2d": [0.5, 0.25]}', "qwen-json", [(P, (0.5, 0.25), "", False)], "1 point"),
    ('{"detections": [{"label": "cube", "bbox_2d": [400, 300, 200, 100]}]}', "qwen-json",
     [(B, (0.2, 0.1, 0.4, 0.3), "cube", False)], "cube"),
    # truncated by the token budget: the complete object survives, the cut one is dropped
    ('[{"bbox_2d": [100, 200, 300, 400], "label": "cube"}, {"point_2d": [500, 2', "qwen-json",
     [(B, (0.1, 0.2, 0.3, 0.4), "cube", False)], "cube"),
    # Molmo: percent of the image, label from the text, else alt.
    ('<point x="61.5" y="40" alt="cube">the cube</point>', "molmo", [(P, (0.615, 0.4), "the cube", False)],
     "the cube"),
    ('There: <points x1="10" y1="20" x2="30" y2="40" alt="cubes"></points>', "molmo",
     [(P, (0.1, 0.2), "cubes", False), (P, (0.3, 0.4), "cubes", False)], "There:"),
    ('<point x="25" y="75" alt="mug">mug', "molmo", [(P, (0.25, 0.75), "mug", False)], "mug"),  # unclosed
]

MALFORMED = [
    "", "   ", "just words", "{", "[", "<loc", "<loc0100>", "<loc0100><loc0200><loc0300>",  # odd loc count
    "<loc9999><loc0001>", "bbox_2d", '{"bbox_2d": "x"}', '{"bbox_2d": [1, 2, 3]}', '{"point_2d": [true, 2]}',
    '<point x="a" y="b">q</point>', '<point x="10" y="2', '<point x="150" y="20">off the image</point>',
    "<point>", "```json\n", "Assistant: Assistant: <end_of_utterance>", "<points x1='5'>", "\x00\ufffd",
]


@pytest.mark.parametrize(("answer", "fmt", "shapes", "text"), TABLE, ids=[str(i) for i in range(len(TABLE))])
def test_parsing_table(answer: str, fmt: str, shapes: list[tuple], text: str) -> None:
    parsed = parse_answer(answer)
    assert parsed.format == fmt
    assert parsed.raw == answer
    assert len(parsed.shapes) == len(shapes)
    for got, (kind, coords, label, pixels) in zip(parsed.shapes, shapes, strict=True):
        assert (got.kind, got.label, got.pixels) == (kind, label, pixels)
        assert got.coords == pytest.approx(coords)
    if text == "1 point":  # no words at all: the caller describes the shapes (VQAResult.text)
        assert parsed.text == ""
    else:
        assert parsed.text == text
    assert parsed.spatial


@pytest.mark.parametrize("answer", MALFORMED)
def test_malformed_answers_are_plain_text(answer: str) -> None:
    parsed = parse_answer(answer)
    assert parsed.shapes == ()
    assert not parsed.spatial and parsed.format is None
    assert parsed.raw == answer and isinstance(parsed.text, str)
    assert not re.search(r"<loc\d{4}>", parsed.text)  # stray location tokens are not shown to people


def test_none_and_non_strings_do_not_crash() -> None:
    assert parse_answer(None).text == ""  # type: ignore[arg-type]
    assert parse_answer(12).shapes == ()  # type: ignore[arg-type]


def test_garbage_made_of_format_fragments_never_raises() -> None:
    fragments = ['<loc0512>', '<loc', '>', '{"bbox_2d": [', '1', '2.5', ',', ']', '}', '"label": "x"',
                 '<point x="5" y="6">', '</point>', '<points x1="1"', 'y1="2">', ';', '```json', ' ', 'é', '[']
    rng = random.Random(7)
    for _ in range(2000):
        answer = "".join(rng.choice(fragments) for _ in range(rng.randint(0, 14)))
        parsed = parse_answer(answer)
        for shape in parsed.shapes:
            assert shape.kind in ("point", "box")
            assert len(shape.coords) == (2 if shape.kind == "point" else 4)
            px = shape.to_pixels(64, 48)
            assert all(0 <= v < (64 if i % 2 == 0 else 48) for i, v in enumerate(px))


def test_to_pixels_scales_and_clamps() -> None:
    assert Shape("point", (0.5, 0.25)).to_pixels(200, 100) == (100, 25)
    assert Shape("box", (0.0, 0.0, 1.0, 1.0)).to_pixels(200, 100) == (0, 0, 199, 99)
    assert Shape("point", (250.0, 30.0), pixels=True).to_pixels(200, 100) == (199, 30)
    assert Shape("point", (-5.0, 30.0), pixels=True).to_pixels(200, 100) == (0, 30)
