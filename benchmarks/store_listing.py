"""How long listing a run takes as it grows, what a poll costs, and what a one-environment read costs.

    python benchmarks/store_listing.py [--sizes 1000 10000 100000] [--problems 20000]

Prints, side by side: open + list time for runs of 1k, 10k and 100k captures (one capture
written by the writer, then copied with new ids and steps: the files are hard links, the
manifests real), a poll with nothing new, a poll after one new capture, the same with
20,000 problem folders (capture folders without a manifest, as a crashed writer leaves
them), and reading one environment's qpos against the whole capture. Run it with
``PYTHONPATH`` pointing at another checkout's ``src`` to compare versions.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import shutil
import tempfile
import time

import mujoco
import numpy as np
import tyro

import trajscope
from trajscope.demo import CARTPOLE_XML


@dataclasses.dataclass(frozen=True)
class Args:
    sizes: tuple[int, ...] = (1000, 10000, 100000)
    """Runs to list, by number of captures."""
    problems: int = 20000
    """Problem folders (no manifest) beside 1,000 captures."""
    envs: int = 16
    steps: int = 100
    polls: int = 20
    """Refreshes timed per run (an older version may take seconds each)."""
    timeout_s: float = 600.0
    """Give up on a size whose listing takes longer (an older version may)."""


def _time(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _clone(run_dir: str, n: int, *, first_step: int = 1) -> None:
    """``n`` more captures like the run's first one: new folder, id and step; files hard-linked."""
    cdir = os.path.join(run_dir, "captures")
    src = sorted(os.listdir(cdir))[0]
    manifest = json.load(open(os.path.join(cdir, src, "capture.json")))
    files = [f for f in os.listdir(os.path.join(cdir, src)) if f != "capture.json"]
    origin = os.path.join(cdir, src)
    for i in range(n):
        step = first_step + i
        cid = f"step{step:012d}-eval-{i:08x}"
        d = os.path.join(cdir, cid)
        os.mkdir(d)
        if i and i % 50000 == 0:  # a file takes at most 65,000 links on ext4: link to a fresh copy
            for f in files:
                shutil.copyfile(os.path.join(origin, f), os.path.join(d, f))
            origin = d
        else:
            for f in files:
                os.link(os.path.join(origin, f), os.path.join(d, f))
        m = dict(manifest, capture_id=cid, step=step)
        with open(os.path.join(d, "capture.json"), "w") as fh:
            json.dump(m, fh)


def _poll_ms(run, n: int) -> tuple[float, float]:
    """Median and max ms of ``n`` refreshes with nothing new (past the settle time of the folder)."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        run.refresh()
        times.append(1000 * (time.perf_counter() - t0))
    return float(np.median(times)), float(max(times))


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
    with tempfile.TemporaryDirectory() as root:

        def make(name: str, n: int) -> str:
            with trajscope.RunWriter(root, name=name, model=model) as w:
                w.add_capture(step=0, **kw)
            path = os.path.join(root, name)
            _clone(path, n - 1)
            return path

        print(f"{'captures':>9} {'open+list s':>12} {'per capture us':>15} {'poll ms (median, max)':>22} {'RSS MB':>7}")
        for n in args.sizes:
            path = make(f"n{n}", n)
            t0 = time.perf_counter()
            run = trajscope.open_run(path)
            dt = time.perf_counter() - t0
            assert len(run.captures) == n, len(run.captures)
            time.sleep(2.5)  # past the settle time: the folder's stat is trusted from here on
            med, worst = _poll_ms(run, args.polls)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"{n:>9} {dt:>12.3f} {1e6 * dt / n:>15.1f} {med:>13.2f} {worst:>8.2f} {rss:>7.0f}")
            if dt > args.timeout_s:
                print(f"  ({n} captures took over {args.timeout_s:.0f} s: larger sizes skipped)")
                break
        path = make("problems", 1000)
        for i in range(args.problems):
            os.mkdir(os.path.join(path, "captures", f"step{10**9 + i:012d}-eval-dead{i:04x}"))
        t0 = time.perf_counter()
        run = trajscope.open_run(path)
        dt = time.perf_counter() - t0
        assert len(run.problems) == args.problems
        time.sleep(2.5)
        med, worst = _poll_ms(run, args.polls)
        print(f"1000 captures + {args.problems} problem folders: open+list {dt:.3f} s,", end=" ")
        print(f"poll {med:.2f} ms (max {worst:.2f}) made just now;", end=" ")
        hour_ago = time.time() - 3600  # as a crashed writer's folders are: untouched for long
        for d in os.scandir(os.path.join(path, "captures")):
            os.utime(d.path, (hour_ago, hour_ago))
        run = trajscope.open_run(path)
        time.sleep(2.5)
        med, worst = _poll_ms(run, args.polls)
        print(f"untouched for an hour: poll {med:.2f} ms (max {worst:.2f})")
        _clone(path, 1, first_step=10**6)
        t0 = time.perf_counter()
        got = run.refresh()
        print(f"a poll that finds one new capture: {1000 * (time.perf_counter() - t0):.2f} ms ({len(got)} new)")

        with trajscope.RunWriter(root, name="pixels", model=model) as w:
            pix = rng.integers(0, 256, (T, E, 64, 64, 3), dtype=np.uint8)
            w.add_capture(step=0, qpos=kw["qpos"], obs={"pixels/view_0": pix})
        cap = trajscope.open_run(f"{root}/pixels").capture(0)
        one = _time(lambda: cap.load("obs/pixels/view_0", env=3), repeat=10)
        whole = _time(lambda: cap.load("obs/pixels/view_0"), repeat=10)
        print(
            f"pixels {pix.nbytes / 1e6:.1f} MB: one env {1000 * one:.2f} ms, whole capture {1000 * whole:.2f} ms "
            f"(ratio {whole / one:.1f}x)"
        )


if __name__ == "__main__":
    main(tyro.cli(Args))
