"""`robotui ask`: one question about the scene, answered by a vision-language model, headless (the twin of
`/question` on the rollout screen).

It brings up the session (with --sim the virtual SO-101 and its front and wrist cameras), takes every
camera's latest frame, asks the model about all of them at once and prints the answer, the time it took and,
for an answer with points or boxes, the overlay PNG under `<output>/vqa/`. The model starts loading while the
arm and cameras come up. When a spatial answer names no camera and there are several, --camera says which
frame to draw on; without it the command asks on a terminal, and elsewhere draws on the first camera.

Exit codes: 0 answered, 1 the model or the cameras failed, 2 bad arguments or profile.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from engine.profile import Profile, ProfileError
from engine.vqa import DEFAULT_MODEL, VLMSettings, VQAResult, VQAService, VQAState, VQAStatus
from engine.vqa.backend import DEFAULT_MAX_NEW_TOKENS, DEVICES, DTYPES
from engine.vqa.cameras import latest_frames
from robotui.commands.record import SETUP_ERRORS, add_profile_flags, resolve_profile

EXIT_FAILED = 1
EXIT_USAGE = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ask",
        help="ask a vision-language model a question about what the cameras see",
        description=(
            "Ask a question about the scene: every camera's latest frame goes to the model in one prompt. "
            "Prints the answer and its time; points and boxes in the answer are drawn on a camera frame and "
            "saved as <output>/vqa/<time>-<camera>.png."
        ),
        epilog="exit codes: 0 answered, 1 model or cameras failed, 2 bad arguments",
    )
    parser.add_argument("--question", "-q", required=True, help='e.g. "where is the red cube?"')
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"Hub id or local model folder (default {DEFAULT_MODEL})")
    parser.add_argument("--device", default="auto", help=f"{', '.join(DEVICES)} or cuda:N (default auto)")
    parser.add_argument("--dtype", default="auto", choices=DTYPES,
                        help="weights dtype (default: float32 on CPU, bfloat16/float16 on GPU)")
    parser.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS, metavar="N",
                        help=f"longest answer in tokens (default {DEFAULT_MAX_NEW_TOKENS})")
    parser.add_argument("--camera", metavar="NAME", help="the camera a spatial answer is drawn on")
    parser.add_argument("--output", type=Path, default=Path("outputs"), metavar="DIR",
                        help="overlays go to DIR/vqa/ (default outputs)")
    add_profile_flags(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        settings = VLMSettings(model=args.model, device=args.device, dtype=args.dtype,
                               max_new_tokens=args.max_new_tokens)
        if not args.question.strip():
            raise ValueError("the question is empty: --question 'where is the cube?'")
        profile = resolve_profile(args)
        if not profile.cameras:
            raise ProfileError("the profile has no cameras, so there is nothing to ask about: add cameras "
                               '(--cameras \'{"front": {"type": "opencv", "index_or_path": 0}}\'), or use --sim')
        if args.camera is not None and args.camera not in profile.cameras:
            raise ProfileError(f"--camera {args.camera!r}: the cameras are {', '.join(profile.cameras)}")
    except (ValueError, ProfileError) as e:
        err.print(f"[bold red]robotui ask:[/] {escape(str(e))}")
        return EXIT_USAGE

    shown: list[str] = []

    def show(status: VQAStatus) -> None:
        """Each loading step once (statuses also arrive when a question starts and ends)."""
        if status.state in (VQAState.LOADING, VQAState.READY) and status.message not in shown:
            shown.append(status.message)
            out.print(f"[dim]model: {escape(status.message)}[/]")

    service = VQAService(settings, output_dir=args.output, on_status=show)
    service.load()  # in parallel with bringing up the arm and the cameras
    return _ask(args, profile, service, out, err)


def _ask(args: argparse.Namespace, profile: Profile, service: VQAService, out: Console, err: Console) -> int:
    from engine.session import Session  # MuJoCo loads with it; not needed for `robotui ask --help`

    session = Session(profile)
    try:
        session.start()
        session.connect(robot=True, teleop=False)
        assert session.robot is not None
        frames = latest_frames(session.robot.cameras)
    except SETUP_ERRORS as e:
        err.print(f"[bold red]robotui ask: cannot take the camera frames:[/] {escape(str(e))}")
        return EXIT_FAILED
    finally:
        session.close()  # the frames are taken: the arm is released while the model thinks
    views = ", ".join(f"{name} {image.shape[1]}x{image.shape[0]}" for name, image in frames.items())
    out.print(f"asking {escape(args.model)} about {escape(views)}: {escape(args.question)}")
    result = service.ask(args.question, frames, camera=args.camera).result()
    if not result.ok:
        err.print(f"[bold red]no answer:[/] {escape(result.text)}")
        return EXIT_FAILED
    if result.needs_camera:
        result = service.draw(result, _choose_camera(result, out))
    _report(result, out)
    return 0


def _choose_camera(result: VQAResult, out: Console) -> str:
    """Ask on a terminal which camera the points/boxes belong to; elsewhere take the first camera."""
    cameras = list(result.cameras)
    if sys.stdin is not None and sys.stdin.isatty():
        while True:
            answer = input(f"the answer has points or boxes but names no camera; draw on which? "
                           f"[{'/'.join(cameras)}] ").strip()
            if answer in cameras:
                return answer
            if not answer:
                return cameras[0]
    out.print(f"[dim]the answer names no camera: drawn on {escape(cameras[0])} (choose with --camera)[/]")
    return cameras[0]


def _report(result: VQAResult, out: Console) -> None:
    assert result.answer is not None
    out.print(f"answer: {escape(result.text)}")
    if result.answer.raw and result.answer.raw != result.text:
        out.print(f"[dim]raw: {escape(result.answer.raw)}[/]")
    waited = f" (of which {result.load_s:.1f} s waiting for the model to load)" if result.load_s >= 0.05 else ""
    out.print(f"answered in {result.elapsed_s:.1f} s{waited} by {escape(result.model)}")
    if result.overlay is not None:
        height, width = result.overlay.image.shape[:2]
        for shape in result.answer.shapes:
            coords = ", ".join(str(v) for v in shape.to_pixels(width, height))
            label = f' "{escape(shape.label)}"' if shape.label else ""
            out.print(f"  {shape.kind}{label} at ({coords}) px on {escape(result.overlay.camera)}")
        out.print(f"overlay: {escape(str(result.overlay.path))}")
