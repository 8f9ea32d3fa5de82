"""Scene questions: a vision-language model answers about every camera's latest frame (`/question`,
`/subtask`, `robotui ask`); answers are parsed into labelled points and boxes and drawn on a camera frame.

    service = VQAService(VLMSettings(model=..., device="auto"), output_dir=Path("outputs"), on_status=...)
    future = service.ask("where is the red cube?", {"front": rgb, "wrist": rgb})  # VQABusy if one is in flight
    result = future.result()  # VQAResult: text, answer.shapes, elapsed_s, overlay, needs_camera, error
"""

from engine.vqa.answers import ParsedAnswer, Shape, parse_answer
from engine.vqa.backend import DEFAULT_MODEL, ModelLoadError, VLMSettings
from engine.vqa.overlay import Overlay, draw_shapes, make_overlay
from engine.vqa.service import (
    VQABusy,
    VQAResult,
    VQAService,
    VQAState,
    VQAStatus,
    mentioned_camera,
    subtask_question,
)

__all__ = [
    "DEFAULT_MODEL",
    "ModelLoadError",
    "Overlay",
    "ParsedAnswer",
    "Shape",
    "VLMSettings",
    "VQABusy",
    "VQAResult",
    "VQAService",
    "VQAState",
    "VQAStatus",
    "draw_shapes",
    "make_overlay",
    "mentioned_camera",
    "parse_answer",
    "subtask_question",
]
