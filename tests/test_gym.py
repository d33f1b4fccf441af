"""Capture from Gymnasium MuJoCo environments (no JAX, no agent library), end to end:
evaluation captures, the live stream, the NaN guard, the viewer, the analyses and video."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import mujoco
import numpy as np
import pytest

import trajscope
from trajscope.capture import GymRecorder
from trajscope.store import write_live_control

gym = pytest.importorskip("gymnasium")

EXAMPLE = Path(__file__).parents[1] / "examples" / "gymnasium_loop.py"


def _example():
    spec = importlib.util.spec_from_file_location("gymnasium_loop", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example_run(tmp_path_factory):
    """The CleanRL-style example (a NumPy agent learning Hopper-v5), tiny, captured."""
    root = tmp_path_factory.mktemp("gym")
    url = _example().main(
        "Hopper-v5", iterations=4, num_envs=4, rollout_steps=60, eval_every=2, root=root, name="h", gamma=0.9
    )  # gamma 0.9: returns within 60 steps are whole enough for the value figures
    return trajscope.open_run(url)


def _restep(model, q, qd, a, nsub, rows):
    """Largest error of MuJoCo stepping captured states ``rows`` with the next action."""
    d = mujoco.MjData(model)
    err = 0.0
    for t in rows:
        d.qpos[:], d.qvel[:] = q[t], qd[t]
        d.ctrl[:] = a[t + 1]
        for _ in range(nsub):
            mujoco.mj_step(model, d)
        err = max(err, float(np.abs(d.qpos - q[t + 1]).max()))
    return err


def test_evaluation_episodes_are_real_steps_from_the_same_starts(example_run):
    """Every checkpoint: episodes from the reset state, the same starts each time; MuJoCo
    stepping the captured states with the captured actions retraces them; reward terms
    are metrics; an episode that ended stays still, with its return the summary's."""
    run = example_run
    assert run.metadata["env_name"] == "Hopper-v5" and run.metadata["config"]["trajscope"]["loop"] == "gymnasium"
    caps = run.captures
    assert [c.step for c in caps] == [240, 480, 960] and all(c.reset_frame and c.num_envs == 4 for c in caps)
    model = run.load_model()
    nsub = round(run.metadata["control_dt_s"] / model.opt.timestep)
    firsts = [run.capture(c).load("qpos")[0] for c in caps]
    for f in firsts[1:]:
        np.testing.assert_array_equal(f, firsts[0])  # seeds seed + i at every checkpoint
    assert len({tuple(r) for r in firsts[0]}) == firsts[0].shape[0]  # each environment its own start
    cap = run.capture(caps[-1])
    assert {"reward/forward", "reward/ctrl", "reward/survive"} <= set(cap.keys("metrics"))
    reward, done = cap.load("reward"), cap.load("done")
    terms = sum(cap.load(f"metrics/reward/{k}") for k in ("forward", "ctrl", "survive"))
    np.testing.assert_allclose(terms, reward, atol=1e-4)
    steps = cap.info.attrs["episode_steps"]
    for e in range(cap.info.num_envs):
        q, qd, a = cap.load("qpos", env=e), cap.load("qvel", env=e), cap.load("action", env=e)
        n = steps[e]
        assert _restep(model, q, qd, a, nsub, range(n)) < 1e-6
        assert cap.info.summary["returns"][e] == pytest.approx(float(reward[: n + 1, e].sum()), rel=1e-5)
        if n < cap.info.num_steps - 1:  # ended early: still after, no reward, no action
            assert done[n, e] and (q[n:] == q[n]).all() and (reward[n + 1 :, e] == 0).all()
    value = cap.load("value")
    assert value.shape == reward.shape and np.isfinite(value).all() and value.std() > 0


