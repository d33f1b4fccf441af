"""Capture an mjlab training (PyTorch, MuJoCo Warp, rsl_rl) with trajscope's host API.

mjlab is not installed with trajscope: it pins ``mujoco~=3.11`` and ``mujoco-warp~=3.11``
and brings PyTorch (with CUDA libraries, about 6.7 GB), while trajscope's JAX extras use
newer MuJoCo. Run this in mjlab's own environment, with trajscope's core added without its
dependencies (it needs only numpy, fsspec, tyro, viser and mujoco, which mjlab has):

    python -m venv mjlab-env && mjlab-env/bin/pip install mjlab
    mjlab-env/bin/pip install --no-deps -e /path/to/trajscope
    mjlab-env/bin/python examples/mjlab_capture.py --iterations 4     # CPU: no GPU needed
    mjlab-env/bin/trajscope view trajscope_runs/<the run it prints>

View it with the MuJoCo it was written with (mjlab's 3.11, as above): the run stores the
model as MuJoCo's binary ``mjb``, which only the same MuJoCo version reads, and MuJoCo 3.11
cannot write mjlab's scene back to an MJCF that loads again (``MjSpec.to_xml``: "empty class
name"). Other MuJoCo versions say so when they open it.

What it does, with nothing of mjlab changed:

- the training environments are wrapped (rsl_rl's ``VecEnv`` interface) so that after each
  step ``StepRecorder.record_step`` sees the first worlds' ``qpos``/``qvel`` (mjlab's
  ``sim.data``, PyTorch tensors on the training device; only the streamed rows are copied
  to the host, and only while the viewer has the live stream on);
- after every ``--eval-every`` learning iterations, the runner's inference policy is run
  deterministically in an evaluation environment of its own, from the same seed each time,
  and the episode is written as an evaluation capture (reset frame included).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict

import numpy as np
import torch

from trajscope.capture import StepRecorder


def evaluate(task: str, policy, num_envs: int, steps: int, seed: int, device: str) -> dict:
    """Capture arrays of ``num_envs`` evaluation episodes of ``policy``, ``(steps + 1, E, ...)``."""
    from mjlab.envs import ManagerBasedRlEnv
    from mjlab.rl import RslRlVecEnvWrapper
    from mjlab.tasks.registry import load_env_cfg

    cfg = load_env_cfg(task, play=True)
    cfg.scene.num_envs = num_envs
    cfg.seed = seed
    env = RslRlVecEnvWrapper(ManagerBasedRlEnv(cfg=cfg, device=device))
    data = env.unwrapped.sim.data
    obs = env.get_observations()

    def state() -> dict:
        return {"qpos": data.qpos[:].detach().cpu().numpy().copy(), "qvel": data.qvel[:].detach().cpu().numpy().copy()}

    nu = env.num_actions
    frames = [{**state(), "action": np.zeros((num_envs, nu), np.float32), "reward": np.zeros(num_envs, np.float32),
               "done": np.zeros(num_envs, bool)}]  # fmt: skip
    ended = np.zeros(num_envs, bool)
    with torch.inference_mode():
        for _ in range(steps):
            action = policy(obs)
            obs, reward, done, _ = env.step(action)
            done = done.cpu().numpy().astype(bool)
            frames.append({**state(), "action": action.cpu().numpy().astype(np.float32),
                           "reward": reward.cpu().numpy().astype(np.float32), "done": done | ended})  # fmt: skip
            ended |= done
    env.close()
    return {k: np.stack([f[k] for f in frames]) for k in frames[0]}


def main(task: str, iterations: int, eval_every: int, num_envs: int, eval_envs: int, eval_steps: int,
         root: str | None, name: str | None, live: int, live_on: bool = False) -> str:  # fmt: skip
    from mjlab.envs import ManagerBasedRlEnv
    from mjlab.rl import MjlabOnPolicyRunner, RslRlVecEnvWrapper
    from mjlab.tasks.registry import load_env_cfg, load_rl_cfg, load_runner_cls

    device = "cuda:0" if torch.cuda.is_available() else "cpu"
    env_cfg, agent_cfg = load_env_cfg(task), load_rl_cfg(task)
    env_cfg.scene.num_envs = num_envs
    env = ManagerBasedRlEnv(cfg=env_cfg, device=device)
    sim = env.sim
    rec = StepRecorder(
        sim.mj_model, root=root, name=name, control_dt_s=float(env.step_dt), live=live, env_name=task,
        live_chunk_steps=agent_cfg.num_steps_per_env,  # one chunk per rollout of rsl_rl
        algorithm="ppo (rsl_rl)", source="mjlab", config={"task": task, "num_envs": num_envs},
    )  # fmt: skip
    if live_on and rec.live is not None:
        rec.live.switch(True, rate=1000)  # stream every chunk from the start, viewer or not

    class Recorded(RslRlVecEnvWrapper):
        """rsl_rl's view of the environment; each step also seen by the recorder."""

        def step(self, actions):
            obs, rewards, dones, extras = super().step(actions)
            rec.record_step(actions, rewards, dones, qpos=sim.data.qpos, qvel=sim.data.qvel)
            return obs, rewards, dones, extras

    vec = Recorded(env, clip_actions=agent_cfg.clip_actions)
    runner = (load_runner_cls(task) or MjlabOnPolicyRunner)(vec, asdict(agent_cfg), device=device)
    steps_per_iteration = agent_cfg.num_steps_per_env * num_envs
    for done_its in range(0, iterations, eval_every):
        runner.learn(num_learning_iterations=min(eval_every, iterations - done_its))
        step = (done_its + eval_every) * steps_per_iteration
        arrays = evaluate(task, runner.get_inference_policy(device=device), eval_envs, eval_steps, 0, device)
        rec.writer.add_capture(step=step, kind="eval", reset_frame=True, deterministic=True,
                               attrs={"source": "rollout", "loop": "mjlab"}, **arrays)  # fmt: skip
        print(f"step {step}: evaluation return {arrays['reward'].sum(0).mean():.2f}")
    rec.close()
    print(f"view with: trajscope view {rec.writer.url}")
    return rec.writer.url


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="Mjlab-Velocity-Flat-Unitree-Go1")
    p.add_argument("--iterations", type=int, default=4)
    p.add_argument("--eval-every", type=int, default=2)
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--eval-envs", type=int, default=2)
    p.add_argument("--eval-steps", type=int, default=100)
    p.add_argument("--live", type=int, default=2)
    p.add_argument("--live-on", action="store_true", help="stream from the start, without waiting for a viewer")
    p.add_argument("--root", default=None)
    p.add_argument("--name", default=None)
    a = p.parse_args()
    main(a.task, a.iterations, a.eval_every, a.num_envs, a.eval_envs, a.eval_steps, a.root, a.name, a.live, a.live_on)
