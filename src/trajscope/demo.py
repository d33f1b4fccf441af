"""A demo run written without JAX: a cart-pole balanced by ever better controllers.

It exercises the whole format (model, metrics, dict observations, info, parameters) so
that ``trajscope demo`` works on a fresh machine in seconds.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .store import RunWriter

CARTPOLE_XML = """
<mujoco model="demo_cartpole">
  <option timestep="0.01"/>
  <worldbody>
    <light pos="0 0 4"/>
    <geom name="floor" type="plane" size="4 4 0.1" rgba=".8 .8 .8 1"/>
    <geom name="rail" type="capsule" fromto="-2 0 1 2 0 1" size="0.02" rgba=".3 .3 .3 1"/>
    <body name="cart" pos="0 0 1">
      <joint name="slider" type="slide" axis="1 0 0" range="-1.8 1.8" limited="true" damping="0.1"/>
      <geom name="cart" type="box" size="0.2 0.15 0.1" mass="1" rgba=".2 .4 .8 1"/>
      <body name="pole" pos="0 0 0">
        <joint name="hinge" type="hinge" axis="0 1 0" damping="0.01"/>
        <geom name="pole" type="capsule" fromto="0 0 0 0 0 0.6" size="0.04" mass="0.1" rgba=".9 .5 .1 1"/>
        <geom name="tip" type="sphere" pos="0 0 0.6" size="0.07" mass="0.05" rgba=".9 .1 .1 1"/>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor name="slide" joint="slider" gear="10" ctrllimited="true" ctrlrange="-1 1"/>
  </actuator>
</mujoco>
"""


def rollout(model: Any, gain: float, *, num_envs: int, num_steps: int, frame_skip: int, seed: int) -> dict[str, Any]:
    """Roll out a noisy PD balance controller of strength ``gain`` in ``num_envs`` copies."""
    import mujoco

    rng = np.random.default_rng(seed)
    data = [mujoco.MjData(model) for _ in range(num_envs)]
    for d in data:
        d.qpos[:] = rng.uniform(-0.15, 0.15, size=model.nq)
        mujoco.mj_forward(model, d)
    T, E = num_steps, num_envs
    out: dict[str, Any] = {
        k: np.zeros((T, E, n), np.float32) for k, n in (("qpos", model.nq), ("qvel", model.nv), ("action", model.nu))
    }
    reward, done = np.zeros((T, E), np.float32), np.zeros((T, E), bool)
    upright, ctrl_cost, centered = (np.zeros((T, E), np.float32) for _ in range(3))
    alive = np.ones(E, bool)
    for t in range(T):
        for e, d in enumerate(data):
            x, th = d.qpos
            xd, thd = d.qvel
            a = np.clip(gain * (3.0 * th + 0.6 * thd + 0.1 * x + 0.2 * xd) + rng.normal(0, 0.3), -1, 1)
            d.ctrl[:] = a
            for _ in range(frame_skip):
                mujoco.mj_step(model, d)
            out["qpos"][t, e], out["qvel"][t, e], out["action"][t, e] = d.qpos, d.qvel, a
            upright[t, e] = np.cos(d.qpos[1])
            centered[t, e] = np.exp(-(d.qpos[0] ** 2))
            ctrl_cost[t, e] = -0.01 * a * a
            fell = abs(d.qpos[1]) > 0.8
            reward[t, e] = (upright[t, e] + 0.5 * centered[t, e] + ctrl_cost[t, e]) * alive[e]
            done[t, e] = fell and alive[e]
            alive[e] &= not fell
    out.update(reward=reward, done=done)
    out["metrics"] = {"reward/upright": upright, "reward/centered": centered, "reward/ctrl": ctrl_cost}
    out["obs"] = {"state": np.concatenate([out["qpos"], out["qvel"]], axis=-1)}
    out["info"] = {"alive": np.cumprod(~done, axis=0).astype(bool)}
    return out


def write_demo_run(root: str | None = None, *, name: str | None = None, checkpoints: int = 6, num_envs: int = 8) -> str:
    """Write a run whose captures improve from checkpoint to checkpoint; return its path."""
    import mujoco

    model = mujoco.MjModel.from_xml_string(CARTPOLE_XML)
    frame_skip = 2
    with RunWriter(
        root,
        name=name,
        model=model,
        env_name="demo_cartpole",
        algorithm="scripted",
        config={"num_envs": num_envs, "frame_skip": frame_skip},
        tags=["demo"],
        control_dt_s=model.opt.timestep * frame_skip,
        strict=True,
    ) as w:
        for i in range(checkpoints):
            gain = i / max(1, checkpoints - 1)
            r = rollout(model, gain, num_envs=num_envs, num_steps=200, frame_skip=frame_skip, seed=i)
            w.add_capture(
                step=i * 10_000,
                kind="eval",
                deterministic=False,
                params={"policy": {"gain": np.array([gain], np.float32)}},
                **r,
            )
        return w.url
