"""Capture from real, tiny, unmodified brax trainings (PPO and SAC) on the CPU."""

from __future__ import annotations

import subprocess

import jax
import numpy as np
import pytest

import trajscope
import trajscope.analyse
from conftest import TINY_PPO, brax_restep

pytest.importorskip("brax")
from brax.training.agents.ppo import train as ppo
from brax.training.agents.sac import train as sac

from trajscope.capture import BraxRecorder
from trajscope.serve import AnalysisPanel, ComparePanel, ScenePanel, TrainingCurvePanel
from trajscope.store import TrajscopeWarning

PPO_KW = TINY_PPO


def _tree_equal(a, b):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_ppo_captures_every_checkpoint_with_all_arrays(ppo_captured, pendulum):
    rec, _, run, seen = ppo_captured
    assert [c.step for c in run.captures] == seen  # every checkpoint, and the user's hook still ran
    assert rec.compiles == 1  # one compilation for the whole run
    assert rec.stats.written == 3 and rec.captures_failed == 0
    m = pendulum.sys.mj_model
    assert run.metadata["algorithm"] == "ppo" and run.metadata["env_name"] == "InvertedPendulum"
    assert run.metadata["control_dt_s"] == pytest.approx(pendulum.dt)
    for info in run.captures:
        # 50 steps and the reset state before them.
        assert (info.num_envs, info.num_steps, info.kind, info.reset_frame) == (5, 51, "eval", True)
        cap = run.capture(info)
        shapes = {n: cap.load(n).shape for n in ("qpos", "qvel", "action", "reward", "done", "value", "obs/obs")}
        assert shapes == {
            "qpos": (51, 5, m.nq),
            "qvel": (51, 5, m.nv),
            "action": (51, 5, m.nu),
            "reward": (51, 5),
            "done": (51, 5),
            "value": (51, 5),
            "obs/obs": (51, 5, pendulum.observation_size),
        }
        for n in shapes:
            assert np.isfinite(cap.load(n).astype(float)).all(), n
        assert np.abs(cap.load("action")).max() <= 1.0
        kernel = cap.load("params/policy/params/hidden_0/kernel")
        assert kernel.shape[0] == pendulum.observation_size
    # Parameters differ between checkpoints: these are the checkpoints' own.
    k0, k2 = (run.capture(i).load("params/policy/params/hidden_0/kernel") for i in (0, 2))
    assert not np.array_equal(k0, k2)


def _assert_reset_frame(cap, env):
    """Frame 0 is the state brax reset the environment to: its initial pose plus the reset
    noise (inverted_pendulum: uniform within 0.01), no action, no reward, not done."""
    q0 = cap.load("qpos")[0]
    init = np.asarray(env.sys.init_q)
    assert np.abs(q0 - init).max() <= 0.01 + 1e-6 and np.abs(q0 - init).max() > 0  # noise, not the nominal pose
    assert len({tuple(np.round(q, 6)) for q in q0}) == q0.shape[0]  # each environment its own start
    assert not cap.load("action")[0].any() and not cap.load("reward")[0].any() and not cap.load("done")[0].any()


