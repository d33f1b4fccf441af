"""What capture costs a real PPO training: no capture vs trajscope vs rscope, in one run.

    python benchmarks/capture_overhead.py            # the full comparison
    python benchmarks/capture_overhead.py --quick    # a smaller one, a few minutes on 2 cores

The same brax PPO training of MuJoCo Playground's CartpoleBalance (``impl='jax'``, which
suits CPUs; ``--impl warp`` on GPUs) runs three ways, in turns, ``--repeats`` times:

* ``none``: no capture;
* ``trajscope``: ``BraxRecorder`` with 16 environments at every checkpoint, its default
  ``source="rollout"`` (its own rollout, compiled once);
* ``trajscope-eval``: the same with ``source="eval"``: brax's own evaluation episode tapped
  through ``wrap_env_fn``, no extra rollout;
* ``rscope``: rscope's ``BraxRolloutSaver`` with 16 environments at every checkpoint, used
  as its README shows (``pip install rscope``; skipped if it is not installed).

With ``--live`` two more ways measure the live stream of the training environments (no
evaluation capture in either):

* ``live-on``: ``BraxRecorder(live=4)`` through ``wrap_env_fn``, a ``trajscope view --live``
  process attached to the run (it switches the stream on at the default rate and plays
  every chunk it gets, as for a browser);
* ``live-off``: the same wrapper with the stream switched off (no viewer).

and a last line ``live_overhead: on=<ratio> off=<ratio>`` follows.

With ``--sac`` it measures brax SAC instead (brax's ``inverted_pendulum``), three ways in
interleaved turns (A B C A B C ...): ``none``; ``eval-tap`` (``BraxRecorder(algorithm="sac")``
capturing brax's evaluation); ``replay-mirror`` (the same plus ``replay_sample=2000``, the
replay buffer's mirror). The cost is taken from SAC's own steady-state throughput
(``training/sps`` of every evaluation after the first, whose epoch holds the compilation),
median over evaluations and repeats; compilation is reported apart. The last line reads
``sac_overhead: eval_tap=<ratio> replay_mirror=<ratio>`` (steady-state time per step,
against ``none``).

It prints, as medians over the repeats (turns in alternating order: A B C, C B A, ...), the
wall time, the compilation and first two training epochs apart from the steady state (the
epochs after them: brax's PPO compiles its epoch again at the second call), its spread
and its ratio to ``none``, the time the training loop spent inside each capture hook per
checkpoint, the compilations of the capture rollout, and the bytes each wrote. The line
``capture_overhead: trajscope=<ratio> rscope=<ratio>`` gives steady-state ratios; compile
costs are in the table and in the line of wall ratios above it. ``--quick`` turns JAX's
persistent compilation cache on, so that trainings without host callbacks compile once.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")  # --video renders offscreen; MuJoCo reads it once

import jax
import tyro

import trajscope


@dataclasses.dataclass(frozen=True)
class Args:
    quick: bool = False
    """A smaller comparison (60k steps, 128 envs, 200-step episodes, 5 evals, 2 repeats),
    with JAX's persistent compilation cache on, filled by a warm-up of the same training;
    with --live, the live stream's cost per training step instead of whole trainings.
    Under 5 minutes on 2 cores."""
    repeats: int | None = None
    """Runs of each way, in turns whose order alternates (A B C, C B A, ...). Default: 1, or 2
    with --quick."""
    env: str = "CartpoleBalance"
    """A MuJoCo Playground environment that loads offline."""
    impl: str = "jax"
    """MJX implementation: 'jax' suits CPUs, 'warp' GPUs."""
    capture_envs: int = 16
    num_envs: int = 256
    """Training environments."""
    num_timesteps: int | None = None
    """Default: 600k, or 60k with --quick."""
    episode_length: int | None = None
    """Default: 1000, or 200 with --quick."""
    num_evals: int | None = None
    """Default: 8, or 5 with --quick."""
    ways: tuple[str, ...] = ("none", "trajscope", "trajscope-eval", "rscope")
    """Which ways to run."""
    keep: str | None = None
    """Keep trajscope's runs under this folder (default: a temporary one, removed)."""
    warmup: bool = True
    """Run a short training first, so that one-time start-up costs land on no way (with
    --quick: count the first run without capture, which fills the cache, for the steady
    state only)."""
    live: bool = False
    """Also measure the live stream: switched on with a viewer attached, and switched off."""
    live_envs: int = 4
    video: int = 0
    """Also run ``trajscope-video``: the own rollout with ``BraxRecorder(video_every=K)``,
    the training videos rendered on their own thread (needs MUJOCO_GL; 0: not run)."""
    every: int = 0
    """Also run ``trajscope-every``: the own rollout at every this-many-th checkpoint only
    (``BraxRecorder(every=K)``), the cadence trade-off (0: not run)."""
    sac: bool = False
    """Measure brax SAC instead: no capture, the evaluation tap, and the replay mirror."""


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