def test_the_live_stream_and_its_switch(example_run, tmp_path):
    """The first two training environments streamed as consecutive steps while the viewer's
    switch is on; nothing recorded while it is off."""
    rec = GymRecorder("Hopper-v5", root=tmp_path, name="l", num_envs=1, live=2, live_chunk_steps=16, strict=True)
    rec.live.poll_s = 0.05
    envs = rec.wrap(gym.vector.SyncVectorEnv([lambda: gym.make("Hopper-v5") for _ in range(3)]))
    envs.reset(seed=1)
    rng = np.random.default_rng(0)

    def run_steps(n):
        for _ in range(n):
            envs.step(rng.uniform(-1, 1, (3, 3)).astype(np.float32))

    run_steps(64)
    assert rec.live.chunks_sent == 0  # nobody asked
    write_live_control(rec.writer.url, on=True, rate=1000)
    rec.live._control = rec.writer.live_control()  # read the switch now (its thread reads it every poll_s)
    run_steps(64)
    sent = rec.live.chunks_sent
    assert sent >= 3
    write_live_control(rec.writer.url, on=False)
    rec.live._control = rec.writer.live_control()
    run_steps(64)
    assert rec.live.chunks_sent <= sent + 1  # the chunk under way when switched off, at most
    rec.close()
    run = trajscope.open_run(tmp_path / "l")
    chunks = run.live_chunks()
    assert chunks and run.live_status().finished
    model = run.load_model()
    nsub = round(run.metadata["control_dt_s"] / model.opt.timestep)
    checked = 0
    for info in chunks:
        cap = run.capture(info)
        assert (cap.info.num_envs, cap.info.num_steps) == (2, 16)
        done = cap.load("done")
        for e in range(2):
            q, qd, a = cap.load("qpos", env=e), cap.load("qvel", env=e), cap.load("action", env=e)
            # Gymnasium resets an ended episode at the next step: skip the steps next to a done.
            rows = [t for t in range(15) if not done[t, e] and not done[t + 1, e]]
            assert _restep(model, q, qd, a, nsub, rows) < 1e-6
            checked += len(rows)
    assert checked > 50


class Kicked(gym.Wrapper):
    """Hopper whose velocities are set absurdly high at its 20th step: MuJoCo finds the
    simulation unstable, warns and resets it, and the episode goes on as if nothing happened."""

    def __init__(self, env, at=20):
        super().__init__(env)
        self.t, self.at = 0, at

    def step(self, action):
        self.t += 1
        if self.t == self.at:
            self.env.unwrapped.data.qvel[:] = 1e30
        return self.env.step(action)


class NanObs(gym.Wrapper):
    """Hopper whose observation turns NaN at its 15th step."""

    def __init__(self, env):
        super().__init__(env)
        self.t = 0

    def step(self, action):
        self.t += 1
        obs, r, te, tr, info = self.env.step(action)
        return (obs * np.nan if self.t == 15 else obs), r, te, tr, info


@pytest.mark.parametrize(
    ("wrapper", "field"), [(Kicked, "mujoco: unstable simulation"), (NanObs, "obs")], ids=["unstable", "nan"]
)
def test_nan_guard_catches_a_blow_up_mujoco_hides(tmp_path, wrapper, field):
    """The NaN guard keeps the last steps of every training environment and writes them when
    one turns non-finite, or when MuJoCo reports it unstable and resets it; training goes on."""
    rec = GymRecorder("Hopper-v5", root=tmp_path, name="n", num_envs=1, nan_guard=8, strict=True)
    fns = [lambda: gym.make("Hopper-v5"), lambda: wrapper(gym.make("Hopper-v5")), lambda: gym.make("Hopper-v5")]
    envs = rec.wrap(gym.vector.SyncVectorEnv(fns))
    envs.reset(seed=0)
    for _ in range(30):  # training goes on after the blow-up
        envs.step(np.zeros((3, 3), np.float32))
    rec.close()
    assert rec.tripped is not None and rec.tripped["envs"] == [1] and rec.tripped["field"].startswith(field)
    run = trajscope.open_run(tmp_path / "n")
    (cap,) = [run.capture(c) for c in run.captures if c.kind == "nan"]
    assert cap.info.num_envs == 1 and cap.info.num_steps == 8
    assert cap.info.attrs["first_nonfinite_field"].startswith(field)
    if wrapper is NanObs:
        obs = cap.obs()
        assert np.isnan(obs[-1]).all() and np.isfinite(obs[:-1]).all()
    else:  # MuJoCo put the hopper back at its initial pose (a few substeps ago)
        q = cap.load("qpos")
        np.testing.assert_allclose(q[-1, 0], run.load_model().qpos0, atol=1e-2)
        assert np.abs(q[-2, 0] - q[-1, 0]).max() > 1e-3


