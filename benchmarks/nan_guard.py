"""What the NaN guard costs a training step, measured on the batched training environment
itself (no training around it, so the ratio is not drowned in the machine's noise).

brax's ``inverted_pendulum`` wrapped for training as ``ppo.train`` wraps it, 256
environments, 200 steps in one jitted ``lax.scan``; the same with the guard's wrapper (a
ring buffer of 64 steps). Interleaved repeats (A B A B ...), the median of each.

    python benchmarks/nan_guard.py [--envs 256] [--steps 200] [--repeats 7]

The last line reads ``nan_guard_overhead: ratio=<guard / plain> ms_per_step=<plain>``.
"""

from __future__ import annotations

import argparse
import tempfile
import warnings

from _env_step import step_medians


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--envs", type=int, default=256)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--guard-steps", type=int, default=64)
    args = ap.parse_args()
    from brax import envs

    from trajscope.capture import BraxRecorder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = envs.get_environment("inverted_pendulum")
    plain = envs.training.wrap(env, episode_length=1000)
    rec = BraxRecorder(env, root=tempfile.mkdtemp(), name="g", nan_guard=args.guard_steps, value=False)
    guarded = rec.wrap_env_fn()(env, episode_length=1000, action_repeat=1)  # the training env, as brax wraps it

    med = step_medians({"plain": plain, "nan_guard": guarded}, envs=args.envs, steps=args.steps, repeats=args.repeats)
    assert rec.nan is not None and rec.nan.tripped is None  # nothing non-finite here
    rec.close()
    print(f"nan_guard_overhead: ratio={med['nan_guard'] / med['plain']:.3f} ms_per_step={med['plain']:.3f}")


if __name__ == "__main__":
    main()