def test_every_checkpoint_starts_from_the_same_states_and_is_compared_env_by_env(ppo_captured):
    """same_starts (the default): every capture's reset states are the same, so the analysis
    compares checkpoints environment by environment."""
    _, _, run, _ = ppo_captured
    caps = [run.capture(c) for c in run.captures]
    assert all(c.info.attrs["starts"] == {"same": True, "seed": 0} for c in caps)
    first = caps[0].load("qpos")[0]
    for c in caps[1:]:
        np.testing.assert_array_equal(c.load("qpos")[0], first)  # frame 0: the same reset states
    doc, _ = trajscope.analyse.analyse_run(run, write=False)
    paired = [c.get("paired_prev") for c in doc["captures"][1:]]
    assert all(p is not None and len(p["parts_at"]) == 5 and len(p["return_diff"]) == 5 for p in paired)
    # The viewer's Analysis panel names it and its button replays where they part.
    from test_serve import _free_port
    from trajscope.serve import Viewer

    v = Viewer(run.url, port=_free_port())
    try:
        v.panel(AnalysisPanel).compute()
        assert v.panel(AnalysisPanel).wait(300)
        where = v.panel(AnalysisPanel).parting()
        assert "same starts" in v.panel(AnalysisPanel).parted.content and where is not None  # trained policies differ
        v.act(v.panel(AnalysisPanel).show_parting)
        assert (v.shown.capture.info.index, v.shown.selected, v.t) == where
        # The captured values imply TD errors: the map colours by them, a button shows the largest.
        worst = v.panel(AnalysisPanel).largest_td()
        assert worst is not None and not v.panel(AnalysisPanel).td_button.disabled
        v.panel(AnalysisPanel).colour.value = "TD error"
        assert v.panel(AnalysisPanel).colours().shape == (len(v.panel(AnalysisPanel).meta), 3)
        v.act(v.panel(AnalysisPanel).show_largest_td)
        assert (v.shown.capture.info.index, v.shown.selected, v.t) == worst
        # Reward-term triage: every term, the worst environment and step of the newest capture.
        assert v.panel(AnalysisPanel).term.value == "reward" and "worst env" in v.panel(AnalysisPanel).term_text.content
        assert set(doc["captures"][-1]["terms"]) >= {"reward"}
        where = v.panel(AnalysisPanel).worst_term()
        v.act(v.panel(AnalysisPanel).show_worst_term)
        assert where is not None and (v.shown.capture.info.index, v.shown.selected, v.t) == where
        rewards = run.capture(where[0]).load("reward", env=where[1])
        assert rewards[where[2]] == pytest.approx(float(np.min(rewards[1:])))
        # Compare: the newest capture's env 0 against the previous checkpoint's, from the same
        # start: where they part, as the analysis found it.
        v.panel(ScenePanel).env.value = 0
        v.act(v.load_capture, len(run.captures) - 1)
        v.panel(ComparePanel).which.value = f"#{run.captures[-2].index} step {run.captures[-2].step}"
        assert v.panel(ComparePanel).active
        assert v.panel(ComparePanel).parts_at == doc["captures"][-1]["paired_prev"]["parts_at"][0]
        assert "same starts: env 0" in v.panel(ComparePanel).parted.content
    finally:
        v.close()


def test_reset_frame_is_the_reset_state(ppo_captured, pendulum):
    _, _, run, _ = ppo_captured
    for info in run.captures:
        _assert_reset_frame(run.capture(info), pendulum)
        # Episode lengths count steps, not frames.
        assert max(info.summary["episode_length"]) <= 50


def test_capture_does_not_perturb_training(ppo_captured, ppo_baseline):
    _, params, _, _ = ppo_captured
    _tree_equal(params, ppo_baseline)


def test_value_is_the_networks_prediction(ppo_captured, pendulum):
    """The captured value equals brax's value network applied to the captured observation."""
    from brax.training.acme import running_statistics
    from brax.training.agents.ppo import networks as ppo_networks

    _, _, run, _ = ppo_captured
    cap = run.capture(-1)
    p = cap.group("params")
    nets = ppo_networks.make_ppo_networks(
        pendulum.observation_size, pendulum.action_size, preprocess_observations_fn=running_statistics.normalize
    )
    normalizer = running_statistics.RunningStatisticsState(
        count=None,
        mean=p["normalizer/mean"],
        summed_variance=p["normalizer/summed_variance"],
        std=p["normalizer/std"],
    )
    value_params = {"params": {k.split("/")[2]: {} for k in p if k.startswith("value/")}}
    for k, v in p.items():
        if k.startswith("value/"):
            _, _, layer, name = k.split("/")
            value_params["params"][layer][name] = v
    obs = cap.load("obs/obs")
    want = nets.value_network.apply(normalizer, value_params, obs.reshape(-1, obs.shape[-1])).reshape(obs.shape[:2])
    np.testing.assert_allclose(cap.load("value"), np.asarray(want), rtol=1e-5, atol=1e-5)


