"""`robotui doctor`: everything that commonly stops a first session, checked up front, each with its fix.

Every check returns a Check and never raises; "fail" means something blocks use (no port access, no encoder,
no rendering for the simulator), "warn" means a feature is degraded or a likely trap is present.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

Status = Literal["ok", "warn", "fail"]

GIB = 1024**3


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


# --- serial ports


def check_serial_ports() -> Check:
    from drivers.ports import find_brltty, list_ports

    ports = list_ports()
    if not ports:
        fix = "plug the arm's controller board into USB (and power it); `robotui --sim` needs no hardware"
        if find_brltty():
            fix = "brltty is installed and may be grabbing the adapter (see the brltty check); " + fix
        return Check("serial-ports", "warn", "no serial ports found", fix)
    names = ", ".join(p.path + (" (emulator)" if p.emulated else "") for p in ports)
    return Check("serial-ports", "ok", f"{len(ports)} found: {names}")


def check_port_permissions() -> Check:
    from drivers.ports import BrlttyFinding, list_ports, port_problems

    ports = list_ports()
    problems = port_problems(ports, brltty=BrlttyFinding())  # brltty has its own check
    if not problems:
        detail = "every port opens read/write" if ports else "no ports to check"
        return Check("port-permissions", "ok", detail)
    return Check(
        "port-permissions",
        "fail",
        "; ".join(p.detail for p in problems),
        " | ".join(dict.fromkeys(p.fix for p in problems)),
    )


def check_brltty() -> Check:
    from drivers.ports import brltty_problem, find_brltty

    problem = brltty_problem(find_brltty())
    if problem is None:
        return Check("brltty", "ok", "not installed or not claiming USB-serial adapters")
    return Check("brltty", "warn", problem.detail, problem.fix)


# --- cameras and video


def check_cameras() -> Check:
    from drivers.cameras.opencv import VIDEO_DEV_DIR, default_targets, find_cameras

    cameras = find_cameras()
    if cameras:
        listing = ", ".join(f"{c.id} {c.mode}" for c in cameras)
        return Check("cameras", "ok", f"{len(cameras)} found: {listing}")
    targets = default_targets()
    if sys.platform.startswith("linux") and targets:
        return Check(
            "cameras",
            "warn",
            f"{len(targets)} video device(s) in {VIDEO_DEV_DIR} but none opens",
            "add yourself to the video group (sudo usermod -aG video $USER, then log in again) "
            "and close programs that use the camera",
        )
    return Check(
        "cameras",
        "warn",
        "no cameras found",
        "plug in a USB camera (check `ls /dev/video*` and `dmesg | tail`); recording without cameras still works, "
        "and the simulator renders its own",
    )


ENCODERS = ("libsvtav1", "libx264")
ENCODER_FIX = "pip install --force-reinstall av (the PyPI wheels bundle FFmpeg with libsvtav1 and libx264)"


def check_encoders(available: Collection[str] | None = None) -> Check:
    """libsvtav1 is LeRobot's dataset codec; libx264 is the fallback that LeRobot also reads."""
    if available is None:
        try:
            import av
        except ImportError as e:
            return Check("video-encoders", "fail", f"PyAV does not import: {e}", "pip install av")
        available = av.codecs_available
    missing = [name for name in ENCODERS if name not in available]
    if not missing:
        return Check("video-encoders", "ok", ", ".join(ENCODERS))
    if len(missing) == len(ENCODERS):
        return Check(
            "video-encoders", "fail", f"missing {', '.join(missing)}: videos cannot be recorded", ENCODER_FIX
        )
    return Check(
        "video-encoders",
        "warn",
        f"missing {', '.join(missing)}; recording uses {', '.join(n for n in ENCODERS if n not in missing)}",
        ENCODER_FIX,
    )


# --- learning stack


