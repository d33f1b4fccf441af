"""Saliency: which parts of an observation change a network's output.

Two methods, both on state vectors and on images (JAX is imported when called):

- ``gradient``: ``sum_j |d out_j / d obs|`` over the output's components (for a linear
  policy ``W @ obs``, ``sum_j |W_jk|`` for every observation).
- ``perturbation`` (Greydanus et al. 2018, "Visualizing and understanding Atari agents"):
  ``0.5 * ||out(obs) - out(perturbed obs)||^2``, where a state feature is replaced by its
  baseline (the mean over the observations given, unless ``baseline`` is), and an image is
  blended with a blurred copy of itself under a Gaussian mask centred at each pixel of a
  grid (``stride_px`` apart; the map is interpolated back to full size). An input the
  network ignores gets zero (to float rounding).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..format import schema

SALIENCY_METHODS = ("gradient", "perturbation")


def saliency(
    apply_fn: Callable[[Any, Any], Any],
    params: Any,
    obs: Any,
    *,
    method: str = "gradient",
    baseline: Any = None,
    sigma_px: float = 2.0,
    stride_px: int | None = None,
    batch: int = 256,
) -> Any:
    """Saliency of ``apply_fn(params, obs)`` (a batched output ``(N, ...)``) for each observation.

    Args:
        apply_fn: the network, ``apply_fn(params, obs) -> (N, ...)``; for a policy, its
            (deterministic) action.
        params: its parameters.
        obs: ``(N, ...)``, or a dict of such arrays (e.g. ``state`` and ``pixels/view_0``).
        method: ``"gradient"`` or ``"perturbation"``.
        baseline: perturbation only: what replaces a state feature, same structure as one
            observation; default the mean over ``obs``.
        sigma_px: perturbation only: the Gaussian mask's (and blur's) width on images.
        stride_px: perturbation only: grid spacing of the mask centres on images; default
            about 16 centres along the longer side.
        batch: observations evaluated at once.

    Returns:
        numpy float32 arrays of ``obs``'s structure and shapes, all >= 0.
    """
    if method not in SALIENCY_METHODS:
        raise ValueError(f"method must be one of {SALIENCY_METHODS}, not {method!r}")
    import jax
    import jax.numpy as jnp

    is_dict = isinstance(obs, Mapping)
    raw = obs if is_dict else {"": obs}
    tree = {str(k): jnp.asarray(v, jnp.float32) for k, v in raw.items()}
    n = {int(v.shape[0]) for v in tree.values()}
    if len(n) != 1:
        raise ValueError(f"observations disagree on their leading (batch) axis: {sorted(n)}")

    def call(t: dict[str, Any]) -> Any:
        out = apply_fn(params, t if is_dict else t[""])
        out = out[0] if isinstance(out, tuple) else out
        return jnp.reshape(out, (out.shape[0], -1))

    if method == "gradient":
        result = _gradient(call, tree, batch, jax, jnp)
    else:
        if baseline is None:
            base = {k: v.mean(axis=0) for k, v in tree.items()}
        else:
            b = baseline if is_dict else {"": baseline}
            base = {k: jnp.asarray(b[k], jnp.float32) for k in tree}
        result = {}
        for k in tree:
            shape = tuple(tree[k].shape[1:])
            if schema.is_image(k, shape):
                result[k] = _occlude_image(call, tree, k, sigma_px, stride_px, batch, jax, jnp)
            else:
                result[k] = _replace_features(call, tree, k, base[k], batch, jax, jnp)
    out = {k: np.asarray(v, np.float32) for k, v in result.items()}
    return out if is_dict else out[""]


def _batches(N: int, size: int) -> list[slice]:
    return [slice(i, min(N, i + size)) for i in range(0, N, max(1, size))]


def _gradient(call: Callable[[Any], Any], tree: dict[str, Any], batch: int, jax: Any, jnp: Any) -> dict[str, Any]:
    def one(t: dict[str, Any]) -> Any:
        return call(jax.tree_util.tree_map(lambda x: x[None], t))[0]

    @jax.jit
    def grads(t: dict[str, Any]) -> dict[str, Any]:
        jac = jax.vmap(jax.jacrev(one))(t)  # leaf: (n, outputs, *shape)
        return {k: jnp.abs(v).sum(axis=1) for k, v in jac.items()}

    N = next(iter(tree.values())).shape[0]
    parts = [grads({k: v[s] for k, v in tree.items()}) for s in _batches(N, batch)]
    return {k: jnp.concatenate([p[k] for p in parts]) for k in tree}


def _replace_features(
    call: Callable[[Any], Any], tree: dict[str, Any], key: str, base: Any, batch: int, jax: Any, jnp: Any
) -> Any:
    x = tree[key]
    shape = x.shape[1:]
    D = int(np.prod(shape)) if shape else 1
    flat_base = jnp.reshape(base, (D,))

    @jax.jit
    def scores(t: dict[str, Any]) -> Any:
        ref = call(t)
        xs = jnp.reshape(t[key], (t[key].shape[0], D))

        def feature(k: Any) -> Any:
            pert = xs.at[:, k].set(flat_base[k]).reshape(t[key].shape)
            return 0.5 * jnp.sum((call({**t, key: pert}) - ref) ** 2, axis=-1)

        return jax.lax.map(feature, jnp.arange(D)).T  # (n, D)

    N = x.shape[0]
    parts = [scores({k: v[s] for k, v in tree.items()}) for s in _batches(N, batch)]
    return jnp.concatenate(parts).reshape(x.shape)


def _gaussian_blur(img: Any, sigma: float, jnp: Any) -> Any:
    """Separable Gaussian blur over the two image axes of ``(n, H, W, ...)``, edges clamped."""
    r = max(1, int(3 * sigma))
    k = jnp.exp(-0.5 * (jnp.arange(-r, r + 1) / sigma) ** 2)
    k = k / k.sum()
    for axis in (1, 2):
        size = img.shape[axis]
        idx = jnp.clip(jnp.arange(size)[:, None] + jnp.arange(-r, r + 1)[None, :], 0, size - 1)  # (size, 2r+1)
        taken = jnp.take(img, idx, axis=axis)  # axis becomes (size, 2r+1)
        img = jnp.tensordot(taken, k, axes=([axis + 1], [0]))
    return img


def _occlude_image(
    call: Callable[[Any], Any],
    tree: dict[str, Any],
    key: str,
    sigma: float,
    stride: int | None,
    batch: int,
    jax: Any,
    jnp: Any,
) -> Any:
    x = tree[key]
    H, W = int(x.shape[1]), int(x.shape[2])
    stride = stride or max(1, max(H, W) // 16)
    ys, xs = np.arange(0, H, stride), np.arange(0, W, stride)
    centres = jnp.asarray([(y, x_) for y in ys for x_ in xs], jnp.float32)
    yy, xx = jnp.meshgrid(jnp.arange(H), jnp.arange(W), indexing="ij")
    extra = (1,) * (x.ndim - 3)

    @jax.jit
    def scores(t: dict[str, Any]) -> Any:
        img = t[key]
        ref = call(t)
        blurred = _gaussian_blur(img, sigma * 1.5, jnp)

        def at(c: Any) -> Any:
            m = jnp.exp(-((yy - c[0]) ** 2 + (xx - c[1]) ** 2) / (2 * sigma**2)).reshape(1, H, W, *extra)
            pert = img * (1 - m) + blurred * m
            return 0.5 * jnp.sum((call({**t, key: pert}) - ref) ** 2, axis=-1)

        grid = jax.lax.map(at, centres).T.reshape(img.shape[0], len(ys), len(xs))
        full = jax.image.resize(grid, (img.shape[0], H, W), "linear") if (len(ys), len(xs)) != (H, W) else grid
        full = jnp.maximum(full, 0.0)
        return jnp.broadcast_to(full.reshape(img.shape[0], H, W, *extra), img.shape)

    N = x.shape[0]
    parts = [scores({k: v[s] for k, v in tree.items()}) for s in _batches(N, batch)]
    return jnp.concatenate(parts)
