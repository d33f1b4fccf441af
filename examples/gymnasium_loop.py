"""A CleanRL-style training loop over a Gymnasium MuJoCo environment, captured by trajscope.

No JAX, no agent library: the agent is a linear policy trained by augmented random search
(NumPy, a few lines), with a linear critic fitted to the returns it sees, so that every
figure of the viewer has something real to show. Swap in your own agent: trajscope needs
only the three marked lines.

    python examples/gymnasium_loop.py --env HalfCheetah-v5 --iterations 30
    trajscope view trajscope_runs/<the run it prints>

CI runs it with tiny settings (tests/test_gym.py).
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np

from trajscope.capture import GymRecorder


def main(
    env_id: str = "HalfCheetah-v5",
    iterations: int = 30,
    num_envs: int = 8,
    rollout_steps: int = 200,
    eval_every: int = 5,
    eval_envs: int = 4,
    root: str | None = None,
    name: str | None = None,
    live: int = 2,
    seed: int = 0,
    gamma: float = 0.99,
) -> str:
    rng = np.random.default_rng(seed)
    envs = gym.vector.SyncVectorEnv([lambda: gym.make(env_id) for _ in range(num_envs)])
    obs_dim = envs.single_observation_space.shape[0]
    act_dim = envs.single_action_space.shape[0]
    low, high = envs.single_action_space.low, envs.single_action_space.high

    # (1) one recorder: evaluation episodes per checkpoint, the first `live` training envs live.
    rec = GymRecorder(
        env_id, root=root, name=name, num_envs=eval_envs, episode_length=rollout_steps, live=live,
        nan_guard=32, discounting=gamma, algorithm="ars", config={"iterations": iterations, "num_envs": num_envs},
    )  # fmt: skip
    envs = rec.wrap(envs)  # (2) the training environments, watched

    W = np.zeros((act_dim, obs_dim))  # the policy: a = clip(W (obs - mean) / std)
    mean, var, count = np.zeros(obs_dim), np.ones(obs_dim), 1e-4
    critic = np.zeros(obs_dim + 1)  # the critic: v = [obs, 1] . critic

    def act(weights: np.ndarray, obs: np.ndarray) -> np.ndarray:
        return np.clip(((obs - mean) / np.sqrt(var + 1e-8)) @ weights.T, low, high).astype(np.float32)

    def value(obs: np.ndarray) -> np.ndarray:
        return np.concatenate([obs, np.ones((len(obs), 1))], 1) @ critic

    obs, _ = envs.reset(seed=seed)
    half = num_envs // 2
    for it in range(iterations):
        # Antithetic perturbations of the policy: env i uses W + d_i, env i + half uses W - d_i.
        deltas = rng.normal(size=(half, act_dim, obs_dim)) * 0.05
        weights = np.concatenate([W + deltas, W - deltas])
        returns, seen_obs, rewards_t, dones_t = np.zeros(num_envs), [], [], []
        for _ in range(rollout_steps):
            action = np.stack([act(weights[i], obs[i : i + 1])[0] for i in range(num_envs)])
            next_obs, reward, terminated, truncated, _ = envs.step(action)
            returns += reward
            seen_obs.append(obs)
            rewards_t.append(reward)
            dones_t.append(terminated | truncated)
            obs = next_obs
        # Update the policy (ARS) and the observation statistics.
        r_plus, r_minus = returns[:half], returns[half:]
        scale = np.concatenate([r_plus, r_minus]).std() + 1e-8
        W = W + 0.02 / (half * scale) * np.einsum("k,kij->ij", r_plus - r_minus, deltas)
        batch = np.concatenate(seen_obs)
        count_b = len(batch)
        delta = batch.mean(0) - mean
        tot = count + count_b
        mean = mean + delta * count_b / tot
        var = (var * count + batch.var(0) * count_b + delta**2 * count * count_b / tot) / tot
        count = tot
        # Fit the critic to the discounted returns of this batch, episode by episode (least squares).
        g, ret = np.zeros(num_envs), []
        for r, d in zip(reversed(rewards_t), reversed(dones_t)):
            g = r + gamma * g * ~d
            ret.append(g)
        seen_ret = np.concatenate(ret[::-1])
        X = np.concatenate([batch, np.ones((len(batch), 1))], 1)
        critic = np.linalg.lstsq(X, seen_ret, rcond=None)[0]
        step = (it + 1) * rollout_steps * num_envs
        if (it + 1) % eval_every == 0 or it == 0:
            # (3) a checkpoint: its deterministic policy and critic, evaluated and captured.
            Wc, mc, vc = W.copy(), mean.copy(), var.copy()
            rec.capture(
                step,
                lambda o, Wc=Wc, mc=mc, vc=vc: np.clip(((o - mc) / np.sqrt(vc + 1e-8)) @ Wc.T, low, high),
                value_fn=value,
                params={"policy": {"W": Wc, "obs_mean": mc, "obs_var": vc}, "critic": critic.copy()},
            )
            print(f"iteration {it + 1}: mean return {returns.mean():.1f}, {rec.captures} captures")
    envs.close()
    rec.close()
    print(f"view with: trajscope view {rec.writer.url}")
    return rec.writer.url


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--iterations", type=int, default=30)
    p.add_argument("--num-envs", type=int, default=8)
    p.add_argument("--rollout-steps", type=int, default=200)
    p.add_argument("--eval-every", type=int, default=5)
    p.add_argument("--root", default=None)
    p.add_argument("--name", default=None)
    a = p.parse_args()
    main(a.env, a.iterations, a.num_envs, a.rollout_steps, a.eval_every, root=a.root, name=a.name)
