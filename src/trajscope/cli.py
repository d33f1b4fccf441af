"""The ``trajscope`` command: thin subcommands over the rooms."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
from collections.abc import Iterator
from typing import Any, ClassVar

import tyro

from . import store
from ._escape import plain
from .format.summary import earliest_nonfinite
from .format.training import ReturnSettings


@dataclasses.dataclass(frozen=True)
class Info:
    """Show a run: metadata, model and a table of captures."""

    run: tyro.conf.Positional[str]
    """Run folder or fsspec URL."""
    json: bool = False
    """Print one JSON object instead of tables."""
    checksums: bool = False
    """Read every array file whole and check its checksum (slow for big runs)."""


@dataclasses.dataclass(frozen=True)
class Ls:
    """List the runs under a root folder or URL with their last capture."""

    root: tyro.conf.Positional[str | None] = None
    """Default: $TRAJSCOPE_DIR, else ./trajscope_runs."""
    json: bool = False
    """Print JSON instead of a table."""


@dataclasses.dataclass(frozen=True)
class View:
    """Serve the web viewer for a run or a root of runs; open the printed URL."""

    path: tyro.conf.Positional[str | None] = None
    """Run folder, root of runs, or fsspec URL. Default: $TRAJSCOPE_DIR, else ./trajscope_runs."""
    host: str = "127.0.0.1"
    """Interface to listen on. Keep 127.0.0.1 and use an SSH port forward; on any other
    interface the viewer requires a token, which the printed URL carries."""
    port: int = 8080
    token: str | None = None
    """Token for a non-loopback --host. Prefer $TRAJSCOPE_TOKEN: a --token on the command
    line is visible to every user of the machine in the process list. Default:
    $TRAJSCOPE_TOKEN, else a random one."""
    allow_origin: tuple[str, ...] = ()
    """Origins besides the viewer's own whose pages may open its websocket, e.g.
    https://proxy.example:8443 for a TLS proxy in front (see docs/viewer.md). Every other
    origin's pages are refused, and so are requests for host names that are neither
    loopback, the --host asked for, nor an allowed origin's."""
    live: bool = False
    """Switch the run's live stream on and watch it (the training must stream: see docs/live.md)."""
    play_env: str | None = None
    """The environment as trained, for the Play panel's "play from here": playground:NAME
    (MuJoCo Playground, with the implementation the run was trained with, else impl='jax';
    playground:NAME@warp or @jax to choose) or brax:NAME. Playing needs JAX; viewing does not."""
    poll_s: float | None = None
    """Seconds between looks for new captures: default 1 on local disk, 5 on remote
    filesystems (each look is a request the store bills; see docs/remote.md)."""


@dataclasses.dataclass(frozen=True)
class Analyse:
    """How behaviour changes over a run: state map, visitation shift, value against return,
    behaviour clusters. Stored in the run's analysis/ folder and printed."""

    run: tyro.conf.Positional[str]
    """Run folder or fsspec URL."""
    method: str = "pca"
    """The 2-D state map: pca, tsne (openTSNE) or umap (umap-learn); the last two need the
    `analysis` extra."""
    features: str = "qpos,qvel,obs"
    """Comma-separated per-step arrays making a state (obs: every vector observation)."""
    gamma: float | None = None
    """Discount of the realised returns; default the run's `discounting`, else 0.99."""
    reward_scaling: float | None = None
    """Values are divided by this; default the run's `reward_scaling`, else 1."""
    clusters: int = 0
    """Behaviour clusters; 0 chooses 2 to 8 by silhouette."""
    json: bool = False
    """Print one JSON object instead of tables."""
    write: bool = True
    """Store the result in the run's analysis/ folder."""
    dask: str | None = None
    """Read and reduce the captures on a Dask cluster: a scheduler address
    (tcp://host:8786), or local:N for a local cluster of N worker processes. Needs the
    `distributed` extra; the workers read the run from its URL themselves."""


