"""Every capture path with MuJoCo Warp (``impl='warp'``, Playground's default), on Warp's CPU
device: the evaluation rollout with randomised models, the live stream, play, the NaN guard,
SAC's evaluation tap and its buffer mirror, contacts. Tiny configurations: Warp on a CPU is
slow.

``tests/test_warp.py`` runs this module in a fresh interpreter: XLA crashed compiling these
programs late in the suite's long process (never alone). Run it directly with
``pytest tests/warp_cases.py``."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

import trajscope

pytest.importorskip("mujoco_playground")
pytest.importorskip("warp")
from brax.training.agents.ppo import train as ppo
from brax.training.agents.sac import train as sac
from mujoco_playground import registry

from test_play import _randomize  # each environment its own masses
from trajscope.capture import BraxRecorder, recorder_for, train
from trajscope.play import Player, check_env, trained_impl
from trajscope.serve import ScenePanel

TINY = dict(
    num_timesteps=1_000,
    num_evals=3,
    episode_length=25,
    num_envs=8,
    batch_size=8,
    num_minibatches=2,
    unroll_length=5,
    num_eval_envs=2,
    normalize_observations=True,
    seed=2,
)
"""A PPO training of CartpoleBalance on Warp's CPU device that runs in seconds."""


def _cartpole():
    """CartpoleBalance as Playground loads it by default: on MuJoCo Warp."""
    import warp as wp

    wp.config.log_level = 30  # warnings only: Warp logs a line per kernel module it loads
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = registry.load("CartpoleBalance")
    assert env._config.impl == "warp" and type(env._mjx_model._impl).__name__ == "ModelWarp"
    return env


@pytest.fixture(scope="module")
def warp_env():
    return _cartpole()


@pytest.fixture(scope="module")
def warp_ppo(warp_env, tmp_path_factory):
    """One PPO training on Warp through ``trajscope.capture.train``: evaluation captures of
    randomised models at each checkpoint, and the live stream switched on from the start."""
    root = tmp_path_factory.mktemp("warp")
    kwargs = dict(TINY, randomization_fn=_randomize)
    capture = dict(
        root=root, name="w", num_envs=3, live=2, live_chunk_steps=8, store_params="all", contacts=2, strict=True
    )
    rec = recorder_for(ppo.train, warp_env, capture=capture, **kwargs)
    rec.live.switch(True, rate=1000)  # every chunk, from the training script
    train(ppo.train, warp_env, recorder=rec, progress=False, **kwargs)
    assert rec.stats.dropped == 0 and rec.stats.written > TINY["num_evals"]
    return rec, trajscope.open_run(root / "w")


def _restep_error(model, fields, q, qd, a, nsub, env_index, rows):
    """Largest error of MuJoCo (C) stepping captured states ``rows`` of one environment with
    the next captured action, under ``fields`` (per-environment model fields, or none)."""
    m = mujoco.MjModel.from_xml_string("<mujoco/>") if model is None else model
    for name, values in fields.items():
        getattr(m, name)[:] = values[env_index]
    d = mujoco.MjData(m)
    err = 0.0
    for t in rows:
        d.qpos[:], d.qvel[:] = q[t], qd[t]
        d.ctrl[:] = a[t + 1]
        for _ in range(nsub):
            mujoco.mj_step(m, d)
        err = max(err, float(np.abs(d.qpos - q[t + 1]).max()))
    return err


def test_warp_evaluation_captures_hold_each_environments_randomised_physics(warp_ppo, warp_env):
    """Every checkpoint captured from the reset state; each environment's masses stored,
    and MuJoCo stepping its captured states under them reproduces Warp's next states, much
    better than under the nominal masses."""
    _, run = warp_ppo
    evals = run.captures
    assert len(evals) == TINY["num_evals"] and all(c.reset_frame and c.num_steps == 26 for c in evals)
    cap = run.capture(evals[-1])
    assert np.isfinite(cap.load("qpos")).all() and cap.load("value").shape == (26, 3)
    mass = cap.load("model_fields/body_mass")
    nominal = warp_env.mj_model
    assert mass.shape == (3, nominal.nbody) and len({tuple(m) for m in mass[:, 1:]}) == 3
    nsub = round(warp_env.dt / nominal.opt.timestep)
    for e in range(3):
        q, qd, a = cap.load("qpos", env=e), cap.load("qvel", env=e), cap.load("action", env=e)
        rows = range(0, 24)
        own = _restep_error(run.load_model(), {"body_mass": mass}, q, qd, a, nsub, e, rows)
        off = _restep_error(run.load_model(), {}, q, qd, a, nsub, e, rows)
        assert own < 1e-3 and off > 5 * own, (e, own, off)
    # The simulator's contacts are stored (the cartpole touches nothing: none, as MuJoCo finds).
    assert cap.load("info/contact/pos").shape == (26, 3, 2, 3) and (cap.load("info/contact/count") == 0).all()
    # Training went on with the recorder: its parameters were stored at every checkpoint.
    assert all(run.capture(c).keys("params") for c in evals)


