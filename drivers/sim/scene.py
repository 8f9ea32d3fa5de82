"""The MuJoCo scene: an SO-101-like arm built from primitives, a table, a cube, a target zone and two cameras.

Written for this project (no meshes): link lengths and joint ranges follow the SO-101 closely enough that
joint values, camera views and reach feel like the real arm, while staying cheap to step and to render on a
laptop CPU. Joint names are LeRobot's, so a joint here is a motor on the emulated bus under the same name.

Frames: the table top is z = 0, the arm stands at the origin and faces +x. At all-zero joint angles (the
calibration pose, middle of every range) the upper arm points up, the forearm points forward and the
gripper continues the forearm; the wrist camera looks along the fingers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# ------------------------------------------------------------------------------------------ geometry facts
BASE_HEIGHT = 0.06  # table to the shoulder_pan servo top
SHOULDER_RISE = 0.035  # pan servo top to the shoulder_lift axis
SHOULDER_FORWARD = 0.03  # the shoulder_lift axis sits ahead of the pan axis, as on the SO-101
UPPER_ARM = 0.116  # shoulder_lift axis to elbow_flex axis
FOREARM = 0.135  # elbow_flex axis to wrist_flex axis
WRIST_LINK = 0.025  # wrist_flex axis to the gripper (wrist_roll) frame
GRASP_DEPTH = 0.058  # gripper frame to the grasp point between the jaws (tip is at ~0.075)

CUBE_HALF = 0.0125  # 2.5 cm cube
CUBE_MASS = 0.02

# Target zone (a painted square on the table) and the region the cube spawns in, both in table coordinates.
ZONE_CENTER = (0.17, 0.15)
ZONE_HALF = 0.04
SPAWN_X = (0.13, 0.23)
SPAWN_Y = (-0.13, 0.03)
SPAWN_YAW = (-math.pi / 4, math.pi / 4)

TIMESTEP = 1.0 / 600.0  # 600 Hz: divides 30 Hz recording and 60 Hz teleop into whole steps


@dataclass(frozen=True)
class JointSpec:
    """One arm joint = one Feetech motor on the bus (same name and id as LeRobot's SO-101 follower)."""

    name: str
    motor_id: int
    lower: float  # rad
    upper: float  # rad
    kp: float  # position actuator stiffness, N·m/rad
    kv: float  # actuator damping, N·m·s/rad
    force: float  # actuator torque limit, N·m (the STS3215 stalls near 3 N·m)
    damping: float  # passive joint damping that remains with torque off
    armature: float  # reflected rotor inertia of the geared servo

    @property
    def mid(self) -> float:
        return 0.5 * (self.lower + self.upper)


def _deg(x: float) -> float:
    return math.radians(x)


JOINTS: tuple[JointSpec, ...] = (
    JointSpec("shoulder_pan", 1, _deg(-110), _deg(110), 60.0, 2.5, 3.0, 0.4, 0.03),
    JointSpec("shoulder_lift", 2, _deg(-100), _deg(100), 80.0, 3.0, 3.0, 0.4, 0.03),
    JointSpec("elbow_flex", 3, _deg(-100), _deg(100), 70.0, 2.5, 3.0, 0.3, 0.02),
    JointSpec("wrist_flex", 4, _deg(-100), _deg(100), 40.0, 1.2, 2.0, 0.1, 0.01),
    JointSpec("wrist_roll", 5, _deg(-165), _deg(165), 20.0, 0.6, 1.5, 0.05, 0.005),
    JointSpec("gripper", 6, 0.0, _deg(100), 8.0, 0.15, 0.5, 0.05, 0.002),
)
JOINT_NAMES: tuple[str, ...] = tuple(j.name for j in JOINTS)
GRIPPER = "gripper"

# Pose the arm is built in and reset to: gripper above the table, pointing down, nearly closed.
HOME_POSE = np.array([0.0, _deg(-20), _deg(20), _deg(90), 0.0, _deg(10)])

CAMERA_NAMES = ("front", "wrist")


def _xyaxes(forward: np.ndarray, up: np.ndarray) -> str:
    """MJCF camera orientation from a viewing direction and an approximate up vector (cameras look along -z)."""
    z = -np.asarray(forward, float)
    z /= np.linalg.norm(z)
    y = np.asarray(up, float) - np.dot(up, z) * z
    y /= np.linalg.norm(y)
    x = np.cross(y, z)
    return " ".join(f"{v:.5f}" for v in (*x, *y))


def _f(*values: float) -> str:
    return " ".join(f"{v:.10g}" for v in values)


def _joint_xml(j: JointSpec, axis: str) -> str:
    return (
        f'<joint name="{j.name}" axis="{axis}" range="{_f(j.lower, j.upper)}" damping="{j.damping}" '
        f'armature="{j.armature}" frictionloss="0.01"/>'
    )


def build_mjcf() -> str:
    """The scene as an MJCF string (compiled with `mujoco.MjModel.from_xml_string`)."""
    j = {s.name: s for s in JOINTS}
    front_pos = np.array([0.5, 0.0, 0.35])
    front_look = np.array([0.12, 0.03, 0.08]) - front_pos
    # The wrist camera sits on top of the gripper servo and looks along the fingers, slightly inward.
    wrist_axes = _xyaxes(np.array([1.0, 0.0, -0.45]), np.array([0.0, 0.0, 1.0]))
    zx, zy = ZONE_CENTER
    actuators = "\n    ".join(
        f'<position name="{s.name}" joint="{s.name}" kp="{s.kp}" kv="{s.kv}" '
        f'ctrlrange="{_f(s.lower, s.upper)}" forcerange="{_f(-s.force, s.force)}"/>'
        for s in JOINTS
    )
    return f"""<mujoco model="so101_pick_place">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{TIMESTEP:.8f}" cone="elliptic" impratio="10" integrator="implicitfast"/>
  <visual>
    <global offwidth="640" offheight="480"/>
    <map znear="0.003" zfar="4"/>
    <!-- Software GL (llvmpipe) budget: no MSAA, no shadow map, coarse tessellation, and an untextured floor
         drawn as one quad bring a 320x240 frame from ~45 ms to ~3 ms of CPU. -->
    <quality offsamples="0" shadowsize="0" numslices="16" numstacks="8"/>
    <headlight ambient="0.35 0.35 0.35" diffuse="0.4 0.4 0.4" specular="0.05 0.05 0.05"/>
  </visual>
  <asset>
    <material name="floor" rgba="0.3 0.32 0.36 1"/>
    <material name="wood" rgba="0.62 0.48 0.34 1"/>
    <material name="shell" rgba="0.95 0.78 0.18 1"/>
    <material name="servo" rgba="0.12 0.12 0.13 1"/>
    <material name="pad" rgba="0.2 0.2 0.22 1"/>
    <material name="cube" rgba="0.85 0.15 0.12 1"/>
    <material name="zone" rgba="0.15 0.65 0.3 1"/>
  </asset>
  <default>
    <geom contype="0" conaffinity="0" friction="1 0.005 0.0001"/>
    <default class="grip">
      <!-- gripper parts touch the cube and the table; arm links never collide with each other -->
      <geom contype="2" conaffinity="1" friction="1.5 0.01 0.001" condim="4" solref="0.004 1"/>
    </default>
  </default>
  <worldbody>
    <light name="key" directional="true" pos="0.3 -0.3 1.2" dir="-0.2 0.25 -1" diffuse="0.55 0.55 0.55"
           castshadow="false"/>
    <geom name="floor" type="plane" pos="0 0 -0.75" size="3 3 3" material="floor"/>
    <geom name="table" type="box" pos="0.15 0 -0.02" size="0.35 0.45 0.02" material="wood"
          contype="1" conaffinity="1"/>
    <geom name="table_leg" type="box" pos="0.15 0 -0.39" size="0.05 0.05 0.35" material="wood"/>
    <geom name="target_zone" type="box" pos="{_f(zx, zy, 0.0004)}" size="{_f(ZONE_HALF, ZONE_HALF, 0.0004)}"
          material="zone"/>
    <camera name="front" pos="{_f(*front_pos)}" xyaxes="{_xyaxes(front_look, np.array([0.0, 0.0, 1.0]))}"
            fovy="55"/>

    <body name="cube" pos="0.2 -0.05 {CUBE_HALF + 0.0005}">
      <freejoint name="cube"/>
      <geom name="cube" type="box" size="{_f(CUBE_HALF, CUBE_HALF, CUBE_HALF)}" mass="{CUBE_MASS}"
            material="cube" contype="1" conaffinity="3" condim="4" friction="1.2 0.01 0.001"
            solref="0.004 1"/>
    </body>

    <body name="base" pos="0 0 0">
      <geom name="base" type="cylinder" pos="0 0 {BASE_HEIGHT / 2}" size="0.045 {BASE_HEIGHT / 2}"
            material="shell"/>
      <body name="shoulder" pos="0 0 {BASE_HEIGHT}">
        {_joint_xml(j["shoulder_pan"], "0 0 1")}
        <geom name="pan_servo" type="box" pos="0 0 0.016" size="0.024 0.02 0.016" material="servo" mass="0.06"/>
        <geom name="shoulder_bracket" type="box" pos="{SHOULDER_FORWARD / 2} 0 {SHOULDER_RISE - 0.006}"
              size="{SHOULDER_FORWARD / 2 + 0.012} 0.03 0.012"
              material="shell" mass="0.02"/>
        <body name="upper_arm" pos="{SHOULDER_FORWARD} 0 {SHOULDER_RISE}">
          {_joint_xml(j["shoulder_lift"], "0 1 0")}
          <geom name="lift_servo" type="box" size="0.02 0.024 0.016" material="servo" mass="0.06"/>
          <geom name="upper_arm" type="capsule" fromto="0 0 0.012 0 0 {UPPER_ARM - 0.012}" size="0.014"
                material="shell" mass="0.05"/>
          <body name="forearm" pos="0 0 {UPPER_ARM}">
            {_joint_xml(j["elbow_flex"], "0 1 0")}
            <geom name="elbow_servo" type="box" size="0.02 0.024 0.016" material="servo" mass="0.06"/>
            <geom name="forearm" type="capsule" fromto="0.012 0 0 {FOREARM - 0.014} 0 0" size="0.012"
                  material="shell" mass="0.04"/>
            <body name="wrist" pos="{FOREARM} 0 0">
              {_joint_xml(j["wrist_flex"], "0 1 0")}
              <geom name="flex_servo" type="box" pos="0.008 0 0" size="0.016 0.022 0.014" material="servo"
                    mass="0.05"/>
              <body name="gripper_frame" pos="{WRIST_LINK} 0 0">
                {_joint_xml(j["wrist_roll"], "1 0 0")}
                <geom name="palm" class="grip" type="box" pos="0.012 0 0" size="0.012 0.024 0.016"
                      material="servo" mass="0.05"/>
                <geom name="fixed_jaw" class="grip" type="box" pos="0.05 -0.0175 0" size="0.026 0.004 0.012"
                      material="shell" mass="0.01"/>
                <geom name="fixed_jaw_tip" class="grip" type="box" pos="0.0745 -0.0155 0"
                      size="0.0015 0.002 0.012" material="pad" mass="0.001"/>
                <site name="grasp" pos="{GRASP_DEPTH} 0 0" size="0.004" rgba="0 1 0 0"/>
                <camera name="wrist" pos="0.02 0 0.023" xyaxes="{wrist_axes}" fovy="75"/>
                <geom name="wrist_cam_body" type="box" pos="0.008 0 0.021" size="0.01 0.012 0.005"
                      material="servo"/>
                <body name="moving_jaw" pos="0.006 0.014 0">
                  {_joint_xml(j["gripper"], "0 0 1")}
                  <geom name="moving_finger" class="grip" type="box" pos="0.034 0.0 0" size="0.034 0.004 0.011"
                        material="shell" mass="0.012"/>
                  <geom name="moving_pad" class="grip" type="capsule" fromto="0.052 -0.0215 -0.007 0.052 -0.0215 0.007"
                        size="0.006" material="pad" mass="0.002"/>
                  <geom name="pad_bridge" type="box" pos="0.052 -0.011 0" size="0.005 0.008 0.008"
                        material="shell"/>
                </body>
              </body>
            </body>
          </body>
        </body>
      </body>
    </body>
  </worldbody>
  <actuator>
    {actuators}
  </actuator>
</mujoco>
"""