def check_torch() -> Check:
    try:
        import torch
    except ImportError as e:
        return Check(
            "torch", "fail", f"torch does not import: {e}", "pip install torch (see pytorch.org for CUDA)"
        )
    version = torch.__version__
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        return Check("torch", "ok", f"{version}, cuda ({name}, {torch.cuda.device_count()} device(s))")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return Check("torch", "ok", f"{version}, mps (Apple GPU)")
    return Check(
        "torch",
        "ok",
        f"{version}, cpu only: fine for recording and small policies; train on a GPU machine over SSH",
    )


def _hf_home() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(os.environ.get("HF_HOME") or os.path.join(cache, "huggingface")).expanduser()


def hf_token_source(token_path: Path | None = None) -> str | None:
    """Where a Hugging Face token comes from, following huggingface_hub's lookup order (env, then the token file)
    but reading the environment now and never the network: `huggingface_hub.get_token` may refresh OAuth tokens
    online, and its paths are fixed when it is first imported."""
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        if os.environ.get(var, "").strip():
            return f"env {var}"
    if token_path is None:
        token_path = Path(os.environ.get("HF_TOKEN_PATH") or _hf_home() / "token")
    try:
        if token_path.read_text().strip():
            return f"file {token_path}"
    except OSError:
        pass
    return None


def check_hf_token(token_path: Path | None = None) -> Check:
    source = hf_token_source(token_path)
    if source:
        return Check("hf-token", "ok", f"token from {source}")
    return Check(
        "hf-token",
        "warn",
        "no Hugging Face token: pushing datasets and checkpoints to the Hub will fail",
        "hf auth login (or export HF_TOKEN=...)",
    )


def check_hf_offline() -> Check:
    value = os.environ.get("HF_HUB_OFFLINE", "")
    if value.strip().lower() in ("1", "true", "yes", "on"):
        return Check(
            "hf-offline",
            "warn",
            f"HF_HUB_OFFLINE={value}: no downloads or uploads; only cached datasets and models load",
            "unset HF_HUB_OFFLINE to use the Hub",
        )
    return Check("hf-offline", "ok", "Hub access enabled (HF_HUB_OFFLINE unset)")


# --- simulator rendering

_RENDER_PROBE = """
import mujoco
m = mujoco.MjModel.from_xml_string(
    "<mujoco><worldbody><light pos='0 0 2'/><geom type='box' size='.1 .1 .1'/></worldbody></mujoco>")
d = mujoco.MjData(m)
mujoco.mj_forward(m, d)
r = mujoco.Renderer(m, 32, 32)
r.update_scene(d)
img = r.render()
r.close()
print(img.shape[0], img.shape[1], int(img.max()))
"""
RENDER_FIX = (
    "export MUJOCO_GL=egl and install EGL (sudo apt install libegl1); or MUJOCO_GL=osmesa with libosmesa6"
)


def check_mujoco_render(timeout_s: float = 60.0) -> Check:
    """Renders in a child process: a broken GL stack can segfault or hang, and must not take the doctor down."""
    env = dict(os.environ)
    env.setdefault("MUJOCO_GL", "egl")
    backend = env["MUJOCO_GL"]
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _RENDER_PROBE], capture_output=True, text=True, timeout=timeout_s, env=env
        )
    except subprocess.TimeoutExpired:
        return Check(
            "mujoco-render", "fail", f"MUJOCO_GL={backend}: rendering hung for {timeout_s:.0f} s", RENDER_FIX
        )
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        reason = lines[-1] if lines else f"exit status {proc.returncode}"
        if "No module named 'mujoco'" in reason:
            return Check(
                "mujoco-render", "fail", "mujoco is not installed: no simulator", "pip install mujoco"
            )
        return Check("mujoco-render", "fail", f"MUJOCO_GL={backend}: {reason}", RENDER_FIX)
    height, width, brightest = (int(v) for v in proc.stdout.split()[-3:])
    if brightest == 0:
        return Check("mujoco-render", "warn", f"MUJOCO_GL={backend}: renders only black frames", RENDER_FIX)
    return Check("mujoco-render", "ok", f"MUJOCO_GL={backend} renders ({width}x{height} test frame)")


