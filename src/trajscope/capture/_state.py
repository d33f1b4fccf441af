"""What one step of a batched environment state holds, as arrays named like the format.

Works on brax states (``pipeline_state`` with ``q``/``qd`` or ``qpos``/``qvel``) and MuJoCo
Playground states (``data``: an ``mjx.Data``). Pure JAX: call it inside ``jit``, ``scan``
and ``vmap``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ..sim import physics, physics_qpos, physics_qvel
from . import _contacts
from ._host import drop_empty as drop_empty


def extract(
    state: Any,
    *,
    action: jax.Array | None = None,
    info_keys: Sequence[str] = (),
    obs: Any = None,
    contacts: int = 0,
) -> dict[str, Any]:
    """One step of a batched state (leading axis ``E``) as ``RunWriter.add_capture`` arrays.

    Returns a pytree of arrays: ``qpos (E, nq)``, ``qvel (E, nv)``, ``mocap_pos``,
    ``mocap_quat``, ``act`` where the model has them, ``reward (E,)``, ``done (E,)``,
    ``metrics`` (every ``state.metrics`` entry), ``obs`` (``obs`` if given, else
    ``state.obs``), ``info`` (the named ``state.info`` entries) and ``action`` if given.
    With ``contacts=k``, ``info["contact"]`` holds each environment's first ``k`` contacts
    as the simulator found them (MJX's JAX or Warp implementation; see ``_contacts``).

    Use it in your own jitted rollout and stack the steps with ``lax.scan``: the stacked
    pytree, ``(T, E, ...)``, can be passed straight to ``add_capture(step=..., **stacked)``.
    """
    d = physics(state)
    out: dict[str, Any] = {"qpos": physics_qpos(d), "qvel": physics_qvel(d)}
    if out["qpos"] is None:
        raise TypeError(f"{type(d).__name__} has no qpos/q")
    for name in ("mocap_pos", "mocap_quat", "act"):
        v = getattr(d, name, None)
        if v is not None and v.ndim >= 2 and v.shape[1] > 0:
            out[name] = v
    out["reward"] = state.reward
    out["done"] = state.done.astype(bool)
    metrics = dict(getattr(state, "metrics", {}) or {})
    if metrics:
        out["metrics"] = {k: jnp.asarray(v) for k, v in metrics.items() if jnp.ndim(v) == 1}
    out["obs"] = state.obs if obs is None else obs
    if info_keys:
        info = state.info
        missing = [k for k in info_keys if k not in info]
        if missing:
            raise KeyError(f"state.info has no {missing}; it has {sorted(info)}")
        out["info"] = {k: info[k] for k in info_keys}
    if contacts:
        out.setdefault("info", {})["contact"] = _contacts.contacts(d, contacts)
    if action is not None:
        out["action"] = action
    return out


def step_buffer(env: Any, state: Any, frame_fn: Any, num_steps: int) -> Any:
    """Zeros to hold ``num_steps`` frames of ``frame_fn(next_state, action, obs)``, shaped as
    ``env.step`` makes them from the batched ``state`` (a step may add metrics that reset
    lacks). For wrappers that keep frames on the device between host hand-offs."""
    action = jnp.zeros((state.reward.shape[0], env.action_size))
    frame = jax.eval_shape(lambda s, a: frame_fn(env.step(s, a), a, s.obs), state, action)
    return jax.tree_util.tree_map(lambda x: jnp.zeros((num_steps, *x.shape), x.dtype), frame)


def conform(frame: dict[str, Any], buf: dict[str, Any]) -> dict[str, Any]:
    """``frame`` with exactly the keys of one step of ``buf``.

    Outer wrappers (brax's EvalWrapper) add metrics to the state after ``reset`` returns,
    so a step may carry keys the buffer was not made with; those are left out, and keys
    the step lacks are zeros.
    """
    out: dict[str, Any] = {}
    for k, b in buf.items():
        v = frame.get(k)
        if isinstance(b, dict):
            out[k] = conform(v if isinstance(v, dict) else {}, b)
        else:
            out[k] = jnp.zeros(b.shape[1:], b.dtype) if v is None else v
    return out
