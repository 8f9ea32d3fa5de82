"""Cameras behind one interface: a reader thread per camera keeps the newest frame."""

from drivers.cameras.base import Camera, CameraError, CameraStats, Frame, StaleFrameError
from drivers.cameras.config import (
    CAMERA_TYPES,
    CameraConfig,
    CameraConfigError,
    make_camera,
    parse_cameras,
    register_camera_type,
)
from drivers.cameras.opencv import CameraInfo, CameraMode, OpenCVCamera, find_cameras
from drivers.cameras.video_file import VideoFileCamera

__all__ = [
    "CAMERA_TYPES",
    "Camera",
    "CameraConfig",
    "CameraConfigError",
    "CameraError",
    "CameraInfo",
    "CameraMode",
    "CameraStats",
    "Frame",
    "OpenCVCamera",
    "StaleFrameError",
    "VideoFileCamera",
    "find_cameras",
    "make_camera",
    "parse_cameras",
    "register_camera_type",
]
