"""The statistics the analyses are made of: standardisation, PCA, k-means, divergences,
returns. numpy only; arrays in, arrays out."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class Standardizer:
    """Per-column mean and scale fitted on a pool; constant columns are dropped."""

    mean: np.ndarray
    scale: np.ndarray
    keep: np.ndarray
    """Columns kept (not constant in the pool)."""

    @staticmethod
    def fit(x: np.ndarray) -> Standardizer:
        x = np.asarray(x, np.float64)
        mean, std = x.mean(axis=0), x.std(axis=0)
        keep = std > 1e-8 * np.maximum(1.0, np.abs(mean))
        return Standardizer(mean, np.where(keep, std, 1.0), keep)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, np.float64) - self.mean) / self.scale)[:, self.keep]


@dataclasses.dataclass(frozen=True)
class PCA:
    """Principal axes fitted once; :meth:`transform` places any later data in the same map."""

    mean: np.ndarray
    components: np.ndarray
    """``(k, D)``"""
    explained_variance_ratio: np.ndarray

    @staticmethod
    def fit(x: np.ndarray, k: int = 2) -> PCA:
        x = np.asarray(x, np.float64)
        mean = x.mean(axis=0)
        _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
        var = s**2
        k = min(k, vt.shape[0])
        comps = vt[:k]
        # A deterministic sign: the largest loading of each axis is positive.
        signs = np.sign(comps[np.arange(k), np.abs(comps).argmax(axis=1)])
        comps = comps * np.where(signs == 0, 1.0, signs)[:, None]
        ratio = var[:k] / var.sum() if var.sum() > 0 else np.zeros(k)
        if k < 2:  # a 2-D map even from one feature
            comps = np.vstack([comps, np.zeros((2 - k, x.shape[1]))])
            ratio = np.concatenate([ratio, np.zeros(2 - k)])
        return PCA(mean, comps, ratio)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, np.float64) - self.mean) @ self.components.T


def sq_distances(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """``(N, K)`` squared distances, without an ``(N, K, D)`` temporary."""
    x = np.asarray(x, np.float64)
    d = (x**2).sum(axis=1)[:, None] - 2 * x @ centers.T + (centers**2).sum(axis=1)[None]
    return np.maximum(d, 0.0)


def assign(x: np.ndarray, centers: np.ndarray, *, chunk: int = 65536) -> np.ndarray:
    """Index of the nearest centre of each row, ``(N,)``."""
    out = np.empty(len(x), np.int64)
    for i in range(0, len(x), chunk):
        out[i : i + chunk] = sq_distances(x[i : i + chunk], centers).argmin(axis=1)
    return out


def knn_place(x: np.ndarray, anchors: np.ndarray, placed: np.ndarray, *, k: int = 10, chunk: int = 4096) -> np.ndarray:
    """Positions of ``x`` on a map known at ``anchors``: the inverse-distance weighted mean
    of the ``placed`` positions of each row's ``k`` nearest anchors (an anchor itself lands
    on its own place)."""
    x = np.asarray(x, np.float64)
    k = min(k, len(anchors))
    out = np.empty((len(x), placed.shape[1]))
    for i in range(0, len(x), chunk):
        d2 = sq_distances(x[i : i + chunk], anchors)
        idx = np.argpartition(d2, k - 1, axis=1)[:, :k]
        d = np.sqrt(np.take_along_axis(d2, idx, axis=1))
        w = 1.0 / np.maximum(d, 1e-9) ** 2
        out[i : i + chunk] = (w[:, :, None] * placed[idx]).sum(axis=1) / w.sum(axis=1, keepdims=True)
    return out


def kmeans(x: np.ndarray, k: int, *, seed: int = 0, iters: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means with k-means++ seeding: centres ``(k, D)`` and labels ``(N,)``."""
    x = np.asarray(x, np.float64)
    rng = np.random.default_rng(seed)
    k = max(1, min(k, len(x)))
    centers = [x[rng.integers(len(x))]]
    d2 = sq_distances(x, np.array(centers))[:, 0]
    for _ in range(1, k):
        p = d2 / d2.sum() if d2.sum() > 0 else None
        centers.append(x[rng.choice(len(x), p=p)])
        d2 = np.minimum(d2, sq_distances(x, np.array(centers[-1:]))[:, 0])
    c = np.array(centers)
    labels = assign(x, c)
    for _ in range(iters):
        new = np.array([x[labels == j].mean(axis=0) if (labels == j).any() else c[j] for j in range(k)])
        new_labels = assign(x, new)
        c = new
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
    return c, labels