def test_replayed_qpos_reproduces_the_episode(ppo_captured, pendulum):
    """Stepping the environment again from each captured state with the next captured action
    gives the next captured state; and the stored model is the one trained."""
    _, _, run, _ = ppo_captured
    cap = run.capture(-1)
    q, qd, a, done = (cap.load(n) for n in ("qpos", "qvel", "action", "done"))
    assert run.load_model().nq == pendulum.sys.mj_model.nq

    restep = brax_restep(pendulum)

    nq, nu = q.shape[-1], a.shape[-1]
    pred = np.asarray(restep(q[:-1].reshape(-1, nq), qd[:-1].reshape(-1, nq), a[1:].reshape(-1, nu)))
    # An environment whose episode ended holds its final state: compare while it runs.
    running = ~np.cumsum(done, axis=0).astype(bool)[:-1].reshape(-1)
    assert running.sum() > 100
    np.testing.assert_allclose(pred[running], q[1:].reshape(-1, nq)[running], atol=1e-4)
    # And not trivially: the states do change along the episode.
    assert np.abs(np.diff(q, axis=0)).max() > 1e-3


def test_failing_writer_does_not_stop_training(pendulum, tmp_path, ppo_baseline):
    ro = tmp_path / "ro"
    ro.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)], capture_output=True)
    if p.returncode != 0:
        pytest.skip("cannot mount a read-only tmpfs here")
    try:
        with pytest.warns(TrajscopeWarning, match="Read-only file system"):
            rec = BraxRecorder(pendulum, root=ro, name="x", num_envs=5, episode_length=50, normalize_observations=True)
            _, params, _ = ppo.train(pendulum, policy_params_fn=rec.policy_params_fn(), **PPO_KW)
            rec.close()
        assert rec.stats.written == 0 and rec.stats.dropped_write_error == 3
        _tree_equal(params, ppo_baseline)
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=False)


def test_sac_captures_and_streams_through_public_hooks(pendulum, tmp_path):
    ckpt = str(tmp_path / "ckpt")
    rec = BraxRecorder(
        pendulum,
        root=tmp_path,
        name="s",
        num_envs=6,
        episode_length=40,
        algorithm="sac",
        strict=True,
        replay_sample=200,
        checkpoint_dir=ckpt,
        live=2,  # and its training environments streamed (one training for all three)
        live_chunk_steps=16,
    )
    rec.live.switch(True, rate=1000)
    steps = []
    sac.train(
        pendulum,
        num_timesteps=2_000,
        num_evals=3,
        episode_length=40,
        num_envs=8,
        batch_size=32,
        min_replay_size=64,
        num_eval_envs=6,
        deterministic_eval=True,
        checkpoint_logdir=ckpt,
        wrap_env_fn=rec.wrap_env_fn(),
        progress_fn=rec.progress_fn(chain=lambda s, m: steps.append((s, m["eval/episode_reward"]))),
    )
    rec.close()
    run = trajscope.open_run(tmp_path / "s")
    _check_sac_parameters_and_buffer(run, pendulum)
    assert [c.step for c in run.captures] == [s for s, _ in steps]
    for info in run.captures:
        cap = run.capture(info)
        assert (info.num_envs, info.num_steps, info.reset_frame) == (6, 41, True)
        assert cap.load("qpos").shape == (41, 6, pendulum.sys.mj_model.nq)
        assert cap.load("action").shape == (41, 6, 1)
        _assert_reset_frame(cap, pendulum)
        assert np.isfinite(cap.load("qpos")).all()
    # The tapped episode is brax's own evaluation episode: tapping all six of its
    # environments, their mean return is the return brax reports.
    for info, (_, reported) in zip(run.captures, steps):
        assert info.mean_return == pytest.approx(float(reported), rel=1e-5, abs=1e-4)
    assert len({round(c.mean_return, 3) for c in run.captures}) > 1  # not one constant episode
    chunks = run.live_chunks()  # SAC's training environments, streamed beside the tap
    assert len(chunks) >= 2 and rec.live.failures == 0
    assert run.capture(chunks[-1]).load("qpos").shape == (16, 2, pendulum.sys.q_size())


