"""A gymnasium environment over the same SO-101 pick-and-place world, for policy evaluation without buses.

Observations and actions are in the robot's own units — joints in degrees as the calibrated follower
reports them, gripper 0..100 — computed with the virtual follower's calibration, so a policy trained on
data recorded from the virtual robot reads the same numbers here. No threads: `step` advances the physics
synchronously by one control period, and rendering happens in the caller's thread.

    import drivers.sim.gym_env  # registers the id
    env = gymnasium.make("robotui/SO101PickPlace-v0")
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from drivers.motors.bus import NormMode
from drivers.sim.camera import DEFAULT_HEIGHT, DEFAULT_WIDTH
from drivers.sim.scene import CAMERA_NAMES, JOINTS
from drivers.sim.ticks import TickMap, norm_mode
from drivers.sim.virtual_robot import FOLLOWER_MOUNT_SEED
from drivers.sim.world import SimWorld

ENV_ID = "robotui/SO101PickPlace-v0"
DEFAULT_FPS = 30
LIMIT_OVERSHOOT_DEG = 10.0
MAX_EPISODE_STEPS = 450  # 15 s at 30 Hz; a scripted demonstration takes about 11 s


class SO101PickPlaceEnv(gym.Env[dict[str, Any], np.ndarray]):
    """Pick the cube and place it in the green zone. Reward 1 and termination on success."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": DEFAULT_FPS}  # noqa: RUF012 (gymnasium API)

    def __init__(
        self,
        render_mode: str | None = "rgb_array",
        cameras: tuple[str, ...] = CAMERA_NAMES,
        width: int = DEFAULT_WIDTH,
        height: int = DEFAULT_HEIGHT,
        fps: int = DEFAULT_FPS,
        mount_seed: int = FOLLOWER_MOUNT_SEED,
    ) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', not {render_mode!r}")
        unknown = [c for c in cameras if c not in CAMERA_NAMES]
        if unknown:
            raise ValueError(f"unknown camera(s) {unknown}; choose from {CAMERA_NAMES}")
        self.render_mode = render_mode
        self.cameras = tuple(cameras)
        self.width, self.height = width, height
        self.world = SimWorld()
        self.ticks = TickMap.seeded(mount_seed)
        self.frame_skip = max(1, round(1.0 / (fps * self.world.model.opt.timestep)))
        self.metadata = {**self.metadata, "render_fps": fps}
        # Joint limits in robot units; the gripper's full 0..100 scale even where a limit rounds below it.
        low = np.array(self.ticks.normalized([j.lower for j in JOINTS]), dtype=np.float32)
        high = np.array(self.ticks.normalized([j.upper for j in JOINTS]), dtype=np.float32)
        for i, j in enumerate(JOINTS):
            if norm_mode(j.name) is NormMode.RANGE_0_100:
                low[i], high[i] = 0.0, 100.0
        self.action_space = spaces.Box(low=low, high=high, dtype=np.float32)
        # Observed joints may overshoot a limit a little (soft joint limits); the gripper reading is clamped.
        margin = np.array([0.0 if h == 100.0 else LIMIT_OVERSHOOT_DEG for h in high], dtype=np.float32)
        self.observation_space = spaces.Dict(
            {
                "agent_pos": spaces.Box(low=low - margin, high=high + margin, dtype=np.float32),
                "pixels": spaces.Dict(
                    {c: spaces.Box(0, 255, shape=(height, width, 3), dtype=np.uint8) for c in self.cameras}
                ),
            }
        )
        self._renderer: mujoco.Renderer | None = None

    # ------------------------------------------------------------------------------------- gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        self.world.rng = self.np_random
        self.world.reset()
        return self._observation(), {"is_success": False}

    def step(self, action: np.ndarray) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        action = np.clip(np.asarray(action, dtype=np.float64), self.action_space.low, self.action_space.high)
        self.world.set_targets(self.ticks.from_normalized(list(action)))
        self.world.step(self.frame_skip)
        success = bool(self.world.is_success())
        return self._observation(), float(success), success, False, {"is_success": success}

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        if self.render_mode != "rgb_array":
            return None
        return self._render(self.cameras[0])

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # ----------------------------------------------------------------------------------- internals
    def agent_pos(self) -> np.ndarray:
        return np.array(self.ticks.normalized(list(self.world.joint_positions())), dtype=np.float32)

    def _render(self, camera: str) -> np.ndarray:
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.world.model, self.height, self.width)
        self._renderer.update_scene(self.world.data, camera=camera)
        return self._renderer.render()

    def _observation(self) -> dict[str, Any]:
        return {"agent_pos": self.agent_pos(), "pixels": {c: self._render(c) for c in self.cameras}}


def register() -> None:
    """Make `gymnasium.make(ENV_ID)` work (idempotent)."""
    if ENV_ID not in gym.registry:
        gym.register(
            id=ENV_ID, entry_point=f"{__name__}:SO101PickPlaceEnv", max_episode_steps=MAX_EPISODE_STEPS
        )


register()
