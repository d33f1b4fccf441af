"""Where a capture's bytes go, and what each codec makes of them.

One evaluation capture of MuJoCo Playground's CartpoleBalance (``impl='jax'``), 16
environments x 1,000 steps, written by ``BraxRecorder``'s own rollout (a freshly
initialised PPO policy: the bytes of physics, not of a trained agent). Every per-step
array is encoded as raw ``.npy``, ``zlib-shuffle``, and ``zlib-shuffle-delta``; the writer
keeps the smaller of the last two for each array. Then what else the field uses:

* ``float16``: the opt-in lossy store of observations (``RunWriter(obs_float16=True)``);
* ``zstd-19``: the same bytes the writer compresses (shuffled, delta-coded where chosen),
  compressed by Zstandard at level 19 instead of zlib at level 1 (``zstandard`` package;
  skipped without it): what a stronger compressor would buy, not a codec of the format;
* ``rscope``: the bytes of rscope's pickled dump of the same rollout (16 environments,
  the same policy and episode; ``pip install rscope``; skipped without it).

    python benchmarks/store_bytes.py [--envs 16] [--steps 1000]

The last line reads ``store_bytes: shuffle=<B/env-step> chosen=<B/env-step>
ratio=<chosen/shuffle> float16=<B/env-step> zstd19=<B/env-step> rscope=<B/env-step>
vs_rscope=<all bytes of a capture / rscope's> float16_vs_rscope=<...>``.
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
    for name, opts in (
        ("zlib-shuffle", {"delta": False}),
        ("npy", {"compress": False}),
        ("float16", {"obs_float16": True}),
    ):
        with trajscope.RunWriter(root, name=name, model=run.load_model(), strict=True, **opts) as w:
            w.add_capture(step=0, reset_frame=True, obs=obs, **fixed, **groups)
        manifest = trajscope.open_run(f"{root}/{name}").capture(0).manifest
        other[name] = {f"{e['group']}/{e['key']}" if e["group"] else e["key"]: e["nbytes"] for e in manifest["arrays"]}
    env_steps = cap.info.num_envs * cap.info.num_steps
    rows, total = [], {"npy": 0, "zlib-shuffle": 0, "chosen": 0, "float16": 0, "zstd-19": 0}
    for e in cap.manifest["arrays"]:
        if e["layout"] != "time_env":
            continue
        name = f"{e['group']}/{e['key']}" if e["group"] else e["key"]
        sizes = {
            "npy": other["npy"][name],
            "zlib-shuffle": other["zlib-shuffle"][name],
            "chosen": e["nbytes"],
            "float16": other["float16"][name],
            "zstd-19": _zstd(cap, name, e),
        }
        for k, v in sizes.items():
            total[k] += v
        rows.append((name, e.get("stored_dtype", e["dtype"]), e["codec"], sizes))
    print(f"CartpoleBalance, {cap.info.num_envs} envs x {cap.info.num_steps} steps ({env_steps} env-steps)")
    print(
        f"{'array':<28} {'dtype':<8} {'codec chosen':<20} {'npy B/step':>11} {'shuffle':>9} {'chosen':>9} "
        f"{'float16':>9} {'zstd-19':>9}"
    )
    for name, dtype, codec, s in sorted(rows, key=lambda r: -r[3]["npy"]):
        print(
            f"{name:<28} {dtype:<8} {codec:<20} {s['npy'] / env_steps:11.2f} "
            f"{s['zlib-shuffle'] / env_steps:9.2f} {s['chosen'] / env_steps:9.2f} "
            f"{s['float16'] / env_steps:9.2f} {s['zstd-19'] / env_steps:9.2f}"
        )
    per = {k: v / env_steps for k, v in total.items()}
    print(
        f"{'total':<58} {per['npy']:11.2f} {per['zlib-shuffle']:9.2f} {per['chosen']:9.2f} "
        f"{per['float16']:9.2f} {per['zstd-19']:9.2f}"
    )
    # Everything a capture holds (its manifest too), against rscope's dump of the same rollout.
    whole = _du(f"{rec.writer.path}/captures") / env_steps
    whole16 = _du(f"{root}/float16/captures") / env_steps
    rs = _rscope_bytes(env, make_policy, params, args) / env_steps if _has_rscope() else float("nan")
    print(f"whole capture folder: {whole:.2f} B/env-step lossless, {whole16:.2f} with float16 observations")
    if rs == rs:
        print(f"rscope's dump of the same rollout: {rs:.2f} B/env-step")
    else:
        print("rscope is not installed (pip install rscope): its column is skipped")
    print(
        f"store_bytes: shuffle={per['zlib-shuffle']:.2f} chosen={per['chosen']:.2f} "
        f"ratio={per['chosen'] / per['zlib-shuffle']:.3f} float16={per['float16']:.2f} "
        f"zstd19={per['zstd-19']:.2f} rscope={rs:.2f} vs_rscope={whole / rs:.3f} float16_vs_rscope={whole16 / rs:.3f}"
    )


def _du(path: str) -> int:
    import os

    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def _zstd(cap, name: str, e: dict) -> int:
    """Bytes of the writer's pre-processed streams of one array (shuffled, delta-coded where
    the writer chose it) compressed by Zstandard at level 19, one stream per environment."""
    try:
        import zstandard
    except ImportError:
        return 0
    a = np.swapaxes(cap.load(name, decode=False), 0, 1)
    z = zstandard.ZstdCompressor(level=19)
    delta = e["codec"] == "zlib-shuffle-delta"
    return sum(len(z.compress(_shuffle(_delta(p) if delta else p))) for p in a)


def _delta(a: np.ndarray) -> np.ndarray:
    """As the format's ``zlib-shuffle-delta`` (docs/format.md): differences along time of
    the values' bits, as wrapping unsigned integers."""
    u = np.ascontiguousarray(a).view({1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])
    d = u.copy()
    d[1:] = u[1:] - u[:-1]
    return d


def _shuffle(a: np.ndarray) -> bytes:
    """As the format's byte shuffle: the values' first bytes, then their second bytes, ..."""
    raw = np.ascontiguousarray(a).reshape(-1).view(np.uint8)
    return raw.reshape(-1, a.dtype.itemsize).T.tobytes()


def _has_rscope() -> bool:
    try:
        import rscope.brax  # noqa: F401
    except ImportError:
        return False
    return True


def _rscope_bytes(env, make_policy, params, args) -> int:
    """Bytes of one rscope dump (``<rscope's BASE_PATH>/*.mj_unroll``) of the same rollout."""
    import glob
    import os
    import shutil

    from ml_collections import config_dict
    from mujoco_playground import wrapper
    from rscope import brax as rscope_brax
    from rscope import config as rscope_config

    shutil.rmtree(rscope_config.BASE_PATH, ignore_errors=True)
    trace_env = wrapper.wrap_for_brax_training(env, episode_length=args.steps, action_repeat=1)
    cfg = config_dict.ConfigDict(dict(num_envs=args.envs, episode_length=args.steps, action_repeat=1))
    saver = rscope_brax.BraxRolloutSaver(trace_env, cfg, vision=False, rscope_envs=args.envs, determistic=True)
    saver.set_make_policy(make_policy)
    saver.dump_rollout(params)
    return sum(os.path.getsize(f) for f in glob.glob(os.path.join(rscope_config.BASE_PATH, "*.mj_unroll")))


if __name__ == "__main__":
    main()
