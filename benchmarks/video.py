"""How fast ``trajscope video`` renders: frames per second for 1 and 16 humanoids.

    MUJOCO_GL=egl python benchmarks/video.py [--steps 100] [--width 480 --height 360]

A run of MuJoCo Playground's HumanoidWalk model (the DM Control humanoid: 21 actuated
joints, 27 DoF), 16 environments x ``steps`` steps simulated by MuJoCo under random
actions, is exported three ways: environment 0 alone, and all 16 tiled, to frames in memory
and to an MP4. It prints frames per second of the output (a 16-environment frame is 16
renders) and renders per second. Lines read ``video: envs=<n> fps=<frames/s> mp4_fps=<...>``.

Then the size of ``trajscope html`` for a 1,000-step humanoid capture (``--html-steps``),
one environment shown: ``html: steps=<n> bytes=<size> seconds=<time>``.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
import warnings

import numpy as np
import tyro


@dataclasses.dataclass(frozen=True)
class Args:
    steps: int = 100
    width: int = 480
    height: int = 360
    html_steps: int = 1000
    breakdown_steps: int = 25
    """Steps of the 16-environment grid whose time is broken down (0: skip)."""


def main(args: Args) -> None:
    os.environ.setdefault("MUJOCO_GL", "egl")

    from trajscope import export

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from mujoco_playground import registry

        model = registry.load("HumanoidWalk", config_overrides={"impl": "jax"}).mj_model
    E, T = 16, args.steps
    root = tempfile.mkdtemp(prefix="trajscope-video-")
    run = _humanoid_run(model, root, "h", E, T)
    print(f"HumanoidWalk model: nq {model.nq}, ngeom {model.ngeom}; {T} steps; {args.width}x{args.height} per env")
    print(f"MUJOCO_GL={os.environ.get('MUJOCO_GL')}")
    for envs in ([0], list(range(16))):
        t0 = time.perf_counter()
        frames = export.video(run, 0, envs=envs, width=args.width, height=args.height)
        mem_s = time.perf_counter() - t0
        assert frames is not None
        out = f"{root}/h-{len(envs)}.mp4"
        t0 = time.perf_counter()
        export.video(run, 0, envs=envs, width=args.width, height=args.height, out=out)
        mp4_s = time.perf_counter() - t0
        n = len(envs)
        print(
            f"{n:2d} env(s): frames {frames.shape[2]}x{frames.shape[1]}, {T / mem_s:6.1f} frames/s "
            f"({n * T / mem_s:6.1f} renders/s); to MP4 {T / mp4_s:6.1f} frames/s, {os.path.getsize(out) / 1e6:.2f} MB"
        )
        print(f"video: envs={n} fps={T / mem_s:.1f} mp4_fps={T / mp4_s:.1f}")
    if args.breakdown_steps:
        _breakdown(model, run, min(args.breakdown_steps, T))
    long_run = _humanoid_run(model, root, "long", 1, args.html_steps)
    out = f"{root}/long.html"
    t0 = time.perf_counter()
    size = export.html(long_run, 0, out=out)
    print(f"\nsingle-file HTML of a {args.html_steps}-step humanoid capture: {size / 1e6:.2f} MB")
    print(f"html: steps={args.html_steps} bytes={size} seconds={time.perf_counter() - t0:.1f}")


def _breakdown(model, run, T: int) -> None:
    """Where a 16-environment grid video's time goes, at the old default tile (480x360) and
    the new one (as large as fits 960x720: 240x180): MuJoCo's offscreen render alone, then
    frames in memory (plus state loading, captions and tiling), then the MP4 (plus encoding)."""
    import copy

    import mujoco

    from trajscope import export, sim

    qpos = run.capture(0).load("qpos")[:T]
    print(f"\nwhere the time goes: 16 envs x {T} steps")
    for w, h in ((480, 360), export.tile_size(16)):
        m = copy.copy(model)
        renderer, data = sim.renderer(m, h, w), mujoco.MjData(m)
        cam = sim.camera(m, "fixed")
        t0 = time.perf_counter()
        for t in range(T):
            for e in range(16):
                data.qpos[:] = qpos[t, e]
                mujoco.mj_forward(m, data)
                renderer.update_scene(data, camera=cam)
                renderer.render()
        render_s = time.perf_counter() - t0
        renderer.close()
        t0 = time.perf_counter()
        export.video(run, 0, envs="grid", width=w, height=h, steps=slice(0, T), camera="fixed")
        mem_s = time.perf_counter() - t0
        out = f"{tempfile.mkdtemp()}/g.mp4"
        t0 = time.perf_counter()
        export.video(run, 0, envs="grid", width=w, height=h, steps=slice(0, T), camera="fixed", out=out)
        mp4_s = time.perf_counter() - t0
        print(
            f"  tiles {w}x{h}: render {render_s:.2f} s ({100 * render_s / mp4_s:.0f}%), "
            f"captions+tiling+loading {mem_s - render_s:.2f} s ({100 * (mem_s - render_s) / mp4_s:.0f}%), "
            f"encoding {mp4_s - mem_s:.2f} s ({100 * (mp4_s - mem_s) / mp4_s:.0f}%); total {mp4_s:.2f} s, "
            f"{T / mp4_s:.2f} frames/s"
        )
        print(
            f"breakdown: tile={w}x{h} render_s={render_s:.2f} other_s={mem_s - render_s:.2f} "
            f"encode_s={mp4_s - mem_s:.2f} total_s={mp4_s:.2f}"
        )


def _humanoid_run(model, root: str, name: str, E: int, T: int):
    """A run of ``E`` humanoids over ``T`` steps under random actions, simulated by MuJoCo."""
    import mujoco

    import trajscope

    rng = np.random.default_rng(0)
    qpos = np.zeros((T, E, model.nq), np.float32)
    qvel = np.zeros((T, E, model.nv), np.float32)
    for e in range(E):
        d = mujoco.MjData(model)
        for t in range(T):
            d.ctrl[:] = rng.uniform(-1, 1, model.nu)
            for _ in range(5):
                mujoco.mj_step(model, d)
            qpos[t, e], qvel[t, e] = d.qpos, d.qvel
    with trajscope.RunWriter(root, name=name, model=model, control_dt_s=0.025, strict=True) as w:
        w.add_capture(step=0, qpos=qpos, qvel=qvel, reward=np.ones((T, E), np.float32))
    return trajscope.open_run(f"{root}/{name}")


if __name__ == "__main__":
    main(tyro.cli(Args))
