"""Where a capture's bytes go, and what each codec makes of them.

One evaluation capture of MuJoCo Playground's CartpoleBalance (``impl='jax'``), 16
environments x 1,000 steps, written by ``BraxRecorder``'s own rollout (a freshly
initialised PPO policy: the bytes of physics, not of a trained agent). Every per-step
array is encoded as raw ``.npy``, ``zlib-shuffle``, and ``zlib-shuffle-delta``; the writer
keeps the smaller of the last two for each array.

    python benchmarks/store_bytes.py [--envs 16] [--steps 1000]

The last line reads ``store_bytes: shuffle=<B/env-step> chosen=<B/env-step> ratio=<chosen/shuffle>``.
"""

from __future__ import annotations

import argparse
import tempfile
import warnings

import jax
import numpy as np

import trajscope


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--envs", type=int, default=16)
    ap.add_argument("--steps", type=int, default=1000)
    args = ap.parse_args()
    from brax.training.acme import running_statistics
    from brax.training.agents.ppo import networks as ppo_networks
    from mujoco_playground import registry

    from trajscope.capture import BraxRecorder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = registry.load("CartpoleBalance", config_overrides={"impl": "jax"})
    nets = ppo_networks.make_ppo_networks(env.observation_size, env.action_size)
    make_policy = ppo_networks.make_inference_fn(nets)
    key = jax.random.PRNGKey(0)
    obs = jax.ShapeDtypeStruct((env.observation_size,), np.float32)
    params = (running_statistics.init_state(obs), nets.policy_network.init(key), nets.value_network.init(key))
    root = tempfile.mkdtemp(prefix="trajscope-bytes-")
    rec = BraxRecorder(
        env, root=root, name="b", num_envs=args.envs, episode_length=args.steps, strict=True, store_params="none"
    )
    assert rec.capture(0, make_policy, params)
    rec.close()
    run = trajscope.open_run(rec.writer.url)
    cap = run.capture(0)
    # The same arrays again, written without the delta codec, and without compression.
    fixed = {n: cap.load(n) for n in cap.names("")}
    groups = {g: cap.group(g) for g in ("metrics", "obs", "info", "model_fields") if cap.keys(g)}
    obs = groups.pop("obs", None)
    if obs is not None and not cap.manifest.get("obs_is_dict"):
        obs = obs["obs"]
    other: dict[str, dict[str, int]] = {}
    for name, opts in (("zlib-shuffle", {"delta": False}), ("npy", {"compress": False})):
        with trajscope.RunWriter(root, name=name, model=run.load_model(), strict=True, **opts) as w:
            w.add_capture(step=0, reset_frame=True, obs=obs, **fixed, **groups)
        manifest = trajscope.open_run(f"{root}/{name}").capture(0).manifest
        other[name] = {f"{e['group']}/{e['key']}" if e["group"] else e["key"]: e["nbytes"] for e in manifest["arrays"]}
    env_steps = cap.info.num_envs * cap.info.num_steps
    rows, total = [], {"npy": 0, "zlib-shuffle": 0, "chosen": 0}
    for e in cap.manifest["arrays"]:
        if e["layout"] != "time_env":
            continue
        name = f"{e['group']}/{e['key']}" if e["group"] else e["key"]
        sizes = {"npy": other["npy"][name], "zlib-shuffle": other["zlib-shuffle"][name], "chosen": e["nbytes"]}
        for k, v in sizes.items():
            total[k] += v
        rows.append((name, e.get("stored_dtype", e["dtype"]), e["codec"], sizes))
    print(f"CartpoleBalance, {cap.info.num_envs} envs x {cap.info.num_steps} steps ({env_steps} env-steps)")
    print(f"{'array':<28} {'dtype':<8} {'codec chosen':<20} {'npy B/step':>11} {'shuffle':>9} {'chosen':>9}")
    for name, dtype, codec, s in sorted(rows, key=lambda r: -r[3]["npy"]):
        print(
            f"{name:<28} {dtype:<8} {codec:<20} {s['npy'] / env_steps:11.2f} "
            f"{s['zlib-shuffle'] / env_steps:9.2f} {s['chosen'] / env_steps:9.2f}"
        )
    per = {k: v / env_steps for k, v in total.items()}
    print(f"{'total':<58} {per['npy']:11.2f} {per['zlib-shuffle']:9.2f} {per['chosen']:9.2f}")
    print(
        f"store_bytes: shuffle={per['zlib-shuffle']:.2f} chosen={per['chosen']:.2f} "
        f"ratio={per['chosen'] / per['zlib-shuffle']:.3f}"
    )


if __name__ == "__main__":
    main()
