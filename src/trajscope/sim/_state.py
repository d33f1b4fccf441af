"""The physics state inside an environment's state, and the model it simulates.

Works on MuJoCo Playground states (``state.data``, an ``mjx.Data``) and brax states
(``state.pipeline_state``), and on the environments themselves (Playground keeps its
``mjx.Model`` in ``_mjx_model``, brax its ``System`` in ``sys``). Reading is plain attribute
access (no JAX import; usable inside ``jit``); restoring a state imports JAX when called.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np


class StateError(ValueError):
    """A state that cannot be read, restored or pushed here: the reason is the message."""


def physics(state: Any) -> Any:
    """The physics state: playground's ``state.data`` or brax's ``state.pipeline_state``."""
    data = getattr(state, "data", None)
    if data is None:
        data = getattr(state, "pipeline_state", None)
    if data is None:
        raise TypeError(f"{type(state).__name__} has neither .data nor .pipeline_state")
    return data


def _first(obj: Any, *names: str) -> Any:
    for n in names:
        v = getattr(obj, n, None)
        if v is not None:
            return v
    return None


def physics_qpos(d: Any) -> Any:
    """Positions of a physics state (``qpos``, or brax's ``q``)."""
    return _first(d, "qpos", "q")


def physics_qvel(d: Any) -> Any:
    """Velocities of a physics state (``qvel``, or brax's ``qd``)."""
    return _first(d, "qvel", "qd")


def base_model(env: Any) -> tuple[str, Any]:
    """Which attribute holds the model randomisation replaces, and its value.

    MuJoCo Playground environments keep an ``mjx.Model`` in ``_mjx_model``; brax
    environments a ``System`` in ``sys``.
    """
    u = getattr(env, "unwrapped", env)
    if hasattr(u, "_mjx_model"):
        return "_mjx_model", u._mjx_model
    if hasattr(u, "sys"):
        return "sys", u.sys
    raise TypeError(f"{type(env).__name__}: cannot find the model to randomise (no _mjx_model or sys)")


def mj_model(env: Any) -> Any:
    """The ``mujoco.MjModel`` an environment simulates."""
    u = getattr(env, "unwrapped", env)
    for obj in (u, getattr(u, "sys", None)):
        m = getattr(obj, "mj_model", None) if obj is not None else None
        if m is not None:
            return m
    raise TypeError(f"{type(env).__name__} exposes no mj_model")


def set_model(env: Any, attr: str, model: Any) -> Any:
    """Put ``model`` in ``env``'s attribute ``attr`` (see :func:`base_model`); ``env``."""
    setattr(getattr(env, "unwrapped", env), attr, model)
    return env


@contextlib.contextmanager
def swap_model(env: Any, attr: str, model: Any) -> Iterator[None]:
    """Within: ``env``'s model is ``model`` (a randomised one); its own is put back after."""
    u = getattr(env, "unwrapped", env)
    old = getattr(u, attr)
    setattr(u, attr, model)
    try:
        yield
    finally:
        setattr(u, attr, old)


def randomized_fields(model_v: Any, in_axes: Any) -> dict[str, Any]:
    """Top-level model fields that randomisation made per-environment, ``(E, ...)``."""
    import jax

    out = {}
    for f in dataclasses.fields(model_v):
        ax = getattr(in_axes, f.name, None)
        v = getattr(model_v, f.name, None)
        if isinstance(ax, int) and not isinstance(ax, bool) and ax == 0 and isinstance(v, jax.Array):
            out[f.name] = v
    return out


def restore(env: Any, model: Any, state: Any, qpos: np.ndarray, qvel: np.ndarray, extra: Mapping[str, Any]) -> Any:
    """``state`` moved to a captured physics state (``qpos``, ``qvel`` and ``extra`` such as
    ``act`` and mocap poses), derived quantities recomputed with ``model``."""
    import jax.numpy as jnp

    u = getattr(env, "unwrapped", env)
    data = getattr(state, "data", None)
    if data is not None:  # MuJoCo Playground: an mjx.Data
        from mujoco import mjx

        repl = {"qpos": jnp.asarray(qpos), "qvel": jnp.asarray(qvel)}
        for k, v in extra.items():
            if getattr(data, k, None) is not None:
                repl[k] = jnp.asarray(v)
        data = data.replace(**repl)
        try:
            data = mjx.forward(model, data)
        except Exception as e:  # noqa: BLE001 - e.g. a warp Data on CPU
            raise StateError(
                f"cannot recompute the restored state with mjx.forward ({type(e).__name__}: {e}); "
                "load the environment with impl='jax' to play on CPU"
            ) from None
        return state.replace(data=data)
    if hasattr(u, "pipeline_init"):  # brax: the pipeline recomputes its state from q, qd
        with swap_model(env, "sys", model) if hasattr(u, "sys") else contextlib.nullcontext():
            ps = u.pipeline_init(jnp.asarray(qpos), jnp.asarray(qvel))
        return state.replace(pipeline_state=ps)
    raise StateError(f"{type(u).__name__}: cannot restore a state (no .data and no pipeline_init)")


def set_xfrc(state: Any, xfrc: Any) -> Any:
    """``state`` with external forces on its bodies (``xfrc_applied``)."""
    data = getattr(state, "data", None)
    if data is not None and hasattr(data, "xfrc_applied"):
        return state.replace(data=data.replace(xfrc_applied=xfrc))
    ps = getattr(state, "pipeline_state", None)
    if ps is not None and hasattr(ps, "xfrc_applied"):
        return state.replace(pipeline_state=ps.replace(xfrc_applied=xfrc))
    raise StateError("this environment's physics state has no xfrc_applied: bodies cannot be pushed")


def perturbable(state: Any) -> bool:
    """Whether bodies of this state can be pushed (its physics holds ``xfrc_applied``)."""
    for d in (getattr(state, "data", None), getattr(state, "pipeline_state", None)):
        if d is not None and hasattr(d, "xfrc_applied"):
            return True
    return False
