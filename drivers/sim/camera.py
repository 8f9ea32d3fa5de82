"""`SimCamera`: a MuJoCo camera of the sim world behind the same `Camera` interface as a USB camera.

Rendering happens on the camera's own reader thread, paced at its fps, from a snapshot of the joint state
copied under the world's publish lock into a private `MjData`; the physics thread and the control loop
never wait for a frame. An OpenGL context belongs to the thread that created it, so the renderer is made
on first use inside the reader thread and freed there when the thread ends.
"""

from __future__ import annotations

import time

import mujoco
import numpy as np

from drivers.cameras.base import Camera, CameraError
from drivers.sim.scene import CAMERA_NAMES
from drivers.sim.world import SimWorld

DEFAULT_WIDTH = 320
DEFAULT_HEIGHT = 240
DEFAULT_FPS = 30.0
FIRST_FRAME_TIMEOUT_S = 10.0


class SimCamera(Camera):
    """Renders `camera` ("front" or "wrist") of `world` at `fps`."""

    def __init__(
        self,
        world: SimWorld,
        camera: str,
        width: int = DEFAULT_WIDTH,
        height: int = DEFAULT_HEIGHT,
        fps: float = DEFAULT_FPS,
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(name or camera, width, height, fps)
        self.world = world
        self.camera = camera
        self._renderer: mujoco.Renderer | None = None
        self._data: mujoco.MjData | None = None
        self._next = 0.0
        self.render_s = 0.0  # CPU-relevant wall time spent rendering, for the benches

    def _open(self) -> None:
        if self.camera not in CAMERA_NAMES:
            raise CameraError(
                f"sim camera '{self.camera}' does not exist; choose one of {', '.join(CAMERA_NAMES)}"
            )
        vis = self.world.model.vis.global_
        if self.width > vis.offwidth or self.height > vis.offheight:
            raise CameraError(
                f"sim camera '{self.name}': {self.width}x{self.height} exceeds the scene's offscreen buffer "
                f"{vis.offwidth}x{vis.offheight}; choose a smaller resolution"
            )
        if self.fps <= 0:
            raise CameraError(f"sim camera '{self.name}': fps must be positive, got {self.fps}")
        self._next = time.perf_counter()

    def connect(self) -> None:
        """Start rendering and return once the first frame exists (the GL context is made in the reader
        thread), so a robot reading right after connect gets an image, like a warmed-up USB camera."""
        super().connect()
        try:
            self.async_read(timeout_ms=FIRST_FRAME_TIMEOUT_S * 1000)
        except CameraError as e:
            self.disconnect()
            raise CameraError(
                f"sim camera '{self.name}' rendered no frame ({e}); check that MuJoCo can render here "
                "(MUJOCO_GL=egl on a headless Linux box)"
            ) from e

    def _grab(self) -> np.ndarray | None:
        delay = self._next - time.perf_counter()
        if delay > 0:
            self._stop.wait(delay)
        now = time.perf_counter()
        # Absolute deadlines; after a stall, restart the schedule rather than burst to catch up.
        self._next = max(self._next + 1.0 / self.fps, now)
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.world.model, self.height, self.width)
            self._data = mujoco.MjData(self.world.model)
        return self.render()

    def render(self) -> np.ndarray:
        """One frame of the newest published state (reader thread only: the GL context lives there)."""
        assert self._renderer is not None and self._data is not None
        t0 = time.perf_counter()
        qpos, _ = self.world.snapshot()
        m, d = self.world.model, self._data
        d.qpos[:] = qpos
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)
        mujoco.mj_camlight(m, d)
        self._renderer.update_scene(d, camera=self.camera)
        image = self._renderer.render()  # a fresh array each call
        self.render_s += time.perf_counter() - t0
        return image

    def _run(self) -> None:
        try:
            super()._run()
        finally:
            if self._renderer is not None:
                self._renderer.close()
                self._renderer = None
                self._data = None

    def _close(self) -> None:
        """Nothing left to free: the reader thread released its renderer on the way out."""
