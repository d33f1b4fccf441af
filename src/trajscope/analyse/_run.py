"""How behaviour changes over a training run: one state map for the whole run, visitation
shift between checkpoints, predicted value against realised return, behaviour clusters.

Captures come in as :class:`CaptureSource` (a step, and a function that loads named arrays
``(T, E, ...)``), one at a time, twice: a first pass samples a pool with equal shares from
every capture and fits the map, the codebook and the clusters on it; a second pass places
every captured state. Memory holds one capture, the pool and the placed points (at most
``points_per_capture`` of each capture), whatever the number of captures.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import _stats

ANALYSIS_VERSION = 2
METHODS = ("pca", "tsne", "umap")


@dataclasses.dataclass(frozen=True)
class CaptureSource:
    """One capture, to be loaded when needed."""

    index: int
    step: int
    names: tuple[str, ...]
    """The arrays it holds, by the store's names (``qpos``, ``obs/state``, ``value``, ...)."""
    load: Callable[[str], np.ndarray]
    """An array by name, ``(T, E, ...)``."""
    reset_frame: bool = False
    image_names: tuple[str, ...] = ()
    """Names of image observations (never used as state features)."""
    buffer: Callable[[], dict[str, np.ndarray]] | None = None
    """The capture's replay-buffer sample, ``buffer`` group keys to ``(N, ...)`` arrays
    (``step``, ``qpos``, ``obs/<key>``, ...), when it stores one."""
    starts: Any = None
    """How its environments started (the recorder's ``attrs["starts"]``: ``{"same": bool,
    "seed": int}``); captures with the same starts are compared environment by environment."""


@dataclasses.dataclass(frozen=True)
class AnalysisConfig:
    method: str = "pca"
    """``pca`` (numpy), ``tsne`` (openTSNE) or ``umap`` (umap-learn): the 2-D state map."""
    features: tuple[str, ...] = ("qpos", "qvel", "obs")
    """Per-step arrays making a state: ``qpos``, ``qvel``, ``act``, ``obs`` (every vector
    observation) or any array name."""
    gamma: float = 0.99
    """Discount of the realised returns (the run's ``discounting`` when it stored one)."""
    reward_scaling: float = 1.0
    """Values are divided by this before comparison (brax PPO trains its value on rewards
    times ``reward_scaling``)."""
    pool_size: int = 20_000
    codebook: int = 32
    """Codes of the visitation histograms."""
    clusters: int = 0
    """Behaviour clusters; 0 chooses 2 to 8 by silhouette."""
    window: int = 8
    """Steps per behaviour window."""
    points_per_capture: int = 2_000
    part_tol: float = 1e-3
    """Positions further apart than this (in any coordinate) mean two same-start captures'
    trajectories have parted."""
    seed: int = 0


def _features(src: CaptureSource, cfg: AnalysisConfig) -> list[str]:
    names = []
    for f in cfg.features:
        if f == "obs":
            names += [n for n in src.names if n.startswith("obs/") and n not in src.image_names]
        elif f in src.names:
            names.append(f)
    return names