def silhouette(x: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette coefficient (Rousseeuw 1987); 0 for a single cluster."""
    x = np.asarray(x, np.float64)
    ks = np.unique(labels)
    if len(ks) < 2:
        return 0.0
    d = np.sqrt(sq_distances(x, x))
    s = np.zeros(len(x))
    for i in range(len(x)):
        same = labels == labels[i]
        n_same = same.sum() - 1
        a = d[i, same].sum() / n_same if n_same > 0 else 0.0
        b = min(d[i, labels == j].mean() for j in ks if j != labels[i])
        s[i] = 0.0 if n_same == 0 else (b - a) / max(a, b, 1e-12)
    return float(s.mean())


def histogram(labels: np.ndarray, k: int) -> np.ndarray:
    """Share of each of ``k`` codes, ``(k,)``."""
    h = np.bincount(np.asarray(labels, np.int64), minlength=k).astype(np.float64)
    return h / h.sum() if h.sum() > 0 else h


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits, 0 (same) to 1 (disjoint)."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    m = (p + q) / 2

    def kl(a: np.ndarray, b: np.ndarray) -> float:
        nz = a > 0
        return float((a[nz] * np.log2(a[nz] / b[nz])).sum())

    return max(0.0, 0.5 * kl(p, m) + 0.5 * kl(q, m))


MIN_UNITS = 4
"""Independent units a capture needs for a shift test: environments, else blocks of one
long episode (see :func:`unit_counts`)."""


def unit_counts(labels: np.ndarray, env: np.ndarray, t: np.ndarray, k: int, *, min_units: int = 8) -> np.ndarray:
    """Code counts ``(U, k)`` per independent unit of a capture: its environments (separate
    episodes, the unit that is independent), or, when it has fewer than ``min_units``, each
    environment's steps cut into consecutive blocks so that there are about ``min_units``
    (blocks of one trajectory are correlated at their edges: a weaker unit, said in docs)."""
    labels, env, t = np.asarray(labels, np.int64), np.asarray(env, np.int64), np.asarray(t, np.int64)
    envs = np.unique(env)
    if not len(labels):
        return np.zeros((0, k))
    if len(envs) >= min_units:
        unit = np.searchsorted(envs, env)
    else:
        per = max(1, -(-min_units // len(envs)))  # blocks per environment
        unit = np.zeros(len(labels), np.int64)
        for i, e in enumerate(envs):
            mine = env == e
            lo, hi = t[mine].min(), t[mine].max() + 1
            block = np.minimum((t[mine] - lo) * per // max(hi - lo, 1), per - 1)
            unit[mine] = i * per + block
    n = int(unit.max()) + 1
    out = np.zeros((n, k))
    np.add.at(out, (unit, labels), 1.0)
    return out[out.sum(axis=1) > 0]


def shift_test(a: np.ndarray, b: np.ndarray, *, repeats: int = 499, seed: int = 0) -> dict[str, float | None]:
    """How far the state visitation of two captures differs, and whether sampling noise alone
    could make it so: a permutation test over their independent units.

    ``a``, ``b``: code counts per unit ``(Ua, k)``, ``(Ub, k)`` (:func:`unit_counts`). The
    shift is the Jensen-Shannon divergence between the two captures' code shares; under the
    null (both captures' units come from one distribution) the units are exchangeable, so
    the shift of random relabellings of the pooled units is its distribution. Returns
    ``shift``, ``p`` (the share of relabellings at least as large, counting the observed
    one) and ``floor`` (their 95th percentile: the largest shift noise alone gives 19 times
    in 20); ``p`` and ``floor`` are None with fewer than ``MIN_UNITS`` units a side."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    shift = js_divergence(_share(a.sum(0)), _share(b.sum(0))) if len(a) and len(b) else None
    if len(a) < MIN_UNITS or len(b) < MIN_UNITS:
        return {"shift": shift, "p": None, "floor": None}
    units = np.concatenate([a, b])
    rng = np.random.default_rng(seed)
    null = np.empty(repeats)
    for r in range(repeats):
        perm = rng.permutation(len(units))
        null[r] = js_divergence(_share(units[perm[: len(a)]].sum(0)), _share(units[perm[len(a) :]].sum(0)))
    assert shift is not None
    p = (1 + int((null >= shift - 1e-12).sum())) / (1 + repeats)
    return {"shift": shift, "p": float(p), "floor": float(np.percentile(null, 95))}


def sign_flip_p(d: np.ndarray, *, repeats: int = 999, seed: int = 0) -> float | None:
    """Two-sided p-value of a mean paired difference ``d`` (one per independent pair) being
    zero: under "no change" each difference is as likely negative as positive, so its sign
    is flipped at random. None with fewer than 4 pairs."""
    d = np.asarray(d, np.float64)
    d = d[np.isfinite(d)]
    if len(d) < 4:
        return None
    obs = abs(d.mean())
    rng = np.random.default_rng(seed)
    flips = rng.choice([-1.0, 1.0], size=(repeats, len(d)))
    null = np.abs((flips * d).mean(axis=1))
    return float((1 + int((null >= obs - 1e-12).sum())) / (1 + repeats))


def _share(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else counts


def td_errors(
    value: np.ndarray, reward: np.ndarray, done: np.ndarray, gamma: float, *, reset_frame: bool, lam: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """One-step TD errors and GAE(``lam``) advantages ``(T, E)`` that a captured value and
    rewards imply, in the value's units: ``delta[t] = r + gamma * V(next) * (1 - done) - V[t]``.
    With ``reset_frame``, frame ``t + 1`` holds the reward and done of the step from frame
    ``t``; the last frame (no step after it) is NaN."""
    v, r, d = (np.asarray(a, np.float64) for a in (value, reward, done))
    T = len(v)
    delta = np.full(v.shape, np.nan)
    if reset_frame:
        nr, nd, nv = r[1:], d[1:].astype(bool), v[1:]
    else:
        nr, nd, nv = r[:-1], d[:-1].astype(bool), v[1:]
    if T >= 2:
        delta[:-1] = nr + gamma * np.where(nd, 0.0, nv) - v[:-1]
    adv = np.full(v.shape, np.nan)
    acc = np.zeros(v.shape[1:])
    for t in range(T - 2, -1, -1):
        acc = delta[t] + gamma * lam * np.where(nd[t], 0.0, acc)
        adv[t] = acc
    return delta, adv


def returns_to_go(reward: np.ndarray, done: np.ndarray, gamma: float, *, reset_frame: bool) -> np.ndarray:
    """Discounted return from each frame's state, ``(T, E)``, over the rest of its episode
    within the capture (a return cut off by the capture's end misses its tail).

    ``reset_frame``: frame ``t`` holds state ``t`` and ``reward[t]`` is the reward for the step
    into it, so ``G[t] = reward[t+1] + gamma * G[t+1]`` unless state ``t+1`` ended the episode.
    Otherwise (format 1.0): ``reward[t]`` is the reward for the step from the state the value
    was predicted for, so ``G[t] = reward[t] + gamma * G[t+1]`` unless ``done[t]``."""
    r = np.asarray(reward, np.float64)
    d = np.asarray(done, bool)
    T = r.shape[0]
    g = np.zeros_like(r)
    if reset_frame:
        nxt = np.zeros(r.shape[1:])
        for t in range(T - 2, -1, -1):
            nxt = r[t + 1] + gamma * np.where(d[t + 1], 0.0, nxt)
            g[t] = nxt
        return g
    acc = np.zeros(r.shape[1:])
    for t in range(T - 1, -1, -1):
        acc = r[t] + gamma * np.where(d[t], 0.0, acc)
        g[t] = acc
    return g


def env_bootstrap(
    per_env: list[tuple[np.ndarray, np.ndarray]],
    summary: Callable[[tuple[np.ndarray, np.ndarray]], dict[str, Any]],
    *,
    keys: tuple[str, ...],
    repeats: int = 300,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, list[float] | None]:
    """Percentile intervals of ``summary`` figures over environments resampled with
    replacement (each environment's pairs kept whole: the independent unit is the episode).
    None for a figure with fewer than 4 environments or undefined in most resamples."""
    per_env = [(np.asarray(a), np.asarray(b)) for a, b in per_env if len(a)]
    out: dict[str, list[float] | None] = {k: None for k in keys}
    if len(per_env) < 4:
        return out
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {k: [] for k in keys}
    for _ in range(repeats):
        pick = rng.integers(0, len(per_env), len(per_env))
        a = np.concatenate([per_env[i][0] for i in pick])
        b = np.concatenate([per_env[i][1] for i in pick])
        got = summary((a, b))
        for k in keys:
            if got.get(k) is not None and np.isfinite(got[k]):
                draws[k].append(float(got[k]))
    lo, hi = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    for k in keys:
        if len(draws[k]) >= repeats // 2:
            out[k] = [float(np.percentile(draws[k], lo)), float(np.percentile(draws[k], hi))]
    return out


def share_intervals(counts: np.ndarray, *, repeats: int = 300, seed: int = 0, level: float = 0.95) -> list | None:
    """Percentile intervals ``[[lo, hi], ...]`` of each code's share, from resampling the
    units (rows of ``counts (U, k)``) with replacement; None with fewer than 4 units."""
    counts = np.asarray(counts, np.float64)
    if len(counts) < 4:
        return None
    rng = np.random.default_rng(seed)
    draws = np.stack([_share(counts[rng.integers(0, len(counts), len(counts))].sum(0)) for _ in range(repeats)])
    lo, hi = np.percentile(draws, [100 * (1 - level) / 2, 100 * (1 + level) / 2], axis=0)
    return [[float(a), float(b)] for a, b in zip(lo, hi)]


FLAT_RETURNS = 0.01
"""Returns whose standard deviation is under this share of their mean magnitude are flat."""


def value_summary(value: np.ndarray, target: np.ndarray) -> dict[str, Any]:
    """Bias (mean of value minus return), Pearson correlation and explained variance
    (``1 - Var(return - value) / Var(return)``) over finite pairs."""
    v, g = np.asarray(value, np.float64).ravel(), np.asarray(target, np.float64).ravel()
    ok = np.isfinite(v) & np.isfinite(g)
    v, g = v[ok], g[ok]
    if len(v) < 2:
        return {"bias": None, "corr": None, "explained_variance": None, "points": len(v), "note": None}
    # Returns with (almost) no spread (a solved task: every state earns the same) leave a
    # correlation and an explained variance made of noise: none is given, and why.
    flat = g.std() <= FLAT_RETURNS * max(abs(float(g.mean())), 1e-12)
    note = (
        "the returns have (almost) no variance (a solved task?): correlation and explained variance mean nothing here"
        if flat
        else None
    )
    corr = float(np.corrcoef(v, g)[0, 1]) if v.std() > 0 and g.std() > 0 and not flat else None
    ev = float(1 - np.var(g - v) / np.var(g)) if np.var(g) > 0 and not flat else None
    return {"bias": float((v - g).mean()), "corr": corr, "explained_variance": ev, "points": len(v), "note": note}