def test_warp_live_stream_holds_consecutive_training_steps(warp_ppo, warp_env):
    """The live chunks are the first two training environments' consecutive Warp steps:
    MuJoCo stepping frame t with the action of frame t + 1 reaches frame t + 1 (where no
    episode ended between them)."""
    rec, run = warp_ppo
    live = run.live_chunks()  # the newest 8 kept
    status = run.live_status()
    assert live and status is not None and status.finished and rec.live.chunks_sent >= len(live)
    model = run.load_model()
    nsub = round(warp_env.dt / model.opt.timestep)
    checked = 0
    for info in live[:3]:
        cap = run.capture(info)
        assert (cap.info.num_envs, cap.info.num_steps) == (2, 8)
        fields = cap.group("model_fields")
        assert fields and fields["body_mass"].shape == (2, model.nbody)  # the training envs' own masses
        assert cap.load("info/contact/count").shape == (8, 2)
        done = cap.load("done")
        for e in range(2):
            q, qd, a = cap.load("qpos", env=e), cap.load("qvel", env=e), cap.load("action", env=e)
            rows = [t for t in range(7) if not done[t + 1, e]]
            assert _restep_error(model, fields, q, qd, a, nsub, e, rows) < 1e-3
            checked += len(rows)
    assert checked > 20


def test_warp_play_reproduces_a_captured_episode(warp_ppo, warp_env):
    """Play from a Warp capture, stepped by the Warp environment itself with the stored
    policy and the environment's masses, retraces the capture; the nominal masses do not."""
    _, run = warp_ppo
    assert trained_impl(run.metadata) == "warp"  # what --play-env playground:NAME loads for this run
    assert check_env("playground:CartpoleBalance@warp") is None and "@cuda" in check_env("playground:X@cuda")
    cap = run.capture(run.captures[-1])
    q = cap.load("qpos", env=1)
    player = Player(run, warp_env)
    player.use_policy(cap.info)
    t0 = 3
    assert np.array_equal(player.start(cap.info, env_index=1, t=t0).qpos, q[t0])
    err = max(float(np.abs(player.step().qpos - q[t0 + k]).max()) for k in range(1, 16))
    assert err < 1e-4
    nominal = Player(run, warp_env)
    nominal.use_policy(cap.info)
    nominal.start(cap.info, env_index=1, t=t0)
    nominal._model = nominal._base_model
    drift = max(float(np.abs(nominal.step().qvel - cap.load("qvel", env=1)[t0 + k]).max()) for k in range(1, 16))
    assert drift > 1e-3


class BlowsUp:
    """The Warp cartpole whose positions become NaN at the 12th step of every episode."""

    def __init__(self, env):
        self._env = env

    def __getattr__(self, name):
        return getattr(self._env, name)

    def reset(self, rng):
        state = self._env.reset(rng)
        return state.replace(info={**state.info, "blowup_t": jnp.zeros((), jnp.int32)})

    def step(self, state, action):
        t = state.info["blowup_t"] + 1
        nstate = self._env.step(state, action)
        data = nstate.data.replace(qpos=jnp.where(t == 12, jnp.nan, nstate.data.qpos))
        return nstate.replace(data=data, info={**nstate.info, "blowup_t": t})


def test_warp_nan_guard_catches_the_steps_before_the_blow_up(warp_env, tmp_path):
    """The NaN guard keeps the last steps of Warp's training environments on the device and
    writes them when one turns non-finite; training goes on (brax itself stops at its end)."""
    env = BlowsUp(warp_env)
    rec = BraxRecorder(env, root=tmp_path, name="n", num_envs=2, episode_length=25, nan_guard=6, value=False)
    with rec, pytest.raises(AssertionError):  # brax's own check of its NaN parameters, at the very end
        ppo.train(env, wrap_env_fn=rec.wrap_env_fn(), policy_params_fn=rec.policy_params_fn(), **TINY)
    run = trajscope.open_run(tmp_path / "n")
    (nan,) = [c for c in run.captures if c.kind == "nan"]
    cap = run.capture(nan)
    q = cap.load("qpos")
    assert q.shape[0] == 6 and np.isnan(q[-1]).any() and np.isfinite(q[:-1]).all()
    assert nan.attrs["first_nonfinite_field"] == "qpos" and rec.nan.tripped["t"] == 5


