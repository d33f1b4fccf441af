"""The demo: PPO learns brax's inverted pendulum on the CPU with capture on.

About two minutes on 2 cores (2 min 10 s measured): the captured evaluation return climbs to about 1000 (the
pendulum stays up for the whole 1000-step episode).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from ._train import recorder_for, train

PPO_CONFIG: dict[str, Any] = dict(
    num_evals=8,
    episode_length=1000,
    num_envs=128,
    batch_size=512,
    num_minibatches=8,
    unroll_length=10,
    num_updates_per_batch=4,
    normalize_observations=True,
    reward_scaling=10.0,
    discounting=0.97,
    learning_rate=3e-4,
    entropy_cost=1e-2,
    num_eval_envs=16,
    seed=0,
)


DEMO_STEPS = 573_440
"""14 of PPO's training steps of 40,960 env steps (512 x 8 x 10): brax trains whole epochs
and rounds other counts up; this one it trains exactly."""


def train_demo(
    root: str | None = None,
    *,
    name: str | None = None,
    num_timesteps: int = DEMO_STEPS,
    capture_envs: int = 16,
    live_envs: int = 4,
    on_start: Callable[[str], None] | None = None,
) -> str:
    """Train PPO on ``inverted_pendulum`` with capture at every checkpoint and a live stream
    of ``live_envs`` training environments; return the run's path. ``on_start(url)`` runs
    once the run folder exists, before training (the demo starts the viewer there)."""
    from brax import envs
    from brax.training.agents.ppo import train as ppo

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # brax's notice that its own pipelines are unmaintained
        env = envs.get_environment("inverted_pendulum")
    capture = dict(root=root, name=name, num_envs=capture_envs, tags=["demo"], live=live_envs)
    kwargs: dict[str, Any] = {"num_timesteps": num_timesteps, **PPO_CONFIG}
    rec = recorder_for(ppo.train, env, capture=capture, env_name="inverted_pendulum", **kwargs)
    rec.writer.flush()
    if on_start is not None:
        on_start(rec.writer.url)
    train(ppo.train, env, recorder=rec, **kwargs)
    return rec.writer.url
