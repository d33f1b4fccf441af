"""The contacts the simulator found, per environment, from a batched MJX state.

MJX's JAX implementation keeps a fixed set of candidate contacts per environment
(``data._impl.contact``, ``(E, ncon, ...)``; the active ones are within their margin).
MuJoCo Warp keeps the contacts of *all* worlds in one flat buffer under ``data._impl``
(``contact__pos``, ``contact__worldid``, ... of ``naconmax`` rows, the first ``nacon`` in
use): they are split here by world, each environment's first ``k`` kept. Pure JAX: runs
inside ``jit`` and ``scan``.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

FIELDS = ("pos", "normal", "dist", "geom", "count")
"""What :func:`contacts` gives, stored as ``info/contact/<field>``."""


def supported(data: Any) -> bool:
    """Whether this physics state holds contacts :func:`contacts` can read (MJX: JAX or Warp)."""
    impl = getattr(data, "_impl", None)
    return impl is not None and (hasattr(impl, "contact__worldid") or hasattr(impl, "contact"))


def contacts(data: Any, k: int) -> dict[str, Any]:
    """Each environment's first ``k`` contacts of a batched ``mjx.Data`` (leading axis ``E``):
    ``pos (E, k, 3)`` (world frame), ``normal (E, k, 3)`` (from the first geom to the second),
    ``dist (E, k)`` (negative: penetration), ``geom (E, k, 2)`` (geom ids, -1 in unused
    slots) and ``count (E,)``: the environment's contacts in all (more than ``k`` are not kept).
    Unused slots hold zeros."""
    impl = getattr(data, "_impl", None)
    E = data.qpos.shape[0]
    if impl is not None and hasattr(impl, "contact__worldid"):
        return _warp(impl, E, k)
    if impl is not None and hasattr(impl, "contact"):
        return _jax(impl.contact, k)
    raise TypeError(
        f"{type(data).__name__} holds no MJX contacts (MJX's JAX or Warp implementation); "
        "contacts can be captured from MuJoCo Playground environments only"
    )


def _none(E: int, k: int) -> dict[str, Any]:
    """A model whose geoms never collide: every slot unused."""
    return {
        "pos": jnp.zeros((E, k, 3)),
        "normal": jnp.zeros((E, k, 3)),
        "dist": jnp.zeros((E, k)),
        "geom": jnp.full((E, k, 2), -1, jnp.int32),
        "count": jnp.zeros((E,), jnp.int32),
    }


def _jax(c: Any, k: int) -> dict[str, Any]:
    """MJX (JAX): candidates ``(E, ncon)``, active within their margin; active ones first."""
    E, n = c.dist.shape
    if n == 0:
        return _none(E, k)
    active = c.dist < c.includemargin
    order = jnp.argsort(~active, axis=1, stable=True)[:, :k]
    take = min(k, n)

    def pick(x: Any) -> Any:
        idx = order.reshape(order.shape + (1,) * (x.ndim - 2))
        return jnp.take_along_axis(x, idx, axis=1)

    ok = jnp.take_along_axis(active, order, axis=1)
    out = {
        "pos": pick(c.pos),
        "normal": pick(c.frame)[:, :, 0, :],
        "dist": pick(c.dist),
        "geom": pick(jnp.broadcast_to(c.geom, (E, n, 2)).astype(jnp.int32)),
    }
    return _finish(out, ok, active.sum(axis=1), take, k)


def _warp(impl: Any, E: int, k: int) -> dict[str, Any]:
    """MuJoCo Warp: one flat buffer of every world's contacts, split by ``worldid``."""
    world = impl.contact__worldid
    N = world.shape[0]
    if N == 0:
        return _none(E, k)
    used = jnp.arange(N) < jnp.reshape(impl.nacon, (-1,))[0]
    key: Any = jnp.where(used, world, E)  # unused rows sort last
    order = jnp.argsort(key, stable=True)
    sorted_key = key[order]
    worlds = jnp.arange(E)
    start = jnp.searchsorted(sorted_key, worlds, side="left")
    end = jnp.searchsorted(sorted_key, worlds, side="right")
    slot = start[:, None] + jnp.arange(k)[None, :]
    ok = slot < end[:, None]
    rows = order[jnp.clip(slot, 0, N - 1)]
    out = {
        "pos": impl.contact__pos[rows],
        "normal": impl.contact__frame[rows][:, :, 0, :],
        "dist": impl.contact__dist[rows],
        "geom": impl.contact__geom[rows].astype(jnp.int32),
    }
    return _finish(out, ok, end - start, k, k)


def _finish(out: dict[str, Any], ok: Any, count: Any, take: int, k: int) -> dict[str, Any]:
    """Unused slots zeroed (geom -1), padded to ``k`` slots, and the count."""
    res = {}
    for name, value in out.items():
        mask = ok.reshape(ok.shape + (1,) * (value.ndim - 2))
        x: Any = jnp.where(mask, value, -1 if name == "geom" else 0)
        if take < k:
            pad = [(0, 0), (0, k - take)] + [(0, 0)] * (x.ndim - 2)
            x = jnp.pad(x, pad, constant_values=-1 if name == "geom" else 0)
        res[name] = x
    res["count"] = count.astype(jnp.int32)
    return res
