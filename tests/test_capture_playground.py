"""Capture from MuJoCo Playground environments: reward terms, randomisation, pixels, replay."""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest
from mujoco import mjx

import trajscope

pytest.importorskip("mujoco_playground")
from brax.training.acme import running_statistics
from brax.training.agents.ppo import networks as ppo_networks
from mujoco_playground import registry

from trajscope.capture import BraxRecorder, extract


@pytest.fixture(scope="module")
def cartpole():
    return registry.load("CartpoleBalance", config_overrides={"impl": "jax"})


def _policy(env, obs_size, seed=0):
    nets = ppo_networks.make_ppo_networks(obs_size, env.action_size, policy_obs_key="state", value_obs_key="state")
    key = jax.random.PRNGKey(seed)
    if isinstance(obs_size, dict):  # as brax does: statistics of the non-pixel entries
        spec = {k: jax.ShapeDtypeStruct(v, jnp.float32) for k, v in obs_size.items() if not k.startswith("pixels/")}
    else:
        spec = jax.ShapeDtypeStruct((obs_size,), jnp.float32)
    normalizer = running_statistics.init_state(spec)
    return ppo_networks.make_inference_fn(nets), (
        normalizer,
        nets.policy_network.init(key),
        nets.value_network.init(key),
    )


def test_generic_loop_replay_reproduces_body_positions(cartpole, tmp_path):
    """A user's own jitted rollout with `extract`; MuJoCo replays the stored qpos to the same bodies."""
    E, T = 3, 40

    @jax.jit
    def rollout(key):
        state = jax.vmap(cartpole.reset)(jax.random.split(key, E))

        def body(state, k):
            action = jax.random.uniform(k, (E, cartpole.action_size), minval=-1, maxval=1)
            state = jax.vmap(cartpole.step)(state, action)
            frame = extract(state, action=action)
            # Where the simulator puts the bodies for this qpos (mjx.Data.xpos itself lags qpos
            # by the last integration substep).
            data = jax.vmap(mjx.kinematics, in_axes=(None, 0))(cartpole.mjx_model, state.data)
            frame["info"] = {"xpos": data.xpos}
            return state, frame

        return jax.lax.scan(body, state, jax.random.split(key, T))[1]

    traj = jax.tree_util.tree_map(np.asarray, rollout(jax.random.PRNGKey(0)))
    with trajscope.RunWriter(tmp_path, name="g", model=cartpole.mj_model, strict=True) as w:
        w.add_capture(step=0, **traj)
    run = trajscope.open_run(tmp_path / "g")
    cap = run.capture(0)
    assert sorted(cap.keys("metrics")) == sorted(k for k in traj["metrics"])
    assert any(k.startswith("reward/") for k in cap.keys("metrics"))
    model = run.load_model()
    d = mujoco.MjData(model)
    qpos, xpos = cap.load("qpos"), cap.load("info/xpos")
    for t in range(T):
        for e in range(E):
            d.qpos[:] = qpos[t, e]
            mujoco.mj_kinematics(model, d)
            np.testing.assert_allclose(d.xpos, xpos[t, e], atol=1e-5)


