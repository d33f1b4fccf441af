"""Evaluation rollouts of a policy checkpoint, compiled once per run.

rscope traces and compiles its rollout again at every dump; here the jitted rollout takes
the policy parameters as an argument, so XLA compiles it at the first checkpoint and every
later checkpoint reuses that executable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from .. import sim
from . import _state


@dataclasses.dataclass
class RolloutConfig:
    num_envs: int
    num_steps: int
    action_repeat: int = 1
    deterministic: bool = True
    info_keys: Sequence[str] = ()
    contacts: int = 0
    randomization_fn: Callable[..., Any] | None = None


def make_rollout(
    env: Any,
    make_policy: Callable[..., Any],
    cfg: RolloutConfig,
    *,
    value_fn: Callable[[Any, Any], jax.Array] | None = None,
) -> Callable[[Any, jax.Array], dict[str, Any]]:
    """A jitted ``rollout(params, key) -> capture arrays`` of ``num_envs`` environments
    over ``num_steps + 1`` frames (pass ``reset_frame=True`` to ``add_capture``).

    Frame 0 is the state each environment was reset to (action 0, reward 0, done False);
    frame ``t`` is the state after ``t`` control steps, with the action and reward of the
    step that led to it. ``obs`` and ``value`` are those of the frame's state. Each
    environment runs one episode of up to ``num_steps`` steps; one whose episode ends stays
    at its final state: later frames repeat it with zero reward and ``done`` False, so
    replay shows where it ended.
    """
    E, T = cfg.num_envs, cfg.num_steps

    def rollout(params: Any, key: jax.Array) -> dict[str, Any]:
        policy = make_policy(params, deterministic=cfg.deterministic)
        k_reset, k_rand, k_act = jax.random.split(key, 3)
        fields: dict[str, jax.Array] = {}
        if cfg.randomization_fn is not None:
            attr, model = sim.base_model(env)
            model_v, in_axes = cfg.randomization_fn(model, jax.random.split(k_rand, E))
            fields = sim.randomized_fields(model_v, in_axes)
            reset = jax.vmap(lambda m, k: sim.set_model(env, attr, m).reset(k), in_axes=(in_axes, 0))
            step1 = jax.vmap(lambda m, s, a: sim.set_model(env, attr, m).step(s, a), in_axes=(in_axes, 0, 0))
            try:
                state0 = reset(model_v, jax.random.split(k_reset, E))
            finally:
                sim.set_model(env, attr, model)

            def env_step(s: Any, a: jax.Array) -> Any:
                try:
                    return step1(model_v, s, a)
                finally:
                    sim.set_model(env, attr, model)
        else:
            state0 = jax.vmap(env.reset)(jax.random.split(k_reset, E))
            env_step = jax.vmap(env.step)

        def body(carry: tuple[Any, jax.Array], k: jax.Array) -> tuple[tuple[Any, jax.Array], dict[str, Any]]:
            state, ended = carry
            action, _ = policy(state.obs, k)
            nstate, reward = state, jnp.zeros_like(state.reward)
            for _ in range(cfg.action_repeat):
                nstate = env_step(nstate, action)
                reward = reward + nstate.reward
            keep = ended

            def hold(new: Any, old: Any) -> Any:
                if not hasattr(new, "shape") or new.ndim == 0 or new.shape[0] != E:
                    return new
                return jnp.where(keep.reshape((E,) + (1,) * (new.ndim - 1)), old, new)

            nstate = jax.tree_util.tree_map(hold, nstate, state)
            rec = _state.extract(nstate, action=action, obs=nstate.obs, info_keys=cfg.info_keys, contacts=cfg.contacts)
            rec["reward"] = jnp.where(ended, 0.0, reward)
            rec["done"] = jnp.logical_and(~ended, nstate.done.astype(bool))
            if value_fn is not None:
                rec["value"] = value_fn(params, nstate.obs)
            return (nstate, jnp.logical_or(ended, nstate.done.astype(bool))), rec

        (_, _), traj = jax.lax.scan(body, (state0, jnp.zeros(E, bool)), jax.random.split(k_act, T))
        # Frame 0: the reset state, shaped like the steps (a step may add metrics reset lacks).
        first = _state.extract(
            state0, action=jnp.zeros_like(traj["action"][0]), info_keys=cfg.info_keys, contacts=cfg.contacts
        )
        first["reward"] = jnp.zeros_like(traj["reward"][0])
        first["done"] = jnp.zeros_like(traj["done"][0])
        if value_fn is not None:
            first["value"] = value_fn(params, state0.obs)
        first = _state.conform(first, traj)
        traj = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[None].astype(b.dtype), b]), first, traj)
        if fields:
            traj["model_fields"] = fields
        return traj

    return jax.jit(rollout)
