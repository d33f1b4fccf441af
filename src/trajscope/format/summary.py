"""Per-capture summaries: returns, episode lengths, metric means, first non-finite steps.

Arrays in, plain numbers out; numpy only. The writer stores these in each capture's
manifest (``summary``) so that listings need no array reads.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def episode_returns(reward: np.ndarray, done: np.ndarray | None) -> np.ndarray:
    """Per-environment return of the first episode: rewards up to and including the first done.

    ``reward``, ``done``: ``(T, E)``. Returns ``(E,)``.
    """
    r = np.asarray(reward, dtype=np.float64)
    if done is None:
        return r.sum(axis=0)
    d = np.asarray(done).astype(bool)
    # Steps after the first done belong to later episodes (or to an auto-reset).
    after = np.cumsum(d, axis=0) - d > 0
    return np.where(after, 0.0, r).sum(axis=0)


def episode_lengths(done: np.ndarray, *, reset_frame: bool = False) -> np.ndarray:
    """Steps to the first ``done`` (inclusive) per environment, every step where none;
    ``(E,)``. With ``reset_frame``, frame 0 is the reset state and no step."""
    d = np.asarray(done).astype(bool)
    lengths = np.where(d.any(axis=0), d.argmax(axis=0) + 1, d.shape[0])
    return lengths - 1 if reset_frame else lengths


def first_nonfinite(x: np.ndarray) -> tuple[int, int] | None:
    """``(t, e)`` of the earliest step with a non-finite value in a ``(T, E, ...)`` array."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating) or x.ndim < 2 or x.size == 0:
        return None
    bad = np.asarray(np.logical_not(np.isfinite(x)).reshape(x.shape[0], x.shape[1], -1).any(axis=2))
    if not bad.any():
        return None
    t = int(np.argmax(np.any(bad, axis=1)))
    return t, int(np.argmax(bad[t]))


def summarize(
    per_step: Mapping[str, np.ndarray], *, reset_frame: bool = False, metric_prefix: str = "metrics/"
) -> dict[str, object]:
    """Figures a listing shows without loading arrays, from a capture's per-step arrays
    ``(T, E, ...)`` by name (``reward``, ``done``, ``metrics/<key>``, ``obs/<key>``, ...);
    ``reset_frame``: frame 0 is the reset state, not a step.

    Returns ``returns`` and ``mean_return`` (with a reward), ``episode_length`` (with
    ``done``), ``metric_means`` and ``first_nonfinite`` (name to ``{"t", "env"}``)."""
    out: dict[str, object] = {}
    reward = per_step.get("reward")
    done = per_step.get("done")
    if reward is not None:
        returns = episode_returns(reward, done)
        out["returns"] = returns.tolist()
        out["mean_return"] = float(returns.mean())
    if done is not None:
        out["episode_length"] = episode_lengths(done, reset_frame=reset_frame).tolist()
    means = {}
    for name, a in per_step.items():
        if name.startswith(metric_prefix) and a.ndim == 2 and np.issubdtype(a.dtype, np.number):
            with np.errstate(all="ignore"):
                means[name[len(metric_prefix) :]] = float(np.mean(a))
    if means:
        out["metric_means"] = means
    nonfinite = {}
    for name, a in per_step.items():
        hit = first_nonfinite(a)
        if hit is not None:
            nonfinite[name] = {"t": hit[0], "env": hit[1]}
    out["first_nonfinite"] = nonfinite
    return out


def earliest_nonfinite(summary: Mapping[str, object]) -> tuple[str, int, int] | None:
    """``(array, t, env)`` of a capture's earliest non-finite value, from the summary that
    :func:`summarize` made (its ``first_nonfinite`` per array); None when all are finite."""
    hits = summary.get("first_nonfinite")
    if not isinstance(hits, Mapping) or not hits:
        return None
    name, v = min(hits.items(), key=lambda kv: (kv[1]["t"], kv[1]["env"]))
    return str(name), int(v["t"]), int(v["env"])
