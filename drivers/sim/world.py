"""`SimWorld`: the MuJoCo model and state of one SO-101 pick-and-place scene, with no threads of its own.

The gym env steps it synchronously; `SimRunner` (runner.py) steps it in real time and couples it to the
emulated follower bus. Other threads never touch `data`: they read `snapshot()`, a copy of the joint state
published after every `step()`, which is all a renderer needs.
"""

from __future__ import annotations

import math
import threading

import mujoco
import numpy as np

from drivers.sim.scene import (
    CUBE_HALF,
    HOME_POSE,
    JOINT_NAMES,
    JOINTS,
    SPAWN_X,
    SPAWN_Y,
    SPAWN_YAW,
    ZONE_CENTER,
    ZONE_HALF,
    build_mjcf,
)

GRIP_GEOMS = ("palm", "fixed_jaw", "fixed_jaw_tip", "moving_finger", "moving_pad")


class SimWorld:
    """One scene: arm, table, cube, target zone. Not thread-safe; one thread steps it at a time."""

    def __init__(self, seed: int | None = None) -> None:
        self.model = mujoco.MjModel.from_xml_string(build_mjcf())
        self.data = mujoco.MjData(self.model)
        m = self.model
        self.qadr = np.array([m.joint(n).qposadr[0] for n in JOINT_NAMES])
        self.dadr = np.array([m.joint(n).dofadr[0] for n in JOINT_NAMES])
        self.act = np.array([m.actuator(n).id for n in JOINT_NAMES])
        self.lower = np.array([j.lower for j in JOINTS])
        self.upper = np.array([j.upper for j in JOINTS])
        cube = m.joint("cube")
        self._cube_q = cube.qposadr[0]
        self._cube_v = cube.dofadr[0]
        self._cube_geom = m.geom("cube").id
        self._grip_geoms = np.array([m.geom(g).id for g in GRIP_GEOMS])
        self._grasp_site = m.site("grasp").id
        # Each actuator in its own group, so torque can be cut per motor through opt.disableactuator.
        for i, a in enumerate(self.act):
            m.actuator_group[a] = i
        self.torque = np.ones(len(JOINTS), dtype=bool)
        self.rng = np.random.default_rng(seed)
        self._pub_lock = threading.Lock()
        self._published = self.data.qpos.copy()
        self._published_time = 0.0
        self.reset(seed)

    # ------------------------------------------------------------------------------ state and commands
    def reset(self, seed: int | None = None, arm: np.ndarray | None = None) -> None:
        """Arm to `arm` (default HOME_POSE) at rest, torque on, cube at a random spawn pose."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        mujoco.mj_resetData(self.model, self.data)
        pose = HOME_POSE if arm is None else np.asarray(arm, float)
        self.data.qpos[self.qadr] = pose
        self.data.ctrl[self.act] = pose
        self.set_torque(np.ones(len(JOINTS), dtype=bool))
        self.randomize_cube()

    def randomize_cube(self) -> None:
        x = self.rng.uniform(*SPAWN_X)
        y = self.rng.uniform(*SPAWN_Y)
        yaw = self.rng.uniform(*SPAWN_YAW)
        self.place_cube(x, y, yaw)

    def place_cube(self, x: float, y: float, yaw: float = 0.0) -> None:
        q = self._cube_q
        self.data.qpos[q : q + 3] = (x, y, CUBE_HALF + 0.0005)
        self.data.qpos[q + 3 : q + 7] = (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))
        self.data.qvel[self._cube_v : self._cube_v + 6] = 0.0
        mujoco.mj_forward(self.model, self.data)
        self.publish()

    def step(self, n: int = 1) -> None:
        mujoco.mj_step(self.model, self.data, nstep=n)
        self.publish()

    def joint_positions(self) -> np.ndarray:
        """The six joint angles (rad), JOINTS order."""
        return self.data.qpos[self.qadr].copy()

    def joint_velocities(self) -> np.ndarray:
        return self.data.qvel[self.dadr].copy()

    def set_targets(self, angles: np.ndarray | list[float]) -> None:
        """Position-actuator targets (rad), clipped to the joint ranges like the servo's angle limits."""
        self.data.ctrl[self.act] = np.clip(np.asarray(angles, float), self.lower, self.upper)

    def targets(self) -> np.ndarray:
        return self.data.ctrl[self.act].copy()

    def set_torque(self, enabled: np.ndarray | list[bool]) -> None:
        """Torque off leaves a joint to gravity, its passive damping and whatever pushes it."""
        self.torque = np.asarray(enabled, dtype=bool).copy()
        mask = 0
        for i, on in enumerate(self.torque):
            if not on:
                mask |= 1 << i
        self.model.opt.disableactuator = mask

    def set_joint_positions(self, angles: np.ndarray | list[float]) -> None:
        """Teleport the arm (used by resets); velocities zeroed."""
        self.data.qpos[self.qadr] = angles
        self.data.qvel[self.dadr] = 0.0
        mujoco.mj_forward(self.model, self.data)
        self.publish()

    # ------------------------------------------------------------------------------ observations
    def publish(self) -> None:
        with self._pub_lock:
            self._published = self.data.qpos.copy()
            self._published_time = float(self.data.time)

    def snapshot(self) -> tuple[np.ndarray, float]:
        """The last published (qpos, sim time): safe to call from any thread."""
        with self._pub_lock:
            return self._published.copy(), self._published_time

    def cube_pose(self) -> tuple[np.ndarray, float]:
        """Cube centre (x, y, z) and yaw about z (rad)."""
        q = self._cube_q
        pos = self.data.qpos[q : q + 3].copy()
        w, x, y, z = self.data.qpos[q + 3 : q + 7]
        yaw = math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
        return pos, yaw

    def grasp_point(self) -> np.ndarray:
        return self.data.site_xpos[self._grasp_site].copy()

    def gripper_touches_cube(self) -> bool:
        con = self.data.contact
        n = self.data.ncon
        if n == 0:
            return False
        pairs = con.geom[:n]
        has_cube = (pairs == self._cube_geom).any(axis=1)
        has_grip = np.isin(pairs, self._grip_geoms).any(axis=1)
        return bool((has_cube & has_grip).any())

    def cube_in_zone(self) -> bool:
        pos, _ = self.cube_pose()
        return bool(
            abs(pos[0] - ZONE_CENTER[0]) <= ZONE_HALF
            and abs(pos[1] - ZONE_CENTER[1]) <= ZONE_HALF
            and pos[2] < CUBE_HALF + 0.004
        )

    def is_success(self) -> bool:
        """The cube rests inside the target zone and the gripper has let go of it."""
        return self.cube_in_zone() and not self.gripper_touches_cube()
