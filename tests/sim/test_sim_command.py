"""`robotui sim` as a user runs it: a subprocess that prints its ports and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

from drivers.calibration import load_calibration
from drivers.motors.feetech import FeetechBus
from drivers.robots.so import so_motors

ROOT = Path(__file__).resolve().parents[2]


def read_line(proc: subprocess.Popen[str], timeout: float = 60.0) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "robotui sim printed nothing"
    return proc.stdout.readline()


def test_sim_command_prints_ports_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "robotui",
            "sim",
            "--json",
            "--port-dir",
            str(tmp_path / "ports"),
            "--calibration-dir",
            str(tmp_path / "cal"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        info = json.loads(read_line(proc))
        follower, leader = Path(info["follower_port"]), Path(info["leader_port"])
        assert follower.is_symlink() and os.path.realpath(follower).startswith("/dev/pts/")
        assert (
            leader.is_symlink()
            and info["follower_id"] == "sim_follower"
            and info["leader_id"] == "sim_leader"
        )
        cal_file = Path(info["calibration_files"]["follower"])
        assert cal_file == tmp_path / "cal/robots/so_follower/sim_follower.json"
        bus = FeetechBus(str(follower), so_motors(), calibration=load_calibration(cal_file, so_motors()))
        bus.connect()
        try:
            assert bus.is_calibrated
        finally:
            bus.disconnect()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stopped" in err
    assert not follower.exists() and not leader.exists()
