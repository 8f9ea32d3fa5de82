"""A scripted pick-and-place demonstrator: inverse kinematics on the arm plus smooth joint trajectories.

It knows where the cube is (privileged state) and produces what a good human teleoperator would: approach
above the cube, descend, close, lift, carry over the zone, lower, open, retreat. Driving the virtual leader
with it makes sim teleoperation and recording yield real demonstrations; driving the world directly (no
buses, no real time) makes fast tests of the whole task.

IK is damped least squares on MuJoCo's site Jacobian (`mj_jacSite`) for the grasp point, with the gripper
pointing straight down and its jaws square to the cube. It runs on a private `MjData`, so planning never
touches the simulated state.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import mujoco
import numpy as np

from drivers.sim.scene import CUBE_HALF, HOME_POSE, ZONE_CENTER
from drivers.sim.world import SimWorld

ARM = 5  # joints driven by IK; the sixth is the gripper
GRIP_OPEN = math.radians(45)
GRIP_CLOSED = 0.0  # commanded fully closed: the force limit sets the squeeze
GRASP_Z = 0.0195  # grasp point height when closing: fingertips just clear the table
HOVER_Z = CUBE_HALF + 0.065
PLACE_Z = GRASP_Z + 0.004  # release with the cube a few millimetres above the table


def min_jerk(tau: float) -> float:
    """0 → 1 with zero velocity and acceleration at both ends."""
    tau = min(max(tau, 0.0), 1.0)
    return tau**3 * (10 - 15 * tau + 6 * tau * tau)


@dataclass
class Segment:
    """A path of joint configurations (N x 6) traversed with one min-jerk timing over `duration`."""

    path: np.ndarray
    duration: float
    label: str = ""

    def at(self, t: float) -> np.ndarray:
        u = min_jerk(t / self.duration if self.duration > 0 else 1.0) * (len(self.path) - 1)
        i = min(int(u), len(self.path) - 2)
        if len(self.path) == 1:
            return self.path[0].copy()
        f = u - i
        return (1 - f) * self.path[i] + f * self.path[i + 1]


@dataclass
class Trajectory:
    segments: list[Segment] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.segments)

    def __call__(self, t: float) -> np.ndarray:
        """Joint targets (rad) at time t since the start; holds the last pose afterwards."""
        for s in self.segments:
            if t <= s.duration:
                return s.at(t)
            t -= s.duration
        return self.segments[-1].path[-1].copy()

    def label_at(self, t: float) -> str:
        for s in self.segments:
            if t <= s.duration:
                return s.label
            t -= s.duration
        return "done"


class IKError(RuntimeError):
    """The target is out of reach of the arm (or of its joint limits)."""


class Demonstrator:
    """Plans pick-and-place trajectories for a world's model. Stateless between plans, but its scratch
    `MjData` makes one instance single-threaded: give each planning thread its own."""

    def __init__(self, world: SimWorld, speed: float = 1.0) -> None:
        self.model = world.model
        self.data = mujoco.MjData(world.model)
        self.qadr = world.qadr
        self.dadr = world.dadr
        self.lower = world.lower
        self.upper = world.upper
        self.site = world.model.site("grasp").id
        self.speed = speed
        self._jacp = np.zeros((3, self.model.nv))
        self._jacr = np.zeros((3, self.model.nv))

    # ------------------------------------------------------------------------------------------ IK
    def _site_frame(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.data.qpos[self.qadr[:ARM]] = q[:ARM]
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_comPos(self.model, self.data)
        return self.data.site_xpos[self.site].copy(), self.data.site_xmat[self.site].reshape(3, 3).copy()

    def solve(self, pos: np.ndarray, jaw_yaw: float, q0: np.ndarray, iters: int = 200) -> np.ndarray:
        """Joint angles that put the grasp point at `pos`, fingers down, jaws closing along `jaw_yaw`.

        Starts from q0 (warm start keeps consecutive solutions on the same branch). Raises IKError if the
        residual stays above 2 mm / 3 degrees.
        """
        # Columns are the gripper axes in the world: x (fingers) down, y (closing direction) along
        # jaw_yaw, z = x × y.
        fingers = np.array([0.0, 0.0, -1.0])
        closing = np.array([math.cos(jaw_yaw), math.sin(jaw_yaw), 0.0])
        target_rot = np.column_stack([fingers, closing, np.cross(fingers, closing)])
        q = np.array(q0, float).copy()
        cols = self.dadr[:ARM]
        lam = 1e-3
        err = np.inf
        for _ in range(iters):
            p, r = self._site_frame(q)
            e_pos = pos - p
            e_rot = 0.5 * sum(np.cross(r[:, i], target_rot[:, i]) for i in range(3))
            e = np.concatenate([e_pos, 0.05 * e_rot])  # 1 rad of orientation weighs like 5 cm
            err = np.linalg.norm(e_pos) + 0.05 * np.linalg.norm(e_rot)
            if np.linalg.norm(e_pos) < 2e-4 and np.linalg.norm(e_rot) < 2e-3:
                break
            mujoco.mj_jacSite(self.model, self.data, self._jacp, self._jacr, self.site)
            jac = np.vstack([self._jacp[:, cols], 0.05 * self._jacr[:, cols]])
            dq = jac.T @ np.linalg.solve(jac @ jac.T + lam * np.eye(6), e)
            step = np.max(np.abs(dq))
            if step > 0.2:
                dq *= 0.2 / step
            q[:ARM] = np.clip(q[:ARM] + dq, self.lower[:ARM], self.upper[:ARM])
        p, r = self._site_frame(q)
        rot_err = np.linalg.norm(0.5 * sum(np.cross(r[:, i], target_rot[:, i]) for i in range(3)))
        if np.linalg.norm(pos - p) > 2e-3 or rot_err > math.radians(3):
            raise IKError(f"grasp point {np.round(pos, 3)} unreachable (residual {err:.4f})")
        return q

    @staticmethod
    def jaw_yaw_for(cube_yaw: float, pos: np.ndarray) -> float:
        """Closing direction square to the cube's faces, the one needing the least wrist roll."""
        natural = math.atan2(pos[1], pos[0]) + math.pi / 2  # closing direction at wrist_roll = 0
        d = (cube_yaw - natural + math.pi / 4) % (math.pi / 2) - math.pi / 4
        return natural + d

    # ------------------------------------------------------------------------------------- planning
    def _line(
        self, a: np.ndarray, b: np.ndarray, yaw: float, q0: np.ndarray, grip: float, n: int
    ) -> np.ndarray:
        """IK along a straight Cartesian line, warm-started point to point."""
        out = []
        q = q0.copy()
        for s in np.linspace(0.0, 1.0, n):
            q = self.solve(a + s * (b - a), yaw, q)
            qq = q.copy()
            qq[5] = grip
            out.append(qq)
        return np.array(out)

    def plan(
        self,
        start: np.ndarray,
        cube_pos: np.ndarray,
        cube_yaw: float,
        place_xy: tuple[float, float] = ZONE_CENTER,
    ) -> Trajectory:
        """Pick the cube at `cube_pos` and place it at `place_xy`, starting from joint angles `start`."""
        k = 1.0 / self.speed
        start = np.asarray(start, float)
        yaw = self.jaw_yaw_for(cube_yaw, cube_pos)
        above = np.array([cube_pos[0], cube_pos[1], HOVER_Z])
        grasp = np.array([cube_pos[0], cube_pos[1], GRASP_Z])
        place_above = np.array([place_xy[0], place_xy[1], HOVER_Z])
        place = np.array([place_xy[0], place_xy[1], PLACE_Z])
        # Carry with the same jaw direction relative to the arm, so the wrist does not spin on the way.
        place_yaw = yaw + math.atan2(place_xy[1], place_xy[0]) - math.atan2(cube_pos[1], cube_pos[0])

        seed = np.array(HOME_POSE, float)
        q_above = self.solve(above, yaw, seed)
        q_above[5] = GRIP_OPEN
        descend = self._line(above, grasp, yaw, q_above, GRIP_OPEN, 6)
        q_grasp = descend[-1]
        closed = q_grasp.copy()
        closed[5] = GRIP_CLOSED
        lift = self._line(grasp, above, yaw, q_grasp, GRIP_CLOSED, 6)
        q_pa = self.solve(place_above, place_yaw, lift[-1])
        q_pa[5] = GRIP_CLOSED
        lower = self._line(place_above, place, place_yaw, q_pa, GRIP_CLOSED, 6)
        opened = lower[-1].copy()
        opened[5] = GRIP_OPEN
        retreat = self._line(place, place_above, place_yaw, opened, GRIP_OPEN, 6)
        home = np.array(HOME_POSE, float)

        def seg(path: list[np.ndarray] | np.ndarray, seconds: float, label: str) -> Segment:
            return Segment(np.array(path, float), seconds * k, label)

        return Trajectory(
            [
                seg([start, q_above], 1.6, "approach"),
                seg(descend, 1.0, "descend"),
                seg([q_grasp, closed], 0.6, "grasp"),
                seg([closed], 0.3, "grasp"),
                seg(lift, 0.9, "lift"),
                seg([lift[-1], q_pa], 1.5, "carry"),
                seg(lower, 0.9, "lower"),
                seg([lower[-1], opened], 0.5, "release"),
                seg(retreat, 0.8, "retreat"),
                seg([retreat[-1], home], 1.2, "home"),
            ]
        )

    def plan_for(self, world: SimWorld) -> Trajectory:
        """Plan from the world's current arm and cube state (call from the thread that steps the world)."""
        pos, yaw = world.cube_pose()
        return self.plan(world.joint_positions(), pos, yaw)


def run_episode(
    world: SimWorld,
    demonstrator: Demonstrator,
    seed: int | None = None,
    settle_s: float = 0.5,
    on_step: Callable[[float], None] | None = None,
) -> bool:
    """Reset the world (seeded cube), execute a planned demonstration as fast as the CPU allows, and
    report `world.is_success()` after the cube settled. No threads and no real-time pacing."""
    if seed is not None:
        world.reset(seed)
    traj = demonstrator.plan_for(world)
    dt = world.model.opt.timestep
    substeps = 4  # update targets at 150 Hz: smooth enough for the position servos
    t = 0.0
    end = traj.duration + settle_s
    while t < end:
        world.set_targets(traj(t))
        world.step(substeps)
        t += substeps * dt
        if on_step is not None:
            on_step(t)
    return world.is_success()
