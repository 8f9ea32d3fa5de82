"""The gymnasium environment over the sim world: spaces, seeding, stepping, success."""

from __future__ import annotations

from collections.abc import Iterator

import gymnasium as gym
import numpy as np
import pytest

from drivers.sim.demonstrator import Demonstrator
from drivers.sim.gym_env import ENV_ID, SO101PickPlaceEnv

W, H = 96, 72


@pytest.fixture
def env() -> Iterator[gym.Env]:
    e = gym.make(ENV_ID, width=W, height=H)
    yield e
    e.close()


def cube_xy(env: gym.Env) -> np.ndarray:
    return env.unwrapped.world.cube_pose()[0][:2]


def test_registered_env_has_lerobot_style_spaces(env: gym.Env) -> None:
    assert isinstance(env.unwrapped, SO101PickPlaceEnv)
    obs, info = env.reset(seed=0)
    assert info == {"is_success": False}
    assert env.observation_space.contains(obs)
    assert set(obs["pixels"]) == {"front", "wrist"}
    assert obs["pixels"]["front"].shape == (H, W, 3)
    assert env.action_space.shape == (6,)
    # Joints in degrees like the calibrated robot reports them, gripper 0..100.
    assert env.action_space.high[5] == pytest.approx(100.0) and env.action_space.low[5] == pytest.approx(0.0)
    assert env.action_space.high[0] == pytest.approx(110.0, abs=0.1)
    assert obs["agent_pos"][3] == pytest.approx(90.0, abs=0.1)
    frame = env.render()
    assert frame is not None and frame.shape == (H, W, 3) and frame.std() > 5


def test_reset_seed_randomizes_the_cube_reproducibly(env: gym.Env) -> None:
    env.reset(seed=11)
    a = cube_xy(env)
    env.reset(seed=11)
    assert cube_xy(env) == pytest.approx(a)
    env.reset(seed=12)
    assert cube_xy(env) != pytest.approx(a)


def test_step_moves_toward_the_action(env: gym.Env) -> None:
    obs, _ = env.reset(seed=0)
    action = obs["agent_pos"].copy()
    action[0] += 20.0
    for _ in range(30):
        obs, reward, terminated, truncated, info = env.step(action)
    assert obs["agent_pos"][0] == pytest.approx(action[0], abs=1.5)
    assert reward == 0.0 and not terminated and not truncated and info["is_success"] is False


def test_demonstration_in_robot_units_succeeds(env: gym.Env) -> None:
    base: SO101PickPlaceEnv = env.unwrapped  # type: ignore[assignment]
    env.reset(seed=4)
    traj = Demonstrator(base.world).plan_for(base.world)
    dt = base.frame_skip * base.world.model.opt.timestep
    t, terminated, truncated, info = 0.0, False, False, {}
    while not (terminated or truncated):
        action = np.array(base.ticks.normalized(list(traj(t))), dtype=np.float32)
        _, reward, terminated, truncated, info = env.step(action)
        t += dt
    assert terminated and info["is_success"] and reward == 1.0


@pytest.mark.filterwarnings("ignore:.*(symmetric and normalized|not having a spec).*:UserWarning")
def test_passes_gymnasium_env_checker() -> None:
    """Space containment, seeding determinism and the render API, as gymnasium defines them."""
    from gymnasium.utils.env_checker import check_env

    env = SO101PickPlaceEnv(width=64, height=48)
    try:
        check_env(env, skip_render_check=False)
    finally:
        env.close()
