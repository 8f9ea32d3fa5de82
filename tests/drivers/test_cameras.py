"""Cameras without hardware: a PyAV-written mp4 played by VideoFileCamera, and read through OpenCV as a device."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from drivers.cameras import (
    CAMERA_TYPES,
    Camera,
    CameraConfig,
    CameraConfigError,
    CameraError,
    OpenCVCamera,
    StaleFrameError,
    VideoFileCamera,
    find_cameras,
    make_camera,
    parse_cameras,
    register_camera_type,
)
from drivers.cameras.opencv import decode_fourcc, default_targets

W, H, FRAMES, FPS = 64, 48, 30, 30
RED, BLUE = np.array([255, 0, 0]), np.array([0, 0, 255])


def write_test_video(path: Path, frames: int = FRAMES, fps: int = FPS) -> Path:
    """Left half red, right half blue, so colour order and rotation are both visible."""
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
    image = np.zeros((H, W, 3), np.uint8)
    image[:, : W // 2] = RED
    image[:, W // 2 :] = BLUE
    for _ in range(frames):
        for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_video(tmp_path_factory.mktemp("video") / "clip.mp4")


def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def is_color(pixel: np.ndarray, color: np.ndarray) -> bool:
    return bool(np.abs(pixel.astype(int) - color).max() < 40)  # yuv420 compression moves colours a little


# --- VideoFileCamera


def test_video_camera_delivers_frames_at_the_file_rate(video: Path) -> None:
    with VideoFileCamera("front", video) as cam:
        assert (cam.width, cam.height, cam.fps) == (W, H, FPS)
        image = cam.async_read(timeout_ms=2000)
        assert image.shape == (H, W, 3) and image.dtype == np.uint8
        assert is_color(image[H // 2, 2], RED) and is_color(image[H // 2, W - 3], BLUE)
        assert wait_until(lambda: cam.stats.frames >= 4)
        frame = cam.latest()
        assert frame is not None and frame.index >= 3
        assert cam.read_latest(max_age_ms=2000).shape == (H, W, 3)
        newer = cam.async_read(timeout_ms=2000)
        assert newer.shape == (H, W, 3)
        assert cam.latest().index > frame.index
        assert cam.stats.fps > 0
        assert cam.stats.errors == 0


def test_video_camera_loops(video: Path) -> None:
    with VideoFileCamera("front", video, fps=600) as cam:
        assert wait_until(lambda: cam.stats.frames > FRAMES + 5)
        assert cam.is_connected


def test_video_camera_without_loop_ends_like_an_unplugged_camera(video: Path) -> None:
    cam = VideoFileCamera("front", video, fps=600, loop=False)
    cam.connect()
    try:
        assert wait_until(lambda: not cam.is_connected)
        assert cam.stats.frames == FRAMES
        with pytest.raises(StaleFrameError, match="ended"):
            cam.read_latest()
        with pytest.raises(StaleFrameError):
            cam.async_read(timeout_ms=50)
    finally:
        cam.disconnect()


def test_reads_go_stale_after_disconnect(video: Path) -> None:
    cam = VideoFileCamera("wrist", video)
    cam.connect()
    cam.async_read(timeout_ms=2000)
    cam.disconnect()
    assert not cam.is_connected
    time.sleep(0.02)
    with pytest.raises(StaleFrameError, match="wrist"):
        cam.read_latest(max_age_ms=1)
    assert cam.stats.stale_reads == 1
    with pytest.raises(StaleFrameError):
        cam.async_read(timeout_ms=50)


def test_a_camera_reconnects_after_its_stream_ended(video: Path) -> None:
    cam = VideoFileCamera("front", video, fps=600, loop=False)
    cam.connect()
    try:
        assert wait_until(lambda: not cam.is_connected)
        cam.connect()  # e.g. the cable was replugged
        assert cam.is_connected
        assert cam.async_read(timeout_ms=2000).shape == (H, W, 3)
        frame = cam.latest()
        assert frame is not None and frame.index < FRAMES
    finally:
        cam.disconnect()


class GlitchyCamera(Camera):
    """One failed read, a few good frames, then nothing: the final error must not blame the old glitch."""

    def __init__(self) -> None:
        super().__init__("glitchy", 4, 4, 100)
        self.calls = 0

    def _open(self) -> None:
        self.calls = 0

    def _grab(self) -> np.ndarray | None:
        self.calls += 1
        if self.calls == 1:
            raise CameraError("USB hiccup")
        time.sleep(0.002)
        return np.zeros((4, 4, 3), np.uint8) if self.calls < 5 else None

    def _close(self) -> None:
        pass


def test_a_recovered_glitch_is_not_reported_as_the_cause() -> None:
    cam = GlitchyCamera()
    cam.connect()
    try:
        assert wait_until(lambda: not cam.is_connected)
        with pytest.raises(StaleFrameError, match="stopped delivering frames") as err:
            cam.read_latest()
        assert "USB hiccup" not in str(err.value)
        assert cam.stats.frames == 3
    finally:
        cam.disconnect()


@pytest.mark.parametrize(
    ("rotation", "shape", "red_at", "blue_at"),
    [
        (0, (H, W, 3), (H // 2, 2), (H // 2, W - 3)),
        (90, (W, H, 3), (2, H // 2), (W - 3, H // 2)),  # clockwise: the left edge becomes the top
        (180, (H, W, 3), (H // 2, W - 3), (H // 2, 2)),
        (-90, (W, H, 3), (W - 3, H // 2), (2, H // 2)),
    ],
)
def test_rotation(video: Path, rotation: int, shape: tuple, red_at: tuple, blue_at: tuple) -> None:
    with VideoFileCamera("front", video, rotation=rotation) as cam:
        image = cam.async_read(timeout_ms=2000)
        assert image.shape == shape
        assert (cam.height, cam.width) == shape[:2]
        assert is_color(image[red_at], RED) and is_color(image[blue_at], BLUE)
        assert image.flags["C_CONTIGUOUS"]


def test_video_camera_resizes_keeping_aspect(video: Path) -> None:
    with VideoFileCamera("front", video, width=32) as cam:
        assert cam.async_read(timeout_ms=2000).shape == (24, 32, 3)


def test_video_camera_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    cam = VideoFileCamera("front", tmp_path / "nope.mp4")
    with pytest.raises(CameraError, match=r"front.*nope\.mp4"):
        cam.connect()
    assert not cam.is_connected


# --- OpenCVCamera


def test_opencv_camera_on_an_unopenable_index_names_the_camera() -> None:
    cam = OpenCVCamera("front", 57, 640, 480, 30, warmup_s=0)
    with pytest.raises(CameraError, match=r"camera 'front': cannot open 57.*find-cameras"):
        cam.connect()
    assert not cam.is_connected


def test_opencv_camera_reads_a_file_like_a_device(video: Path) -> None:
    cam = OpenCVCamera("front", video, W, H, FPS, warmup_s=0)
    with cam:
        image = cam.async_read(timeout_ms=2000)
        assert image.shape == (H, W, 3)
        # BGR from OpenCV must come out RGB
        assert is_color(image[H // 2, 2], RED) and is_color(image[H // 2, W - 3], BLUE)
        assert cam.mode is not None and (cam.mode.width, cam.mode.height) == (W, H)
        assert wait_until(lambda: cam.stats.frames >= 3)
        assert cam.is_connected  # paced at the file's fps, not drained at once


def test_opencv_camera_default_mode_and_rotation(video: Path) -> None:
    with OpenCVCamera("wrist", str(video), rotation=-90, warmup_s=0) as cam:
        assert (cam.width, cam.height, cam.fps) == (H, W, FPS)
        assert cam.async_read(timeout_ms=2000).shape == (W, H, 3)


def test_opencv_camera_rejects_a_mode_it_does_not_get(video: Path) -> None:
    cam = OpenCVCamera("front", video, 640, 480, FPS, warmup_s=0)
    with pytest.raises(CameraError, match=r"front.*asked 640x480 @ 30 fps.*got 64x48 @ 30 fps"):
        cam.connect()
    assert not cam.is_connected


def test_opencv_camera_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="rotation"):
        OpenCVCamera("front", 0, rotation=45)
    with pytest.raises(ValueError, match="fourcc"):
        OpenCVCamera("front", 0, fourcc="MJPEG")


def test_find_cameras_reports_default_mode(video: Path, tmp_path: Path) -> None:
    found = find_cameras(targets=[str(video), str(tmp_path / "video9")])
    assert len(found) == 1
    info = found[0]
    assert info.id == str(video)
    assert (info.mode.width, info.mode.height, info.mode.fps) == (W, H, FPS)
    assert info.mode.fourcc.lower() in ("h264", "avc1")
    profile = info.as_dict()["default_stream_profile"]
    assert profile["width"] == W and profile["fourcc"] == info.mode.fourcc


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux lists /dev/video*")
def test_find_cameras_lists_video_nodes_in_device_order(tmp_path: Path) -> None:
    for n in (10, 0, 2):
        (tmp_path / f"video{n}").touch()
    (tmp_path / "ttyACM0").touch()
    assert default_targets(tmp_path) == [str(tmp_path / f"video{n}") for n in (0, 2, 10)]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert find_cameras(dev_dir=empty) == []


def test_decode_fourcc() -> None:
    assert decode_fourcc(cv2.VideoWriter_fourcc(*"MJPG")) == "MJPG"
    assert decode_fourcc(float(cv2.VideoWriter_fourcc(*"YUYV"))) == "YUYV"
    assert decode_fourcc(0) == ""


# --- configs


LEROBOT_JSON = json.dumps(
    {
        "front": {"type": "opencv", "index_or_path": 0, "width": 640, "height": 480, "fps": 30},
        "wrist": {
            "type": "opencv",
            "index_or_path": "/dev/video4",
            "width": 640,
            "height": 480,
            "fps": 30,
            "fourcc": "MJPG",
            "rotation": -90,
            "color_mode": "rgb",
            "warmup_s": 1,
            "backend": 200,
        },
    }
)


def test_config_reads_lerobot_camera_json() -> None:
    cameras = parse_cameras(LEROBOT_JSON)
    assert list(cameras) == ["front", "wrist"]
    front, wrist = cameras["front"], cameras["wrist"]
    assert front == CameraConfig(type="opencv", index_or_path=0, width=640, height=480, fps=30.0)
    assert (wrist.index_or_path, wrist.fourcc, wrist.rotation, wrist.backend) == (
        "/dev/video4",
        "MJPG",
        -90,
        200,
    )
    camera = make_camera("wrist", wrist)
    assert isinstance(camera, OpenCVCamera)
    assert (camera.capture_width, camera.capture_height, camera.width, camera.height) == (640, 480, 480, 640)
    assert not camera.is_connected


def test_config_round_trips_through_to_dict() -> None:
    for config in parse_cameras(LEROBOT_JSON).values():
        assert CameraConfig.from_dict(config.to_dict()) == config
    video = CameraConfig.from_dict({"type": "video", "path": "demo.mp4", "fps": 15, "loop": False})
    assert video.to_dict() == {"type": "video", "path": "demo.mp4", "fps": 15.0, "rotation": 0, "loop": False}
    assert CameraConfig.from_dict(video.to_dict()) == video


def test_config_makes_a_working_video_camera(video: Path) -> None:
    config = parse_cameras({"demo": {"type": "video", "path": str(video), "width": 32, "height": 24}})["demo"]
    with make_camera("demo", config) as cam:
        assert isinstance(cam, VideoFileCamera)
        assert cam.async_read(timeout_ms=2000).shape == (24, 32, 3)


def test_command_line_index_string_means_the_index() -> None:
    assert parse_cameras('{"front": {"type": "opencv", "index_or_path": "2"}}')["front"].index_or_path == 2


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"front": {"type": "opencv", "index_or_path": 0, "widht": 640}},
            r"widht: unknown field \(did you mean 'width'\?\)",
        ),
        (
            {"front": {"type": "opencv", "index_or_path": 0, "width": "640"}},
            r"width: expected a positive whole number",
        ),
        ({"front": {"type": "opencv", "index_or_path": 0, "height": -1}}, r"height: expected a positive"),
        (
            {"front": {"type": "opencv", "index_or_path": 0, "fps": "30fps"}},
            r"fps: expected a positive number",
        ),
        (
            {"front": {"type": "opencv", "index_or_path": 0, "rotation": 45}},
            r"rotation: expected one of 0, 90, 180, -90",
        ),
        (
            {"front": {"type": "opencv", "index_or_path": 0, "fourcc": "MJPEG"}},
            r"fourcc: expected 4 characters",
        ),
        ({"front": {"type": "opencv", "index_or_path": 0, "color_mode": "bgr"}}, r"always deliver RGB"),
        ({"front": {"type": "opencv", "width": 640}}, r"camera 'front': index_or_path: required"),
        (
            {"front": {"type": "video", "path": "a.mp4", "fourcc": "MJPG"}},
            r"fourcc: does not apply to type 'video'",
        ),
        ({"front": {"type": "video", "path": 3}}, r"path: expected the video file's path"),
        ({"front": {"index_or_path": 0}}, r"missing \"type\""),
        (
            {"front": {"type": "opencvv", "index_or_path": 0}},
            r"unknown type 'opencvv' \(did you mean 'opencv'\?\)",
        ),
        (
            {"front": {"type": "intelrealsense", "serial_number_or_name": "1"}},
            r"not supported.*opencv camera",
        ),
        ({"front": [0, 640, 480]}, r"camera 'front': expected an object"),
        ({"front cam": {"type": "opencv", "index_or_path": 0}}, r"use a short word"),
        ("[1, 2]", r"expected an object of name"),
        ("{front: 0}", r"not valid JSON"),
    ],
)
def test_bad_configs_say_what_is_wrong(spec: object, message: str) -> None:
    with pytest.raises(CameraConfigError, match=message):
        parse_cameras(spec)  # type: ignore[arg-type]


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(CameraConfigError) as err:
        CameraConfig.from_dict(
            {"type": "opencv", "index_or_path": 0, "width": 0, "fps": 0, "rotaton": 90}, "top"
        )
    text = str(err.value)
    assert text.startswith("camera 'top': ")
    assert "width:" in text and "fps:" in text and "did you mean 'rotation'" in text


def test_new_camera_types_register_and_build(video: Path) -> None:
    built: list[str] = []

    def factory(name: str, config: CameraConfig) -> VideoFileCamera:
        built.append(name)
        return VideoFileCamera(name, video, fps=config.fps)

    register_camera_type("replay", factory, fields=frozenset({"fps"}))
    try:
        config = parse_cameras({"top": {"type": "replay", "fps": 10}})["top"]
        assert isinstance(make_camera("top", config), VideoFileCamera) and built == ["top"]
        with pytest.raises(CameraConfigError, match="width: does not apply to type 'replay'"):
            parse_cameras({"top": {"type": "replay", "width": 10}})
    finally:
        CAMERA_TYPES.pop("replay")
    with pytest.raises(ValueError, match="not CameraConfig fields"):
        register_camera_type("bad", factory, fields=frozenset({"zoom"}))
    assert "bad" not in CAMERA_TYPES
    with pytest.raises(CameraConfigError, match="unknown type 'replay'"):
        make_camera("top", config)