@dataclasses.dataclass(frozen=True)
class Video:
    """Render captures to a video file with MuJoCo's offscreen renderer (MP4, WebM or GIF):
    each environment with its own randomised model, a caption with the step and return."""

    run: tyro.conf.Positional[str]
    """Run folder or fsspec URL."""
    out: str
    """The file to write: .mp4, .webm or .gif (with --capture all: one file per capture,
    the index before the extension)."""
    capture: str = "latest"
    """A capture index, latest, or all."""
    envs: str = "0"
    """Environments, comma-separated (tiled in a grid), or grid: every one, up to 16."""
    fps: float | None = None
    """Frames per second; default real time (the run's control step)."""
    camera: str = "auto"
    """auto (track a floating-base robot, else fixed), track (follow the floating root, else
    the first body that moves), fixed (the free camera framing the model at rest), or a
    camera of the model by name."""
    width: int | None = None
    """Each environment's picture, in pixels; default 480x360 for one environment, and for a
    grid as large as fits the whole video in 960x720 (4x4: 240x180): rendering, most of the
    time on a CPU, grows with the pixels drawn."""
    height: int | None = None
    contacts: bool = False
    """Draw contact points and contact force arrows (recomputed from the stored states)."""


@dataclasses.dataclass(frozen=True)
class Html:
    """One HTML file that replays a capture in 3D in any browser, with no server and no
    network (viser's client inlined): a step and return label and a reward plot in the scene."""

    run: tyro.conf.Positional[str]
    """Run folder or fsspec URL."""
    out: str
    """The .html file to write."""
    capture: str = "latest"
    """A capture index, or latest."""
    env: int = 0
    """The environment shown and plotted."""
    grid: int = 0
    """Show this many environments side by side instead."""
    every: int = 1
    """Record every n-th step (smaller files for long captures; playback keeps real time)."""


@dataclasses.dataclass(frozen=True)
class Saliency:
    """What a checkpoint's policy (or critic) looks at along one captured episode: PNG heat
    maps over every image observation, and a features-by-steps map of state observations.
    Rebuilds the networks from the run (needs the `jax` extra)."""

    run: tyro.conf.Positional[str]
    """Run folder or fsspec URL."""
    out: str
    """Folder for the PNG files (made if missing)."""
    capture: str = "latest"
    """Capture index, or `latest` (the newest capture that stores parameters)."""
    env: int = 0
    """Environment of the capture."""
    steps: str = ":"
    """Steps as `a:b` (Python slice; `:` for all) whose image overlays are written."""
    of: str = "policy"
    """`policy` (the deterministic action) or `value` (the critic, when stored)."""
    method: str = "gradient"
    """`gradient` or `perturbation` (Greydanus et al. 2018)."""
    json: bool = False
    """Print one JSON object (files written, per-feature mean saliency)."""


@dataclasses.dataclass(frozen=True)
class Demo:
    """Train a small PPO agent with capture on, then show the run.

    Trains brax's inverted pendulum on the CPU (about two minutes on 2 cores), captures 16
    evaluation episodes at every checkpoint and streams 4 training environments live; the
    viewer is up from the start, watching the live stream. ``--scripted`` writes a run
    without JAX instead, in seconds.
    """

    root: str | None = None
    """Where runs go. Default: $TRAJSCOPE_DIR, else ./trajscope_runs."""
    name: str | None = None
    """Run name; default a fresh unique one."""
    steps: int = 573_440
    """Environment steps of training (brax's PPO trains whole epochs of 40,960 steps here, so
    other counts are rounded up; the demo says to what)."""
    scripted: bool = False
    """Write a scripted cart-pole run instead of training (no JAX needed)."""
    serve: bool = True
    """Then serve the viewer on the run until interrupted."""
    port: int = 8080


def _fmt(x: float | None, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}f}"


def _p(p: float | None) -> str:
    """A p-value, starred below 0.05."""
    return "-" if p is None else f"{p:.3f}" + ("*" if p < 0.05 else "")


