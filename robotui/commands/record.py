"""`robotui record`: record teleoperated episodes into a LeRobotDataset v3.0, headless (the twin of the
Record screen and of `lerobot-record`, with LeRobot's defaults: 50 episodes of 60 s, 60 s resets, fps from
the profile).

With `--sim` the scripted demonstrator moves the virtual leader, so a run with no hardware and no person
still yields real pick-and-place demonstrations. Output is one line per phase change and a progress line
about once a second, so it reads well over SSH and in a log file.

Stopping: Ctrl-C (SIGINT) or SIGTERM saves the episode in progress, finalizes the dataset and releases the
arm, then exits with 130 (SIGINT) or 143 (SIGTERM), the shell convention for "ended by a signal", so a
script chaining `record && push` does not push a run that was cut short. Everything recorded is kept and
valid. Exit 0: all episodes recorded; 1: the recording or the push failed (saved episodes are kept);
2: the command line or profile is unusable (nothing was started).
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console
from rich.markup import escape

from drivers.calibration import CalibrationFileError
from drivers.cameras.base import CameraError
from drivers.motors.bus import BusError, NotCalibratedError
from drivers.robots.base import Arm
from drivers.robots.registry import UnknownTypeError
from engine.dataset.format import INFO_PATH, DatasetBusyError, read_json
from engine.dataset.hub import HubError, push_dataset
from engine.dataset.reader import DatasetError
from engine.dataset.video import EncoderError, VideoEncoding
from engine.dataset.writer import DatasetMismatchError
from engine.profile import Profile, ProfileError, apply_overrides, load_profiles, sim_profile
from engine.recorder import Phase, Recorder, RecorderSnapshot, RecordSettings
from engine.session import Session

DEFAULT_VCODEC = "libsvtav1"
PROGRESS_INTERVAL_S = 1.0
EXIT_USAGE = 2
EXIT_FAILED = 1

# Errors whose message already says what is wrong and what to do (every driver/engine layer writes them so).
SETUP_ERRORS: tuple[type[BaseException], ...] = (
    BusError,
    CameraError,
    CalibrationFileError,
    UnknownTypeError,
    DatasetError,
    DatasetBusyError,
    EncoderError,
    OSError,
    ValueError,
    RuntimeError,
)


class UsageError(ValueError):
    """A bad command line or profile: nothing was started."""


# ------------------------------------------------------------------------------------- shared with replay


def add_profile_flags(parser: argparse.ArgumentParser) -> None:
    """`--sim` and the profile overrides, also accepted after the subcommand. SUPPRESS keeps a value given
    before the subcommand (parsed by robotui/cli.py into the same attribute) from being reset to None."""
    parser.add_argument("--sim", action="store_true", default=argparse.SUPPRESS,
                        help="use the simulated SO-101 (no hardware needed)")
    over = parser.add_argument_group("profile overrides (this run only)")
    for flag, hint in (
        ("--robot-type", "follower type, e.g. so101_follower, koch_follower"),
        ("--robot-port", "follower port, e.g. /dev/ttyACM0 (robotui find-port)"),
        ("--robot-id", "follower id: names its calibration file"),
        ("--teleop-type", "leader type, e.g. so101_leader, or keyboard"),
        ("--teleop-port", "leader port"),
        ("--teleop-id", "leader id: names its calibration file"),
    ):
        over.add_argument(flag, default=argparse.SUPPRESS, help=hint)
    over.add_argument("--cameras", default=argparse.SUPPRESS, metavar="JSON",
                      help='e.g. {"front": {"type": "opencv", "index_or_path": 0}}; {} for none')


def resolve_profile(args: argparse.Namespace) -> Profile:
    """The profile to run with, as the app chooses it: `--profile NAME`, else with --sim the saved "sim"
    profile or the built-in one (even when the profiles file is broken), else the active one; then the
    command-line overrides. Raises ProfileError with the file, line or flag to fix."""
    sim = bool(getattr(args, "sim", False))
    name = getattr(args, "profile", None)
    try:
        store = load_profiles()
    except ProfileError:
        if not sim or name is not None:
            raise
        store = None
    if name is not None:
        assert store is not None
        if name not in store.profiles:
            raise ProfileError(f"no profile called {name!r} (profiles: {', '.join(store.profiles)})")
        profile = store.profiles[name]
    elif sim:
        saved = store.profiles.get("sim") if store is not None else None
        profile = saved if saved is not None and saved.sim else sim_profile()
    else:
        assert store is not None
        profile = store.active_profile
    return apply_overrides(profile, args)


def require_calibrated(arm: Arm | None) -> None:
    """A connected but uncalibrated arm reads nothing in user units: say so before anything moves."""
    if arm is None or arm.is_calibrated:
        return
    raise NotCalibratedError(
        f"{arm.label} is not calibrated (no calibration file at {arm.calibration_fpath}): "
        f"{arm.calibrate_hint}, or pass --robot-id/--teleop-id of an arm that is"
    )


class SignalStop:
    """SIGINT/SIGTERM set an event instead of killing the process, so the main thread can save, finalize
    and release the arm. Installed after the arms connect: the safety module installs its own SIGTERM
    handler at connect, which would release the arms first (and the episode in progress with them)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # embedded callers (tests in threads) keep their own handling
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[int(sig)] = signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
        self.event.set()

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signum or 0)