class _Timed:
    """Wraps a hook, timing how long the training loop waits in it."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.seconds: list[float] = []

    def __call__(self, *args: Any) -> None:
        t0 = time.perf_counter()
        self.fn(*args)
        self.seconds.append(time.perf_counter() - t0)


def main(args: Args) -> None:
    from brax.training.agents.ppo import train as ppo
    from mujoco_playground import registry, wrapper

    from trajscope.capture import BraxRecorder

    steps = args.num_timesteps or (60_000 if args.quick else 600_000)
    ep_len = args.episode_length or (200 if args.quick else 1000)
    num_envs = 128 if args.quick and args.num_envs == 256 else args.num_envs
    num_evals = args.num_evals or (5 if args.quick else 8)
    repeats = args.repeats or (2 if args.quick else 1)
    if args.quick:
        # Trainings without host callbacks compile once for the whole benchmark; those with
        # them (the evaluation tap, the live stream) compile at every run, as for a user.
        cache = Path(tempfile.gettempdir()) / "trajscope-bench-jax-cache"
        jax.config.update("jax_compilation_cache_dir", str(cache))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    t_start = time.perf_counter()
    env = registry.load(args.env, config_overrides={"impl": args.impl})
    kw = dict(
        num_timesteps=steps,
        num_evals=num_evals,
        episode_length=ep_len,
        num_envs=num_envs,
        batch_size=256,
        num_minibatches=8,
        unroll_length=10,
        num_updates_per_batch=4,
        normalize_observations=True,
        reward_scaling=10.0,
        learning_rate=1e-3,
        wrap_env_fn=wrapper.wrap_for_brax_training,
        seed=0,
    )
    try:
        from ml_collections import config_dict
        from rscope import brax as rscope_brax
    except ImportError:
        rscope_brax = None
        print("rscope is not installed (pip install rscope): its column is skipped")

    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="trajscope-bench-"))
    all_ways = (
        "none",
        "trajscope",
        "trajscope-every",
        "trajscope-video",
        "trajscope-eval",
        "rscope",
        "live-on",
        "live-off",
    )
    results: dict[str, list[dict[str, Any]]] = {w: [] for w in all_ways}
    ways = [w for w in args.ways if w != "rscope" or rscope_brax]
    if args.quick and args.ways == Args.ways and "rscope" in ways:
        # rscope compiles its rollout at every checkpoint (about a minute a run here): only
        # in the full comparison, or when --ways names it.
        ways.remove("rscope")
        print("rscope is left out of --quick (its column is in the full comparison)")
    if args.every and "trajscope-every" not in ways:
        ways.insert(ways.index("trajscope") + 1 if "trajscope" in ways else len(ways), "trajscope-every")
    if args.video and "trajscope-video" not in ways:
        ways.insert(ways.index("trajscope") + 1 if "trajscope" in ways else len(ways), "trajscope-video")
    if args.live and not args.quick:
        ways += [w for w in ("live-on", "live-off") if w not in ways]
    if args.warmup and not args.quick:
        t0 = time.perf_counter()
        ppo.train(env, **dict(kw, num_timesteps=kw["batch_size"] * kw["unroll_length"] * 8, num_evals=2))
        print(f"  warm-up {time.perf_counter() - t0:.1f} s", flush=True)
    # --quick has no warm-up of its own: the first run without capture fills the persistent
    # cache (every executable without host callbacks) and counts for the steady state only;
    # its wall time, compilation included, is left out of the medians of wall time.
    cold_first = args.quick and args.warmup and bool(ways) and ways[0] == "none"
    # --quick: ways whose trainings hold host callbacks (the evaluation tap) compile their
    # evaluator at every run (JAX does not cache executables with host callbacks), about
    # 20 s here: they run once, in the middle of the first turn, unless --repeats is given.
    once = {"trajscope-eval"} if args.quick and args.repeats is None else set()
    for rep in range(repeats):
        # Alternate the order between repeats so that drift in machine load favours no way.
        for way in ways if rep % 2 == 0 else ways[::-1]:
            if rep > 0 and way in once:
                continue
            hook = None
            rec = None
            out_dir = tmp / f"{way}-{rep}"
            extra: dict[str, Any] = {}
            viewer = None
            if way.startswith("live"):
                rec = BraxRecorder(
                    env, root=out_dir, name="run", env_name=args.env, live=args.live_envs, episode_length=ep_len
                )
                extra["wrap_env_fn"] = rec.wrap_env_fn(wrapper.wrap_for_brax_training)
                if way == "live-on":
                    rec.writer.flush()
                    viewer = subprocess.Popen(
                        [sys.executable, "-m", "trajscope", "view", rec.writer.url, "--live", "--port", str(_port())],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    _wait_for_control(rec.writer.url)
            elif way.startswith("trajscope"):
                source = "eval" if way == "trajscope-eval" else "rollout"
                rec = BraxRecorder(
                    env,
                    every=args.every if way == "trajscope-every" else 1,
                    video_every=args.video if way == "trajscope-video" else 0,
                    root=out_dir,
                    name="run",
                    num_envs=args.capture_envs,
                    episode_length=ep_len,
                    normalize_observations=True,
                    env_name=args.env,
                    source=source,
                    # Like rscope, the own rollout is deterministic; brax's evaluation samples
                    # unless train gets deterministic_eval=True.
                    deterministic=source == "rollout",
                )
                hook = _Timed(rec.policy_params_fn())
                if source == "eval":
                    extra["wrap_env_fn"] = rec.wrap_env_fn(wrapper.wrap_for_brax_training)
                    extra["progress_fn"] = rec.progress_fn()
            elif way == "rscope":
                shutil.rmtree("/tmp/rscope", ignore_errors=True)
                out_dir = Path("/tmp/rscope")
                trace_env = wrapper.wrap_for_brax_training(env, episode_length=ep_len, action_repeat=1)
                params_cfg = config_dict.ConfigDict(
                    dict(num_envs=kw["num_envs"], episode_length=ep_len, action_repeat=1)
                )
                saver = rscope_brax.BraxRolloutSaver(
                    trace_env, params_cfg, vision=False, rscope_envs=args.capture_envs, determistic=True
                )

                def rscope_fn(step: int, make_policy: Any, params: Any, saver: Any = saver) -> None:
                    saver.set_make_policy(make_policy)
                    saver.dump_rollout(params)

                hook = _Timed(rscope_fn)
            t0 = time.perf_counter()
            train_kw = dict(kw, **extra)
            if hook is not None:
                train_kw["policy_params_fn"] = hook
            progress_times: list[float] = []
            chained = train_kw.get("progress_fn")

            def progress(step: int, metrics: Any, chained: Any = chained, times: list[float] = progress_times) -> None:
                times.append(time.perf_counter())
                if chained is not None:
                    chained(step, metrics)

            train_kw["progress_fn"] = progress
            _, params, _ = ppo.train(env, **train_kw)
            jax.block_until_ready(params)
            wall = time.perf_counter() - t0
            # Steady state: from the end of the first training epoch (its compilation done)
            # to the last evaluation.
            # brax's PPO compiles its training epoch twice, at its first and second calls
            # (measured: 10.6 s again at the second, with or without trajscope): the steady
            # state starts after the second epoch. With --quick's persistent cache only
            # trainings with host callbacks pay that second compilation, so leaving it in
            # would charge it to them alone.
            steady = progress_times[-1] - progress_times[2] if len(progress_times) > 3 else float("nan")
            first = progress_times[2] - t0 if len(progress_times) > 2 else float("nan")
            live_chunks = rec.live.chunks_sent if rec is not None and rec.live is not None else None
            if rec is not None:
                rec.close()
            if viewer is not None:
                viewer.terminate()
                viewer.wait(30)
            results[way].append(
                dict(
                    wall=wall,
                    hook=statistics.mean(hook.seconds) if hook and hook.seconds else 0.0,
                    hook_max=max(hook.seconds) if hook and hook.seconds else 0.0,
                    checkpoints=len(hook.seconds) if hook else 0,
                    bytes=_du(out_dir),
                    compiles=rec.compiles if rec else None,
                    dropped=rec.stats.dropped if rec else None,
                    live_chunks=live_chunks,
                    steady=steady,
                    first=first,
                    cold=cold_first and way == "none" and rep == 0,
                )
            )
            cold = " (cold: fills the compilation cache)" if results[way][-1]["cold"] else ""
            print(f"  [{rep}] {way:<9} {wall:7.1f} s{cold}", flush=True)

    if "trajscope" in ways:
        run = trajscope.open_run(tmp / "trajscope-0" / "run")
        cap = run.capture(-1)
        sizes = sorted(((e["nbytes"], e["group"], e["key"]) for e in cap.manifest["arrays"]), reverse=True)
        print(f"\nlargest arrays of the last trajscope capture ({sum(s for s, *_ in sizes) / 1e6:.2f} MB in all):")
        for nbytes, group, key in sizes[:6]:
            print(f"  {group + '/' if group else ''}{key:<40} {nbytes / 1e3:8.1f} kB")
    med = statistics.median

    def warm(rs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in rs if not r["cold"]] or rs

    base = med([r["wall"] for r in warm(results["none"])]) if results["none"] else float("nan")
    base_steady = med([r["steady"] for r in results["none"]]) if results["none"] else float("nan")
    if len(results["none"]) > 1:
        walls = [r["steady"] for r in results["none"]]
        print(f"\nnoise: the {len(walls)} runs without capture differ by {100 * (max(walls) / min(walls) - 1):.1f}%")
    print()
    print(f"PPO on {args.env} (impl={args.impl}), {steps} steps, {num_envs} envs, episode {ep_len}, ")
    print(
        f"{num_evals} evals; capture {args.capture_envs} envs x {ep_len} steps at every checkpoint; {repeats} repeats"
    )
    print(
        f"jax {jax.__version__} on {jax.devices()[0].platform}: {jax.devices()[0].device_kind}, {os.cpu_count()} CPUs"
    )
    print("medians over the repeats; 'first epochs': compilation and the first two epochs; 'steady': the rest")
    print()
    header = (
        f"{'way':<14} {'wall s':>8} {'first epochs s':>14} {'steady s':>9} {'spread':>13} {'steady ratio':>13} "
        f"{'hook ms/ckpt':>13} {'compiles':>9} {'MB written':>11} {'live chunks':>12}"
    )
    print(header)
    print("-" * len(header))
    ratios: dict[str, float] = {}
    for way in ways:
        rs = results[way]
        steady = [r["steady"] for r in rs]
        ratios[way] = med(steady) / base_steady
        last = rs[-1]
        compiles = "-" if last["compiles"] is None else str(last["compiles"])
        chunks = "-" if last["live_chunks"] is None else str(last["live_chunks"])
        print(
            f"{way:<14} {med([r['wall'] for r in warm(rs)]):>8.1f} {med([r['first'] for r in warm(rs)]):>14.1f} "
            f"{med(steady):>9.1f} {f'{min(steady):.1f}..{max(steady):.1f}':>13} {ratios[way]:>13.3f} "
            f"{1000 * med([r['hook'] for r in rs]):>13.1f} {compiles:>9} {last['bytes'] / 1e6:>11.2f} {chunks:>12}"
        )
    print(
        "\nwall ratios (compilation included): "
        + ", ".join(f"{w}={med([r['wall'] for r in warm(results[w])]) / base:.3f}" for w in ways)
    )
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    fmt = {w: f"{ratios[w]:.3f}" if w in ratios else "skipped" for w in ("trajscope", "trajscope-eval", "rscope")}
    every = f" trajscope_every{args.every}={ratios['trajscope-every']:.3f}" if "trajscope-every" in ratios else ""
    if "trajscope-video" in ratios:
        every += f" trajscope_video{args.video}={ratios['trajscope-video']:.3f}"
    print(
        f"capture_overhead: trajscope={fmt['trajscope']} trajscope_eval={fmt['trajscope-eval']} "
        f"rscope={fmt['rscope']}{every}"
    )
    if args.live:
        step_costs = live_step_cost(env, args, ep_len, num_envs)
        print(f"\ncost of one batched training step ({num_envs} envs, scan of 256 steps, median of 7, interleaved):")
        for name, sec in step_costs.items():
            print(f"  {name:<22} {1e3 * sec:8.3f} ms/step  ratio {sec / step_costs['no tap']:.4f}")
        if args.quick:
            # No whole live trainings in quick mode: the ratios are those per training step.
            on, off = (f"{step_costs[k] / step_costs['no tap']:.3f}" for k in ("live tap on", "live tap off"))
            print(f"live_overhead: on={on} off={off} (per training step)")
        else:
            on, off = (f"{ratios[w]:.3f}" if w in ratios else "skipped" for w in ("live-on", "live-off"))
            print(f"live_overhead: on={on} off={off}")
    print(f"benchmark took {time.perf_counter() - t_start:.0f} s")


def live_step_cost(env: Any, args: Args, ep_len: int, num_envs: int) -> dict[str, float]:
    """Seconds per batched step of the training environment: plain, live tap switched off,
    and switched on (recording every chunk, written by the recorder as for a viewer);
    jitted scans, interleaved, median of seven."""
    import jax.numpy as jnp
    from mujoco_playground import wrapper

    from trajscope.capture import BraxRecorder

    fns = {}
    tmp = tempfile.mkdtemp(prefix="trajscope-step-")
    rec = BraxRecorder(env, root=tmp, name="step", live=args.live_envs, episode_length=ep_len)
    for name in ("no tap", "live tap off", "live tap on"):
        base = wrapper.wrap_for_brax_training(env, episode_length=ep_len, action_repeat=1)
        e = base if name == "no tap" else rec.live.wrap(base)  # type: ignore[union-attr]
        state = jax.jit(e.reset)(jax.random.split(jax.random.PRNGKey(0), num_envs))

        def unroll(s: Any, e: Any = e) -> Any:
            def body(s: Any, _: Any) -> tuple[Any, None]:
                a = jnp.zeros((num_envs, e.action_size))
                return e.step(s, a), None

            return jax.lax.scan(body, s, None, length=256)[0]

        fns[name] = (jax.jit(unroll), state)
        jax.block_until_ready(fns[name][0](state))  # compile
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(7):
        for name, (fn, state) in fns.items():
            if name == "live tap on":
                rec.live.switch(True, rate=1000)  # type: ignore[union-attr]
            else:
                rec.live.switch(False)  # type: ignore[union-attr]
            t0 = time.perf_counter()
            jax.block_until_ready(fn(state))
            times[name].append((time.perf_counter() - t0) / 256)
    out = {name: statistics.median(ts) for name, ts in times.items()}
    rec.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_control(url: str, timeout_s: float = 60.0) -> None:
    """Until the viewer process has switched the stream on."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if trajscope.store.read_live_control(url).active():
            return
        time.sleep(0.2)
    raise RuntimeError("the viewer did not switch the live stream on")


