"""Write captures from a plain MuJoCo + numpy loop, then read them back.

python examples/numpy_loop.py --root /tmp/runs
"""

from __future__ import annotations

import dataclasses

import mujoco
import numpy as np
import tyro

import trajscope
from trajscope.demo import CARTPOLE_XML, rollout


@dataclasses.dataclass(frozen=True)
class Args:
    root: str = "./trajscope_runs"
    """Folder or fsspec URL for runs."""
    envs: int = 4
    steps: int = 100


def main(args: Args) -> None:
    model = mujoco.MjModel.from_xml_string(CARTPOLE_XML)
    with trajscope.RunWriter(args.root, model=model, env_name="cartpole", algorithm="scripted") as writer:
        for i, gain in enumerate((0.0, 0.5, 1.0)):
            r = rollout(model, gain, num_envs=args.envs, num_steps=args.steps, frame_skip=2, seed=i)
            writer.add_capture(step=i * 1000, **r)
    run = trajscope.open_run(writer.url)
    for c in run.captures:
        print(f"step {c.step:>6}: mean return {c.mean_return:.1f}, metrics {', '.join(c.metric_keys)}")
    env0 = run.capture(-1).trajectory(0)
    print("env 0 of the last capture:", {k: v.shape for k, v in env0.items()})
    print("stats:", writer.stats)
    assert np.isfinite(env0["qpos"]).all()


if __name__ == "__main__":
    main(tyro.cli(Args))
