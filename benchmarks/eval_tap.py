"""Where the evaluation tap's cost goes: brax's own ``Evaluator`` alone, with and without it.

    python benchmarks/eval_tap.py            # 128 eval envs x 1000 steps, 16 tapped, 7 repeats
    python benchmarks/eval_tap.py --quick    # 200 steps, 5 repeats

brax's PPO and SAC evaluate with ``brax.training.acting.Evaluator``: one jitted scan of the
batched evaluation environment. ``source="eval"`` wraps that environment in
:class:`trajscope.capture._tap.EvalTap`. This script builds the same ``Evaluator`` over
MuJoCo Playground's CartpoleBalance (``impl='jax'``) with a freshly initialised PPO policy,
in variants that add the tap's parts one at a time:

* ``plain``: no tap;
* ``buffer``: the tap's device buffer carried through the scan and written every step,
  never sent;
* ``buffer+send``: the buffer and the host hand-off at the episode's last step (the tap as
  shipped); ``receive`` copies it to numpy on the host, as the recorder does.

For each it prints the compilation time (first call, cache off), the steady time per
evaluation (median and spread of interleaved repeats: A B C A B C ...), its ratio to
``plain``, and for the hand-off the time spent in the host callback. The last line reads
``eval_tap: buffer=<ratio> send=<ratio>``.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Any

import jax
import numpy as np
import tyro


@dataclasses.dataclass(frozen=True)
class Args:
    quick: bool = False
    """200-step episodes, 5 repeats."""
    env: str = "CartpoleBalance"
    impl: str = "jax"
    eval_envs: int = 128
    tapped: int = 16
    episode_length: int | None = None
    """Default 1000, or 200 with --quick."""
    repeats: int | None = None
    """Default 7, or 5 with --quick."""


def main(args: Args) -> None:
    from brax.training import acting
    from brax.training.agents.ppo import networks as ppo_networks
    from mujoco_playground import registry, wrapper

    from trajscope.capture import EvalTap, RolloutConfig

    ep = args.episode_length or (200 if args.quick else 1000)
    repeats = args.repeats or (5 if args.quick else 7)
    env = registry.load(args.env, config_overrides={"impl": args.impl})
    nets = ppo_networks.make_ppo_networks(env.observation_size, env.action_size)
    key = jax.random.PRNGKey(0)
    from brax.training.acme import running_statistics, specs

    norm = running_statistics.init_state(specs.Array((env.observation_size,), np.dtype("float32")))
    params = (norm, nets.policy_network.init(key))
    make_policy = ppo_networks.make_inference_fn(nets)
    cfg = RolloutConfig(num_envs=args.tapped, num_steps=ep)

    received: list[float] = []

    def receive(buf: Any) -> None:
        t0 = time.perf_counter()
        jax.tree_util.tree_map(np.asarray, buf)
        received.append(time.perf_counter() - t0)

    def base() -> Any:
        return wrapper.wrap_for_brax_training(env, episode_length=ep, action_repeat=1)

    variants = {
        "plain": base(),
        "buffer": EvalTap(base(), cfg, receive, hand_off=False),
        "buffer+send": EvalTap(base(), cfg, receive),
    }
    evaluators = {}
    compile_s = {}
    for name, e in variants.items():
        t0 = time.perf_counter()
        ev = acting.Evaluator(e, make_policy, num_eval_envs=args.eval_envs, episode_length=ep, action_repeat=1, key=key)
        ev.run_evaluation(params, {})
        compile_s[name] = time.perf_counter() - t0
        evaluators[name] = ev
        print(f"  {name:<12} first evaluation (compilation included) {compile_s[name]:6.1f} s", flush=True)
    received.clear()
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(repeats):
        for name, ev in evaluators.items():
            t0 = time.perf_counter()
            ev.run_evaluation(params, {})
            times[name].append(time.perf_counter() - t0)
    base_t = statistics.median(times["plain"])
    print(
        f"\nbrax Evaluator on {args.env} (impl={args.impl}): {args.eval_envs} envs x {ep} steps, "
        f"{args.tapped} tapped; {repeats} interleaved repeats; jax {jax.__version__} on {jax.devices()[0].platform}"
    )
    print(f"{'variant':<12} {'compile s':>10} {'eval s (median)':>16} {'spread':>14} {'ratio':>7}")
    spread = {k: f"{min(ts):.3f}..{max(ts):.3f}" for k, ts in times.items()}
    ratios = {}
    for name, ts in times.items():
        med = statistics.median(ts)
        ratios[name] = med / base_t
        print(f"{name:<12} {compile_s[name]:>10.1f} {med:>16.3f} {spread[name]:>14} {ratios[name]:>7.3f}")
    if received:
        print(f"host callback (copy to numpy): {1e3 * statistics.median(received):.2f} ms per evaluation")
    print(
        f"eval_tap: buffer={ratios['buffer']:.3f} send={ratios['buffer+send']:.3f} per_array={ratios['per-array']:.3f}"
    )


if __name__ == "__main__":
    main(tyro.cli(Args))