# ------------------------------------------------------------------------------------------ the command


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "record",
        help="record teleoperated episodes into a LeRobot v3.0 dataset",
        description=(
            "Record episodes (record, then reset, then the next) into a LeRobotDataset v3.0. With --sim the "
            "scripted demonstrator drives the virtual leader. Ctrl-C or SIGTERM saves the episode in progress "
            "and finalizes the dataset (exit 130 / 143)."
        ),
    )
    parser.add_argument("--episodes", type=int, default=50, dest="num_episodes", metavar="N",
                        help="episodes to record (default 50)")
    parser.add_argument("--episode-time", type=float, default=60.0, metavar="S",
                        help="seconds per episode (default 60)")
    parser.add_argument("--reset-time", type=float, default=60.0, metavar="S",
                        help="seconds to reset the scene between episodes (default 60)")
    parser.add_argument("--task", help="what the robot does, stored with each episode (e.g. 'pick the cube')")
    # Its own dest: the global --dataset-root (before the subcommand) is the profile's parent folder.
    parser.add_argument("--dataset-root", dest="record_root", metavar="DIR",
                        help="the dataset folder (default with --repo-id: <profile dataset_root or "
                        "$HF_LEROBOT_HOME>/<repo-id>)")
    parser.add_argument("--repo-id", metavar="OWNER/NAME", help="Hub repo id, stored with the dataset")
    parser.add_argument("--resume", action="store_true", help="append episodes to the existing dataset")
    parser.add_argument("--push", action="store_true", help="push the dataset to the Hub at the end")
    parser.add_argument("--private", action="store_true", help="with --push: create the repo private")
    parser.add_argument("--fps", type=int, default=None, metavar="F",
                        help="frames per second (default: the profile's record_fps, 30; the dataset's with --resume)")
    parser.add_argument("--vcodec", default=None, metavar="C",
                        help="video codec: libsvtav1 (default), libx264, h264, hevc, auto")
    parser.add_argument("--no-demo", dest="demo", action="store_false",
                        help="sim only: the scripted demonstrator does not move the leader")
    add_profile_flags(parser)
    parser.set_defaults(func=run)


def dataset_root(args: argparse.Namespace, profile: Profile) -> Path:
    root = args.record_root
    if root:
        return Path(root).expanduser()
    if args.repo_id:
        return profile.dataset_root_path() / args.repo_id
    raise UsageError("say where to record: --dataset-root DIR (or --repo-id OWNER/NAME to record under "
                     f"{profile.dataset_root_path()}/OWNER/NAME)")


