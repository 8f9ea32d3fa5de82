"""Turn a VLM's answer into text plus labelled points and boxes, whatever grounding format the model speaks.

Formats understood (several models, several conventions; an answer may be truncated by the token budget, so
each one is parsed leniently and a malformed part is skipped, never raised):

- PaliGemma `<locXXXX>` tokens, 0-1023 over the image: two in a row are a point (y x), four a box
  (y1 x1 y2 x2). The label is the text after the group ("<loc..>x4 red cube ; <loc..>x4 mug"), or before it
  when the answer puts labels first ("green box <loc0162><loc0759>"). Coordinates are loc / 1024.
- Qwen-style JSON, fenced or bare, one object or a list: `{"bbox_2d": [x1, y1, x2, y2], "label": ...}`,
  `{"point_2d": [x, y], "label": ...}`. Units rule: 0-1000 normalised (Qwen2.5-VL's grounding data and
  LeRobot's VQA annotations) unless a value exceeds 1000 or the answer says "pixel(s)", then pixels of the
  camera frame; if every value is within 0-1 and one has a fraction, they are fractions of the image.
- Molmo `<point x="61.5" y="40.2" alt="cube">cube</point>` and `<points x1=".." y1=".." x2=".." y2=".." ...>`,
  in percent of the image; the label is the element text, else `alt`.

Shapes keep fractions of the image (0-1, x right, y down) unless `pixels` is set; `to_pixels` maps them onto
whichever camera frame the overlay is drawn on.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

ShapeKind = Literal["point", "box"]

_LOC = re.compile(r"<loc(\d{1,4})>")
_LOC_GROUP = re.compile(r"(?:<loc\d{1,4}>\s*)+")
_SEG = re.compile(r"<seg\d{1,3}>")
_MOLMO = re.compile(r"<(points?)\b([^<>]*)(?:>(.*?)(?:</points?>|$)|$)", re.IGNORECASE | re.DOTALL)
_ATTR = re.compile(r"([A-Za-z_][\w-]*)\s*=\s*[\"']([^\"']*)[\"']")
_FENCE = re.compile(r"```(?:json)?\s*(.*?)(?:```|$)", re.DOTALL)
_JSON_KEY = re.compile(r"\"(bbox_2d|point_2d)\"\s*:\s*\[([^\[\]]*)\]")
_LABEL_KEY = re.compile(r"\"label\"\s*:\s*\"((?:[^\"\\]|\\.)*)\"")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_PIXEL_WORD = re.compile(r"\bpixels?\b|\bpx\b", re.IGNORECASE)


@dataclass(frozen=True)
class Shape:
    """A point `(x, y)` or a box `(x1, y1, x2, y2)` with its label; fractions of the image unless `pixels`."""

    kind: ShapeKind
    coords: tuple[float, ...]
    label: str = ""
    pixels: bool = False

    def to_pixels(self, width: int, height: int) -> tuple[int, ...]:
        """Integer pixel coordinates on a `width` x `height` frame, clamped inside it."""
        out = []
        for i, value in enumerate(self.coords):
            size = width if i % 2 == 0 else height
            px = value if self.pixels else value * size
            out.append(round(min(max(px, 0.0), size - 1)))
        return tuple(out)


@dataclass(frozen=True)
class ParsedAnswer:
    raw: str  # the model's answer as decoded
    text: str  # the answer for people: coordinate markup removed, labels kept
    shapes: tuple[Shape, ...]
    format: str | None  # "paligemma", "qwen-json", "molmo" or None (plain text)

    @property
    def spatial(self) -> bool:
        return bool(self.shapes)


def parse_answer(raw: str | None) -> ParsedAnswer:
    """Text and shapes from an answer in any supported format; plain text when none matches."""
    raw = raw if isinstance(raw, str) else ""
    for name, parser in (("paligemma", _parse_locs), ("molmo", _parse_molmo), ("qwen-json", _parse_json)):
        parsed = parser(raw)
        if parsed is not None:
            shapes, text = parsed
            if shapes:
                text = _tidy(text) or ", ".join(dict.fromkeys(s.label for s in shapes if s.label))
                return ParsedAnswer(raw, text, tuple(shapes), name)
    return ParsedAnswer(raw, _tidy(_SEG.sub("", _LOC.sub("", raw))), (), None)


def _tidy(text: str) -> str:
    text = re.sub(r"\s*;\s*(?=;|$)", "", text)  # separators left behind by removed groups
    return re.sub(r"\s+", " ", text).strip(" ;,\n\t")


# ------------------------------------------------------------------------------------------- PaliGemma


def _parse_locs(raw: str) -> tuple[list[Shape], str] | None:
    if not _LOC.search(raw):
        return None
    shapes: list[Shape] = []
    labels: list[str] = []
    for segment in raw.split(";"):
        segment = _SEG.sub("", segment)
        groups = list(_LOC_GROUP.finditer(segment))
        if not groups:
            labels.append(segment)
            continue
        texts = [segment[: groups[0].start()]]
        texts += [segment[a.end() : b.start()] for a, b in itertools.pairwise(groups)]
        texts.append(segment[groups[-1].end() :])
        label_first = bool(texts[0].strip()) and not texts[-1].strip()
        labels.append(texts[-1] if label_first else texts[0])  # the prose around the groups
        for i, group in enumerate(groups):
            label = (texts[i] if label_first else texts[i + 1]).strip(" \t\n.,:;")
            values = [int(v) for v in _LOC.findall(group.group(0))]
            shapes.extend(_loc_shapes(values, label))
    leftover = " ; ".join(t.strip() for t in labels if t.strip())
    return shapes, leftover


def _loc_shapes(values: list[int], label: str) -> Iterator[Shape]:
    """2 locs: a point (y x); a multiple of 4: boxes (y1 x1 y2 x2); any other count is malformed."""
    if any(v > 1023 for v in values):
        return
    f = [v / 1024 for v in values]
    if len(f) == 2:
        yield Shape("point", (f[1], f[0]), label)
    elif f and len(f) % 4 == 0:
        for i in range(0, len(f), 4):
            y1, x1, y2, x2 = f[i : i + 4]
            yield _box(x1, y1, x2, y2, label, pixels=False)


def _box(x1: float, y1: float, x2: float, y2: float, label: str, *, pixels: bool) -> Shape:
    return Shape("box", (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)), label, pixels)


# ------------------------------------------------------------------------------------------------ Molmo


def _parse_molmo(raw: str) -> tuple[list[Shape], str] | None:
    matches = list(_MOLMO.finditer(raw))
    if not matches:
        return None
    shapes: list[Shape] = []
    for m in matches:
        attrs = {k.lower(): v for k, v in _ATTR.findall(m.group(2))}
        label = (m.group(3) or "").strip() or attrs.get("alt", "").strip()
        for x, y in _molmo_pairs(attrs):
            if 0 <= x <= 100 and 0 <= y <= 100:
                shapes.append(Shape("point", (x / 100, y / 100), label))
    text = _MOLMO.sub(lambda m: f" {(m.group(3) or '').strip()} ", raw)
    return shapes, text


def _molmo_pairs(attrs: dict[str, str]) -> Iterator[tuple[float, float]]:
    keys = [("x", "y")] + [(f"x{i}", f"y{i}") for i in range(1, 100)]
    for kx, ky in keys:
        if kx in attrs and ky in attrs:
            try:
                yield float(attrs[kx]), float(attrs[ky])
            except ValueError:
                continue


# ------------------------------------------------------------------------------------------------- JSON


def _parse_json(raw: str) -> tuple[list[Shape], str] | None:
    if "bbox_2d" not in raw and "point_2d" not in raw:
        return None
    fence = _FENCE.search(raw)
    body = fence.group(1) if fence else raw
    start = min((i for i in (body.find("["), body.find("{")) if i >= 0), default=len(body))
    decoded = _json_entries(body[start:])
    if decoded is None:  # not valid JSON (often cut off by the token budget): salvage complete objects
        entries, end = _salvage_entries(body[start:]), len(body)
    else:
        entries, end = decoded[0], start + decoded[1]
    prose = body[:start] + body[end:]
    text = raw[: fence.start()] + prose + raw[fence.end() :] if fence else prose
    pixels_said = bool(_PIXEL_WORD.search(raw))
    values = [v for _, nums, _ in entries for v in nums]
    if not values:
        return [], raw
    if pixels_said or max(values) > 1000:
        scale, pixels = 1.0, True
    elif max(values) <= 1 and any(v != int(v) for v in values):
        scale, pixels = 1.0, False
    else:
        scale, pixels = 1000.0, False
    shapes: list[Shape] = []
    for key, nums, label in entries:
        v = [n / scale for n in nums]
        if key == "bbox_2d" and len(v) == 4:
            shapes.append(_box(*v, label, pixels=pixels))
        elif key == "point_2d" and len(v) == 2:
            shapes.append(Shape("point", (v[0], v[1]), label, pixels))
    return shapes, text


def _json_entries(body: str) -> tuple[list[tuple[str, list[float], str]], int] | None:
    """(entries, where the JSON value ends) when `body` starts with a complete JSON value, else None."""
    try:
        data, end = json.JSONDecoder().raw_decode(body)
    except json.JSONDecodeError:
        return None
    entries: list[tuple[str, list[float], str]] = []
    for obj in _dicts(data):
        label = obj.get("label")
        label = str(label) if isinstance(label, str | int | float) else ""
        for key in ("bbox_2d", "point_2d"):
            nums = _numbers(obj.get(key))
            if nums is not None:
                entries.append((key, nums, label))
    return entries, end


def _dicts(data: Any) -> Iterator[dict[str, Any]]:
    if isinstance(data, dict):
        yield data
        for value in data.values():
            if isinstance(value, dict | list):
                yield from _dicts(value)
    elif isinstance(data, list):
        for item in data:
            yield from _dicts(item)


def _numbers(value: Any) -> list[float] | None:
    if not isinstance(value, Sequence) or isinstance(value, str):
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        return None
    return [float(v) for v in value]


def _salvage_entries(body: str) -> list[tuple[str, list[float], str]]:
    """Objects one by one with regular expressions: what survives of a truncated or sloppy JSON answer."""
    entries: list[tuple[str, list[float], str]] = []
    for chunk in body.split("{")[1:]:
        label_match = _LABEL_KEY.search(chunk)
        label = label_match.group(1) if label_match else ""
        for key, inner in _JSON_KEY.findall(chunk):
            try:
                nums = [float(n) for n in _NUMBER.findall(inner)]
            except ValueError:
                continue
            entries.append((key, nums, label))
    return entries
