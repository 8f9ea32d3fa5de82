"""The simulated SO-101: a MuJoCo world whose joints are driven through emulated Feetech buses.

MuJoCo picks its GL backend when it is first imported; on a headless Linux box the default (GLFW) cannot
render, so EGL is chosen here unless the user already decided.
"""

import os
import platform
import sys

if (
    "mujoco" not in sys.modules
    and platform.system() == "Linux"
    and not os.environ.get("DISPLAY")
    and not os.environ.get("WAYLAND_DISPLAY")
):
    os.environ.setdefault("MUJOCO_GL", "egl")