def check_root(root: Path, resume: bool) -> int | None:
    """Refuse before anything starts: a dataset folder is never overwritten, and --resume needs one.
    Returns the dataset's fps when resuming."""
    has_info = (root / INFO_PATH).is_file()
    if resume:
        if not has_info:
            raise UsageError(f"nothing to resume at {root} (no {INFO_PATH}): drop --resume to start a new "
                             "dataset there")
        try:
            return int(read_json(root / INFO_PATH)["fps"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise UsageError(f"cannot read {root / INFO_PATH} ({e!r}): run `robotui dataset check {root}`") from e
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        if has_info:
            raise UsageError(f"{root} already holds a dataset: add --resume to append episodes to it, or pick "
                             "a new --dataset-root")
        raise UsageError(f"{root} exists and is not an empty folder: pick a new --dataset-root")
    return None


def build_settings(args: argparse.Namespace) -> RecordSettings:
    if not (args.task or "").strip():
        raise UsageError("a task description is required: --task 'pick the cube' (it is stored with each "
                         "episode and conditions language policies)")
    try:
        return RecordSettings(args.num_episodes, args.episode_time, args.reset_time, args.task.strip())
    except ValueError as e:
        raise UsageError(str(e)) from e


def run(args: argparse.Namespace) -> int:
    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        settings = build_settings(args)
        profile = resolve_profile(args)
        root = dataset_root(args, profile)
        dataset_fps = check_root(root, args.resume)
        if args.push and not args.repo_id:
            raise UsageError("--push needs --repo-id OWNER/NAME (the Hub dataset to push to)")
        if args.fps is not None and args.fps < 1:
            raise UsageError(f"--fps must be a whole number of frames per second >= 1, got {args.fps}")
        # On resume, no --vcodec means "the dataset's own codec"; a different one is refused by the writer.
        vcodec = args.vcodec if args.resume else (args.vcodec or DEFAULT_VCODEC)
        if vcodec and profile.cameras:
            VideoEncoding(vcodec=vcodec).resolved()  # an unknown encoder fails now, not after connecting
    except (ProfileError, UsageError, EncoderError) as e:
        err.print(f"[bold red]robotui record:[/] {escape(str(e))}")
        return EXIT_USAGE
    fps = args.fps or dataset_fps or profile.record_fps
    if dataset_fps is not None and args.fps is None:
        out.print(f"resuming {escape(str(root))} at its {dataset_fps} fps")
    return _record(args, profile, settings, root, fps, vcodec, out, err)


def _record(
    args: argparse.Namespace,
    profile: Profile,
    settings: RecordSettings,
    root: Path,
    fps: int,
    vcodec: str | None,
    out: Console,
    err: Console,
) -> int:
    stop = SignalStop()
    session = Session(profile)
    try:
        try:
            session.start()
            session.connect()
            require_calibrated(session.robot)
            require_calibrated(session.leader)
        except SETUP_ERRORS as e:
            err.print(f"[bold red]robotui record: cannot start:[/] {escape(str(e))}")
            return EXIT_FAILED
        stop.install()
        _describe_start(out, session, settings, root, fps, args)
        try:
            recorder = session.start_recording(settings, root, resume=args.resume, vcodec=vcodec,
                                               repo_id=args.repo_id, fps=fps, demo=args.demo)
        except DatasetMismatchError as e:
            err.print(f"[bold red]robotui record:[/] {escape(str(e))}")
            err.print("record with the dataset's settings (its --fps, robot and cameras), or into a new "
                      "--dataset-root")
            return EXIT_USAGE
        except SETUP_ERRORS as e:
            err.print(f"[bold red]robotui record: cannot start recording:[/] {escape(str(e))}")
            return EXIT_FAILED
        seen = _follow(recorder, stop, out)
        if stop.event.is_set():
            out.print("stopping: saving the episode in progress and finalizing the dataset…")
        session.stop_recording()  # blocks: saves, finalizes, releases torque
        snap = recorder.snapshot()
        seen.report(snap, settings, out.print)
        _summary(out, recorder, snap, root)
        if snap.error:
            err.print(f"[bold red]recording stopped:[/] {escape(snap.error)}; the episodes saved before it are "
                      f"kept in {escape(str(root))}")
            return EXIT_FAILED
        if stop.event.is_set():
            if args.push:
                out.print(f"not pushed (interrupted): push later with `robotui dataset push {root} "
                          f"--repo-id {args.repo_id}`")
            return stop.exit_code
        if args.push and recorder.writer.total_episodes > 0:
            return _push(root, args, out, err)
        return 0
    finally:
        stop.restore()
        session.close()


def _describe_start(out: Console, session: Session, settings: RecordSettings, root: Path, fps: int,
                    args: argparse.Namespace) -> None:
    robot = session.robot
    assert robot is not None
    cams = ", ".join(f"{n} {c.width}x{c.height}" for n, c in robot.cameras.items()) or "no cameras"
    if session.leader is not None:
        driver = f"leader {session.leader.label}"
        if session.sim is not None:
            driver += " (moved by the scripted demonstrator)" if args.demo else " (nobody moves it: --no-demo)"
    else:
        driver = "keyboard (nothing jogs it headless: the arm holds its pose)"
    out.print(f"recording {settings.num_episodes} × {settings.episode_time_s:g} s episodes "
              f"(reset {settings.reset_time_s:g} s) at {fps} fps into {escape(str(root))}")
    out.print(f"  robot {escape(robot.label)}, {escape(cams)}; teleop: {escape(driver)}")
    out.print(f"  task: {escape(settings.task)}   (Ctrl-C saves the episode in progress and stops)")


def _follow(recorder: Recorder, stop: SignalStop, out: Console) -> _Seen:
    """Print phase changes, saves and notices as they happen, and a progress line about once a second,
    until the recording ends by itself or a signal asks to stop."""
    seen = _Seen()
    next_progress = time.monotonic() + PROGRESS_INTERVAL_S
    while not recorder.finished and not stop.event.wait(0.1):
        snap = recorder.snapshot()
        seen.report(snap, recorder.settings, out.print)
        if time.monotonic() >= next_progress:
            next_progress += PROGRESS_INTERVAL_S
            if snap.phase in (Phase.RECORDING, Phase.RESET):
                out.print(progress_line(snap))
    return seen


class _Seen:
    """What was already printed, so each change is reported once."""

    def __init__(self) -> None:
        self.phase: Phase | None = None
        self.episode = -1
        self.saved = 0
        self.message: str | None = None

    def report(self, snap: RecorderSnapshot, settings: RecordSettings, say: Callable[[str], None]) -> None:
        for ep in snap.saved[self.saved:]:
            say(f"✓ saved episode {ep.index}: {ep.length} frames ({ep.duration_s:.1f} s), "
                f"save took {ep.save_latency_s * 1000:.0f} ms")
        self.saved = len(snap.saved)
        if snap.message and snap.message != self.message:
            say(f"note: {escape(snap.message)}")
        self.message = snap.message
        if snap.phase is Phase.RECORDING and (self.phase is not Phase.RECORDING or snap.episode != self.episode):
            say(f"● recording episode {snap.recorded + 1}/{settings.num_episodes} (dataset index {snap.episode}) "
                f"for {settings.episode_time_s:g} s")
        elif snap.phase is Phase.RESET and self.phase is not Phase.RESET:
            say(f"○ reset the scene: {settings.reset_time_s:g} s (nothing is recorded)")
        elif snap.phase is Phase.DONE and self.phase is not Phase.DONE:
            say("■ recording finished")
        self.phase, self.episode = snap.phase, snap.episode


def progress_line(snap: RecorderSnapshot) -> str:
    """episode k/N, phase, time left, loop rate and p99, stale/dropped frames, worst encoder queue."""
    loop = snap.loop
    rate = (f"{loop.achieved_hz:.1f} Hz p99 {loop.period_p99_ms:.1f} ms overruns {loop.overruns}"
            if loop is not None and loop.ticks > 1 else "starting")
    worst = max(snap.cameras, key=lambda c: c.queue_depth, default=None)
    queue = f"enc queue {worst.queue_depth}/{worst.queue_cap}" if worst is not None else "enc queue -"
    current = snap.recorded + (1 if snap.phase is Phase.RECORDING else 0)
    frames = f" {snap.frames} frames" if snap.phase is Phase.RECORDING else ""
    return (f"  episode {max(current, 1)}/{snap.num_episodes} {snap.phase.value:<9} {snap.time_left_s:5.1f} s left"
            f"{frames} | loop {rate} | stale {snap.stale_frames} dropped {snap.dropped_frames} | {queue}")


def _summary(out: Console, recorder: Recorder, snap: RecorderSnapshot, root: Path) -> None:
    frames = sum(e.length for e in snap.saved)
    worst = max((e.save_latency_s for e in snap.saved), default=0.0)
    writer = recorder.writer
    out.print(f"recorded {len(snap.saved)} episode(s), {frames} frames, in this run; {escape(str(root))} now "
              f"holds {writer.total_episodes} episodes, {writer.total_frames} frames")
    if snap.saved:
        loop = snap.loop
        timing = (f"; loop {loop.achieved_hz:.1f} Hz, p99 {loop.period_p99_ms:.1f} ms, {loop.overruns} overruns"
                  if loop is not None else "")
        out.print(f"worst save latency {worst * 1000:.0f} ms{timing}; stale frames {snap.stale_frames}, "
                  f"dropped {snap.dropped_frames}")
    out.print(f"next: robotui dataset check {escape(str(root))}")


def _push(root: Path, args: argparse.Namespace, out: Console, err: Console) -> int:
    try:
        result = push_dataset(root, args.repo_id, private=args.private,
                              on_step=lambda m: out.print(f"… {escape(m)}"))
    except (HubError, DatasetError) as e:
        err.print(f"[bold red]push failed:[/] {escape(str(e))}")
        err.print(f"the dataset is kept at {escape(str(root))}; push it later with "
                  f"`robotui dataset push {escape(str(root))} --repo-id {escape(args.repo_id)}`")
        return EXIT_FAILED
    out.print(f"pushed to {escape(result.url)}")
    return 0