def _check_sac_parameters_and_buffer(run, pendulum):
    """The policy brax saved at each evaluation rebuilds and acts as in the captured
    (deterministic) episode; the buffer mirror holds real transitions, uniform over training."""
    first, *later = run.captures
    assert run.metadata["network"]["kind"] == "sac"
    assert not run.capture(first).keys("params")  # brax saves no checkpoint before training
    for info in later:
        cap = run.capture(info)
        policy = trajscope.analyse.capture_policy(run, cap)
        obs, action = cap.obs(), cap.load("action")
        got = np.asarray(policy.action(obs[:-1].reshape(-1, obs.shape[-1])))
        np.testing.assert_allclose(got, action[1:].reshape(-1, action.shape[-1]), atol=1e-5)
        assert info.attrs["metrics"]["training/buffer_current_size"] > 0
        buf = cap.group("buffer")
        assert set(buf) == {"step", "qpos", "qvel", "obs", "action", "reward"}
        assert len(buf["step"]) == 200 and buf["qpos"].shape == (200, pendulum.sys.mj_model.nq)
        # Real states: the pendulum's observation is its positions and velocities.
        np.testing.assert_allclose(buf["obs"], np.concatenate([buf["qpos"], buf["qvel"]], 1), atol=1e-6)
        assert 0 < buf["step"].min() and buf["step"].max() <= info.step
    # Uniform over all of training, not the newest transitions: half come from its first half.
    last = run.capture(later[-1]).group("buffer")["step"]
    assert 0.3 < (last < last.max() / 2).mean() < 0.7, np.sort(last)
    from test_serve import _free_port
    from trajscope.serve import Viewer

    viewer = Viewer(run.url, port=_free_port())  # the buffer's fill over training, plotted
    try:
        assert viewer.panel(TrainingCurvePanel).buffer_curve is not None and not viewer.errors
    finally:
        viewer.close()
    doc, arrays = trajscope.analyse.analyse_run(run, write=False)
    assert doc["buffer"]["points"] == 200 and arrays["buffer_points"].shape == (200, 2)
    np.testing.assert_array_equal(arrays["buffer_step"], last)


def test_jit_rollout_compiles_once_across_param_values(pendulum, tmp_path):
    from brax.training.acme import running_statistics
    from brax.training.agents.ppo import networks as ppo_networks

    nets = ppo_networks.make_ppo_networks(pendulum.observation_size, pendulum.action_size)
    make_policy = ppo_networks.make_inference_fn(nets)
    rec = BraxRecorder(pendulum, root=tmp_path, name="j", num_envs=2, episode_length=10, strict=True)
    for i in range(3):
        key = jax.random.PRNGKey(i)
        normalizer = running_statistics.init_state(jax.ShapeDtypeStruct((pendulum.observation_size,), np.float32))
        params = (normalizer, nets.policy_network.init(key), nets.value_network.init(key))
        assert rec.capture(i * 100, make_policy, params)
    rec.close()
    assert rec.compiles == 1
    assert len(trajscope.open_run(tmp_path / "j").captures) == 3


def test_ppo_eval_tap_captures_brax_own_evaluation(pendulum, tmp_path, ppo_baseline):
    """source="eval": no rollout of its own; brax's evaluation episodes are tapped."""
    rec = BraxRecorder(
        pendulum,
        root=tmp_path,
        name="tap",
        num_envs=3,
        episode_length=50,
        normalize_observations=True,
        deterministic=False,
        source="eval",
        strict=True,
    )
    reported = {}
    hooks = rec.hooks()  # wrap_env_fn, policy_params_fn and the marked eval_env
    assert set(hooks) == {"wrap_env_fn", "policy_params_fn", "eval_env"}
    _, params, _ = ppo.train(
        pendulum,
        **hooks,
        progress_fn=rec.progress_fn(chain=lambda s, m: reported.update({s: m["eval/episode_reward"]})),
        **PPO_KW,
    )
    rec.close()
    _tree_equal(params, ppo_baseline)  # tapping the evaluation leaves training as it was
    assert rec.compiles == 0  # no rollout of its own
    run = trajscope.open_run(tmp_path / "tap")
    assert [c.step for c in run.captures] == sorted(reported)
    first, *later = [run.capture(c) for c in run.captures]
    # brax evaluates step 0 before the first policy_params_fn: no parameters to attach yet.
    assert "value" not in first and not first.keys("params")
    for cap in later:
        assert cap.load("qpos").shape == (51, 3, pendulum.sys.mj_model.nq)
        assert cap.load("value").shape == (51, 3) and np.isfinite(cap.load("value")).all()
        _assert_reset_frame(cap, pendulum)
        assert "params/policy/params/hidden_0/kernel" in cap


