"""What the replay mirror costs a training step, measured on the batched training
environment itself (no training around it, so the ratio is not drowned in the machine's
noise).

brax's ``inverted_pendulum`` wrapped for training as ``sac.train`` wraps it, 256
environments, 320 steps in one jitted ``lax.scan`` (ten hand-offs to the host); the same
with the mirror's wrapper (4 environments sampled per step, a host callback every 32
steps, a reservoir of 2,000). Interleaved repeats (A B A B ...), the median of each.

    python benchmarks/replay_mirror.py [--envs 256] [--steps 320] [--repeats 7]

The last line reads ``replay_mirror_overhead: ratio=<mirror / plain> ms_per_step=<plain>``.
For the whole SAC training, see ``capture_overhead.py --sac``.
"""

from __future__ import annotations

import argparse
import tempfile
import warnings

from _env_step import step_medians


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--envs", type=int, default=256)
    ap.add_argument("--steps", type=int, default=320)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--sample", type=int, default=2000)
    args = ap.parse_args()
    from brax import envs

    from trajscope.capture import BraxRecorder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = envs.get_environment("inverted_pendulum")
    plain = envs.training.wrap(env, episode_length=1000)
    rec = BraxRecorder(env, root=tempfile.mkdtemp(), name="m", algorithm="sac", value=False, replay_sample=args.sample)
    mirrored = rec.wrap_env_fn()(env, episode_length=1000, action_repeat=1)  # the training env, as brax wraps it

    med = step_medians({"plain": plain, "mirror": mirrored}, envs=args.envs, steps=args.steps, repeats=args.repeats)
    assert rec.buffer is not None and rec.buffer.size == min(args.sample, rec.buffer.offered) > 0
    print(f"reservoir: {rec.buffer.size} kept of {rec.buffer.offered} offered, {rec.buffer.failures} failures")
    rec.close()
    print(f"replay_mirror_overhead: ratio={med['mirror'] / med['plain']:.3f} ms_per_step={med['plain']:.3f}")


if __name__ == "__main__":
    main()
