"""The demo: PPO learns brax's inverted pendulum on the CPU with capture on.

About two minutes on 2 cores: the captured evaluation return climbs to about 1000 (the
pendulum stays up for the whole 1000-step episode).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

from ._brax import BraxRecorder

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


def train_demo(
    root: str | None = None,
    *,
    name: str | None = None,
    num_timesteps: int = 600_000,
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
    rec = BraxRecorder(
        env,
        root=root,
        name=name,
        num_envs=capture_envs,
        episode_length=PPO_CONFIG["episode_length"],
        normalize_observations=PPO_CONFIG["normalize_observations"],
        env_name="inverted_pendulum",
        config={"num_timesteps": num_timesteps, **PPO_CONFIG},
        tags=["demo"],
        live=live_envs,
    )
    rec.writer.flush()
    if on_start is not None:
        on_start(rec.writer.url)
    t0 = time.perf_counter()

    def progress(step: int, metrics: Any) -> None:
        r = float(metrics.get("eval/episode_reward", float("nan")))
        print(f"  {time.perf_counter() - t0:6.1f}s  step {step:>8}  brax eval return {r:8.1f}", flush=True)

    print(f"training PPO on inverted_pendulum for {num_timesteps} steps, capturing into {rec.writer.url}")
    with rec:
        ppo.train(
            env,
            num_timesteps=num_timesteps,
            progress_fn=progress,
            policy_params_fn=rec.policy_params_fn(),
            wrap_env_fn=rec.wrap_env_fn(),
            **PPO_CONFIG,
        )
    chunks = rec.live.chunks_sent if rec.live is not None else 0
    print(
        f"done in {time.perf_counter() - t0:.1f}s: {rec.stats.written - chunks} captures and {chunks} live chunks "
        f"written, {rec.stats.dropped} dropped, rollout compiled {rec.compiles}x"
    )
    return rec.writer.url