def test_wrap_env_fn_tells_the_evaluation_env_by_identity_not_order(pendulum, tmp_path):
    from trajscope.capture import EvalTap

    rec = BraxRecorder(pendulum, root=tmp_path, name="w", source="eval", live=2)
    eval_env = rec.eval_env()
    assert eval_env is not pendulum and type(eval_env) is type(pendulum)
    wrap = rec.wrap_env_fn()
    kw = dict(episode_length=50, action_repeat=1, randomization_fn=None)
    first = wrap(eval_env, **kw)  # the evaluation environment first: order does not decide
    second = wrap(pendulum, **kw)
    assert isinstance(first, EvalTap) and not isinstance(second, EvalTap)
    assert "LiveTap" in type(second).__name__
    with pytest.warns(TrajscopeWarning, match="already used"):
        third = wrap(pendulum, **kw)  # a second train() with the same hook
    assert not isinstance(third, EvalTap) and "LiveTap" not in type(third).__name__
    rec.close()


def test_conflicting_recorder_options_are_refused(pendulum, tmp_path):
    import dataclasses

    from trajscope.capture import LiveOptions, RecorderConfig, RolloutOptions, TrainerOptions

    with pytest.raises(ValueError, match="SAC does not have"):
        BraxRecorder(pendulum, root=tmp_path, algorithm="sac", source="rollout")
    with pytest.raises(ValueError, match="SAC has none"):
        BraxRecorder(pendulum, root=tmp_path, algorithm="sac", value=True)
    with pytest.raises(ValueError, match="cannot be given with it"):
        BraxRecorder(pendulum, writer=trajscope.RunWriter(tmp_path, name="w"), root=tmp_path)
    with pytest.raises(TypeError):
        BraxRecorder(pendulum, root=tmp_path, num_env=4)  # a misspelt option is not ignored
    with pytest.raises(TypeError):
        RecorderConfig(4)  # keyword-only
    with pytest.raises(TypeError, match="unknown recorder option"):
        RecorderConfig.of(num_env=4)
    with pytest.raises(ValueError, match="live_chunk_steps"):
        RecorderConfig.of(live_chunk_steps=1)  # each record checks its own fields
    with pytest.raises(ValueError, match="either the record or its options"):
        BraxRecorder(pendulum, root=tmp_path, live=LiveOptions(envs=2), live_chunk_steps=8)
    cfg = RecorderConfig.of(algorithm="sac", num_envs=2)
    assert cfg == RecorderConfig(trainer=TrainerOptions(algorithm="sac"), rollout=RolloutOptions(num_envs=2))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.rollout.num_envs = 3  # type: ignore[misc]
    assert (cfg.capture_source, cfg.capture_value) == ("eval", False)  # SAC's defaults, resolved openly
    with pytest.raises(ValueError, match="SAC does not have"):
        cfg.replace(source="rollout")  # contradictions across records are refused too
    assert RecorderConfig.of(**cfg.flat()) == cfg  # every option has one flat name
    rec = BraxRecorder(pendulum, cfg, root=tmp_path, name="c", num_envs=3)  # options replace the config's
    assert rec.config.rollout.num_envs == 3 and rec.config.trainer.algorithm == "sac"
    rec.close()
    assert not (tmp_path / "c" / "captures").exists() or not list((tmp_path / "c" / "captures").iterdir())


