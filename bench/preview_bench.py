"""Preview bench: half-block camera preview frames actually painted per second, in a real terminal.

Each case runs the app in a child process on a pseudo-terminal of the tile's size (the parent drains and
counts the terminal output, like a terminal emulator would), with a synthetic 30 Hz camera of a moving
gradient plus σ=6 noise. Two sources per size: `cells` delivers frames at exactly the tile's pixel size,
so the noise survives and nearly every cell changes every frame (the worst case, as in the research
notes §D.2); `vga` delivers 640×480 frames, which the preview averages down like a real camera.

Prints one JSON object. `--quick` runs 3 s per case instead of 8 (about 40 s instead of 90).

    python bench/preview_bench.py [--quick] [--sizes 80x30,64x24,120x45] [--sources cells,vga]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import select
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from drivers.cameras.base import Camera  # noqa: E402

CAMERA_FPS = 30.0


class NoisyCamera(Camera):
    """A real Camera (reader thread, fps stats) producing a moving gradient with Gaussian noise at 30 Hz.
    Sixteen noise fields are drawn up front so generating frames costs the app almost no CPU."""

    def __init__(self, width: int, height: int, seed: int = 0) -> None:
        super().__init__("bench", width, height, CAMERA_FPS)
        rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        self._base = np.stack([xx * 255 / width, yy * 255 / height, (xx + yy) * 127 / (width + height)], -1)
        self._noise = [rng.normal(0, 6, self._base.shape).astype(np.float32) for _ in range(16)]
        self._i = 0
        self._next = 0.0

    def _open(self) -> None:
        self._next = time.perf_counter()

    def _grab(self) -> np.ndarray:
        self._next += 1.0 / self.fps
        delay = self._next - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        else:
            self._next = time.perf_counter()
        shift = (self._i * 3) % self._base.shape[1]
        frame = np.roll(self._base, shift, axis=1) + self._noise[self._i % len(self._noise)]
        self._i += 1
        return np.clip(frame, 0, 255).astype(np.uint8)

    def _close(self) -> None:
        pass


# ----------------------------------------------------------------------------------------- the child


def run_child(cols: int, rows: int, source: str, seconds: float, out: Path) -> None:
    """Runs inside the pty: one full-screen CameraPreview; writes its counters to `out` as JSON."""
    from textual.app import App, ComposeResult

    from screens.widgets.camera_preview import CameraPreview

    width, height = (cols, rows * 2) if source == "cells" else (640, 480)
    camera = NoisyCamera(width, height)

    class BenchApp(App[None]):
        CSS = "Screen { overflow: hidden; } CameraPreview { width: 100%; height: 100%; }"

        def compose(self) -> ComposeResult:
            yield CameraPreview(camera, fps=30.0)

        def on_mount(self) -> None:
            self.set_timer(1.5, self.start_window)

        def start_window(self) -> None:
            preview = self.query_one(CameraPreview)
            self.t0 = time.perf_counter()
            self.m0 = time.monotonic()  # system-wide clock: the parent counts terminal bytes in this window
            self.c0 = time.process_time()
            self.start = (
                preview.frames_painted,
                preview.frames_converted,
                preview.convert_seconds,
                camera.stats.frames,
            )
            self.set_timer(seconds, self.end_window)

        def end_window(self) -> None:
            preview = self.query_one(CameraPreview)
            elapsed = time.perf_counter() - self.t0
            painted = preview.frames_painted - self.start[0]
            converted = preview.frames_converted - self.start[1]
            out.write_text(
                json.dumps(
                    {
                        "tile_cells": [preview.content_size.width, preview.content_size.height],
                        "painted_fps": round(painted / elapsed, 1),
                        "converted_fps": round(converted / elapsed, 1),
                        "convert_ms": round(
                            1000 * (preview.convert_seconds - self.start[2]) / max(converted, 1), 2
                        ),
                        "camera_fps": round((camera.stats.frames - self.start[3]) / elapsed, 1),
                        "cpu_share": round((time.process_time() - self.c0) / elapsed, 2),
                        "cached_styles": preview.converter.cached_styles,
                        "window": [self.m0, time.monotonic()],
                    }
                )
            )
            self.exit()

    camera.connect()
    try:
        BenchApp().run()
    finally:
        camera.disconnect()


# ---------------------------------------------------------------------------------------- the parent


def run_case(cols: int, rows: int, source: str, seconds: float) -> dict[str, Any]:
    """Start the child on a pty of the tile's size (plus the border) and drain its output."""
    term_cols, term_rows = cols + 2, rows + 2
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", term_rows, term_cols, 0, 0))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        env = dict(os.environ, TERM="xterm-256color", COLORTERM="truecolor")
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            f"{cols}x{rows}",
            "--sources",
            source,
            "--seconds",
            str(seconds),
            "--out",
            str(out),
        ]
        # Textual draws on stderr, so the pty is stderr too; the child reports failures through `out`.
        child = subprocess.Popen(
            cmd, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT, start_new_session=True
        )
        os.close(slave)
        chunks: list[tuple[float, int]] = []
        deadline = time.monotonic() + seconds + 60
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([master], [], [], 0.2)
                if ready:
                    try:
                        chunk = os.read(master, 1 << 16)
                    except OSError:  # EIO: the child closed the terminal
                        break
                    if not chunk:
                        break
                    chunks.append((time.monotonic(), len(chunk)))
                elif child.poll() is not None:
                    break
        finally:
            os.close(master)
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if not out.exists():
            raise RuntimeError(
                f"{cols}x{rows} {source}: the child wrote no result (exit code {child.returncode})"
            )
        result = json.loads(out.read_text())
        if "error" in result:
            raise RuntimeError(f"{cols}x{rows} {source}: child failed:\n{result['error']}")
    start, end = result.pop("window")
    window_bytes = sum(n for t, n in chunks if start <= t <= end)
    result["terminal_mib_per_s"] = round(window_bytes / (end - start) / 2**20, 2)
    result["source"] = source
    return result


def parse_size(text: str) -> tuple[int, int]:
    cols, _, rows = text.partition("x")
    return int(cols), int(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s per case instead of 8")
    parser.add_argument("--sizes", default="80x30,64x24,120x45")
    parser.add_argument("--sources", default="cells,vga")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--child", metavar="COLSxROWS", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    seconds = args.seconds or (3.0 if args.quick else 8.0)
    if args.child:
        try:
            run_child(*parse_size(args.child), args.sources, seconds, args.out)
        except BaseException:
            import traceback

            args.out.write_text(json.dumps({"error": traceback.format_exc()}))
            raise
        return
    started = time.perf_counter()
    cases = []
    for size in args.sizes.split(","):
        cols, rows = parse_size(size)
        for source in args.sources.split(","):
            cases.append({"size": size, **run_case(cols, rows, source, seconds)})
    import textual

    print(
        json.dumps(
            {
                "bench": "camera preview (half-block, real pty)",
                "textual": textual.__version__,
                "cpu_count": os.cpu_count(),
                "load_avg_1m": round(os.getloadavg()[0], 2),
                "camera_fps": CAMERA_FPS,
                "seconds_per_case": seconds,
                "target_painted_fps_80x30": 10,
                "cases": cases,
                "wall_s": round(time.perf_counter() - started, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
