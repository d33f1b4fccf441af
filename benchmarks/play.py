"""How fast "play from here" runs on the host: steps per second of ``trajscope.play.Player``.

    python benchmarks/play.py            # CartpoleBalance with brax's default PPO network,
                                         # and HumanoidWalk with a (512, 256, 128) policy
    python benchmarks/play.py --steps 200

For each: a run with one capture is written by ``BraxRecorder`` through brax's public
``policy_params_fn`` hook (freshly initialised parameters: speed does not depend on them),
then a ``Player`` plays it from a captured frame. It prints the compilation time (first
step), then the median over steps of the policy's forward pass, of the environment's step,
and of a whole ``Player.step()``, and steps per second against real time (the
environment's control rate). Lines read ``play: <env> steps_per_s=<n> realtime=<x>``.
"""

from __future__ import annotations

import dataclasses
import functools
import statistics
import tempfile
import time
import warnings

import jax
import numpy as np
import tyro


@dataclasses.dataclass(frozen=True)
class Args:
    steps: int = 300
    envs: tuple[str, ...] = ("CartpoleBalance", "HumanoidWalk")


NETWORKS = {"CartpoleBalance": None, "HumanoidWalk": (512, 256, 128)}
"""Policy hidden layers; None: brax's default (four layers of 32)."""


def main(args: Args) -> None:
    from brax.training.acme import running_statistics
    from brax.training.agents.ppo import networks as ppo_networks
    from mujoco_playground import registry

    import trajscope
    from trajscope.capture import BraxRecorder
    from trajscope.play import Player

    print(f"jax {jax.__version__} on {jax.devices()[0].platform}")
    for name in args.envs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env = registry.load(name, config_overrides={"impl": "jax"})
        hidden = NETWORKS.get(name)
        factory = (
            functools.partial(ppo_networks.make_ppo_networks, policy_hidden_layer_sizes=hidden)
            if hidden
            else ppo_networks.make_ppo_networks
        )
        nets = factory(env.observation_size, env.action_size, preprocess_observations_fn=running_statistics.normalize)
        key = jax.random.PRNGKey(0)
        spec = jax.ShapeDtypeStruct((env.observation_size,), np.float32)
        params = (running_statistics.init_state(spec), nets.policy_network.init(key), nets.value_network.init(key))
        root = tempfile.mkdtemp(prefix="trajscope-play-")
        rec = BraxRecorder(
            env,
            root=root,
            name="p",
            num_envs=1,
            episode_length=20,
            normalize_observations=True,
            network_factory=factory,
            value=False,
            strict=True,
        )
        rec.policy_params_fn()(0, ppo_networks.make_inference_fn(nets), params)
        rec.close()
        run = trajscope.open_run(rec.writer.url)
        player = Player(run, env)
        t0 = time.perf_counter()
        player.use_policy(0)
        player.start(0, env_index=0, t=10)
        player.step()
        compile_s = time.perf_counter() - t0
        policy_s, env_s, total_s = [], [], []
        for _ in range(args.steps):
            obs = player.state.obs
            t0 = time.perf_counter()
            player.action(obs)
            policy_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            player.step()
            total_s.append(time.perf_counter() - t0)
        env_s = [max(tot - pol, 0.0) for tot, pol in zip(total_s, policy_s)]
        med = statistics.median
        rate = 1.0 / med(total_s)
        dt = float(run.metadata.get("control_dt_s") or env.dt)
        layers = hidden or "brax default (32, 32, 32, 32)"
        print(
            f"\n{name}: obs {env.observation_size}, actions {env.action_size}, policy {layers}; "
            f"first step (compilation) {compile_s:.1f} s"
        )
        print(
            f"  policy {1e3 * med(policy_s):.2f} ms, environment step {1e3 * med(env_s):.2f} ms, "
            f"Player.step {1e3 * med(total_s):.2f} ms (median of {args.steps})"
        )
        print(f"play: {name} steps_per_s={rate:.0f} realtime={rate * dt:.2f}")


if __name__ == "__main__":
    main(tyro.cli(Args))