def test_warp_sac_taps_its_evaluation_and_mirrors_its_buffer(warp_env, tmp_path):
    """SAC on Warp: brax's own evaluation episodes tapped (their mean return is the one brax
    reports) and a uniform sample of the replay buffer holding Warp's real states."""
    ckpt = str(tmp_path / "ckpt")
    rec = BraxRecorder(
        warp_env, root=tmp_path, name="s", num_envs=2, episode_length=20, algorithm="sac", strict=True,
        replay_sample=50, checkpoint_dir=ckpt,
    )  # fmt: skip
    reported = []
    sac.train(
        warp_env,
        num_timesteps=400,
        num_evals=2,
        episode_length=20,
        num_envs=4,
        batch_size=16,
        min_replay_size=32,
        num_eval_envs=2,
        deterministic_eval=True,
        checkpoint_logdir=ckpt,
        wrap_env_fn=rec.wrap_env_fn(),
        progress_fn=rec.progress_fn(chain=lambda s, m: reported.append(float(m["eval/episode_reward"]))),
    )
    rec.close()
    run = trajscope.open_run(tmp_path / "s")
    assert [c.mean_return for c in run.captures] == pytest.approx(reported, rel=1e-5, abs=1e-4)
    buf = run.capture(run.captures[-1]).group("buffer")
    assert len(buf["step"]) == 50 and np.isfinite(buf["qpos"]).all()
    # Real Warp states: the cartpole's observation holds its cart position and velocities.
    np.testing.assert_allclose(buf["obs"][:, 0], buf["qpos"][:, 0], atol=1e-5)
    np.testing.assert_allclose(buf["obs"][:, 3:5], buf["qvel"], atol=1e-5)


def test_contacts_are_split_per_world_and_drawn_as_simulated(tmp_path):
    """``extract(contacts=k)`` reads the contacts the simulator found: from MJX's per-env
    candidates (JAX) and from Warp's one buffer of all worlds, split by world. Both agree
    with MuJoCo's own collision at the same states; the viewer draws the stored ones."""
    import warp as wp

    from test_serve import _free_port
    from trajscope.capture import extract
    from trajscope.serve import Viewer

    wp.config.log_level = 30
    E, k = 3, 4
    found = {}
    for impl in ("jax", "warp"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env = registry.load("CheetahRun", config_overrides={"impl": impl})

        @jax.jit
        def rollout(key, env=env):
            state = jax.vmap(env.reset)(jax.random.split(key, E))

            def body(state, _):
                state = jax.vmap(env.step)(state, jnp.zeros((E, env.action_size)))
                return state, extract(state, contacts=k)

            return jax.lax.scan(body, state, None, length=40)[1]

        found[impl] = jax.tree_util.tree_map(np.asarray, rollout(jax.random.PRNGKey(0)))
    model = env.mj_model
    d = mujoco.MjData(model)
    for impl, traj in found.items():
        c = traj["info"]["contact"]
        assert c["pos"].shape == (40, E, k, 3) and c["geom"].shape == (40, E, k, 2) and c["count"].shape == (40, E)
        t = 39  # the cheetah has come to rest on the floor: its contacts no longer change within a step
        for e in range(E):
            d.qpos[:] = traj["qpos"][t, e]
            mujoco.mj_forward(model, d)
            n = int(c["count"][t, e])
            assert n == d.ncon > 0, (impl, e, n, d.ncon)
            mine = sorted(zip(map(tuple, c["geom"][t, e, :n]), c["dist"][t, e, :n], strict=True))
            ref = sorted((tuple(d.contact[i].geom), d.contact[i].dist) for i in range(d.ncon))
            assert [g for g, _ in mine] == [g for g, _ in ref], impl
            np.testing.assert_allclose([x for _, x in mine], [x for _, x in ref], atol=1e-3)
            assert (c["geom"][t, e, n:] == -1).all()
    np.testing.assert_array_equal(found["jax"]["info"]["contact"]["count"], found["warp"]["info"]["contact"]["count"])
    # Stored and shown: the viewer draws the simulator's contact points and normals.
    traj = found["warp"]
    with trajscope.RunWriter(tmp_path, name="c", model=model, strict=True) as w:
        assert w.add_capture(step=0, **{k2: v for k2, v in traj.items() if k2 != "obs"})
    viewer = Viewer(str(tmp_path / "c"), port=_free_port())
    try:
        viewer.panel(ScenePanel).contacts.value = True
        viewer.show_step(39)
        points, normals = viewer.stage.envs.contact_nodes
        offsets = viewer.stage.offsets(len(viewer.shown.envs))
        c = traj["info"]["contact"]
        slot = viewer.shown.selected_slot
        n = int(c["count"][39, viewer.shown.selected])
        want = c["pos"][39, viewer.shown.selected, :n] + offsets[slot]
        got = np.asarray(points.points, float)  # viser sends float16 points
        assert len(got) == n and all(np.abs(got - p).max(axis=1).min() < 2e-3 for p in want), (got, want)
        seg = np.asarray(normals.points)
        assert (seg[:, 1, 2] > seg[:, 0, 2]).all()  # the floor's normals point up
        assert not viewer.errors, viewer.errors
    finally:
        viewer.close()
    # And in video: the stored points and normals drawn, no contacts recomputed.
    from trajscope import export

    run = trajscope.open_run(tmp_path / "c")
    plain, marked = (
        next(iter(export.video(run, 0, envs=[0], width=240, height=180, steps=slice(39, 40), contacts=c)))
        for c in (False, True)
    )
    changed = np.abs(plain.astype(int) - marked).sum(axis=-1) > 60
    # Orange points and red normals (their reflections in the floor are bluer).
    assert changed.sum() > 50 and (marked[changed][:, 0] > marked[changed][:, 2]).mean() > 0.6
