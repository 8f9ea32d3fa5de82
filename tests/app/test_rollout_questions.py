"""`/question` and `/subtask` on the Rollout screen (virtual SO-101, tiny real ACT, tiny real SmolVLM): the
policy pauses for a question, a spatial answer asks for its camera and is drawn on that preview, a second
question while one is in flight gets "busy", and questions asked while recording land in the dataset as
`language_events` rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.dataset.reader import LeRobotDatasetReader
from engine.rollout import Mode
from engine.vqa import VLMSettings, VQAService
from screens.widgets.camera_choice import CameraChoice
from screens.widgets.camera_preview import CameraPreview
from tests.act_checkpoint import save_tiny_act
from tests.app.test_rollout_screen import make_app, open_and_start, said, type_command, wait_until
from tests.engine.vqa.tiny_vlm import build_tiny_smolvlm

SIZE = (120, 40)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_act(tmp_path_factory.mktemp("act"))


@pytest.fixture(scope="module")
def pointing_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Answers `<loc0512><loc0512>`: a point in the middle of a frame, on no camera in particular."""
    return build_tiny_smolvlm(tmp_path_factory.mktemp("vlm") / "pointing", forced="<loc0512>")


async def test_questions_pause_the_policy_draw_and_are_recorded(checkpoint: Path, pointing_vlm: Path,
                                                                 tmp_path: Path) -> None:
    root = tmp_path / "dagger"
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.session.vqa = VQAService(VLMSettings(model=str(pointing_vlm), max_new_tokens=2),
                                     output_dir=tmp_path / "outputs")
        screen = await open_and_start(pilot, app, str(checkpoint), strategy="dagger", task="pick the cube",
                                      root=str(root))
        assert screen.state == "running", screen.query_one("#form-error").render()
        rollout = screen.rollout
        assert rollout is not None

        await pilot.press("a")
        await wait_until(pilot, lambda: rollout.mode is Mode.AUTONOMOUS, "the policy to run")
        await type_command(pilot, "/q where is the red cube")
        await wait_until(pilot, lambda: rollout.mode is Mode.PAUSED, "the pause for the question")
        assert "the arm holds still" in said(screen)
        await wait_until(pilot, lambda: isinstance(app.screen, CameraChoice), "the camera question")
        assert "A 1 point  (" in said(screen) and " s, points on which camera?)" in said(screen)
        await pilot.press("down", "enter")  # wrist
        await wait_until(pilot, lambda: "drawn on wrist — saved" in said(screen), "the overlay")
        wrist = next(p for p in screen.query(CameraPreview) if p.camera is not None and p.camera.name == "wrist")
        assert wrist.still_caption == "answer to: where is the red cube"
        assert list((tmp_path / "outputs" / "vqa").glob("*-wrist.png"))
        assert "not recorded" not in said(screen)  # corrections only: nothing was being recorded

        # During a takeover the correction is recorded, and so is a question asked then.
        await pilot.press("tab")
        await wait_until(pilot, lambda: rollout.mode is Mode.TAKEOVER and rollout.snapshot().episode_frames > 5,
                         "the takeover")
        screen.action_question("--run is the cube in the box")
        screen.action_question("and now?")  # while the first is in flight
        assert "busy: still answering 'is the cube in the box'" in said(screen)
        await wait_until(pilot, lambda: isinstance(app.screen, CameraChoice), "the camera question")
        await pilot.press("enter")  # front
        await wait_until(pilot, lambda: "recorded in episode 0 at frame" in said(screen), "the recording")
        assert rollout.mode is Mode.TAKEOVER  # --run: nothing was paused

        await type_command(pilot, "/subtask")
        await wait_until(pilot, lambda: 'Q The robot is doing the task "pick the cube". Which subtask' in said(screen),
                         "the subtask question")
        await wait_until(pilot, lambda: isinstance(app.screen, CameraChoice), "the camera question")
        await pilot.press("escape")  # do not draw: the answer still counts

        await pilot.press("tab")  # end the takeover: the correction is saved
        await wait_until(pilot, lambda: len(rollout.snapshot().saved) == 1, "the correction to be saved")
        await pilot.press("escape")
        await wait_until(pilot, lambda: screen.state == "done", "the stop")

    ds = LeRobotDatasetReader.open(root)
    events = ds.language_events(0)
    rows = [row for frame_rows in events.values() for row in frame_rows]
    assert any(r["role"] == "user" and r["content"] == "is the cube in the box" for r in rows)
    assert all(r["style"] == "vqa" and r["camera"] == "observation.images.front" for r in rows[:2])