def test_one_call_train_wires_every_hook_and_records_the_training(pendulum, tmp_path, ppo_baseline, capsys):
    """trajscope.capture.train(ppo.train, env, **kwargs): the user's arguments as they are,
    every hook wired, what the analysis needs recorded, training unchanged."""
    from trajscope.capture import planned_steps, train
    from trajscope.format.training import ReturnSettings

    seen = []
    kwargs = {**PPO_KW, "progress_fn": lambda step, m: seen.append(step)}  # the user's own hook still runs
    make_policy, params, metrics = train(
        # num_envs as ppo_captured records: its rollout is compiled already (the live wrap is new)
        ppo.train,
        pendulum,
        capture=dict(root=tmp_path, name="one", num_envs=5, live=2),
        **kwargs,
    )
    _tree_equal(params, ppo_baseline)  # the marked eval env and every wrapper leave training as it was
    assert callable(make_policy) and "eval/episode_reward" in metrics and len(seen) == PPO_KW["num_evals"]
    run = trajscope.open_run(tmp_path / "one")
    assert len(run.captures) == PPO_KW["num_evals"] and run.live_status() is not None  # rollouts and live stream
    recorded = run.metadata["config"]["trajscope"]
    assert recorded["reward_scaling"] == 1.0 and recorded["discounting"] == 0.9  # brax's defaults, taken
    assert recorded["normalize_observations"] is True and recorded["episode_length"] == PPO_KW["episode_length"]
    assert run.metadata["config"]["num_timesteps"] == PPO_KW["num_timesteps"]
    assert run.metadata["network"]["kind"] == "ppo"
    settings = ReturnSettings.of_run(run.metadata)
    assert (settings.gamma, settings.reward_scaling, settings.note()) == (0.9, 1.0, None)
    out = capsys.readouterr().out
    planned = planned_steps("ppo", PPO_KW)
    assert planned is not None and planned >= PPO_KW["num_timesteps"]
    assert f"brax trains whole epochs: {planned:,} steps" in out or planned == PPO_KW["num_timesteps"]
    assert out.count("trajscope: step ") == PPO_KW["num_evals"] and "view with: trajscope view" in out


def test_a_run_without_its_discount_says_what_the_figures_assume(ppo_captured):
    """The hooks alone do not see train's discounting: value figures say what they assume."""
    from trajscope.format.training import ReturnSettings

    _, _, run, _ = ppo_captured
    settings = ReturnSettings.of_run(run.metadata)
    assert settings.assumed == ("discounting", "reward_scaling") and "assumed discounting 0.99" in settings.note()
    doc, _ = trajscope.analyse.analyse_run(run, write=False)
    assert "does not record its discounting or reward scaling" in doc["assumed"]
    # Given to the recorder, they are recorded and used.
    recorded = {"config": {"trajscope": {"discounting": 0.97, "reward_scaling": 10.0}}}
    assert ReturnSettings.of_run(recorded) == ReturnSettings(0.97, 10.0)


def test_trainers_and_registry_names_are_recognised():
    import functools

    from trajscope.capture import _train

    assert (
        _train.algorithm_of(ppo.train) == "ppo" and _train.algorithm_of(functools.partial(sac.train, seed=1)) == "sac"
    )
    with pytest.raises(ValueError, match=r"not brax's ppo\.train or sac\.train"):
        _train.algorithm_of(print)
    pytest.importorskip("mujoco_playground")
    env, name = _train.resolve_env("CartpoleBalance")
    assert name == "CartpoleBalance" and type(env).__name__ == "Balance"
    assert env._config.impl == "jax"  # not Warp, which is far slower on a CPU


def test_the_recorder_for_a_training_takes_its_arguments_and_the_users_options(pendulum, tmp_path):
    """What recorder_for takes from train's arguments and brax's defaults, and that the
    user's options (flat or a whole RecorderConfig) win over them."""
    import functools

    from trajscope.capture import RecorderConfig, recorder_for

    kw = dict(episode_length=80, reward_scaling=5.0, normalize_observations=True, num_timesteps=1000)
    rec = recorder_for(ppo.train, pendulum, capture=dict(root=tmp_path, name="a", num_envs=2), **kw)
    t = rec.config.trainer
    assert (t.episode_length, t.reward_scaling, t.discounting, t.normalize_observations) == (80, 5.0, 0.9, True)
    assert rec.config.rollout.num_envs == 2 and rec.config.run.config["num_timesteps"] == 1000
    rec.close()
    cfg = RecorderConfig.of(root=tmp_path, name="b", discounting=0.5, live=2)
    rec = recorder_for(functools.partial(ppo.train, discounting=0.97), pendulum, capture=cfg, **kw)
    assert rec.config.trainer.discounting == 0.5 and rec.config.live.envs == 2  # the user's config wins
    assert rec.config.trainer.reward_scaling == 5.0
    rec.close()
    # A partial's bound arguments are the training's too.
    rec = recorder_for(functools.partial(ppo.train, discounting=0.97), pendulum, capture=dict(root=tmp_path, name="c"))
    assert rec.config.trainer.discounting == 0.97
    rec.close()