def _ci(ci: list[float] | None) -> str:
    return "" if not ci else f" [{ci[0]:.2f}, {ci[1]:.2f}]"


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def info_json(run: store.Run, problems: list[store.CaptureProblem]) -> dict[str, Any]:
    meta = run.metadata
    return {
        "path": run.url,
        "name": run.name,
        "format_version": run.format_version,
        "env_name": meta.get("env_name"),
        "algorithm": meta.get("algorithm"),
        "created_iso": meta.get("created_iso"),
        "config": meta.get("config", {}),
        "tags": meta.get("tags", []),
        "versions": meta.get("versions", {}),
        "control_dt_s": meta.get("control_dt_s"),
        "model": run.model_info,
        "captures": [c.to_json() for c in run.captures],
        "problems": [p.to_json() for p in problems],
        "live": _live_json(run),
    }


def _live_json(run: store.Run) -> dict[str, Any] | None:
    status = run.live_status()
    chunks = run.live_chunks()
    if status is None and not chunks:
        return None
    return {
        "status": dataclasses.asdict(status) if status is not None else None,
        "chunks": [c.to_json() for c in chunks],
    }


def cmd_info(args: Info) -> int:
    try:
        run = store.open_run(args.run)
    except store.FormatError as e:
        print(f"trajscope info: {e}", file=sys.stderr)
        return 2
    problems = {p.id: p for p in run.problems}
    for p in run.check(checksums=args.checksums):
        problems[p.id] = p
    plist = sorted(problems.values(), key=lambda p: p.id)
    if args.json:
        print(json.dumps(info_json(run, plist), indent=2))
        return 1 if any(not p.incomplete for p in plist) else 0
    meta = run.metadata
    print(f"run       {run.name}")
    print(f"path      {run.url}")
    print(f"format    {run.format_version}")
    print(f"env       {meta.get('env_name') or '-'}    algorithm {meta.get('algorithm') or '-'}")
    print(f"created   {meta.get('created_iso') or '-'}")
    if meta.get("tags"):
        print(f"tags      {', '.join(meta['tags'])}")
    versions = meta.get("versions") or {}
    if versions:
        print("versions  " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    m = run.model_info
    if m:
        print(
            f"model     nq={m['nq']} nv={m['nv']} nu={m['nu']} nbody={m['nbody']} ngeom={m.get('ngeom')} "
            f"nmocap={m.get('nmocap', 0)} geoms: {', '.join(m.get('geom_types', []))}"
        )
    else:
        print("model     (none stored)")
    caps = run.captures
    print(f"\n{len(caps)} capture(s)")
    if caps:
        rows = [
            [
                str(c.index),
                str(c.step),
                c.kind,
                str(c.num_envs),
                str(c.num_steps),
                _fmt(c.mean_return),
                f"NaN at t={nan[1]}" if (nan := earliest_nonfinite(c.summary)) else "",
                ", ".join(c.metric_keys)
                if len(c.metric_keys) <= 6
                else f"{len(c.metric_keys)} keys: " + ", ".join(c.metric_keys[:5]) + ", ...",
            ]
            for c in caps
        ]
        print(_table(rows, ["index", "step", "kind", "E", "T", "mean_return", "nonfinite", "metric_keys"]))
    live = _live_json(run)
    if live is not None:
        st = live["status"] or {}
        print(
            f"\nlive stream: {'on' if st.get('streaming') else 'off'}, {st.get('chunks_sent', 0)} chunk(s) sent, "
            f"{len(live['chunks'])} kept, training at {st.get('env_steps', '?')} env steps"
        )
    if plist:
        print(f"\n{len(plist)} problem(s)")
        for p in plist:
            print(f"  {p.path}: {p.problem}")
    return 1 if any(not p.incomplete for p in plist) else 0


def cmd_ls(args: Ls) -> int:
    problem = _local_problem(args.root, "ls") if args.root else None
    if problem:
        print(problem, file=sys.stderr)
        return 2
    runs = store.list_runs(args.root)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": r.name,
                        "claimed_name": r.claimed_name,
                        "path": r.path,
                        "env_name": r.env_name,
                        "algorithm": r.algorithm,
                        "created_iso": r.created_iso,
                        "num_captures": r.num_captures,
                        "last_capture": r.last_capture.to_json() if r.last_capture else None,
                        "problem": r.problem,
                    }
                    for r in runs
                ],
                indent=2,
            )
        )
        return 0
    if not runs:
        print(f"no runs under {args.root or store.default_root()}")
        return 0
    rows = []
    for r in runs:
        last = r.last_capture
        rows.append(
            [
                r.name if r.claimed_name is None else f"{r.name} (run.json says {r.claimed_name!r})",
                r.env_name or "-",
                r.algorithm or "-",
                str(r.num_captures),
                f"step {last.step} ({last.kind}) return {_fmt(last.mean_return)}" if last else (r.problem or "-"),
            ]
        )
    print(plain(_table(rows, ["run", "env", "algorithm", "captures", "last capture"])))
    return 0