def _states(src: CaptureSource, names: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows ``(N, D)`` of the capture's states with their ``(t, env)``: every frame up to and
    including each environment's first ``done`` (later frames hold the final state)."""
    parts = []
    for n in names:
        a = np.asarray(src.load(n), np.float64)
        parts.append(a.reshape(a.shape[0], a.shape[1], -1))
    x = np.concatenate(parts, axis=2)
    T, E = x.shape[:2]
    live = np.ones((T, E), bool)
    if "done" in src.names:
        d = np.asarray(src.load("done"), bool)
        ended_before = (np.cumsum(d, axis=0) - d) > 0
        live = ~ended_before
    t_idx, e_idx = np.nonzero(live)
    return x[t_idx, e_idx], t_idx, e_idx


def _windows(x: np.ndarray, t_idx: np.ndarray, e_idx: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive windows of ``w`` rows of one environment (stride ``w // 2``), flattened,
    and their ``(env, start t)``."""
    out, where = [], []
    for e in np.unique(e_idx):
        rows = np.flatnonzero(e_idx == e)
        for s in range(0, len(rows) - w + 1, max(1, w // 2)):
            sel = rows[s : s + w]
            if t_idx[sel[-1]] - t_idx[sel[0]] == w - 1:
                out.append(x[sel].ravel())
                where.append((int(e), int(t_idx[sel[0]])))
    if not out:
        return np.zeros((0, x.shape[1] * w)), np.zeros((0, 2), np.int64)
    return np.array(out), np.array(where, np.int64)


MANIFOLD_POOL = 4_000
"""States t-SNE and UMAP are fitted on; every other state is placed by its neighbours."""


@dataclasses.dataclass(frozen=True)
class _Map:
    """A fitted 2-D map as arrays (stored with the analysis, so that later captures are
    placed into the same map): ``pca`` (``a`` the mean, ``b`` the axes) or ``knn`` (``a``
    the fitted states, ``b`` where the manifold method placed them)."""

    kind: str
    a: np.ndarray
    b: np.ndarray

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "pca":
            return (np.asarray(x, np.float64) - self.a) @ self.b.T
        return _stats.knn_place(x, self.a, self.b, k=10)


def _embedder(method: str, pool: np.ndarray, seed: int) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray]:
    """A fitted 2-D map of the pool: ``(transform, pool placed)``.

    PCA maps every state exactly. t-SNE (openTSNE) and UMAP (umap-learn) are fitted on at
    most ``MANIFOLD_POOL`` states of the pool; any other state is placed at the
    distance-weighted mean of its 10 nearest fitted states (in the standardised feature
    space): far faster than their own ``transform`` for 100,000 states, and the same map."""
    if method == "pca":
        pca = _stats.PCA.fit(pool, 2)
        m = _Map("pca", pca.mean, pca.components)
        return m, m(pool)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    rng = np.random.default_rng(seed)
    fit_on = pool if len(pool) <= MANIFOLD_POOL else pool[rng.choice(len(pool), MANIFOLD_POOL, replace=False)]
    if method == "tsne":
        try:
            from openTSNE import TSNE  # pyright: ignore[reportMissingImports]
        except ImportError:
            raise ImportError("method 'tsne' needs openTSNE: pip install 'trajscope[analysis]'") from None
        placed = np.asarray(TSNE(n_components=2, perplexity=30, random_state=seed, n_jobs=2).fit(fit_on))
    else:
        try:
            import umap  # pyright: ignore[reportMissingImports]
        except ImportError:
            raise ImportError("method 'umap' needs umap-learn: pip install 'trajscope[analysis]'") from None
        placed = np.asarray(umap.UMAP(n_components=2, random_state=seed, n_jobs=1).fit_transform(fit_on))

    m = _Map("knn", np.asarray(fit_on, np.float64), placed)
    return m, m(pool)


def analyse(
    captures: Sequence[CaptureSource],
    cfg: AnalysisConfig = AnalysisConfig(),
    *,
    progress: Callable[[str], None] | None = None,
    executor: Any = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The run's analysis: a JSON-able document and named arrays (the placed points).

    Bad input gives partial results and messages in ``doc["problems"]``: captures without
    the features (or with a different feature size than the first) are left out of the
    map; non-finite states are skipped and counted; captures without ``value`` have no
    value figures; a run of one capture has no shift.

    ``executor``: anything with ``map(fn, iterable)`` that runs ``fn`` elsewhere, such as
    a Dask client's ``get_executor()``: each capture is read and reduced by a worker (two
    passes: sampling the pool, then placing every state), and only the samples and the
    per-capture results come back; fitting the map stays here. Its workers must be able to
    call the captures' loaders (``trajscope.analyse.capture_sources`` gives loaders that
    open the run by its URL, so they read straight from the object store). The result is
    the same as without one."""
    say = progress or (lambda _: None)
    mapper = executor.map if executor is not None else map
    problems: list[str] = []
    usable: list[tuple[CaptureSource, list[str]]] = []
    width = None
    per = max(1, cfg.pool_size // max(1, len(captures)))
    pool, wpool = [], []
    skipped = 0
    # ---------------------------------------------------------------- pass 1: the pool
    for src, r in zip(captures, mapper(functools.partial(_pool_one, cfg=cfg, per=per), captures)):
        if "unusable" in r:
            problems.append(r["unusable"])
            continue
        if width is None:
            width = r["width"]
        if r["width"] != width:
            problems.append(
                f"capture {src.index} (step {src.step}): {r['width']} state features where the first capture has "
                f"{width}; left out"
            )
            continue
        skipped += r["skipped"]
        if r["sample"] is None:
            problems.append(f"capture {src.index} (step {src.step}): no finite state")
            continue
        usable.append((src, r["names"]))
        pool.append(r["sample"])
        if r["wsample"] is not None:
            wpool.append(r["wsample"])
        say(f"pooled capture {src.index} (step {src.step})")
    doc: dict[str, Any] = {
        "analysis_version": ANALYSIS_VERSION,
        "config": dataclasses.asdict(cfg),
        "embedding": {"method": cfg.method, "points": 0, "skipped_nonfinite": skipped, "explained_variance": None},
        "captures": [],
        "clusters": None,
        "buffer": None,
        "problems": problems,
    }
    if not usable:
        return doc, {}
    pool_x = np.concatenate(pool)
    std = _stats.Standardizer.fit(pool_x)
    pool_z = std(pool_x)
    transform, _ = _embedder(cfg.method, pool_z, cfg.seed)
    if cfg.method == "pca":
        doc["embedding"]["explained_variance"] = _stats.PCA.fit(pool_z, 2).explained_variance_ratio.tolist()
    centers, _ = _stats.kmeans(pool_z, cfg.codebook, seed=cfg.seed)
    wstd, wpca, wcenters = _fit_clusters(wpool, cfg, doc)
    fitted = _Fitted(std, transform, centers, wstd, wpca, wcenters)
    # ---------------------------------------------------------------- pass 2: every state
    points, meta, tds = [], [], []
    hists: list[np.ndarray] = []
    for (src, _), r in zip(usable, mapper(functools.partial(_place_one, cfg=cfg, fitted=fitted), usable)):
        problems.extend(r["problems"])
        if "entry" not in r:
            continue
        entry, h = r["entry"], r["units"]
        if hists:
            for name, other in (("prev", hists[-1]), ("first", hists[0])):
                test = _stats.shift_test(other, h, seed=cfg.seed)
                entry[f"shift_{name}"] = test["shift"]
                entry[f"shift_{name}_p"] = test["p"]
                entry[f"shift_{name}_floor"] = test["floor"]
        hists.append(h)
        points.append(r["points"])
        meta.append(r["meta"])
        tds.append(r["td"] if r["td"] is not None else np.full((len(r["points"]), 2), np.nan))
        if r["typical"] is not None:
            for j, found in enumerate(r["typical"]):
                both = doc["clusters"]["typical"][j] + found
                doc["clusters"]["typical"][j] = sorted(both, key=lambda w: w["distance"])[:3]
        doc["captures"].append(entry)
        say(f"placed capture {src.index} (step {src.step})")
    if not points:
        return doc, {}
    placed = {e["index"]: e for e in doc["captures"]}
    srcs = [src for src, _ in usable if src.index in placed]
    for a, b in itertools.pairwise(srcs):
        if _same_starts(a, b):
            try:
                placed[b.index]["paired_prev"] = _paired(a, b, cfg)
            except (ValueError, OSError, KeyError) as e:
                problems.append(f"captures {a.index} and {b.index}: not compared env by env ({e})")
    pts = np.concatenate(points).astype(np.float32)
    doc["embedding"]["points"] = len(pts)
    if len(hists) == 1:
        problems.append("one capture: no shift between captures to measure")
    arrays = {"points": pts, "point_capture_env_t": np.concatenate(meta).astype(np.int64), **fitted.arrays()}
    doc["map"] = {"fitted_on": [e["index"] for e in doc["captures"]], "placed_since": []}
    td = np.concatenate(tds).astype(np.float32)
    if np.isfinite(td).any():
        # Per placed state: the TD error and the GAE advantage the captured value implies.
        arrays["point_td_error"], arrays["point_advantage"] = td[:, 0], td[:, 1]
    doc["buffer"] = _place_buffer(usable, std, transform, arrays, problems)
    return doc, arrays


def extend(
    captures: Sequence[CaptureSource],
    cfg: AnalysisConfig,
    doc: dict[str, Any],
    arrays: dict[str, np.ndarray],
    *,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """Place captures newer than an analysis into its map without fitting it again (the
    live map while training runs: milliseconds per capture with PCA), with their shifts,
    value figures, clusters and comparisons, as :func:`analyse` computes them. None when
    the analysis cannot be extended (no stored fit, another configuration, or nothing
    new): then analyse again."""
    fitted = _Fitted.from_arrays(arrays)
    same_cfg = json.loads(json.dumps(doc.get("config"))) == json.loads(json.dumps(dataclasses.asdict(cfg)))
    if fitted is None or not same_cfg or not doc.get("captures"):
        return None
    say = progress or (lambda _: None)
    done = {int(e["index"]) for e in doc["captures"]}
    last = max(done)
    by_index = {src.index: src for src in captures}
    new = [src for src in captures if src.index > last]
    old = [by_index.get(int(doc["captures"][0]["index"])), by_index.get(last)]
    if not new or any(src is None for src in old):
        return None
    doc = {**doc, "captures": [dict(e) for e in doc["captures"]], "problems": list(doc.get("problems", []))}
    names = _features(new[0], cfg)
    if not names:
        return None

    def place(src: CaptureSource) -> dict[str, Any]:
        return _place_one((src, names), cfg=cfg, fitted=fitted)

    first, prev = (place(src) for src in old)  # type: ignore[arg-type]
    if "units" not in first or "units" not in prev:
        return None
    prev_src = old[1]
    points, meta, tds = [arrays["points"]], [arrays["point_capture_env_t"]], []
    n_old = len(arrays["points"])
    if "point_td_error" in arrays:
        tds.append(np.stack([arrays["point_td_error"], arrays["point_advantage"]], 1))
    else:
        tds.append(np.full((n_old, 2), np.nan))
    for src in new:
        r = place(src)
        doc["problems"].extend(r.get("problems", []))
        if "entry" not in r:
            continue
        entry = r["entry"]
        for name, other in (("prev", prev["units"]), ("first", first["units"])):
            test = _stats.shift_test(other, r["units"], seed=cfg.seed)
            entry[f"shift_{name}"], entry[f"shift_{name}_p"], entry[f"shift_{name}_floor"] = (
                test["shift"],
                test["p"],
                test["floor"],
            )
        if prev_src is not None and _same_starts(prev_src, src):
            try:
                entry["paired_prev"] = _paired(prev_src, src, cfg)
            except (ValueError, OSError, KeyError) as e:
                doc["problems"].append(f"captures {prev_src.index} and {src.index}: not compared env by env ({e})")
        doc["captures"].append(entry)
        points.append(r["points"])
        meta.append(r["meta"])
        tds.append(r["td"] if r["td"] is not None else np.full((len(r["points"]), 2), np.nan))
        prev, prev_src = r, src
        doc["map"] = {**doc.get("map", {}), "placed_since": [*doc.get("map", {}).get("placed_since", []), src.index]}
        say(f"placed capture {src.index} (step {src.step}) into the map")
    out = dict(arrays)
    out["points"] = np.concatenate(points).astype(np.float32)
    out["point_capture_env_t"] = np.concatenate(meta).astype(np.int64)
    td = np.concatenate(tds).astype(np.float32)
    if np.isfinite(td).any():
        out["point_td_error"], out["point_advantage"] = td[:, 0], td[:, 1]
    doc["embedding"] = {**doc["embedding"], "points": len(out["points"])}
    usable = [(src, names) for src in new]
    buffer = _place_buffer(usable, fitted.std, fitted.transform, out, doc["problems"])
    if buffer is not None:
        doc["buffer"] = buffer
    return doc, out


@dataclasses.dataclass(frozen=True)
class _Fitted:
    """What pass 1 fitted, shipped to whoever places a capture's states; stored with the
    analysis as arrays (``fit/...``) so that new captures are placed into the same map."""

    std: _stats.Standardizer
    transform: Callable[[np.ndarray], np.ndarray]
    centers: np.ndarray
    wstd: Any
    wpca: Any
    wcenters: np.ndarray | None

    def arrays(self) -> dict[str, np.ndarray]:
        m = self.transform
        if not isinstance(m, _Map):
            return {}
        out = {
            "fit/std": np.stack([self.std.mean, self.std.scale, self.std.keep.astype(np.float64)]),
            "fit/map_a": m.a,
            "fit/map_b": m.b,
            "fit/map_kind": np.array([0 if m.kind == "pca" else 1]),
            "fit/codebook": self.centers,
        }
        if self.wstd is not None and self.wpca is not None and self.wcenters is not None:
            out["fit/wstd"] = np.stack([self.wstd.mean, self.wstd.scale, self.wstd.keep.astype(np.float64)])
            out["fit/wpca"] = np.concatenate([self.wpca.mean[None], self.wpca.components])
            out["fit/wcenters"] = self.wcenters
        return out

    @staticmethod
    def from_arrays(a: dict[str, np.ndarray]) -> _Fitted | None:
        need = ("fit/std", "fit/map_a", "fit/map_b", "fit/map_kind", "fit/codebook")
        if not all(k in a for k in need):
            return None

        def std(x: np.ndarray) -> _stats.Standardizer:
            return _stats.Standardizer(x[0], x[1], x[2] > 0.5)

        kind = "pca" if int(a["fit/map_kind"][0]) == 0 else "knn"
        wstd = wpca = wcenters = None
        if "fit/wstd" in a and "fit/wpca" in a and "fit/wcenters" in a:
            wstd, wcenters = std(a["fit/wstd"]), a["fit/wcenters"]
            w = a["fit/wpca"]
            wpca = _stats.PCA(w[0], w[1:], np.zeros(len(w) - 1))
        return _Fitted(
            std(a["fit/std"]), _Map(kind, a["fit/map_a"], a["fit/map_b"]), a["fit/codebook"], wstd, wpca, wcenters
        )


def _rng(cfg: AnalysisConfig, src: CaptureSource, stage: int) -> np.random.Generator:
    """Each capture's own random stream: the same samples wherever and in whatever order
    the captures are processed."""
    return np.random.default_rng([cfg.seed, stage, src.index])


def _pool_one(src: CaptureSource, *, cfg: AnalysisConfig, per: int) -> dict[str, Any]:
    """Pass 1 for one capture: its features' sample for the pool, and its windows'."""
    names = _features(src, cfg)
    if not names:
        return {"unusable": f"capture {src.index} (step {src.step}): none of the features {list(cfg.features)}"}
    try:
        x, t_idx, e_idx = _states(src, names)
        xa = _with_action(src, x, t_idx, e_idx)
    except (ValueError, OSError, KeyError) as e:  # a damaged or vanished capture file
        return {"unusable": f"capture {src.index} (step {src.step}): unreadable, left out ({e})"}
    rng = _rng(cfg, src, 1)
    finite = np.isfinite(x).all(axis=1)
    rows = np.flatnonzero(finite)
    out: dict[str, Any] = {
        "names": names,
        "width": x.shape[1],
        "skipped": int((~finite).sum()),
        "sample": None,
        "wsample": None,
    }
    if not len(rows):
        return out
    out["sample"] = x[rng.choice(rows, min(per, len(rows)), replace=False)]
    wx, _ = _windows(xa[finite], t_idx[finite], e_idx[finite], cfg.window)
    if len(wx):
        out["wsample"] = wx[rng.choice(len(wx), min(max(1, per // cfg.window), len(wx)), replace=False)]
    return out


def _place_one(item: tuple[CaptureSource, list[str]], *, cfg: AnalysisConfig, fitted: _Fitted) -> dict[str, Any]:
    """Pass 2 for one capture: every state coded, counted and placed in the map; its value
    figures and behaviour clusters."""
    src, names = item
    problems: list[str] = []
    try:
        x, t_idx, e_idx = _states(src, names)
    except (ValueError, OSError, KeyError) as e:
        return {"problems": [f"capture {src.index} (step {src.step}): unreadable, left out ({e})"]}
    finite = np.isfinite(x).all(axis=1)
    z = fitted.std(x[finite])
    t_f, e_f = t_idx[finite], e_idx[finite]
    labels = _stats.assign(z, fitted.centers)
    k = len(fitted.centers)
    entry: dict[str, Any] = {
        "index": src.index,
        "step": src.step,
        "states": len(z),
        "shift_prev": None,
        "shift_first": None,
        "noise_floor": None,
        "value_corr": None,
        "value_bias": None,
        "value_explained_variance": None,
        "cluster_share": None,
    }
    sel = np.arange(len(z))
    if len(sel) > cfg.points_per_capture:
        sel = np.sort(_rng(cfg, src, 2).choice(len(z), cfg.points_per_capture, replace=False))
    returns = _value_inputs(src, cfg)  # read once: the value figures and the TD errors use them
    if returns is not None:
        _value(src, cfg, returns, entry, problems)
    entry["terms"] = _term_triage(src)
    typical = None
    if fitted.wcenters is not None and fitted.wstd is not None and fitted.wpca is not None:
        wx, where = _windows(_with_action(src, x, t_idx, e_idx)[finite], t_f, e_f, cfg.window)
        if len(wx):
            y = fitted.wpca.transform(fitted.wstd(wx))
            wl = _stats.assign(y, fitted.wcenters)
            entry["cluster_share"] = _stats.histogram(wl, len(fitted.wcenters)).tolist()
            per_env = _stats.unit_counts(wl, where[:, 0], where[:, 1], len(fitted.wcenters))
            entry["cluster_share_ci"] = _stats.share_intervals(per_env, seed=cfg.seed)
            found: dict[str, Any] = {"typical": [[] for _ in range(len(fitted.wcenters))]}
            _typical(found, y, wl, fitted.wcenters, where, src.index)
            typical = found["typical"]
    units = _stats.unit_counts(labels, e_f, t_f, k)
    half = _stats.shift_test(units[0::2], units[1::2], seed=cfg.seed) if len(units) >= 2 * _stats.MIN_UNITS else None
    # Within this capture: the 95th percentile of the shift between random halves of its
    # units, the size of a shift that noise alone gives at this capture's size.
    entry["noise_floor"] = half["floor"] if half else None
    entry["units"] = len(units)
    td = _td(src, cfg, returns) if returns is not None else None
    return {
        "entry": entry,
        "units": units,
        "td": None if td is None else td[:, t_f[sel], e_f[sel]].T,
        "points": fitted.transform(z[sel]),
        "meta": np.stack([np.full(len(sel), src.index), e_f[sel], t_f[sel]], axis=1),
        "typical": typical,
        "problems": problems,
    }


def _buffer_name(feature: str) -> str:
    """The ``buffer`` key holding a capture's feature: ``qpos`` -> ``qpos``,
    ``obs/obs`` (a plain observation) -> ``obs``, ``obs/<key>`` -> ``obs/<key>``."""
    return "obs" if feature == "obs/obs" else feature


def _place_buffer(
    usable: list[tuple[CaptureSource, list[str]]],
    std: _stats.Standardizer,
    transform: Callable[[np.ndarray], np.ndarray],
    arrays: dict[str, np.ndarray],
    problems: list[str],
) -> dict[str, Any] | None:
    """The newest capture's replay-buffer sample, placed in the map (``buffer_points``,
    ``buffer_step``, and ``buffer_priority`` when the buffer has priorities)."""
    src, names = next(((s, n) for s, n in reversed(usable) if s.buffer is not None), (None, None))
    if src is None or names is None or src.buffer is None:
        return None
    try:
        buf = src.buffer()
    except (ValueError, OSError, KeyError) as e:
        problems.append(f"capture {src.index}: replay-buffer sample unreadable ({e})")
        return None
    missing = [_buffer_name(n) for n in names if _buffer_name(n) not in buf]
    if missing or "step" not in buf:
        problems.append(f"capture {src.index}: the replay-buffer sample lacks {missing or ['step']}; not placed")
        return None
    x = np.concatenate([np.asarray(buf[_buffer_name(n)], np.float64).reshape(len(buf["step"]), -1) for n in names], 1)
    if x.shape[1] != std.mean.shape[0]:
        problems.append(
            f"capture {src.index}: replay-buffer states have {x.shape[1]} features, the map {std.mean.shape[0]}"
        )
        return None
    finite = np.isfinite(x).all(axis=1)
    arrays["buffer_points"] = transform(std(x[finite])).astype(np.float32)
    steps = np.asarray(buf["step"], np.int64)[finite]
    arrays["buffer_step"] = steps
    if "priority" in buf:
        arrays["buffer_priority"] = np.asarray(buf["priority"], np.float32).reshape(len(x), -1)[finite, 0]
    return {
        "capture": src.index,
        "points": int(finite.sum()),
        "skipped_nonfinite": int((~finite).sum()),
        "oldest_step": int(steps.min()) if len(steps) else None,
        "newest_step": int(steps.max()) if len(steps) else None,
        "prioritised": "priority" in buf,
    }


def _with_action(src: CaptureSource, x: np.ndarray, t_idx: np.ndarray, e_idx: np.ndarray) -> np.ndarray:
    """State rows with the action taken from each state appended (behaviour = state + action)."""
    if "action" not in src.names:
        return x
    a = np.asarray(src.load("action"), np.float64)
    a = a.reshape(a.shape[0], a.shape[1], -1)
    # With a reset frame the action leaving state t is stored at t + 1.
    shift = 1 if src.reset_frame else 0
    tt = np.minimum(t_idx + shift, a.shape[0] - 1)
    return np.concatenate([x, a[tt, e_idx]], axis=1)


def _fit_clusters(
    wpool: list[np.ndarray], cfg: AnalysisConfig, doc: dict[str, Any]
) -> tuple[Any, Any, np.ndarray | None]:
    """Behaviour clusters of windows: standardise, reduce to 16 axes, k-means (k by
    silhouette on a sample when not given)."""
    if not wpool:
        return None, None, None
    w = np.concatenate(wpool)
    if len(w) < 4:
        return None, None, None
    wstd = _stats.Standardizer.fit(w)
    wz = wstd(w)
    pca = _stats.PCA.fit(wz, min(16, wz.shape[1]))
    y = pca.transform(wz)
    rng = np.random.default_rng(cfg.seed)
    sample = y[rng.choice(len(y), min(1000, len(y)), replace=False)]
    if cfg.clusters:
        k = cfg.clusters
        scores = None
    else:
        scores = {}
        for kk in range(2, min(8, len(sample) - 1) + 1):
            _, lab = _stats.kmeans(sample, kk, seed=cfg.seed)
            scores[kk] = _stats.silhouette(sample, lab)
        k = max(scores, key=lambda kk: scores[kk]) if scores else 2
    centers, _ = _stats.kmeans(y, k, seed=cfg.seed)
    doc["clusters"] = {
        "k": len(centers),
        "silhouette": {str(kk): v for kk, v in scores.items()} if scores else None,
        "typical": [[] for _ in range(len(centers))],
    }
    return wstd, pca, centers


def _typical(
    clusters: dict[str, Any], y: np.ndarray, labels: np.ndarray, centers: np.ndarray, where: np.ndarray, index: int
) -> None:
    """Keep each cluster's three windows nearest its centre, over all captures."""
    d = np.sqrt(_stats.sq_distances(y, centers))
    for j in range(len(centers)):
        mine = np.flatnonzero(labels == j)
        for i in mine[np.argsort(d[mine, j])[:3]]:
            clusters["typical"][j].append(
                {"capture": index, "env": int(where[i, 0]), "t": int(where[i, 1]), "distance": float(d[i, j])}
            )
        clusters["typical"][j] = sorted(clusters["typical"][j], key=lambda w: w["distance"])[:3]


def _value_inputs(src: CaptureSource, cfg: AnalysisConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """A capture's ``(value in return units, reward, done)``, each ``(T, E)``; None without
    a captured value."""
    if "value" not in src.names or "reward" not in src.names:
        return None
    value = np.asarray(src.load("value"), np.float64) / (cfg.reward_scaling or 1.0)
    reward = np.asarray(src.load("reward"), np.float64)
    done = np.asarray(src.load("done"), bool) if "done" in src.names else np.zeros(reward.shape, bool)
    return value, reward, done


def _value(
    src: CaptureSource,
    cfg: AnalysisConfig,
    returns: tuple[np.ndarray, np.ndarray, np.ndarray],
    entry: dict[str, Any],
    problems: list[str],
) -> None:
    """Predicted value against the discounted return actually obtained, per capture."""
    value, reward, done = returns
    g = _stats.returns_to_go(reward, done, cfg.gamma, reset_frame=src.reset_frame)
    valid = _complete_returns(done, cfg.gamma, reset_frame=src.reset_frame)
    s = _stats.value_summary(value[valid], g[valid])
    entry["value_corr"], entry["value_bias"] = s["corr"], s["bias"]
    entry["value_explained_variance"] = s["explained_variance"]
    if s["note"]:
        entry["value_note"] = s["note"]
    # Intervals from resampling environments (independent episodes), not steps: the states
    # of one episode are correlated, and resampling them would claim far too much certainty.
    ci = _stats.env_bootstrap(
        [(value[valid[:, e], e], g[valid[:, e], e]) for e in range(value.shape[1])],
        lambda pairs: _stats.value_summary(*pairs),
        keys=("corr", "bias"),
        seed=cfg.seed,
    )
    entry["value_corr_ci"], entry["value_bias_ci"] = ci["corr"], ci["bias"]
    if (s["points"] or 0) < 2:
        problems.append(f"capture {src.index}: too few steps for value figures")


def _td(src: CaptureSource, cfg: AnalysisConfig, returns: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """``(2, T, E)``: the TD error and advantage of every frame."""
    value, reward, done = returns
    delta, adv = _stats.td_errors(value, reward, done, cfg.gamma, reset_frame=src.reset_frame)
    return np.stack([delta, adv])


def _term_triage(src: CaptureSource) -> dict[str, dict[str, Any]]:
    """Every reward term and metric (no cap), and the reward: its per-environment means'
    distribution over the capture's environments, and the worst environment (lowest mean)
    with its worst step (lowest value), to replay; a reset frame (no action) left out."""
    out: dict[str, dict[str, Any]] = {}
    for name in [n for n in src.names if n == "reward" or n.startswith("metrics/")]:
        try:
            x = np.asarray(src.load(name), np.float64)
        except (ValueError, OSError, KeyError):
            continue
        if x.ndim != 2 or not np.isfinite(x).any():
            continue
        skip = 1 if src.reset_frame else 0
        x = x[skip:]  # frame 0 is the reset state: no action was taken, its reward and terms are 0
        with np.errstate(all="ignore"):
            per_env = np.nanmean(x, axis=0)
        if not np.isfinite(per_env).any():
            continue
        env = int(np.nanargmin(per_env))
        col = x[:, env]
        step = int(np.nanargmin(col)) + skip
        lo, mid, hi = np.nanpercentile(per_env, [10, 50, 90])
        out[name.removeprefix("metrics/")] = {
            "mean": float(np.nanmean(per_env)),
            "p10": float(lo),
            "median": float(mid),
            "p90": float(hi),
            "worst_env": env,
            "worst_env_mean": float(per_env[env]),
            "worst_step": step,
            "worst_value": float(np.nanmin(col)),
        }
    return out


def _same_starts(a: CaptureSource, b: CaptureSource) -> bool:
    sa, sb = a.starts, b.starts
    return isinstance(sa, dict) and sa.get("same") is True and sa == sb


def _paired(a: CaptureSource, b: CaptureSource, cfg: AnalysisConfig) -> dict[str, Any]:
    """Two checkpoints evaluated from the same starts, environment by environment: where
    their trajectories part (the first step whose positions differ by more than
    ``cfg.part_tol``; null if they never do), each environment's return difference (``b``
    minus ``a``) and whether the mean difference is beyond noise (a sign-flip test over the
    environment pairs), and every metric's mean change, largest first."""
    qa, qb = np.asarray(a.load("qpos"), np.float64), np.asarray(b.load("qpos"), np.float64)
    if qa.shape[1:] != qb.shape[1:]:
        raise ValueError(f"different environments or models: {qa.shape} and {qb.shape}")
    T = min(len(qa), len(qb))
    diff = np.abs(qa[:T] - qb[:T]).max(axis=2)  # (T, E)
    diff = np.where(np.isfinite(diff), diff, np.inf)
    apart = diff > cfg.part_tol
    parts = [int(np.argmax(apart[:, e])) if apart[:, e].any() else None for e in range(qa.shape[1])]
    out: dict[str, Any] = {"compared_with": a.index, "parts_at": parts}
    if "reward" in a.names and "reward" in b.names:
        ra = np.nansum(np.asarray(a.load("reward"), np.float64), axis=0)
        rb = np.nansum(np.asarray(b.load("reward"), np.float64), axis=0)
        d = rb - ra
        out["return_diff"] = d.tolist()
        out["return_diff_mean"] = float(d.mean())
        out["return_diff_p"] = _stats.sign_flip_p(d, seed=cfg.seed)
    terms = []
    for name in sorted(n for n in set(a.names) & set(b.names) if n.startswith("metrics/")):
        xa, xb = np.asarray(a.load(name), np.float64), np.asarray(b.load(name), np.float64)
        if xa.ndim != 2 or xb.ndim != 2:
            continue
        with np.errstate(all="ignore"):
            per_env = np.nanmean(xb, axis=0) - np.nanmean(xa, axis=0)
        if not np.isfinite(per_env).any():
            continue
        worst = int(np.nanargmax(np.abs(per_env)))
        terms.append(
            {
                "name": name[len("metrics/") :],
                "mean_change": float(np.nanmean(per_env)),
                "worst_env": worst,
                "worst_change": float(per_env[worst]),
            }
        )
    out["terms"] = sorted(terms, key=lambda x: -abs(x["mean_change"]))
    return out


def _complete_returns(done: np.ndarray, gamma: float, *, reset_frame: bool) -> np.ndarray:
    """Frames whose realised return is (nearly) whole: up to each environment's first done;
    where the capture ends first, all but the last ``log(0.01) / log(gamma)`` frames (whose
    missing tail would weigh more than 1%)."""
    T, E = done.shape
    horizon = T if gamma >= 1 else min(T, math.ceil(math.log(0.01) / math.log(max(gamma, 1e-9))))
    valid = np.zeros((T, E), bool)
    for e in range(E):
        hits = np.flatnonzero(done[:, e])
        if hits.size:
            end = hits[0] if reset_frame else hits[0] + 1  # frames before the state that ended it
            valid[:end, e] = True
        else:
            valid[: max(0, T - horizon), e] = True
    return valid
