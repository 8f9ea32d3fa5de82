"""Soak: SIGKILL real `robotui record --sim` processes at many random moments (connecting, mid-episode, while
an episode is saved, during the reset), then repair and validate each dataset. Every run must keep every
episode the process had reported saved, whole, and validate. Prints one JSON object.

    python bench/soak.py [--quick] [--kills N] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")

from tests.kill_recording import MOMENTS, kill_recording


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 kills, one per kind of moment")
    ap.add_argument("--kills", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    moments = list(MOMENTS) if args.quick else [MOMENTS[i % len(MOMENTS)] for i in range(args.kills)]
    rng.shuffle(moments)
    results = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="robotui-soak-") as tmp:
        for i, moment in enumerate(moments):
            episode = rng.randint(1, 3)
            r = kill_recording(Path(tmp) / f"ds{i}", moment, rng, episode=episode)
            results.append({"moment": moment, "episode": episode, "delay_s": round(r.delay_s, 3),
                            "saved_before_kill": r.saved_before_kill,
                            "episodes_after_repair": r.episodes_after_repair, "ok": r.ok,
                            "problems": list(r.problems)})
    print(json.dumps({
        "bench": "soak",
        "kills": len(results),
        "by_moment": dict(Counter(r["moment"] for r in results)),
        "all_ok": all(r["ok"] for r in results),
        "failures": [r for r in results if not r["ok"]],
        "episodes_kept": sum(r["episodes_after_repair"] for r in results),
        "wall_s": round(time.perf_counter() - t0, 1),
        "runs": results,
    }, indent=2))


if __name__ == "__main__":
    main()
