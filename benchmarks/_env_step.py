"""Shared by the wrapper benchmarks (``nan_guard.py``, ``replay_mirror.py``): the cost of one
step of brax's batched training environment, wrapped one way or another, measured alone."""

from __future__ import annotations

import time
from typing import Any

import jax
import numpy as np


def step_medians(ways: dict[str, Any], *, envs: int, steps: int, repeats: int) -> dict[str, float]:
    """Milliseconds per step of each batched environment in ``ways`` (name to env): random
    actions, ``steps`` steps in one jitted ``lax.scan``, compiled first, then interleaved
    repeats (A B A B ...); prints each way's median and spread, returns the medians."""

    def runner(e: Any) -> Any:
        @jax.jit
        def run(key: jax.Array) -> jax.Array:
            state = e.reset(jax.random.split(key, envs))

            def body(s: Any, k: jax.Array) -> tuple[Any, None]:
                a = jax.random.uniform(k, (envs, e.action_size), minval=-1, maxval=1)
                return e.step(s, a), None

            state, _ = jax.lax.scan(body, state, jax.random.split(key, steps))
            # The physics state: a constant reward would let XLA drop every step.
            return state.pipeline_state.q.sum() + state.obs.sum()

        return run

    fns = {name: runner(e) for name, e in ways.items()}
    for f in fns.values():  # compile
        jax.block_until_ready(f(jax.random.PRNGKey(0)))
    times: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(repeats):
        for name, f in fns.items():
            t0 = time.perf_counter()
            jax.block_until_ready(f(jax.random.PRNGKey(r + 1)))
            times[name].append((time.perf_counter() - t0) / steps * 1000)
    med = {k: float(np.median(v)) for k, v in times.items()}
    for k, v in times.items():
        print(f"{k:<10} median {med[k]:.3f} ms/step  (spread {min(v):.3f} to {max(v):.3f}, {envs} envs)")
    return med