def test_the_viewer_the_analyses_and_video_work_unchanged(example_run, tmp_path):
    """A Gymnasium run opens in the viewer, is analysed (state map, value against return
    with the discount the run records) and renders to video, as a brax run does."""
    from test_serve import _free_port
    from trajscope import export
    from trajscope.serve import Viewer

    run = example_run
    viewer = Viewer(run.url, port=_free_port())
    try:
        assert not viewer.errors and viewer.shown is not None
    finally:
        viewer.close()
    doc, arrays = trajscope.analyse.analyse_run(run, write=False)
    assert len(doc["captures"]) == len(run.captures) and arrays["points"].shape[1] == 2
    last = doc["captures"][-1]
    assert last["value_bias"] is not None and last["value_bias_ci"] is not None  # the run records its discount
    assert "reward/forward" in last["terms"]  # reward terms triaged
    frames = export.video(run, -1, envs=[0], width=64, height=48, steps=slice(0, 5))
    frames = list(frames)
    assert len(frames) == 5 and frames[0].shape == (48, 64, 3)
    assert np.abs(frames[0].astype(int) - frames[-1]).mean() > 0


def test_the_example_runs_as_a_script(tmp_path):
    """``python examples/gymnasium_loop.py`` as a user runs it, without JAX imported."""
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['x', '--env', 'HalfCheetah-v5', '--iterations', '2', '--num-envs', '2', '--rollout-steps', '20',"
        f" '--eval-every', '1', '--root', {str(tmp_path)!r}, '--name', 'c']\n"
        f"runpy.run_path({str(EXAMPLE)!r}, run_name='__main__')\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'jaxlib', 'brax', 'torch'))\n"
        "assert not heavy, heavy\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    run = trajscope.open_run(tmp_path / "c")
    assert len(run.captures) == 2 and run.metadata["env_name"] == "HalfCheetah-v5"


def test_a_loop_of_its_own_streams_through_step_recorder(tmp_path):
    """StepRecorder from any host loop (mjlab's PyTorch, a loop of its own): batched arrays
    after each step, the loop's buffers stepped in place and reused, each frame its own."""
    from trajscope.capture import StepRecorder

    model = gym.make("Hopper-v5").unwrapped.model
    datas = [mujoco.MjData(model) for _ in range(3)]
    qpos = np.zeros((3, model.nq))  # the loop's own buffer, overwritten every step
    rec = StepRecorder(model, root=tmp_path, name="s", live=2, live_chunk_steps=8, source="mine", strict=True)
    rec.live.switch(True, rate=1000)
    ctrl = np.random.default_rng(0).uniform(-1, 1, (40, 3, model.nu))
    for t in range(40):
        for e, d in enumerate(datas):
            d.ctrl[:] = ctrl[t, e]
            mujoco.mj_step(model, d)
            qpos[e] = d.qpos
        rec.record_step(ctrl[t], np.ones(3), np.zeros(3, bool), qpos=qpos, qvel=np.stack([d.qvel for d in datas]))
    rec.close()
    run = trajscope.open_run(tmp_path / "s")
    chunks = run.live_chunks()
    assert len(chunks) == 5 and all(run.capture(c).info.attrs["source"] == "train" for c in chunks)
    assert run.metadata["config"]["trajscope"]["loop"] == "mine"
    q = np.concatenate([run.capture(c).load("qpos") for c in chunks])
    assert q.shape == (40, 2, model.nq) and len({tuple(row) for row in q[:, 0]}) == 40  # no frame aliased
    np.testing.assert_array_equal(q[-1], qpos[:2])


class OddInfo(gym.Wrapper):
    """Hopper whose ``info`` carries keys the run format cannot hold beside its own."""

    ODD = ("", "k" * 5000, "bell\x07", "csi\x9b")

    def step(self, action):
        obs, r, te, tr, info = self.env.step(action)
        return obs, r, te, tr, {**info, **{k: 1.0 for k in self.ODD}}


def test_an_odd_info_key_is_left_out_and_the_capture_kept(tmp_path):
    rec = GymRecorder(lambda: OddInfo(gym.make("Hopper-v5")), root=tmp_path, name="odd", num_envs=2, episode_length=20)
    with pytest.warns(trajscope.store.TrajscopeWarning, match="left out of the captures") as got:
        for step in (0, 1):
            rec.capture(step, lambda obs: np.zeros((len(obs), 3), np.float32))
        rec.close()
    assert rec.stats.written == 2 and rec.stats.dropped == 0
    assert len([w for w in got if "left out" in str(w.message)]) == len(OddInfo.ODD)  # once per key
    keys = trajscope.open_run(tmp_path / "odd").capture(0).keys("metrics")
    assert "reward/forward" in keys and not set(OddInfo.ODD) & set(keys)
