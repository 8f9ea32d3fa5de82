"""`robotui sim`: run the virtual SO-101 follower and leader on pseudo-terminals until Ctrl-C / SIGTERM.

For a user with no hardware, or for a second terminal: the ports it prints behave like two USB arms, so
`robotui` (or LeRobot) in another process finds, calibrates, teleoperates and records them. Calibration
files are written first, so the ids it prints connect without a calibration step.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from types import FrameType

from drivers.sim.virtual_robot import FOLLOWER_ID, LEADER_ID, VirtualSO101

STATUS_INTERVAL_S = 0.5


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sim",
        help="run a virtual SO-101 follower and leader (no hardware needed)",
        description=(
            "Start the simulated SO-101 follower and leader as emulated Feetech buses on pseudo-terminals, "
            "write their calibration files and print their ports. Runs until Ctrl-C or SIGTERM."
        ),
    )
    parser.add_argument(
        "--demo", action="store_true", help="the scripted demonstrator moves the leader, in a loop"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for the cube positions (default 0)")
    parser.add_argument(
        "--port-dir", default=None, help="folder for the ttyEMU-* port links (default: per user)"
    )
    parser.add_argument(
        "--calibration-dir",
        default=None,
        help="root of the calibration folder to write to (default: LeRobot's, HF_LEROBOT_CALIBRATION)",
    )
    parser.add_argument(
        "--uncalibrated",
        action="store_true",
        help="factory-fresh servos and no calibration files, to try the calibration workflow",
    )
    parser.add_argument("--json", action="store_true", help="print the ports and ids as one JSON line")
    parser.set_defaults(func=run)


def _describe(sim: VirtualSO101, paths: dict[str, str], calibrated: bool) -> list[str]:
    lines = [
        "Virtual SO-101 running (MuJoCo physics at "
        f"{1 / sim.world.model.opt.timestep:.0f} Hz, servos emulated on pseudo-terminals).",
        f"  follower  port {sim.follower_port}  type so101_follower  id {FOLLOWER_ID}",
        f"  leader    port {sim.leader_port}  type so101_leader  id {LEADER_ID}",
    ]
    if calibrated:
        lines.append("  calibration files (connect without calibrating):")
        lines += [f"    {p}" for p in paths.values()]
    else:
        lines.append("  servos are factory-fresh: run motor calibration on both arms first")
    lines.append("Press Ctrl-C to stop.")
    return lines


def run(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    sim = VirtualSO101(seed=args.seed, port_dir=args.port_dir, calibrated=not args.uncalibrated)
    try:
        with sim:
            paths: dict[str, str] = {}
            if not args.uncalibrated:
                paths = {
                    role: str(p) for role, p in sim.write_calibration_files(args.calibration_dir).items()
                }
            if args.json:
                info = {
                    "follower_port": sim.follower_port,
                    "leader_port": sim.leader_port,
                    "follower_id": FOLLOWER_ID,
                    "leader_id": LEADER_ID,
                    "calibration_files": paths,
                }
                print(json.dumps(info), flush=True)
            else:
                print("\n".join(_describe(sim, paths, not args.uncalibrated)), flush=True)
            if args.demo:
                sim.start_demo(loop=True)
            reported = 0
            while not stop.wait(STATUS_INTERVAL_S):
                status = sim.scripted_leader.status
                if args.demo and status.episodes != reported and not args.json:
                    reported = status.episodes
                    print(f"demonstrations: {status.episodes}, successful: {status.successes}", flush=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("virtual SO-101 stopped", file=sys.stderr, flush=True)
    return 0
