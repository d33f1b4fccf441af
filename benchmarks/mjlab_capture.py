"""What StepRecorder costs an mjlab training loop, side by side in one run.

Runs in mjlab's own environment (it pins MuJoCo 3.11; see examples/mjlab_capture.py):

    mjlab-env/bin/python benchmarks/mjlab_capture.py --num-envs 64 --steps 200

An mjlab task (default ``Mjlab-Velocity-Flat-Unitree-Go1``) stepped ``--steps`` times with
fixed random actions through rsl_rl's environment interface, in interleaved turns (A B C,
C B A, ...), ``--repeats`` times:

* ``none``: the environment alone;
* ``live-off``: ``StepRecorder(live=4).record_step`` after every step, nobody watching;
* ``live-on``: the same with the stream switched on at every chunk (rate 1000): the first
  four worlds' ``qpos``/``qvel`` copied to the host each step and written every 24 steps.

It prints the median seconds per environment step and the ratio to ``none``, and a last
line ``mjlab_overhead: live_off=... live_on=...``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--task", default="Mjlab-Velocity-Flat-Unitree-Go1")
    p.add_argument("--num-envs", type=int, default=64)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()

    from mjlab.envs import ManagerBasedRlEnv
    from mjlab.rl import RslRlVecEnvWrapper
    from mjlab.tasks.registry import load_env_cfg

    from trajscope.capture import StepRecorder

    device = "cuda:0" if torch.cuda.is_available() else "cpu"
    cfg = load_env_cfg(a.task)
    cfg.scene.num_envs = a.num_envs
    env = RslRlVecEnvWrapper(ManagerBasedRlEnv(cfg=cfg, device=device))
    sim = env.unwrapped.sim
    root = tempfile.mkdtemp(prefix="trajscope-mjlab-bench-")
    recs = {
        "none": None,
        "live-off": StepRecorder(sim.mj_model, root=root, name="off", live=4, live_chunk_steps=24, source="mjlab"),
        "live-on": StepRecorder(sim.mj_model, root=root, name="on", live=4, live_chunk_steps=24, source="mjlab"),
    }
    recs["live-on"].live.switch(True, rate=1000)
    gen = torch.Generator(device="cpu").manual_seed(0)
    actions = torch.rand((a.steps, a.num_envs, env.num_actions), generator=gen).to(device) * 2 - 1
    env.get_observations()
    for _ in range(10):  # warm up: Warp's kernels load, the first steps are slow
        env.step(actions[0])
    times: dict[str, list[float]] = {k: [] for k in recs}
    order = list(recs)
    for r in range(a.repeats):
        for k in order if r % 2 == 0 else order[::-1]:
            rec = recs[k]
            t0 = time.perf_counter()
            for s in range(a.steps):
                _, reward, done, _ = env.step(actions[s])
                if rec is not None:
                    rec.record_step(actions[s], reward, done, qpos=sim.data.qpos, qvel=sim.data.qvel)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times[k].append((time.perf_counter() - t0) / (a.steps * a.num_envs))
    base = statistics.median(times["none"])
    print(f"{a.task}, {a.num_envs} envs on {device}, {a.steps} steps x {a.repeats} repeats (median s per env step)")
    ratios = {}
    for k in order:
        m = statistics.median(times[k])
        ratios[k] = m / base
        print(
            f"  {k:9s} {m * 1e6:9.1f} us/step  spread {(max(times[k]) - min(times[k])) / m:5.1%}  ratio {ratios[k]:.3f}"
        )
    on = recs["live-on"]
    print(f"  live-on wrote {on.live.chunks_sent} chunks")
    for rec in recs.values():
        if rec is not None:
            rec.close()
    print(f"mjlab_overhead: live_off={ratios['live-off']:.3f} live_on={ratios['live-on']:.3f}")


if __name__ == "__main__":
    main()
