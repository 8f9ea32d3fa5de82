"""`robotui ask --sim`: the simulated arm's two cameras, a tiny real SmolVLM, the answer and the overlay PNG."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.vqa.overlay import PALETTE
from robotui.cli import main
from tests.engine.vqa.tiny_vlm import build_tiny_smolvlm


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps at 80 columns otherwise


@pytest.fixture(scope="module")
def pointing_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_smolvlm(tmp_path_factory.mktemp("vlm") / "pointing", forced="<loc0512>")


def test_ask_on_the_sim_answers_and_saves_the_overlay(
    pointing_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out"
    rc = main(["ask", "--sim", "--question", "where is the red cube?", "--model", str(pointing_model),
               "--max-new-tokens", "2", "--output", str(output)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert f"asking {pointing_model} about front 320x240, wrist 320x240: where is the red cube?" in out
    assert "model: loading the weights" in out and "model: ready:" in out  # the loading steps are shown
    assert "drawn on front (choose with --camera)" in out  # spatial, several cameras, none named, no terminal
    assert "answer: 1 point" in out and "raw: <loc0512> <loc0512>" in out
    assert re.search(r"answered in \d+\.\d s .*by " + re.escape(str(pointing_model)), out)
    assert "point at (160, 120) px on front" in out
    path = Path(re.search(r"overlay: (\S+\.png)", out).group(1))
    assert path.parent == output / "vqa" and path.name.endswith("-front.png")
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape == (240, 320, 3)
    assert tuple(image[120, 160]) == PALETTE[0]
    assert image.reshape(-1, 3).std(axis=0).max() > 10  # a rendered scene under the dot, not a blank frame


def test_ask_refuses_bad_arguments_before_starting_anything(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "--sim", "--question", "where?", "--camera", "top"]) == 2
    assert "--camera 'top': the cameras are front, wrist" in capsys.readouterr().err
    assert main(["ask", "--sim", "--question", "where?", "--device", "tpu"]) == 2
    assert "unknown device 'tpu'" in capsys.readouterr().err
    assert main(["ask", "--sim", "--question", "where?", "--cameras", "{}"]) == 2
    assert "the profile has no cameras" in capsys.readouterr().err


def test_ask_without_the_model_says_what_to_download(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["ask", "--sim", "--question", "where is the cube?", "--output", str(tmp_path)])  # default model
    captured = capsys.readouterr()
    assert rc == 1
    assert "no answer:" in captured.err
    assert "hf download HuggingFaceTB/SmolVLM2-500M-Video-Instruct" in captured.err and "--model DIR" in captured.err
    assert not (tmp_path / "vqa").exists()
