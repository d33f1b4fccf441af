"""How long listing a run takes as it grows, and what a one-environment read costs.

    python benchmarks/store_listing.py [--captures 1000]

Prints, side by side: open + list time for 10, 100 and N captures, an incremental refresh,
and reading one environment's qpos against reading the whole capture.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time

import mujoco
import numpy as np
import tyro

import trajscope
from trajscope.demo import CARTPOLE_XML


@dataclasses.dataclass(frozen=True)
class Args:
    captures: int = 1000
    """Largest run to list."""
    envs: int = 16
    steps: int = 100


def _time(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(args: Args) -> None:
    model = mujoco.MjModel.from_xml_string(CARTPOLE_XML)
    rng = np.random.default_rng(0)
    T, E = args.steps, args.envs
    kw = dict(
        qpos=rng.normal(size=(T, E, model.nq)).astype(np.float32),
        qvel=rng.normal(size=(T, E, model.nv)).astype(np.float32),
        action=rng.normal(size=(T, E, model.nu)).astype(np.float32),
        reward=rng.normal(size=(T, E)).astype(np.float32),
        done=np.zeros((T, E), bool),
        metrics={f"reward/term{i}": rng.normal(size=(T, E)).astype(np.float32) for i in range(8)},
    )
    print(f"{'captures':>9} {'open+list s':>12} {'per capture ms':>15}")
    with tempfile.TemporaryDirectory() as root:
        written = 0
        for n in sorted({10, 100, args.captures}):
            with trajscope.RunWriter(root, name=f"n{n}", model=model, max_queue=n + 1) as w:
                for i in range(n):
                    w.add_capture(step=i, **kw)
            written += n
            dt = _time(lambda n=n: len(trajscope.open_run(f"{root}/n{n}").captures))
            print(f"{n:>9} {dt:>12.3f} {1000 * dt / n:>15.3f}")
        run = trajscope.open_run(f"{root}/n{args.captures}")
        refresh = _time(run.refresh)
        with trajscope.RunWriter(root, name="pixels", model=model) as w:
            pix = rng.integers(0, 256, (T, E, 64, 64, 3), dtype=np.uint8)
            w.add_capture(step=0, qpos=kw["qpos"], obs={"pixels/view_0": pix})
        cap = trajscope.open_run(f"{root}/pixels").capture(0)
        one = _time(lambda: cap.load("obs/pixels/view_0", env=3), repeat=10)
        whole = _time(lambda: cap.load("obs/pixels/view_0"), repeat=10)
        print(f"refresh with nothing new: {1000 * refresh:.2f} ms")
        print(
            f"pixels {pix.nbytes / 1e6:.1f} MB: one env {1000 * one:.2f} ms, whole capture {1000 * whole:.2f} ms "
            f"(ratio {whole / one:.1f}x)"
        )
        print(f"store_listing: captures={args.captures} seconds={_time(lambda: trajscope.open_run(run.path)):.3f}")


if __name__ == "__main__":
    main(tyro.cli(Args))