def test_reward_terms_and_randomisation_per_environment(cartpole, tmp_path):
    def randomize(model, rng):
        @jax.vmap
        def one(key):
            k1, k2 = jax.random.split(key)
            rgba = model.geom_rgba.at[:, 0].set(jax.random.uniform(k1, (model.ngeom,)))
            mass = model.body_mass * jax.random.uniform(k2, (model.nbody,), minval=0.5, maxval=1.5)
            return rgba, mass

        rgba, mass = one(rng)
        in_axes = jax.tree_util.tree_map(lambda x: None, model).tree_replace({"geom_rgba": 0, "body_mass": 0})
        return model.tree_replace({"geom_rgba": rgba, "body_mass": mass}), in_axes

    make_policy, params = _policy(cartpole, cartpole.observation_size)
    rec = BraxRecorder(
        cartpole, root=tmp_path, name="r", num_envs=4, episode_length=30, randomization_fn=randomize, strict=True
    )
    assert rec.capture(0, make_policy, params)
    rec.close()
    cap = trajscope.open_run(tmp_path / "r").capture(0)
    terms = cap.keys("metrics")
    assert {"reward/upright", "reward/centered", "reward/small_control"} <= set(terms)
    rgba, mass = cap.load("model_fields/geom_rgba"), cap.load("model_fields/body_mass")
    nominal = cartpole.mj_model
    assert rgba.shape == (4, nominal.ngeom, 4) and mass.shape == (4, nominal.nbody)
    assert len({tuple(r) for r in rgba[:, :, 0]}) == 4  # each environment its own colours
    np.testing.assert_array_equal(rgba[:, :, 1:], np.broadcast_to(nominal.geom_rgba[:, 1:], rgba[:, :, 1:].shape))
    ratio = mass[:, 1:] / nominal.body_mass[1:]
    assert ((ratio >= 0.5) & (ratio <= 1.5)).all() and ratio.std() > 0.05
    # The environments ran with those masses: MuJoCo stepping a captured state with the next
    # captured action under each environment's stored masses reproduces the next state,
    # markedly better than under the nominal masses.
    q, qd, a = cap.load("qpos"), cap.load("qvel"), cap.load("action")
    assert np.isfinite(q).all() and cap.load("value").shape == (31, 4)  # 30 steps and the reset state
    nsub = round(cartpole.dt / nominal.opt.timestep)

    def one_step_error(m, e):
        d = mujoco.MjData(m)
        err = 0.0
        for t in range(q.shape[0] - 1):
            d.qpos[:], d.qvel[:], d.ctrl[:] = q[t, e], qd[t, e], a[t + 1, e]
            for _ in range(nsub):
                mujoco.mj_step(m, d)
            err = max(err, float(np.abs(d.qvel - qd[t + 1, e]).max()))
        return err

    for e in range(4):
        own = copy.copy(nominal)
        own.body_mass[:] = mass[e]
        own_err, nominal_err = one_step_error(own, e), one_step_error(nominal, e)
        assert own_err < 1e-3 and own_err < 0.2 * nominal_err, (e, own_err, nominal_err)


class PixelCartpole:
    """CartpoleBalance with a camera-like pixel observation rendered in JAX, as vision
    environments give them: floats on the k/255 grid, in a dict beside the state."""

    def __init__(self, env):
        self._env = env
        self.unwrapped = env
        self.mj_model, self.dt, self.action_size = env.mj_model, env.dt, env.action_size

    def _obs(self, state):
        cart = jnp.clip((state.data.qpos[0] + 1.0) / 2.0, 0, 1)
        cols = jnp.linspace(0, 1, 16)
        img = jnp.exp(-(((cols - cart) / 0.1) ** 2))[None, :, None] * jnp.array([1.0, 0.5, 0.25])
        img = jnp.broadcast_to(img, (12, 16, 3))
        return {"state": state.obs, "pixels/view_0": jnp.round(img * 255) / 255}

    def reset(self, rng):
        s = self._env.reset(rng)
        return s.replace(obs=self._obs(s))

    def step(self, state, action):
        s = self._env.step(state.replace(obs=state.obs["state"]), action)
        return s.replace(obs=self._obs(s))


def test_pixel_observations_round_trip(cartpole, tmp_path):
    env = PixelCartpole(cartpole)
    sizes = {"state": (cartpole.observation_size,), "pixels/view_0": (12, 16, 3)}
    make_policy, params = _policy(env, sizes)
    # brax's policy takes obs["state"] (policy_obs_key); pixels ride along in the capture.
    rec = BraxRecorder(env, root=tmp_path, name="v", num_envs=2, episode_length=20, value=False, strict=True)

    def recorded():
        key = jax.random.PRNGKey(0)  # same_starts: every checkpoint's rollout uses the seed's key
        return jax.tree_util.tree_map(np.asarray, rec._rollout_for(make_policy)(params, key))

    assert rec.capture(0, make_policy, params)
    rec.close()
    want = recorded()["obs"]["pixels/view_0"]
    cap = trajscope.open_run(tmp_path / "v").capture(0)
    e = cap.entry("obs/pixels/view_0")
    assert e["stored_dtype"] == "uint8" and e["encoding"]["lossless"] and e["encoding"]["value_range"] == [0.0, 1.0]
    got = cap.obs()
    assert isinstance(got, dict) and set(got) == {"state", "pixels/view_0"}
    np.testing.assert_allclose(got["pixels/view_0"], want, rtol=0, atol=4 * np.finfo(np.float32).eps)
    np.testing.assert_array_equal(cap.load("obs/pixels/view_0", decode=False), np.rint(want * 255).astype(np.uint8))
    assert got["pixels/view_0"].shape == (21, 2, 12, 16, 3) and want.max() > 0.9
