"""`robotui replay`: play one recorded episode's actions back on the follower (the twin of `lerobot-replay`).

The dataset and episode are checked before anything moves: an episode that does not exist names the valid
range, a dataset recorded on other joints names both lists. The arm glides to the episode's first action,
replays it at the dataset's fps (or `--fps`), and is released (torque off) at the end, on Ctrl-C (exit 130)
and on SIGTERM (exit 143). Exit 1: the replay failed; 2: bad command line, profile, dataset or episode.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
from rich.console import Console
from rich.markup import escape

from engine.dataset.reader import DatasetError, LeRobotDatasetReader
from engine.profile import ProfileError
from engine.replay import Replay, ReplayError, ReplaySnapshot, load_episode_actions
from engine.session import Session
from robotui.commands.record import (
    EXIT_FAILED,
    EXIT_USAGE,
    SETUP_ERRORS,
    SignalStop,
    add_profile_flags,
    require_calibrated,
    resolve_profile,
)

PROGRESS_INTERVAL_S = 1.0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="replay a recorded episode's actions on the follower",
        description=(
            "Play the `action` column of one episode back on the follower at the dataset's fps, then release "
            "the arm. The dataset can be a folder or a Hub repo id (read from the local cache)."
        ),
    )
    parser.add_argument("--dataset", required=True, metavar="ROOT_OR_ID", help="dataset folder or repo id")
    parser.add_argument("--episode", type=int, required=True, metavar="K", help="episode index to replay")
    parser.add_argument("--fps", type=float, default=None, metavar="F",
                        help="replay rate (default: the dataset's fps; lower is slower and gentler)")
    add_profile_flags(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        if args.fps is not None and args.fps <= 0:
            raise ReplayError(f"--fps must be positive, got {args.fps:g}")
        profile = replace(resolve_profile(args), cameras={})  # replay needs no camera
        reader = LeRobotDatasetReader.open(args.dataset)
        if args.episode not in reader.episode_indices:
            reader.episode(args.episode)  # raises IndexError naming the valid episodes
    except (ProfileError, ReplayError, DatasetError, OSError, IndexError) as e:
        err.print(f"[bold red]robotui replay:[/] {escape(str(e))}")
        return EXIT_USAGE
    stop = SignalStop()
    session = Session(profile)
    try:
        try:
            session.start()
            robot = session.build_robot()
            episode = load_episode_actions(reader, args.episode, robot)  # checked before anything moves
            session.connect(teleop=False)
            require_calibrated(robot)
        except ReplayError as e:
            err.print(f"[bold red]robotui replay:[/] {escape(str(e))}")
            return EXIT_USAGE
        except SETUP_ERRORS as e:
            err.print(f"[bold red]robotui replay: cannot start:[/] {escape(str(e))}")
            return EXIT_FAILED
        if episode.robot_type and episode.robot_type != robot.name:
            out.print(f"note: the dataset was recorded on {escape(episode.robot_type)}, this is {robot.name}")
        stop.install()
        replay = Replay(robot, episode, fps=args.fps)
        out.print(f"replaying episode {episode.episode} of {escape(str(reader.root))}: {len(episode.actions)} "
                  f"frames at {replay.fps:g} fps on {escape(robot.label)} (Ctrl-C stops and releases the arm)")
        replay.start()
        next_progress = time.monotonic() + PROGRESS_INTERVAL_S
        while not replay.finished and not stop.event.wait(0.1):
            if time.monotonic() >= next_progress:
                next_progress += PROGRESS_INTERVAL_S
                out.print(progress_line(replay.snapshot()))
        replay.stop()  # torque off (a no-op wait when it already ended)
        snap = replay.snapshot()
        if snap.error:
            err.print(f"[bold red]replay stopped:[/] {escape(snap.error)} (torque released)")
            return EXIT_FAILED
        out.print(summary_line(snap, episode.names, episode.actions[-1]))
        return stop.exit_code if stop.event.is_set() else 0
    finally:
        stop.restore()
        session.close()


def progress_line(snap: ReplaySnapshot) -> str:
    loop = snap.loop
    rate = f"{loop.achieved_hz:.1f} Hz p99 {loop.period_p99_ms:.1f} ms" if loop and loop.ticks > 1 else "starting"
    return f"  frame {snap.frame}/{snap.total} {snap.phase.value:<8} | loop {rate}"


def summary_line(snap: ReplaySnapshot, names: tuple[str, ...], last_action: np.ndarray) -> str:
    text = f"replayed {snap.frame}/{snap.total} frames; torque released"
    if snap.final_positions is not None and snap.frame == snap.total:
        gaps = {
            n: abs(snap.final_positions[n.removesuffix(".pos")] - float(v))
            for n, v in zip(names, last_action, strict=True)
        }
        worst = max(gaps, key=lambda n: gaps[n])
        text += f"; final pose within {gaps[worst]:.1f} of the last action (worst: {worst})"
    return text
