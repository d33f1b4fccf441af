"""Speed and memory of the run analyses (``trajscope.analyse``), side by side.

* Embedding 100,000 states of 64 features (20 captures of 500 steps x 10 envs) into one
  map: PCA, and t-SNE / UMAP where their packages are installed (the ``analysis`` extra).
* Projecting a new capture of 16,000 states into the existing map (no refit).
* What existing tools do instead: one scikit-learn t-SNE per checkpoint (separate,
  incomparable maps), on the same data, when scikit-learn is installed.
* A run of 1,000 captures streamed through the analysis: peak traced memory against the
  size of all its states.

The last line reads ``analysis: points=<n> embed_s=<s> project_s=<s>`` (PCA).

    python benchmarks/analysis.py [--quick]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from trajscope import analyse


def synthetic(n_caps: int, T: int, E: int, D: int, *, seed: int = 0) -> list[analyse.CaptureSource]:
    """Captures whose states drift from one mixture of behaviours to another over training;
    arrays are made when loaded, as from disk."""

    def make(i: int):
        def load(name: str) -> np.ndarray:
            rng = np.random.default_rng(seed * 100_003 + i)
            drift = i / max(1, n_caps - 1)
            base = rng.normal(size=(T, E, D)) + drift * 3.0 * (np.arange(D) % 3 == 0)
            if name == "qpos":
                return base
            if name == "done":
                return np.zeros((T, E), bool)
            raise KeyError(name)

        return analyse.CaptureSource(index=i, step=i * 10_000, names=("qpos", "done"), load=load)

    return [make(i) for i in range(n_caps)]


def embed(method: str, caps, pool: int) -> tuple[float, int]:
    cfg = analyse.AnalysisConfig(method=method, features=("qpos",), pool_size=pool, points_per_capture=10**9)
    t0 = time.perf_counter()
    doc, _ = analyse.analyse(caps, cfg)
    return time.perf_counter() - t0, doc["embedding"]["points"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer states (a smoke run)")
    args = ap.parse_args()
    n_caps, T, E, D = (20, 500, 10, 64) if not args.quick else (10, 200, 8, 64)
    caps = synthetic(n_caps, T, E, D)
    print(f"{n_caps} captures x {T} steps x {E} envs = {n_caps * T * E:,} states of {D} features\n")
    print(f"{'method':<22}{'embed s':>10}{'points':>10}")
    embed_s, points = embed("pca", caps, 20_000)
    print(f"{'pca':<22}{embed_s:>10.2f}{points:>10,}")
    for method, pkg in (("tsne", "openTSNE"), ("umap", "umap")):
        try:
            __import__(pkg)
        except ImportError:
            print(f"{method:<22}{'-':>10}{'-':>10}  ({pkg} not installed: pip install 'trajscope[analysis]')")
            continue
        s, n = embed(method, caps, 20_000)
        print(f"{method:<22}{s:>10.2f}{n:>10,}  (fitted on 4,000 states, the rest placed by neighbours)")
    # Projecting a new capture into the existing map: standardise and transform.
    pool = np.concatenate([c.load("qpos").reshape(-1, D)[:1000] for c in caps])
    std = analyse.Standardizer.fit(pool)
    pca = analyse.PCA.fit(std(pool), 2)
    new = np.random.default_rng(9).normal(size=(16_000, D))
    t0 = time.perf_counter()
    pca.transform(std(new))
    project_s = time.perf_counter() - t0
    print(f"\nproject a new capture of 16,000 states into the map: {project_s * 1000:.1f} ms")
    try:
        from sklearn.manifold import TSNE as SkTSNE

        t0 = time.perf_counter()
        for c in caps[:3]:
            x = c.load("qpos").reshape(-1, D)[:2000]
            SkTSNE(n_components=2, random_state=0).fit_transform(x)
        per = (time.perf_counter() - t0) / 3
        print(
            f"one scikit-learn t-SNE per checkpoint (2,000 states each, as tools do today): {per:.2f} s per "
            f"checkpoint, {per * n_caps:.1f} s for the run, {n_caps} maps whose coordinates cannot be compared"
        )
    except ImportError:
        print("one scikit-learn t-SNE per checkpoint: scikit-learn not installed")
    # Runs of 250 and 1,000 captures, streamed: memory stays flat as the run grows.
    for n in (250, 1000):
        many = synthetic(n, 100, 4, 16, seed=1)
        total_mb = n * 100 * 4 * 16 * 8 / 1e6
        tracemalloc.start()
        t0 = time.perf_counter()
        doc, _ = analyse.analyse(many, analyse.AnalysisConfig(features=("qpos",), points_per_capture=200))
        s = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(
            f"{n:>5} captures ({total_mb:4.0f} MB of states): {s:5.1f} s, peak traced memory {peak / 1e6:4.0f} MB, "
            f"{doc['embedding']['points']:,} points kept"
        )
    print(f"analysis: points={points} embed_s={embed_s:.2f} project_s={project_s:.4f}")


if __name__ == "__main__":
    main()
