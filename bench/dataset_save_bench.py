"""Dataset writer bench: per-frame cost on the control thread, encoder backlog, and save latency per episode.

Records real-time paced episodes (two 640x480 cameras at 30 fps by default) through `DatasetWriter`, with
streaming encoding, and reports how long `save_episode` takes after each episode ends (the target is
<= 0.5 s). A second part measures appending an episode to an already large video/data file: the copy of
the existing content runs in the background during capture, so the save itself should not grow with it.
Prints one JSON object. `--quick` records shorter and fewer episodes.

    python bench/dataset_save_bench.py [--quick] [--codec libsvtav1 libx264]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pyarrow as pa

from engine.dataset import format as fmt
from engine.dataset.format import INTERVENTION_FEATURE, build_features
from engine.dataset.video import (
    Segment,
    StreamingEncoder,
    VideoAppender,
    VideoEncoding,
    remux,
)
from engine.dataset.writer import DatasetWriter, _ParquetAppender

JOINTS = [
    f"{m}.pos" for m in ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
]


def camera_frames(h: int, w: int, n: int, seed: int) -> list[np.ndarray]:
    """A gradient scene with a moving square and mild sensor noise: compresses like a real camera, unlike
    solid colours (too easy) or pure noise (far too hard)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 255 // (w + h)], axis=-1).astype(np.int16)
    frames = []
    for i in range(n):
        img = base + rng.integers(-6, 7, size=base.shape, dtype=np.int16)
        x0, y0 = (i * 7) % (w - 60), (i * 3) % (h - 60)
        img[y0 : y0 + 60, x0 : x0 + 60] = (200, 40, 40)
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


def record_session(codec: str, args: argparse.Namespace, cams: dict[str, list[np.ndarray]]) -> dict[str, Any]:
    h, w = cams[next(iter(cams))][0].shape[:2]
    features = build_features(JOINTS, {c: (h, w) for c in cams}, extra={"intervention": INTERVENTION_FEATURE})
    n_frames = round(args.seconds * args.fps)
    episodes = []
    with tempfile.TemporaryDirectory(prefix="robotui-bench-") as tmp:
        root = Path(tmp) / "ds"
        writer = DatasetWriter.create(root, args.fps, features, "so_follower", vcodec=codec)
        period = 1.0 / args.fps
        for _ in range(args.episodes):
            t0 = time.perf_counter()
            writer.begin_episode("pick the cube")
            begin_ms = (time.perf_counter() - t0) * 1000
            add_ms: list[float] = []
            max_depth, max_lag, late_ticks = 0, 0.0, 0
            start = time.perf_counter()
            for i in range(n_frames):
                deadline = start + i * period
                delay = deadline - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                elif delay < -period:
                    late_ticks += 1
                state = np.sin(np.arange(6, dtype=np.float32) + i / 30).astype(np.float32)
                frame: dict[str, Any] = {"action": state, "observation.state": state, "intervention": False}
                for name, frames in cams.items():
                    frame[f"observation.images.{name}"] = frames[i % len(frames)]
                t0 = time.perf_counter()
                writer.add_frame(frame)
                add_ms.append((time.perf_counter() - t0) * 1000)
                max_depth = max([max_depth, *(s.queue_depth for s in writer.camera_status())])
                max_lag = max(max_lag, writer.encoder_lag_s)
            capture_s = time.perf_counter() - start
            tail_depth = max(s.queue_depth for s in writer.camera_status())
            t0 = time.perf_counter()
            info = writer.save_episode()
            save_s = time.perf_counter() - t0
            episodes.append(
                {
                    "episode": info.episode_index,
                    "frames": info.length,
                    "capture_s": round(capture_s, 3),
                    "late_ticks": late_ticks,
                    "begin_episode_ms": round(begin_ms, 3),
                    "add_frame_ms_mean": round(float(np.mean(add_ms)), 3),
                    "add_frame_ms_p99": round(pct(add_ms, 99), 3),
                    "add_frame_ms_max": round(max(add_ms), 3),
                    "max_queue_depth": max_depth,
                    "queue_depth_at_end": tail_depth,
                    "max_encoder_lag_s": round(max_lag, 3),
                    "save_latency_s": round(save_s, 3),
                    "encoder_flush_s": round(info.flush_s, 3),
                }
            )
        writer.finalize()
        sizes = {
            name: sum(
                p.stat().st_size for p in (root / "videos" / f"observation.images.{name}").rglob("*.mp4")
            )
            for name in cams
        }
    saves = [e["save_latency_s"] for e in episodes]
    return {
        "codec": codec,
        "episodes": episodes,
        "save_latency_s_max": max(saves),
        "save_latency_s_mean": round(float(np.mean(saves)), 3),
        "video_mb_per_camera_minute": round(
            float(np.mean(list(sizes.values()))) / 2**20 / (args.episodes * args.seconds / 60), 2
        ),
        "meets_0_5_s": max(saves) <= 0.5,
    }


