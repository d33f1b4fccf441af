"""One process of a two-process JAX training (``jax.distributed`` on 127.0.0.1), run by
tests/test_multihost.py: ``python multihost_worker.py PROCESS_ID PORT ROOT``.

A small, real, distributed training: evolution strategies for a linear policy on MuJoCo
Playground's CartpoleBalance (MJX, ``impl='jax'``). Each process rolls out its own
perturbations in its own batch of training environments (wrapped by the recorder's
``wrap_env_fn``, so the live stream taps them), the processes exchange their returns with
a collective, and every process takes the same update. Every process captures an
evaluation rollout per iteration and streams live chunks into the one run. Prints one JSON
line with what it wrote.
"""

# ruff: noqa: E402 - jax.distributed must be initialised before the other imports touch a device

from __future__ import annotations

import json
import sys
import warnings

pid, port, root = int(sys.argv[1]), sys.argv[2], sys.argv[3]

import jax

jax.config.update("jax_cpu_collectives_implementation", "gloo")
jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=pid)

import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from mujoco import mjx
from mujoco_playground import registry

from trajscope.capture import BraxRecorder, extract

warnings.simplefilter("ignore")
E, T, ITERS, SIGMA, LR = 8, 40, 3, 0.1, 0.05
env = registry.load("CartpoleBalance", config_overrides={"impl": "jax"})
# MJX's put_model places the model on jax.devices()[0], which is process 0's device in every
# process: move it to this process's own (see docs/remote.md, "Several processes").
env._mjx_model = mjx.put_model(env.mj_model, impl="jax", device=jax.local_devices()[0])
rec = BraxRecorder(env, root=root, live=4, live_chunk_steps=T // 2, episode_length=T)
train_env = rec.wrap_env_fn()(env, episode_length=T, action_repeat=1)  # the live stream taps it
rec.live.switch(True)  # stream without a viewer asking
obs_size, act_size = env.observation_size, env.action_size


def policy(theta, obs):
    return jnp.tanh(obs @ theta)


@jax.jit
def episode_returns(thetas, key):
    """Returns of E training environments, each acting with its own ``thetas[i]``."""
    state = train_env.reset(jax.random.split(key, E))

    def body(state, _):
        action = jax.vmap(policy)(thetas, state.obs)
        state = train_env.step(state, action)
        return state, state.reward

    return jax.lax.scan(body, state, None, length=T)[1].sum(0)


@jax.jit
def eval_rollout(theta, key):
    state = jax.vmap(env.reset)(jax.random.split(key, 3))

    def body(state, _):
        action = policy(theta, state.obs)
        state = jax.vmap(env.step)(state, action)
        return state, extract(state, action=action)

    return jax.lax.scan(body, state, None, length=T)[1]


theta = jnp.zeros((obs_size, act_size))
key = jax.random.PRNGKey(0)
for it in range(ITERS):
    key, k_eps, k_env, k_eval = jax.random.split(key, 4)
    eps = jax.random.normal(jax.random.fold_in(k_eps, pid), (E // 2, obs_size, act_size))
    thetas = jnp.concatenate([theta + SIGMA * eps, theta - SIGMA * eps])
    r = episode_returns(thetas, jax.random.fold_in(k_env, pid))
    # The collective: every process sees every process's perturbations and returns.
    all_eps, all_r = multihost_utils.process_allgather((eps, r))
    all_eps, all_r = np.asarray(all_eps), np.asarray(all_r)
    half = E // 2
    adv = all_r[:, :half] - all_r[:, half:]
    grad = np.einsum("pi,pijk->jk", adv, all_eps) / (adv.size * SIGMA)
    theta = theta + LR * grad / (np.abs(grad).max() + 1e-8)
    step = (it + 1) * 2 * E * T
    evaluation = eval_rollout(theta, jax.random.fold_in(k_eval, pid))  # each process its own environments
    rec.writer.add_capture(step=step, deterministic=True, reset_frame=False, **evaluation)

multihost_utils.sync_global_devices("trained")
rec.close()
print(
    json.dumps(
        {
            "pid": pid,
            "name": rec.writer.name,
            "process_index": rec.writer.process_index,
            "written": rec.stats.written,
            "dropped": rec.stats.dropped,
            "live_chunks_sent": rec.live.chunks_sent,
            "theta_checksum": float(np.asarray(theta).sum()),
        }
    ),
    flush=True,
)
