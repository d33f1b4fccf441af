"""The statistics the analyses are made of: standardisation, PCA, k-means, divergences,
returns. numpy only; arrays in, arrays out."""

from __future__ import annotations

import dataclasses
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


def split_half(labels: np.ndarray, k: int, *, seed: int = 0, repeats: int = 8) -> float:
    """The divergence between two random halves of one sample: what sampling noise alone
    gives at this sample size (the mean over ``repeats`` splits)."""
    labels = np.asarray(labels)
    if len(labels) < 4:
        return float("nan")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(repeats):
        perm = rng.permutation(len(labels))
        a, b = labels[perm[: len(labels) // 2]], labels[perm[len(labels) // 2 :]]
        out.append(js_divergence(histogram(a, k), histogram(b, k)))
    return float(np.mean(out))


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