def large_file_cost(cams: dict[str, list[np.ndarray]], sizes_mb: list[float]) -> dict[str, Any]:
    """What appending one episode costs when the current video/data file is already large.

    The copy of the existing content runs in the background while the episode is recorded
    (`background_copy_s`, CPU spent during capture); the save itself only pays `save_append_s`.
    """
    h, w = cams[next(iter(cams))][0].shape[:2]
    frames = cams[next(iter(cams))]
    out: dict[str, Any] = {"video": [], "data": []}
    with tempfile.TemporaryDirectory(prefix="robotui-bench-") as tmp:
        tmpdir = Path(tmp)
        enc = StreamingEncoder(
            tmpdir / "ep.mp4",
            fps=30,
            width=w,
            height=h,
            encoding=VideoEncoding("libx264").resolved(),
            queue_cap=10**6,
        )
        for i in range(90):
            enc.put(frames[i % len(frames)])
        episode = enc.finish().path
        big, total = tmpdir / "big.mp4", 0
        for target in sizes_mb:
            if not big.exists():
                total = remux([Segment(episode)], big, 30)
            while big.stat().st_size / 2**20 < target:  # double it by stream copy
                total = remux([Segment(big, total), Segment(big, total)], tmpdir / "grow.mp4", 30)
                os.replace(tmpdir / "grow.mp4", big)
            t0 = time.perf_counter()
            app = VideoAppender(tmpdir / "out.mp4", 30, Segment(big, total))
            app._thread.join()
            t1 = time.perf_counter()
            app.append(episode)
            fmt.commit(tmpdir / "out.mp4", tmpdir / "final.mp4")
            out["video"].append(
                {
                    "file_mb": round(big.stat().st_size / 2**20, 1),
                    "frames": total,
                    "background_copy_s": round(t1 - t0, 3),
                    "save_append_s": round(time.perf_counter() - t1, 3),
                }
            )
        features = build_features(JOINTS, {})
        schema = fmt.data_schema(features)
        rng = np.random.default_rng(0)

        def episode_table(first: int, n: int = 900) -> pa.Table:
            idx = np.arange(first, first + n, dtype=np.int64)
            vec = pa.FixedSizeListArray.from_arrays(pa.array(rng.normal(size=n * 6).astype(np.float32)), 6)
            cols = {
                "action": vec,
                "observation.state": vec,
                "timestamp": pa.array((np.arange(n) / 30).astype(np.float32)),
                "frame_index": pa.array(np.arange(n, dtype=np.int64)),
                "episode_index": pa.array(idx // n),
                "index": pa.array(idx),
                "task_index": pa.array(np.zeros(n, np.int64)),
            }
            return pa.table(cols, schema=schema)

        tables: list[pa.Table] = []
        for target in sizes_mb:
            while sum(t.nbytes for t in tables) / 2**20 < target * 1.3:  # in memory ~1.3x the parquet size
                tables.append(episode_table(len(tables) * 900))
            t0 = time.perf_counter()
            app = _ParquetAppender(tmpdir / "d.parquet", schema, tables)
            app._thread.join()
            t1 = time.perf_counter()
            fmt.commit(app.append(episode_table(len(tables) * 900)), tmpdir / "d.parquet")
            out["data"].append(
                {
                    "file_mb": round((tmpdir / "d.parquet").stat().st_size / 2**20, 1),
                    "rows": (len(tables) + 1) * 900,
                    "background_copy_s": round(t1 - t0, 3),
                    "save_append_s": round(time.perf_counter() - t1, 3),
                }
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--codec", nargs="+", default=["libsvtav1", "libx264"])
    ap.add_argument("--cameras", type=int, default=2)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--episodes", type=int)
    ap.add_argument("--seconds", type=float)
    args = ap.parse_args()
    args.episodes = args.episodes or (2 if args.quick else 4)
    args.seconds = args.seconds or (4.0 if args.quick else 15.0)
    cams = {f"cam{i}": camera_frames(args.height, args.width, 30, seed=i) for i in range(args.cameras)}
    result: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "cameras": args.cameras,
        "resolution": f"{args.width}x{args.height}",
        "fps": args.fps,
        "episode_s": args.seconds,
        "sessions": [record_session(codec, args, cams) for codec in args.codec],
        "large_file_cost": large_file_cost(cams, [4.0, 16.0] if args.quick else [8.0, 32.0, 64.0]),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