@contextlib.contextmanager
def _dask_executor(address: str | None) -> Iterator[Any]:
    """A Dask client's executor for ``--dask`` (None without it)."""
    if address is None:
        yield None
        return
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ImportError("--dask needs Dask's distributed scheduler: pip install 'trajscope[distributed]'") from None
    if address.startswith("local:"):
        n = int(address.split(":", 1)[1])
        # On loopback, without a dashboard: nothing listens beyond this machine.
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,  # pyright: ignore[reportArgumentType]
        )
        with cluster, Client(cluster) as client:
            yield client.get_executor()
        return
    with Client(address) as client:
        yield client.get_executor()


def cmd_analyse(args: Analyse) -> int:
    from . import analyse

    try:
        run = store.open_run(args.run)
    except store.FormatError as e:
        print(f"trajscope analyse: {e}", file=sys.stderr)
        return 2
    given = {"discounting": args.gamma, "reward_scaling": args.reward_scaling}
    settings = ReturnSettings.of_run(run.metadata)
    settings = dataclasses.replace(
        settings,
        gamma=settings.gamma if args.gamma is None else args.gamma,
        reward_scaling=settings.reward_scaling if args.reward_scaling is None else args.reward_scaling,
        assumed=tuple(n for n in settings.assumed if given[n] is None),
    )
    cfg = analyse.AnalysisConfig(
        method=args.method,
        features=tuple(f.strip() for f in args.features.split(",") if f.strip()),
        gamma=settings.gamma,
        reward_scaling=settings.reward_scaling,
        clusters=args.clusters,
    )
    try:
        with _dask_executor(args.dask) as executor:
            doc, _ = analyse.analyse_run(run, cfg, write=args.write, executor=executor, assumed=settings.note())
    except (ImportError, ValueError) as e:
        print(f"trajscope analyse: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"trajscope analyse: cannot write {run.url}/analysis: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    emb = doc["embedding"]
    print(f"run       {run.name}")
    print(f"map       {emb['method']}, {emb['points']} states placed, {emb['skipped_nonfinite']} non-finite skipped")
    print(f"discount  {cfg.gamma}  (values divided by {cfg.reward_scaling})")
    if doc.get("assumed"):
        print(f"note      {doc['assumed']}")
    print()
    rows = [
        [
            str(c["index"]),
            str(c["step"]),
            _fmt(c["shift_prev"], 3),
            _p(c.get("shift_prev_p")),
            _fmt(c.get("shift_prev_floor"), 3),
            _fmt(c["shift_first"], 3),
            _p(c.get("shift_first_p")),
            _fmt(c["value_corr"], 3) + _ci(c.get("value_corr_ci")),
            _fmt(c["value_bias"], 3) + _ci(c.get("value_bias_ci")),
            " ".join(f"{x:.2f}" for x in c["cluster_share"]) if c["cluster_share"] else "-",
        ]
        for c in doc["captures"]
    ]
    header = [
        "index", "step", "shift_prev", "p", "noise(95%)", "shift_first", "p", "value_corr [95%]", "value_bias [95%]",
        "cluster share",
    ]  # fmt: skip
    print(_table(rows, header) if rows else "no capture could be analysed")
    if doc["clusters"]:
        print(f"\n{doc['clusters']['k']} behaviour clusters; most typical windows (capture, env, start step):")
        for j, ws in enumerate(doc["clusters"]["typical"]):
            print(f"  {j}: " + ", ".join(f"({w['capture']}, {w['env']}, {w['t']})" for w in ws))
    print(
        "\nshift: Jensen-Shannon divergence of state visitation; p: permutation test over environments"
        " (* below 0.05: beyond noise); noise(95%): what noise alone reaches 19 times in 20"
    )
    for c in doc["captures"]:
        pp = c.get("paired_prev")
        if not pp:
            continue
        parted = [t for t in pp["parts_at"] if t is not None]
        line = f"capture {c['index']} vs {pp['compared_with']} (same starts): "
        line += f"{len(parted)}/{len(pp['parts_at'])} envs part"
        line += f" (first at step {min(parted)})" if parted else ""
        if pp.get("return_diff_mean") is not None:
            line += f"; return per env {pp['return_diff_mean']:+.2f} (p {_p(pp.get('return_diff_p'))})"
        if pp.get("terms"):
            line += "; most changed: " + ", ".join(f"{t['name']} {t['mean_change']:+.3f}" for t in pp["terms"][:3])
        print(plain(line))
    for p in doc["problems"]:
        print(f"note: {p}")
    flat = [str(c["index"]) for c in doc["captures"] if c.get("value_note")]
    if flat:
        print(f"note: captures {', '.join(flat)}: no value correlation; their returns have almost no variance")
    if args.write:
        print(f"\nstored in {run.url}/analysis")
    return 0


def cmd_saliency(args: Saliency) -> int:
    import pathlib

    import numpy as np

    from . import analyse

    def fail(message: str) -> int:
        print(f"trajscope saliency: {message}", file=sys.stderr)
        return 2

    try:
        run = store.open_run(args.run)
    except store.FormatError as e:
        return fail(str(e))
    if args.capture == "latest":
        # The listing names every capture's arrays: no manifest needs opening.
        with_params = [c.index for c in run.captures if any(n.startswith("params/") for n in c.array_names)]
        if not with_params:
            return fail("no capture of this run stores network parameters")
        index = with_params[-1]
    elif args.capture.isdigit() and int(args.capture) < len(run.captures):
        index = int(args.capture)
    else:
        return fail(f"no capture {args.capture!r}: give an index below {len(run.captures)} or 'latest'")
    cap = run.capture(index)
    if not 0 <= args.env < cap.info.num_envs:
        return fail(f"capture {index} has environments 0 to {cap.info.num_envs - 1}")
    if args.of not in ("policy", "value") or args.method not in analyse.SALIENCY_METHODS:
        return fail(f"--of is policy or value; --method one of {', '.join(analyse.SALIENCY_METHODS)}")
    try:
        a, b = (int(x) if x else None for x in args.steps.split(":"))
    except ValueError:
        return fail(f"--steps must look like a:b, not {args.steps!r}")
    try:
        policy = analyse.capture_policy(run, cap)
        if args.of == "value" and policy.value_apply is None:
            return fail("no value parameters stored (record with BraxRecorder(store_params='all'))")
        sal = analyse.capture_saliency(cap, args.env, policy, target=args.of, method=args.method)
    except ImportError as e:
        return fail(f"needs JAX and brax (pip install 'trajscope[jax]'): {e}")
    except (analyse.PolicyUnavailable, ValueError) as e:
        return fail(str(e))
    from . import serve

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    features: dict[str, list[float]] = {}
    steps = range(cap.info.num_steps)[slice(a, b)]
    for key, s in sal.items():
        stem = key.replace("/", "_")
        where = f"capture {index} (env step {cap.info.step}), env {args.env}: {args.of} saliency ({args.method})"
        if key in cap.image_keys():
            strips = serve.saliency_overlay(cap, args.env, key, s)
            for t in steps:
                written.append(str(out / f"{stem}_t{t:05d}.png"))
                pic = serve.saliency_figure(strips[t], title=f"{plain(key)} at t={t}, {where}")
                serve.write_png(written[-1], pic)
        else:
            flat = s.reshape(s.shape[0], -1)
            features[key] = flat.mean(axis=0).tolist()
            written.append(str(out / f"{stem}_features_by_step.png"))
            rows = flat[steps.start : steps.stop : steps.step]
            top = rows.max() if rows.size and rows.max() > 0 else 1.0
            img = serve.feature_map(rows / top)
            D = flat.shape[1]
            picks = sorted({round(i) for i in np.linspace(0, D - 1, min(D, 8))})
            pic = serve.saliency_figure(
                img,
                title=f"{plain(key)}: features by step, {where}",
                x_label="step",
                x_ticks=serve.step_ticks(steps),
                y_label=f"feature of {plain(key)}",
                y_ticks=[((i + 0.5) / D, f"[{i}]") for i in picks],
            )
            serve.write_png(written[-1], pic)
    if args.json:
        doc = {"run": run.url, "capture": index, "env": args.env, "of": args.of, "method": args.method}
        print(json.dumps({**doc, "files": written, "mean_saliency": features}, indent=2))
        return 0
    print(f"{run.name}  capture {index} (step {cap.info.step})  env {args.env}  {args.of} saliency, {args.method}")
    for key, means in features.items():
        top = np.argsort(means)[::-1][:8]
        print(f"  {key}: top features " + ", ".join(f"[{i}] {means[i]:.2f}" for i in top))
    print(f"{len(written)} file(s) in {out}")
    return 0


def cmd_demo(args: Demo) -> int:
    if args.scripted:
        from .demo import write_demo_run

        path = write_demo_run(root=args.root, name=args.name)
    else:
        from .capture import train_demo

        viewers: list[Any] = []

        def start_viewer(url: str) -> None:
            if args.serve:
                from .serve import serve

                viewers.append(serve(url, port=args.port, live=True))
                _print_url(viewers[0])

        path = train_demo(root=args.root, name=args.name, num_timesteps=args.steps, on_start=start_viewer)
        if viewers:
            print(f"\nwrote {path}\n")
            cmd_info(Info(run=path))
            return _serve_forever(viewers[0])
    print(f"\nwrote {path}\n")
    rc = cmd_info(Info(run=path))
    if args.serve:
        return cmd_view(View(path=path, port=args.port))
    return rc


def _capture_indices(run: store.Run, spec: str, *, all_ok: bool) -> list[int] | str:
    """The captures ``spec`` names (an index, ``latest``, or with ``all_ok`` ``all``), or
    what is wrong with it."""
    n = len(run.captures)
    if not n:
        return "the run has no captures"
    if spec == "all" and all_ok:
        return list(range(n))
    if spec == "latest":
        return [n - 1]
    if spec.isdigit() and int(spec) < n:
        return [int(spec)]
    return f"no capture {spec!r}: give an index below {n}{', latest or all' if all_ok else ' or latest'}"


def cmd_video(args: Video) -> int:
    import pathlib
    import time

    from . import export

    def fail(message: str) -> int:
        print(f"trajscope video: {message}", file=sys.stderr)
        return 2

    try:
        run = store.open_run(args.run)
    except store.FormatError as e:
        return fail(str(e))
    indices = _capture_indices(run, args.capture, all_ok=True)
    if isinstance(indices, str):
        return fail(indices)
    envs: Any = "grid" if args.envs == "grid" else [int(e) for e in args.envs.split(",") if e.strip()]
    out = pathlib.Path(args.out)
    for i in indices:
        path = out.with_name(f"{out.stem}-{i:04d}{out.suffix}") if len(indices) > 1 else out

        started = time.monotonic()

        def progress(done: int, total: int, i: int = i, started: float = started) -> None:
            if done != total and (100 * done // total) == (100 * (done - 1) // total):
                return  # a new line of the bar each percent, not each frame
            bar = "#" * (30 * done // total)
            spent = time.monotonic() - started
            left = spent / done * (total - done) if done else 0.0
            when = f"{spent:.0f} s" if done == total else f"about {left:.0f} s left"
            end = "\n" if done == total else ""
            print(f"\rcapture {i}: [{bar:<30}] {done}/{total} frames, {when}  ", end=end, file=sys.stderr, flush=True)

        try:
            export.video(
                run,
                i,
                out=path,
                envs=envs,
                fps=args.fps,
                camera=args.camera,
                width=args.width,
                height=args.height,
                contacts=args.contacts,
                progress=progress,
            )
        except (export.ExportError, store.FormatError) as e:
            return fail(str(e))
        print(path)
    return 0


def cmd_html(args: Html) -> int:
    from . import export

    def fail(message: str) -> int:
        print(f"trajscope html: {message}", file=sys.stderr)
        return 2

    try:
        run = store.open_run(args.run)
    except store.FormatError as e:
        return fail(str(e))
    indices = _capture_indices(run, args.capture, all_ok=False)
    if isinstance(indices, str):
        return fail(indices)
    try:
        size = export.html(run, indices[0], out=args.out, env=args.env, grid=args.grid, every=args.every)
    except (export.ExportError, store.FormatError) as e:
        return fail(str(e))
    print(f"{args.out}  ({size / 1e6:.2f} MB)")
    return 0


def _local_problem(path: str, command: str) -> str | None:
    """What is wrong with a local run or root folder given to ``command`` (None: fine, or a
    URL, which the store checks)."""
    if "://" in path:
        return None
    if not os.path.exists(path):
        return f"trajscope {command}: no such folder: {path}"
    if not os.path.isdir(path):
        return f"trajscope {command}: {path} is a file; give a run folder or a folder of runs"
    return None


def cmd_view(args: View) -> int:
    from .serve import serve

    path = args.path or store.default_root()
    problem = _local_problem(path, "view") if args.path else None
    if problem is None and args.play_env:
        from .play import check_env

        problem = check_env(args.play_env)
        problem = f"trajscope view: {problem}" if problem else None
    if problem:
        print(problem, file=sys.stderr)
        return 2
    if "://" not in path and os.path.isdir(path) and not os.path.exists(os.path.join(path, "run.json")):
        if not store.list_runs(path):
            print(f"trajscope view: no runs under {path} yet; the viewer lists them as they appear")
    viewer = serve(
        path,
        host=args.host,
        port=args.port,
        live=args.live,
        token=args.token,
        play_env=args.play_env,
        poll_s=args.poll_s,
        allow_origins=args.allow_origin,
    )
    _print_url(viewer)
    return _serve_forever(viewer)


def _print_url(viewer: Any) -> None:
    if getattr(viewer, "gate", None) is not None:
        print(f"trajscope viewer: {viewer.url}  (token gate on; set the token with TRAJSCOPE_TOKEN, not --token,")
        print("  which other users of this machine can read in the process list; see docs/viewer.md)")
        return
    print(f"trajscope viewer: {viewer.url}  (on a remote machine: ssh -L {viewer.port}:localhost:{viewer.port} HOST)")


def _serve_forever(viewer: Any) -> int:
    import time

    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        viewer.close()
    return 0


def main(argv: list[str] | None = None) -> None:
    if not os.environ.get("MUJOCO_GL") and not os.environ.get("DISPLAY") and sys.platform.startswith("linux"):
        # Headless: MuJoCo's renderer (trajscope video) needs an offscreen OpenGL, and MuJoCo
        # reads MUJOCO_GL once, when first imported.
        os.environ["MUJOCO_GL"] = "egl"
    cmd = tyro.extras.subcommand_cli_from_dict(
        {
            "info": Info,
            "ls": Ls,
            "view": View,
            "analyse": Analyse,
            "saliency": Saliency,
            "video": Video,
            "html": Html,
            "demo": Demo,
        },
        prog="trajscope",
        description="Capture, store and replay rollouts of JAX RL training.",
        args=argv,
    )
    handlers: dict[type, Any] = {
        Info: cmd_info,
        Ls: cmd_ls,
        View: cmd_view,
        Analyse: cmd_analyse,
        Saliency: cmd_saliency,
        Video: cmd_video,
        Html: cmd_html,
        Demo: cmd_demo,
    }
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Terminal(out), _Terminal(err)  # type: ignore[assignment]
    try:
        code = handlers[type(cmd)](cmd)
    finally:
        sys.stdout, sys.stderr = out, err
    sys.exit(code)


class _Terminal:
    """A stream that shows a run's control characters (an escape sequence in a run name
    could rewrite the terminal) as ``?``; line ends, carriage returns and tabs pass."""

    _TABLE: ClassVar[dict[int, str]] = {c: "?" for c in [*range(32), 127] if chr(c) not in "\n\r\t"}

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(text.translate(self._TABLE))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
