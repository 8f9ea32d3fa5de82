"""LeRobot's language-annotation columns: `language_events` rows (what robotui writes) and their schema.

LeRobot keeps language annotations in two optional parquet columns declared in info.json as
`{"dtype": "language", "shape": [1], "names": null}`. `language_persistent` repeats an episode's state rows
(subtask, plan, memory...) on every frame; `language_events` holds rows only on the frame an event was emitted,
with no timestamp of their own (the frame's is implied). Each event row is a struct
{role, content, style, camera, tool_calls}; `camera` is required exactly for the view-dependent styles
(`vqa`, `trace`) and must name an `observation.images.*` feature; `tool_calls` is a list of JSON values or
null. These definitions follow `lerobot.datasets.language` field for field, so LeRobot loads what robotui
writes and robotui reads what LeRobot's annotation pipeline wrote.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa

LANGUAGE_EVENTS = "language_events"
LANGUAGE_PERSISTENT = "language_persistent"
LANGUAGE_COLUMNS = (LANGUAGE_PERSISTENT, LANGUAGE_EVENTS)
LANGUAGE_FEATURE: dict[str, Any] = {"dtype": "language", "shape": [1], "names": None}

EVENT_ROW_FIELDS = ("role", "content", "style", "camera", "tool_calls")
PERSISTENT_ROW_FIELDS = ("role", "content", "style", "timestamp", "camera", "tool_calls")
EVENT_STYLES = frozenset({"interjection", "vqa", "trace"})
VIEW_DEPENDENT_STYLES = frozenset({"vqa", "trace"})
IMAGES_PREFIX = "observation.images."

LanguageRow = dict[str, Any]


class LanguageRowError(ValueError):
    """A language row LeRobot's loader or resolvers would reject."""


def _json_type() -> pa.DataType:
    return pa.json_() if hasattr(pa, "json_") else pa.string()


def _row_fields(*, persistent: bool, json_values: bool) -> list[pa.Field]:
    tool_value = _json_type() if json_values else pa.string()
    fields = [
        pa.field("role", pa.string(), nullable=False),
        pa.field("content", pa.string()),
        pa.field("style", pa.string()),
    ]
    if persistent:
        fields.append(pa.field("timestamp", pa.float32(), nullable=False))
    return [*fields, pa.field("camera", pa.string()), pa.field("tool_calls", pa.list_(tool_value))]


def column_arrow_type(key: str) -> pa.ListType:
    """The parquet column type of a language column, exactly as LeRobot declares it (JSON tool calls)."""
    return pa.list_(pa.struct(_row_fields(persistent=key == LANGUAGE_PERSISTENT, json_values=True)))


def _storage_type(key: str) -> pa.ListType:
    """Same layout with plain strings for the JSON values: what `pa.array` can build from Python lists."""
    return pa.list_(pa.struct(_row_fields(persistent=key == LANGUAGE_PERSISTENT, json_values=False)))


def column_hf_feature(key: str) -> dict[str, Any]:
    """The `datasets` feature dict of a language column (the `huggingface` parquet metadata)."""
    row: dict[str, Any] = {
        name: {"dtype": "string", "_type": "Value"} for name in ("role", "content", "style")
    }
    if key == LANGUAGE_PERSISTENT:
        row["timestamp"] = {"dtype": "float32", "_type": "Value"}
    row["camera"] = {"dtype": "string", "_type": "Value"}
    row["tool_calls"] = {"feature": {"_type": "Json"}, "_type": "List"}
    return {"feature": row, "_type": "List"}


def is_language_feature(key: str, ft: Mapping[str, Any]) -> bool:
    return ft.get("dtype") == "language" and key in LANGUAGE_COLUMNS


def event_row(
    role: str,
    content: str | None,
    *,
    style: str | None,
    camera: str | None = None,
    tool_calls: Sequence[Any] | None = None,
) -> LanguageRow:
    """One `language_events` row, checked as LeRobot's writer checks it. `camera` may be a bare camera name
    (`front`) or the feature key (`observation.images.front`); it is stored as the feature key."""
    if not isinstance(role, str) or not role:
        raise LanguageRowError("a language row needs a role (user, assistant...)")
    if style is not None and style not in EVENT_STYLES:
        raise LanguageRowError(
            f"style {style!r} is not an event style (one of {', '.join(sorted(EVENT_STYLES))}, or None "
            "for a tool call)"
        )
    if content is None and tool_calls is None:
        raise LanguageRowError("a language row needs content or tool_calls")
    if style is None and not tool_calls:
        raise LanguageRowError("a row without a style must carry tool_calls")
    if camera is not None and not camera.startswith(IMAGES_PREFIX):
        camera = IMAGES_PREFIX + camera
    check_camera(style, camera)
    calls = None if tool_calls is None else [json.dumps(c) if not isinstance(c, str) else c for c in tool_calls]
    return {"role": role, "content": content, "style": style, "camera": camera, "tool_calls": calls}


def check_camera(style: str | None, camera: str | None) -> None:
    """LeRobot's camera invariant: required iff the style is view-dependent, and then a camera feature key."""
    if style in VIEW_DEPENDENT_STYLES:
        if not camera or not camera.startswith(IMAGES_PREFIX):
            raise LanguageRowError(
                f"rows of style {style!r} need a camera naming an '{IMAGES_PREFIX}*' feature, got {camera!r}"
            )
    elif camera is not None:
        raise LanguageRowError(f"rows of style {style!r} must have no camera, got {camera!r}")


def events_column(per_frame: Sequence[Iterable[LanguageRow]]) -> pa.Array:
    """The `language_events` column for frames 0..n-1 (an empty list on frames without events)."""
    values = [[{f: row.get(f) for f in EVENT_ROW_FIELDS} for row in rows] for rows in per_frame]
    return pa.array(values, type=_storage_type(LANGUAGE_EVENTS)).cast(column_arrow_type(LANGUAGE_EVENTS))


def decode_rows(cell: Sequence[Mapping[str, Any]] | None) -> list[LanguageRow]:
    """The rows of one parquet cell as dicts, tool calls parsed from JSON (LeRobot's files may hold null)."""
    rows = []
    for row in cell or []:
        out = dict(row)
        calls = out.get("tool_calls")
        if calls is not None:
            out["tool_calls"] = [_parse_json(c) for c in calls]
        rows.append(out)
    return rows


def _parse_json(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def type_problem(key: str, actual: pa.DataType) -> str | None:
    """Why a parquet column cannot be LeRobot's language column `key` (None when it can). The JSON values
    may be stored as strings and an all-null field with type null: LeRobot's own writer infers those."""
    if not (pa.types.is_list(actual) or pa.types.is_large_list(actual)) or not pa.types.is_struct(
        actual.value_type
    ):
        return f"type {actual} is not a list of language rows (list<struct<role, content, style, ...>>)"
    names = [actual.value_type.field(i).name for i in range(actual.value_type.num_fields)]
    expected = PERSISTENT_ROW_FIELDS if key == LANGUAGE_PERSISTENT else EVENT_ROW_FIELDS
    missing = [f for f in expected if f not in names and f != "camera"]  # camera arrived later upstream
    extra = [n for n in names if n not in expected]
    if missing or extra:
        return f"language rows have fields {names}, LeRobot's {key} rows have {list(expected)}"
    return None
