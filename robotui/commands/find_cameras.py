"""`robotui find-cameras`: list the cameras OpenCV opens, grab a picture from each and save it, so the user can
tell which index is the front and which the wrist camera.

All cameras stream at once while capturing, as they will while recording, so a USB bus that cannot carry
them shows up here as a low measured fps rather than mid-recording. Finding none is a normal answer (exit 0);
a camera that is listed but delivers no picture is an error (exit 1).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from rich.console import Console
from rich.table import Table

from drivers.cameras.base import CameraError
from drivers.cameras.opencv import VIDEO_DEV_DIR, CameraInfo, OpenCVCamera, default_targets, find_cameras


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "find-cameras",
        help="list cameras with their default mode and save a picture from each",
        description="List the cameras OpenCV can open, with their default mode, and save one PNG per camera.",
    )
    parser.add_argument(
        "--output-dir", type=Path, default=Path("outputs/captured_images"), help="where the PNGs go"
    )
    parser.add_argument(
        "--record-time-s", type=float, default=2.0, help="how long to stream before taking the picture"
    )
    parser.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="DEVICE",
        help="probe only this index or device path (repeatable); default: every /dev/video* on Linux, "
        "indices 0-15 elsewhere",
    )
    parser.add_argument("--json", action="store_true", help="print the cameras as JSON for scripts")
    parser.set_defaults(func=run)


@dataclass
class Capture:
    info: CameraInfo
    image: Path | None = None
    measured_fps: float = 0.0
    error: str | None = None


def _target(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def image_name(camera_id: int | str) -> str:
    """opencv_0.png, opencv_video0.png: readable, and safe for any path-like id."""
    text = str(camera_id).removeprefix(str(VIDEO_DEV_DIR) + "/")
    return "opencv_" + (re.sub(r"[^A-Za-z0-9.-]+", "_", text).strip("_") or "camera") + ".png"


def capture_all(cameras: list[CameraInfo], output_dir: Path, record_time_s: float) -> list[Capture]:
    """Open every camera, stream for `record_time_s`, save each one's newest frame."""
    captures = [Capture(info) for info in cameras]
    opened: list[tuple[Capture, OpenCVCamera]] = []
    output_dir.mkdir(parents=True, exist_ok=True)
    try:
        for cap in captures:
            camera = OpenCVCamera(f"opencv_{cap.info.id}", cap.info.id, warmup_s=0.0)
            try:
                camera.connect()
            except CameraError as e:
                cap.error = str(e)
                continue
            opened.append((cap, camera))
        time.sleep(max(record_time_s, 0.0))
        for cap, camera in opened:
            try:
                image = camera.read_latest(max_age_ms=1000.0)
            except CameraError as e:
                cap.error = str(e)
                continue
            cap.measured_fps = camera.stats.fps
            cap.image = output_dir / image_name(cap.info.id)
            Image.fromarray(image).save(cap.image)
    finally:
        for _, camera in opened:
            camera.disconnect()
    return captures


def none_found_help(targets: list[int | str]) -> str:
    lines = ["No cameras found."]
    if sys.platform.startswith("linux"):
        devices = [t for t in default_targets() if not targets or t in targets]
        if devices:
            lines.append(
                f"{len(devices)} video device(s) exist ({', '.join(map(str, devices))}) but none opened:"
            )
            lines.append(
                "  - another program (browser, video call, another robotui or lerobot) may hold the camera"
            )
            lines.append(
                "  - permission: `ls -l /dev/video*`; join the group shown there: sudo usermod -aG video $USER,"
            )
            lines.append("    then log out and back in")
        else:
            lines.append(f"There is no {VIDEO_DEV_DIR}/video* device. Check:")
            lines.append(
                "  - the camera is plugged in (try another USB port or cable); `dmesg | tail` shows what the"
            )
            lines.append("    kernel saw when you plugged it in")
            lines.append("  - inside a VM or container, the camera must be passed through to it")
    else:
        lines.append("Check that the camera is plugged in and that this terminal has camera permission")
        lines.append("(macOS: System Settings > Privacy & Security > Camera).")
    lines.append("No hardware? The simulator has front and wrist cameras: robotui --sim")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    console = Console(highlight=False, soft_wrap=True)
    targets = [_target(t) for t in args.target]
    cameras = find_cameras(targets or None)
    if not cameras:
        if args.json:
            print("[]")
        else:
            console.print(none_found_help(targets))
        return 0

    if not args.json:
        console.print(
            f"Found {len(cameras)} camera(s); streaming {args.record_time_s:g} s to take a picture from each…"
        )
    captures = capture_all(cameras, args.output_dir, args.record_time_s)
    failed = [c for c in captures if c.error]

    if args.json:
        out = []
        for c in captures:
            entry = c.info.as_dict()
            entry.update(
                image=str(c.image) if c.image else None, measured_fps=round(c.measured_fps, 2), error=c.error
            )
            out.append(entry)
        print(json.dumps(out, indent=2))
        return 1 if failed else 0

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("id", "backend", "default mode", "measured", "picture"):
        table.add_column(column, overflow="fold")
    for c in captures:
        measured = f"{c.measured_fps:.1f} fps" if c.image else "[red]no frame[/]"
        table.add_row(str(c.info.id), c.info.backend, str(c.info.mode), measured, str(c.image or c.error))
    console.print(table)
    for c in failed:
        console.print(f"[red]camera {c.info.id}:[/] {c.error}")
    if not failed:
        console.print(
            f"Pictures saved in {args.output_dir}. Use the id as index_or_path in the camera config, e.g. "
            f'{{"front": {{"type": "opencv", "index_or_path": {json.dumps(cameras[0].id)}, '
            f'"width": {cameras[0].mode.width}, "height": {cameras[0].mode.height}, "fps": {cameras[0].mode.fps:g}}}}}'
        )
    return 1 if failed else 0
