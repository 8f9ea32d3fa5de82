"""A scripted training run for the launcher tests: real output in the real formats, no model.

Prints LeRobot's console lines (lerobot-interop.md §7.1) to stdout and a tqdm-style "Training" bar with "\\r"
to stderr, appends metrics.jsonl, writes LeRobot's checkpoint tree (safetensors model, `last` symlink),
and keeps a child process (a stand-in for dataloader workers) in its process group. It reads the flags
lerobot-train and `robotui train` get (`--output_dir=D` / `--output-dir D`, `--steps`), ignoring the rest,
plus its own:
  --gate FILE       after half the steps print "waiting for gate" and wait until FILE exists
  --hold            after the last step print "holding" and sleep until killed
  --exit N          exit status
  --argv-file FILE  write its argv as JSON there first
  --delay S         seconds per step
Every line it writes is also recorded (text, ended by "\\r") in <output>/printed.json at the end, so a test
can compare what it followed with what was written.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file


def flag(argv: list[str], *names: str, default: str | None = None) -> str | None:
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return default


def main(argv: list[str]) -> int:
    if "--argv-file" in argv:
        Path(flag(argv, "--argv-file")).write_text(json.dumps(argv))
    out = Path(flag(argv, "--output_dir", "--output-dir", default="out"))
    out.mkdir(parents=True, exist_ok=True)
    steps = int(flag(argv, "--steps", default="20"))
    delay = float(flag(argv, "--delay", default="0"))
    gate = flag(argv, "--gate")
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    (out / "worker.pid").write_text(str(worker.pid))
    printed: list[tuple[str, bool]] = []

    def say(text: str, stream=sys.stdout, redraw: bool = False) -> None:
        stream.write(text + ("\r" if redraw else "\n"))
        stream.flush()
        printed.append((text, redraw))

    say("INFO 2026-08-20 10:00:00 ot_train.py:120 Creating dataset")
    with open(out / "metrics.jsonl", "a") as metrics:
        for step in range(1, steps + 1):
            if gate and step == steps // 2 + 1:
                say("waiting for gate")
                while not Path(gate).exists():
                    time.sleep(0.02)
            loss = 3.0 / step
            bar = "#" * (10 * step // steps)
            clock = f"00:{step % 60:02d}<00:{(steps - step) % 60:02d}"
            say(
                f"Training: {100 * step // steps:3d}%|{bar:<10}| {step}/{steps} [{clock}, 12.50it/s]",
                sys.stderr,
                redraw=True,
            )
            if step % 5 == 0:
                say(
                    f"INFO 2026-08-20 10:00:{step % 60:02d} ot_train.py:769 step:{step} smpl:{step * 8} "
                    f"ep:{step // 10} epch:{step / 100:.2f} loss:{loss:.3f} grdn:{10 / step:.3f} lr:1.0e-05 "
                    "data_s:0.010 prep_s:0.002 updt_s:0.150 step_s:0.170 smp/s:47 "
                    f"l1_loss:{loss / 2:.3f} kld_loss:{loss / 20:.3f}"
                )
                metrics.write(
                    json.dumps({"step": step, "loss": loss, "lr": 1e-5, "grad_norm": 10 / step}) + "\n"
                )
                metrics.flush()
            time.sleep(delay)
    for step in sorted({steps // 2, steps}):
        model = out / "checkpoints" / f"{step:06d}" / "pretrained_model"
        model.mkdir(parents=True, exist_ok=True)
        save_file({"weight": np.full((4, 4), step, dtype=np.float32)}, str(model / "model.safetensors"))
        (model / "config.json").write_text(json.dumps({"type": "act", "step": step}))
        link = out / "checkpoints" / "last.tmp"
        link.unlink(missing_ok=True)
        link.symlink_to(f"{step:06d}")
        link.replace(out / "checkpoints" / "last")
    (out / "printed.json").write_text(json.dumps(printed))
    if "--hold" in argv:
        say("holding")
        (out / "printed.json").write_text(json.dumps(printed))
        time.sleep(600)
    worker.kill()
    worker.wait()
    return int(flag(argv, "--exit", default="0"))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