# --- disk


def dataset_root() -> Path:
    """LeRobot's dataset home: $HF_LEROBOT_HOME, else $HF_HOME/lerobot, else ~/.cache/huggingface/lerobot."""
    if os.environ.get("HF_LEROBOT_HOME"):
        return Path(os.environ["HF_LEROBOT_HOME"]).expanduser()
    return _hf_home() / "lerobot"


def check_disk(root: Path | None = None, fail_below_gb: float = 2.0, warn_below_gb: float = 20.0) -> Check:
    """An hour of two 30 fps cameras is a few GB of video plus the encoder's temporary files."""
    root = root or dataset_root()
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent  # the root is created on first record; its filesystem is what matters
    free_gb = shutil.disk_usage(existing).free / GIB
    detail = f"{free_gb:.1f} GB free for datasets in {root}"
    fix = "free space there, or point HF_LEROBOT_HOME at a bigger disk"
    if free_gb < fail_below_gb:
        return Check("disk-space", "fail", detail + f" (need at least {fail_below_gb:g} GB)", fix)
    if free_gb < warn_below_gb:
        return Check(
            "disk-space", "warn", detail + f" (under {warn_below_gb:g} GB: enough for short sessions)", fix
        )
    return Check("disk-space", "ok", detail)


# --- global hotkeys


def check_hotkeys() -> Check:
    """pynput needs an X display; without one, keys still work inside robotui's terminal UI, so it is a note."""
    if sys.platform.startswith("linux"):
        if os.environ.get("XDG_SESSION_TYPE") == "wayland" or (
            os.environ.get("WAYLAND_DISPLAY") and not os.environ.get("DISPLAY")
        ):
            return Check(
                "hotkeys", "ok", "Wayland session: no global hotkeys; keys work inside the robotui window"
            )
        if not os.environ.get("DISPLAY"):
            return Check(
                "hotkeys", "ok", "no DISPLAY (SSH or headless): no global hotkeys; keys work inside robotui"
            )
    try:
        import pynput.keyboard  # noqa: F401  (connects to the display at import)
    except ImportError as e:
        if getattr(e, "name", None) == "pynput":
            return Check(
                "hotkeys", "ok", "pynput not installed: no global hotkeys (optional: robotui[hotkeys])"
            )
        return Check(
            "hotkeys",
            "warn",
            f"pynput cannot use the display: {str(e).splitlines()[0]}",
            "check DISPLAY, or ignore: keys work inside robotui",
        )
    return Check("hotkeys", "ok", "pynput global hotkeys available")


# --- running them

CHECKS: dict[str, Callable[[], Check]] = {
    "serial-ports": check_serial_ports,
    "port-permissions": check_port_permissions,
    "brltty": check_brltty,
    "cameras": check_cameras,
    "video-encoders": check_encoders,
    "torch": check_torch,
    "hf-token": check_hf_token,
    "hf-offline": check_hf_offline,
    "mujoco-render": check_mujoco_render,
    "disk-space": check_disk,
    "hotkeys": check_hotkeys,
}


def run_check(name: str) -> Check:
    """One check by name; a check that crashes is reported as a failed check, not raised."""
    try:
        return CHECKS[name]()
    except Exception as e:
        return Check(
            name, "fail", f"the check itself crashed: {type(e).__name__}: {e}", "report this as a robotui bug"
        )


def run_checks(skip: Collection[str] = ()) -> list[Check]:
    unknown = set(skip) - set(CHECKS)
    if unknown:
        raise ValueError(f"unknown checks {sorted(unknown)}; known: {', '.join(CHECKS)}")
    return [run_check(name) for name in CHECKS if name not in skip]
