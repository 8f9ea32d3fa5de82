"""VQAService on tiny real SmolVLM folders: lazy load in a worker with progress, two cameras in one prompt,
odd / empty / spatial answers, camera choice, busy and not-loaded states, missing-model messages."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.vqa import (
    DEFAULT_MODEL,
    VLMSettings,
    VQABusy,
    VQAService,
    VQAState,
    VQAStatus,
    mentioned_camera,
    subtask_question,
)
from engine.vqa.backend import VLMBackend
from engine.vqa.overlay import PALETTE
from tests.engine.vqa.tiny_vlm import IMAGE_SEQ_LEN, build_tiny_smolvlm

TIMEOUT = 120


def test_loads_in_a_worker_with_progress_then_answers_about_both_cameras(
    random_vlm: Path, two_cameras: dict[str, np.ndarray]
) -> None:
    seen: list[tuple[VQAStatus, str]] = []
    service = VQAService(VLMSettings(model=str(random_vlm), max_new_tokens=6),
                         on_status=lambda s: seen.append((s, threading.current_thread().name)))
    status = service.status()
    assert status.state is VQAState.NOT_LOADED and "not loaded yet" in status.message and not status.busy

    result = service.ask("where is the red cube?", two_cameras).result(TIMEOUT)
    assert result.ok, result.error
    assert result.cameras == ("front", "wrist") and result.model == str(random_vlm)
    assert result.elapsed_s >= result.load_s > 0
    assert isinstance(result.answer.raw, str) and isinstance(result.text, str)

    loading = [(s.message, thread) for s, thread in seen if s.state is VQAState.LOADING]
    steps = [m for m, _ in loading]
    assert any("loading the processor" in m for m in steps) and any("loading the weights" in m for m in steps)
    assert {thread for _, thread in loading} - {"vqa-ask"} == {"vqa-load"}  # never the caller's thread
    ready = service.status()
    assert ready.state is VQAState.READY and ready.device == "cpu" and ready.dtype == "float32"
    assert ready.message.startswith("ready:") and not ready.busy

    # Greedy decoding: the same question on the same frames gives the same answer, without reloading.
    seen.clear()
    again = service.ask("where is the red cube?", two_cameras).result(TIMEOUT)
    assert again.answer.raw == result.answer.raw
    assert all(s.state is VQAState.READY for s, _ in seen)


def test_the_prompt_names_each_camera_before_its_image(random_vlm: Path, two_cameras: dict[str, np.ndarray]) -> None:
    backend = VLMBackend(VLMSettings(model=str(random_vlm)))
    backend.load(lambda _: None)
    prompt = backend.prompt(["front", "wrist"], "where is the red cube?")
    front, wrist, question = (prompt.index(s) for s in ("Camera 'front':", "Camera 'wrist':", "where is the"))
    assert front < prompt.index("<image>") < wrist < prompt.rindex("<image>") < question
    assert prompt.count("<image>") == 2 and prompt.endswith("Assistant:")
    inputs = backend.inputs("where is the red cube?", two_cameras)
    assert inputs["pixel_values"].shape[:2] == (1, 2)  # both frames, one prompt
    image_token = backend._processor.tokenizer.convert_tokens_to_ids("<image>")
    assert int((inputs["input_ids"] == image_token).sum()) == 2 * IMAGE_SEQ_LEN


def test_an_empty_answer_is_reported_not_raised(silent_vlm: Path, two_cameras: dict[str, np.ndarray]) -> None:
    result = VQAService(VLMSettings(model=str(silent_vlm))).ask("is the cube red?", two_cameras).result(TIMEOUT)
    assert result.ok and result.answer.raw == "" and result.text == "(no answer)"
    assert not result.spatial and not result.needs_camera and result.overlay is None
    user, assistant = result.language_rows()
    assert (user["content"], assistant["content"]) == ("is the cube red?", "")


def test_a_spatial_answer_asks_for_a_camera_only_when_ambiguous(
    pointing_vlm: Path, two_cameras: dict[str, np.ndarray], tmp_path: Path
) -> None:
    service = VQAService(VLMSettings(model=str(pointing_vlm), max_new_tokens=2), output_dir=tmp_path)
    result = service.ask("where is the red cube?", two_cameras).result(TIMEOUT)
    assert result.answer.raw == "<loc0512> <loc0512>" and result.text == "1 point"
    assert result.spatial and result.needs_camera and result.camera is None and result.overlay is None
    assert not list(tmp_path.rglob("*.png"))  # nothing drawn before the choice

    drawn = service.draw(result, "wrist")
    assert drawn.camera == "wrist" and not drawn.needs_camera
    assert drawn.overlay.image.shape == two_cameras["wrist"].shape
    assert tuple(drawn.overlay.image[20, 40]) == PALETTE[0]  # the middle of the 80x40 wrist frame
    assert drawn.overlay.path.parent == tmp_path / "vqa" and drawn.overlay.path.name.endswith("-wrist.png")
    with pytest.raises(ValueError, match="no camera 'top'"):
        service.draw(result, "top")

    named = service.ask("where is the red cube in the wrist camera?", two_cameras).result(TIMEOUT)
    assert named.camera == "wrist" and named.overlay is not None
    chosen = service.ask("where is the red cube?", two_cameras, camera="front").result(TIMEOUT)
    assert chosen.camera == "front" and tuple(chosen.overlay.image[24, 32]) == PALETTE[0]
    single = service.ask("where?", {"front": two_cameras["front"]}).result(TIMEOUT)
    assert single.camera == "front" and single.overlay is not None
    assert [row["camera"] for row in drawn.language_rows()] == ["observation.images.wrist"] * 2
    assert [row["role"] for row in drawn.language_rows()] == ["user", "assistant"]
    assert drawn.language_rows()[1]["content"] == "<loc0512> <loc0512>" and all(
        row["style"] == "vqa" and row["tool_calls"] is None for row in drawn.language_rows()
    )


def test_a_second_question_in_flight_gets_busy_not_a_queue(
    random_vlm: Path, two_cameras: dict[str, np.ndarray]
) -> None:
    release = threading.Event()

    def hold_loading(status: VQAStatus) -> None:
        if status.state is VQAState.LOADING and threading.current_thread().name == "vqa-load":
            release.wait(TIMEOUT)

    service = VQAService(VLMSettings(model=str(random_vlm), max_new_tokens=2), on_status=hold_loading)
    first = service.ask("is the cube red?", two_cameras)
    with pytest.raises(VQABusy, match=r"busy: still answering 'is the cube red\?'"):
        service.ask("where is the cube?", two_cameras)
    status = service.status()
    assert status.busy and status.asking == "is the cube red?" and status.state is VQAState.LOADING
    assert not first.done()
    release.set()
    assert first.result(TIMEOUT).ok
    assert not service.status().busy
    assert service.ask("where is the cube?", two_cameras).result(TIMEOUT).ok  # free again


def test_load_up_front_then_ready(random_vlm: Path) -> None:
    service = VQAService(VLMSettings(model=str(random_vlm)))
    service.load()
    status = service.wait_loaded(TIMEOUT)
    assert status.state is VQAState.READY and "on cpu (float32)" in status.message
    service.load()  # already loaded: nothing to do
    assert service.status().state is VQAState.READY


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (DEFAULT_MODEL, [f"hf download {DEFAULT_MODEL}", "--model DIR", "HF_HUB_OFFLINE",
                         "models--HuggingFaceTB--SmolVLM2-500M-Video-Instruct"]),
        ("{tmp}/no-such-folder", ["no model folder at", "no-such-folder"]),
        ("{tmp}", ["is not a transformers model folder (no config.json)"]),
    ],
)
def test_a_missing_model_says_what_to_download_and_where(
    model: str, expected: list[str], tmp_path: Path, two_cameras: dict[str, np.ndarray]
) -> None:
    service = VQAService(VLMSettings(model=model.format(tmp=tmp_path)))
    result = service.ask("where is the cube?", two_cameras).result(TIMEOUT)
    assert not result.ok and result.answer is None and result.language_rows() == []
    for text in expected:
        assert text in result.text
    status = service.status()
    assert status.state is VQAState.FAILED and status.message == result.error and not status.busy


def test_a_failed_load_is_retried_once_the_model_is_there(tmp_path: Path, two_cameras: dict[str, np.ndarray]) -> None:
    folder = tmp_path / "copied-later"
    service = VQAService(VLMSettings(model=str(folder), max_new_tokens=2))
    assert "no model folder at" in service.ask("q?", two_cameras).result(TIMEOUT).text
    build_tiny_smolvlm(folder)
    assert service.ask("q?", two_cameras).result(TIMEOUT).ok
    assert service.status().state is VQAState.READY


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown where CUDA is absent")
def test_an_unavailable_device_is_a_clear_error(random_vlm: Path, two_cameras: dict[str, np.ndarray]) -> None:
    result = VQAService(VLMSettings(model=str(random_vlm), device="cuda")).ask("q?", two_cameras).result(TIMEOUT)
    assert "--device cuda: torch sees no CUDA device here; use --device cpu" in result.text


def test_bad_requests_are_refused_before_anything_runs(random_vlm: Path, two_cameras: dict[str, np.ndarray]) -> None:
    service = VQAService(VLMSettings(model=str(random_vlm)))
    with pytest.raises(ValueError, match="the question is empty"):
        service.ask("   ", two_cameras)
    with pytest.raises(ValueError, match="no camera frames"):
        service.ask("where?", {})
    with pytest.raises(ValueError, match="no camera 'top': cameras are front, wrist"):
        service.ask("where?", two_cameras, camera="top")
    assert service.status().state is VQAState.NOT_LOADED and not service.status().busy
    for bad in (dict(device="tpu"), dict(dtype="int8"), dict(model=" "), dict(max_new_tokens=0)):
        with pytest.raises(ValueError):
            VLMSettings(**bad)


def test_subtask_builds_the_question_from_the_current_task(
    random_vlm: Path, two_cameras: dict[str, np.ndarray]
) -> None:
    question = subtask_question("  put the cube in the box ")
    assert 'task "put the cube in the box"' in question and "Which subtask of this task is in progress" in question
    with pytest.raises(ValueError, match=r"/action <task>"):
        subtask_question("")
    result = VQAService(VLMSettings(model=str(random_vlm), max_new_tokens=2)).ask_subtask(
        "put the cube in the box", two_cameras
    ).result(TIMEOUT)
    assert result.ok and result.question == question


def test_cameras_are_recognised_only_when_named_as_cameras() -> None:
    cams = ("front", "wrist")
    assert mentioned_camera("is the cube in front of the mug?", cams) is None
    assert mentioned_camera("In the wrist camera, where is it?", cams) == "wrist"
    assert mentioned_camera("Camera 'front': the cube is left", cams) == "front"
    assert mentioned_camera("see observation.images.front", cams) == "front"
    assert mentioned_camera("the front view and the wrist view", cams) is None  # two: still ambiguous


def test_a_hub_id_loads_offline_from_the_hugging_face_cache(
    tmp_path: Path, two_cameras: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the download hint tells people to do: `hf download` elsewhere, copy the cache folder here."""
    cache = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / "models--someone--tiny-smolvlm"
    build_tiny_smolvlm(repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    result = VQAService(VLMSettings(model="someone/tiny-smolvlm", max_new_tokens=2)).ask(
        "where?", two_cameras).result(TIMEOUT)
    assert result.ok, result.error
    assert result.model == "someone/tiny-smolvlm"