def sac_overhead(args: Args) -> None:
    """brax SAC's steady-state throughput without capture, with the evaluation tap, and with
    the replay mirror too; interleaved repeats."""
    import warnings

    from brax import envs
    from brax.training.agents.sac import train as sac

    from trajscope.capture import BraxRecorder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = envs.get_environment("inverted_pendulum")
    num_envs = 64 if args.quick else 128
    steps = args.num_timesteps or (60_000 if args.quick else 240_000)
    kw = dict(
        num_timesteps=steps,
        num_evals=args.num_evals or 8,
        episode_length=200,
        num_envs=num_envs,
        batch_size=256,
        min_replay_size=1024,
        max_replay_size=100_000,
        num_eval_envs=16,
        seed=0,
    )
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="trajscope-bench-sac-"))
    ways = ("none", "eval-tap", "replay-mirror")
    sps: dict[str, list[float]] = {w: [] for w in ways}
    first: dict[str, list[float]] = {w: [] for w in ways}
    kept: list[int] = []
    sac_repeats = args.repeats or 1
    for rep in range(sac_repeats):
        for way in ways:
            seen: list[float] = []

            def progress(step: int, metrics: Any, seen: list[float] = seen) -> None:
                if "training/sps" in metrics:
                    seen.append(float(metrics["training/sps"]))

            rec = None
            hooks: dict[str, Any] = {"progress_fn": progress}
            if way != "none":
                rec = BraxRecorder(
                    env,
                    root=tmp,
                    name=f"{way}-{rep}",
                    num_envs=args.capture_envs,
                    episode_length=200,
                    algorithm="sac",
                    value=False,
                    replay_sample=2000 if way == "replay-mirror" else 0,
                )
                hooks = {"wrap_env_fn": rec.wrap_env_fn(), "progress_fn": rec.progress_fn(chain=progress)}
            t0 = time.perf_counter()
            sac.train(env, **kw, **hooks)
            wall = time.perf_counter() - t0
            if rec is not None:
                rec.close()
                if rec.buffer is not None:
                    kept.append(rec.buffer.size)
            # seen[0] is the first epoch (compilation included); the rest are steady state.
            sps[way] += seen[1:]
            first[way].append(seen[0] if seen else float("nan"))
            print(f"  [{rep}] {way:<14} {wall:7.1f} s  steady {statistics.median(seen[1:]):9.0f} steps/s", flush=True)
    base = statistics.median(sps["none"])
    evals = args.num_evals or 8
    print(f"\nSAC on inverted_pendulum, {steps} steps, {num_envs} envs, {evals} evals, {sac_repeats} repeats")
    print(f"{'way':<14} {'steps/s (median)':>17} {'spread':>20} {'first epoch steps/s':>20} {'time ratio':>11}")
    for w in ways:
        med = statistics.median(sps[w])
        spread = f"{min(sps[w]):.0f}..{max(sps[w]):.0f}"
        print(f"{w:<14} {med:17.0f} {spread:>20} {statistics.median(first[w]):20.0f} {base / med:11.3f}")
    if kept:
        print(f"replay mirror kept {kept[-1]} transitions")
    ratio = {w: base / statistics.median(sps[w]) for w in ways}
    print(f"sac_overhead: eval_tap={ratio['eval-tap']:.3f} replay_mirror={ratio['replay-mirror']:.3f}")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    a = tyro.cli(Args)
    sac_overhead(a) if a.sac else main(a)
