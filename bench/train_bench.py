"""Training bench: `robotui train` throughput for a fixed small ACT on a dataset recorded from the virtual robot.

Records a dataset with `robotui record --sim` (two 128x96 cameras, libx264), then reports:
- `loader`: samples/s of the data path alone (TrainingDataset + DataLoader: parquet columns, PyAV decoding at
  exact timestamps, action chunks), in-process and with worker processes;
- `cpu` (and `cuda` when a GPU is visible, with AMP): end-to-end `robotui train` samples/s, data_s, update_s
  and step_s from its metrics.jsonl, averaged over the second half of the run (the first half warms up).
Prints one JSON object; the default run takes under 2 minutes on a 2-core machine, --quick about half that.

    python bench/train_bench.py [--quick] [--steps N] [--batch-size B] [--workers W] [--threads T]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")

import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from engine.dataset.reader import LeRobotDatasetReader  # noqa: E402
from engine.dataset.training import TrainingDataset  # noqa: E402
from robotui.cli import main  # noqa: E402

CAMERA = {"type": "sim", "width": 128, "height": 96, "fps": 30}
# Small but not toy: ResNet-18 on two cameras, a 128-wide transformer, chunks of 20.
ACT = {"dim_model": 128, "n_heads": 4, "dim_feedforward": 512, "n_encoder_layers": 2, "n_decoder_layers": 1,
       "n_vae_encoder_layers": 2, "latent_dim": 32, "chunk_size": 20, "n_action_steps": 20,
       "pretrained_backbone_weights": "none"}


def record(root: Path, episodes: int, seconds: float) -> None:
    home = root.parent / "home"
    (home / "run").mkdir(parents=True, mode=0o700)
    env = {**os.environ, "HF_HOME": str(home / "hf"), "HF_LEROBOT_HOME": str(home / "hf" / "lerobot"),
           "XDG_CONFIG_HOME": str(home / "config"), "XDG_DATA_HOME": str(home / "data"),
           "XDG_CACHE_HOME": str(home / "cache"), "XDG_RUNTIME_DIR": str(home / "run")}
    cmd = [sys.executable, "-m", "robotui", "record", "--sim", "--episodes", str(episodes), "--episode-time",
           str(seconds), "--reset-time", "0.2", "--task", "pick the cube", "--vcodec", "libx264",
           "--dataset-root", str(root), "--cameras", json.dumps({"front": CAMERA, "wrist": CAMERA})]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"recording the bench dataset failed:\n{proc.stdout}\n{proc.stderr}")


def loader_rate(root: Path, batch_size: int, workers: int, batches: int) -> float:
    ds = TrainingDataset(LeRobotDatasetReader.open(root), chunk_size=ACT["chunk_size"])
    loader = DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=True,
                        persistent_workers=workers > 0, generator=torch.Generator().manual_seed(0))
    seen, it = 0, iter(loader)
    next(it)  # workers started, first containers open
    t0 = time.perf_counter()
    while seen < batches * batch_size:
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            continue
        seen += len(batch["index"])
    rate = seen / (time.perf_counter() - t0)
    ds.close()
    return rate


def train_rate(root: Path, out: Path, device: str, steps: int, batch_size: int, workers: int) -> dict[str, Any]:
    sets = [a for k, v in ACT.items() for a in ("--set", f"{k}={v}")]
    argv = ["train", "--dataset", str(root), "--output-dir", str(out), "--device", device, "--steps", str(steps),
            "--batch-size", str(batch_size), "--num-workers", str(workers), "--log-freq", str(steps // 2),
            "--save-freq", str(steps), *sets]
    log = io.StringIO()
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        code = main(argv)
    if code != 0:
        raise SystemExit(f"robotui train failed on {device}:\n{log.getvalue()}")
    last = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][-1]
    keys = ("samples_per_s", "step_s", "data_s", "prep_s", "update_s", "loss")
    result = {"device": device, "batch_size": batch_size, "num_workers": workers, "steps": steps,
              **{k: round(last[k], 4) for k in keys}}
    if "mem_gb" in last:
        result["mem_gb"] = round(last["mem_gb"], 3)
    return result


def run(quick: bool, steps: int | None, batch_size: int, workers: int) -> dict[str, Any]:
    steps = steps or (10 if quick else 20)
    with tempfile.TemporaryDirectory(prefix="train-bench-") as tmp:
        root = Path(tmp) / "ds"
        t0 = time.perf_counter()
        record(root, episodes=2, seconds=2.0 if quick else 4.0)
        reader = LeRobotDatasetReader.open(root)
        report: dict[str, Any] = {
            "dataset": {"frames": reader.total_frames, "episodes": reader.total_episodes,
                        "cameras": {k: reader.features[k]["shape"] for k in reader.camera_keys},
                        "record_s": round(time.perf_counter() - t0, 1)},
            "act": ACT,
            "torch": torch.__version__,
            "cpu_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "load_avg_before": [round(x, 2) for x in os.getloadavg()],
        }
        batches = 4 if quick else 10
        report["loader"] = {
            "batch_size": batch_size,
            "samples_per_s_in_process": round(loader_rate(root, batch_size, 0, batches), 1),
            f"samples_per_s_{workers}_workers": round(loader_rate(root, batch_size, workers, batches), 1),
        }
        report["cpu"] = train_rate(root, Path(tmp) / "cpu", "cpu", steps, batch_size, workers)
        report["cuda"] = (train_rate(root, Path(tmp) / "cuda", "cuda", steps * 5, batch_size * 4, workers)
                          if torch.cuda.is_available() else None)
        if torch.cuda.is_available():
            report["cuda"]["name"] = torch.cuda.get_device_name()
        report["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
        report["wall_s"] = round(time.perf_counter() - t0, 1)
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter recording and fewer steps")
    parser.add_argument("--steps", type=int, help="training steps per device (default 20, --quick 10)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (default 2)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's, one per core)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(json.dumps(run(args.quick, args.steps, args.batch_size, args.workers), indent=2))
