"""What Gymnasium capture costs a training loop and an evaluation, side by side in one run.

    python benchmarks/gym_capture.py                       # HalfCheetah-v5, 8 envs
    python benchmarks/gym_capture.py --env Hopper-v5 --num-envs 16

Training: a ``SyncVectorEnv`` of ``--num-envs`` environments stepped ``--steps`` times with
fixed random actions, in interleaved turns (A B C D, D C B A, ...), ``--repeats`` times:

* ``none``: the vector environment alone;
* ``live-off``: wrapped by ``GymRecorder(live=4)``, nobody watching (the stream off);
* ``live-on``: the same with the stream switched on at every chunk (rate 1000);
* ``nan-guard``: ``GymRecorder(nan_guard=32)``: every environment's state copied and checked
  each step.

Evaluation: ``--eval-envs`` episodes of ``--eval-steps`` steps of a fixed linear policy,
played by a plain loop over the same environments and by ``GymRecorder.capture`` (which also
reads the states, builds the arrays and queues them; the writer compresses on its thread).

It prints the median seconds per environment step and the ratio to ``none`` (or to the plain
evaluation loop), and a last line ``gym_overhead: live_off=... live_on=... nan_guard=...
capture=...``.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time

import gymnasium as gym
import numpy as np
import tyro

from trajscope.capture import GymRecorder


@dataclasses.dataclass
class Args:
    env: str = "HalfCheetah-v5"
    num_envs: int = 8
    steps: int = 2000
    repeats: int = 5
    eval_envs: int = 8
    eval_steps: int = 500


def _vector(env_id: str, n: int) -> gym.vector.SyncVectorEnv:
    return gym.vector.SyncVectorEnv([lambda: gym.make(env_id) for _ in range(n)])


def main(a: Args) -> None:
    root = tempfile.mkdtemp(prefix="trajscope-gym-bench-")
    rng = np.random.default_rng(0)
    probe = gym.make(a.env)
    nu, no = probe.action_space.shape[0], probe.observation_space.shape[0]
    actions = rng.uniform(-1, 1, (a.steps, a.num_envs, nu)).astype(np.float32)
    W = rng.normal(size=(nu, no)) * 0.1

    recorders: dict[str, GymRecorder | None] = {"none": None}
    recorders["live-off"] = GymRecorder(a.env, root=root, name="off", num_envs=1, live=4)
    recorders["live-on"] = GymRecorder(a.env, root=root, name="on", num_envs=1, live=4)
    recorders["live-on"].live.switch(True, rate=1000)  # every chunk, as with a viewer attached
    recorders["nan-guard"] = GymRecorder(a.env, root=root, name="nan", num_envs=1, nan_guard=32)
    envs = {
        k: (rec.wrap(_vector(a.env, a.num_envs)) if rec else _vector(a.env, a.num_envs)) for k, rec in recorders.items()
    }
    times: dict[str, list[float]] = {k: [] for k in recorders}
    order = list(recorders)
    for r in range(a.repeats):
        for k in order if r % 2 == 0 else order[::-1]:
            v = envs[k]
            v.reset(seed=r)
            t0 = time.perf_counter()
            for s in range(a.steps):
                v.step(actions[s])
            times[k].append((time.perf_counter() - t0) / (a.steps * a.num_envs))
    base = statistics.median(times["none"])
    print(f"training: {a.env}, {a.num_envs} envs x {a.steps} steps, {a.repeats} repeats (median s per env step)")
    ratios = {}
    for k in order:
        m = statistics.median(times[k])
        ratios[k] = m / base
        spread = (max(times[k]) - min(times[k])) / m
        print(f"  {k:10s} {m * 1e6:8.1f} us/step  spread {spread:5.1%}  ratio {ratios[k]:.3f}")
    on = recorders["live-on"]
    assert on is not None and on.live is not None
    print(f"  live-on wrote {on.live.chunks_sent} chunks")

    # Evaluation: a plain loop against GymRecorder.capture, same episodes.
    ev = GymRecorder(a.env, root=root, name="eval", num_envs=a.eval_envs, episode_length=a.eval_steps)
    plain_envs = [gym.make(a.env) for _ in range(a.eval_envs)]

    def policy(obs: np.ndarray) -> np.ndarray:
        return np.tanh(obs @ W.T)

    def plain() -> None:
        obs = np.stack([e.reset(seed=i)[0] for i, e in enumerate(plain_envs)])
        alive = np.ones(a.eval_envs, bool)
        for _ in range(a.eval_steps):
            act = policy(obs)
            for i, e in enumerate(plain_envs):
                if alive[i]:
                    o, _, te, tr, _ = e.step(act[i])
                    obs[i] = o
                    alive[i] = not (te or tr)
            if not alive.any():
                break

    t_plain, t_cap = [], []
    for r in range(a.repeats):
        for which in ("plain", "capture") if r % 2 == 0 else ("capture", "plain"):
            t0 = time.perf_counter()
            if which == "plain":
                plain()
            else:
                assert ev.capture(r, policy)
            (t_plain if which == "plain" else t_cap).append(time.perf_counter() - t0)
    ev.close()
    cap_ratio = statistics.median(t_cap) / statistics.median(t_plain)
    print(f"evaluation: {a.eval_envs} episodes x {a.eval_steps} steps")
    print(f"  plain loop        {statistics.median(t_plain):.3f} s")
    print(f"  GymRecorder.capture {statistics.median(t_cap):.3f} s  ratio {cap_ratio:.3f}")
    for rec in recorders.values():
        if rec is not None:
            rec.close()
    print(
        f"gym_overhead: live_off={ratios['live-off']:.3f} live_on={ratios['live-on']:.3f} "
        f"nan_guard={ratios['nan-guard']:.3f} capture={cap_ratio:.3f}"
    )


if __name__ == "__main__":
    main(tyro.cli(Args))
