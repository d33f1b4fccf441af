"""Play: a stored policy run on the host from a captured state, in the real environment."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import trajscope

pytest.importorskip("brax")
import jax
from brax.training.acme import running_statistics
from brax.training.agents.ppo import networks as ppo_networks
from mujoco_playground import registry

from trajscope.capture import BraxRecorder
from trajscope.play import Player, PlayUnavailable
from trajscope.serve import PlayPanel, ScenePanel


def _randomize(model, rng):
    @jax.vmap
    def one(key):
        return model.body_mass * jax.random.uniform(key, (model.nbody,), minval=0.5, maxval=1.5)

    mass = one(rng)
    in_axes = jax.tree_util.tree_map(lambda x: None, model).tree_replace({"body_mass": 0})
    return model.tree_replace({"body_mass": mass}), in_axes


@pytest.fixture(scope="module")
def played(tmp_path_factory):
    """Two checkpoints of a PPO policy over CartpoleBalance (impl='jax'), each environment
    with its own randomised masses, captured through brax's public policy_params_fn hook."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = registry.load("CartpoleBalance", config_overrides={"impl": "jax"})
    nets = ppo_networks.make_ppo_networks(
        env.observation_size, env.action_size, preprocess_observations_fn=running_statistics.normalize
    )
    make_policy = ppo_networks.make_inference_fn(nets)
    spec = jax.ShapeDtypeStruct((env.observation_size,), np.float32)
    root = tmp_path_factory.mktemp("play")
    rec = BraxRecorder(
        env,
        root=root,
        name="p",
        num_envs=3,
        episode_length=60,
        normalize_observations=True,
        randomization_fn=_randomize,
        strict=True,
        video_every=1,  # the visual log: every capture to an MP4 in the run (test_training_videos...)
        video_envs=2,
        on_video=lambda url, step: videos.append((url, step)),
    )
    videos = []
    hook = rec.policy_params_fn()
    for step, seed in ((0, 0), (1000, 1)):
        key = jax.random.PRNGKey(seed)
        params = (running_statistics.init_state(spec), nets.policy_network.init(key), nets.value_network.init(key))
        hook(step, make_policy, params)
    rec.close()
    run = trajscope.open_run(root / "p")
    run.videos_handed_off = videos
    run.video_log = rec.video_log
    return env, run


def test_training_videos_are_stored_in_the_run_and_handed_off(played):
    """BraxRecorder(video_every=1): each capture rendered off the training loop, its first
    two environments tiled, stored as videos/<capture id>.mp4, handed to on_video."""
    imageio = pytest.importorskip("imageio.v2")
    pytest.importorskip("imageio_ffmpeg")
    _, run = played
    assert run.video_log.failures == 0, run.video_log.last_failure
    videos = run.videos()
    assert set(videos) == {c.id for c in run.captures}
    assert sorted(step for _, step in run.videos_handed_off) == [c.step for c in run.captures]
    assert {url for url, _ in run.videos_handed_off} == set(videos.values())
    reader = imageio.get_reader(videos[run.captures[-1].id])
    n = reader.count_frames()
    first, last = reader.get_data(0), reader.get_data(n - 1)
    assert n == run.captures[-1].num_steps and first.shape == (240, 640, 3)  # two 320 x 240 tiles
    assert np.abs(first.astype(int) - last).mean() > 0.5


def test_playing_the_stored_policy_reproduces_the_captured_trajectory(played):
    """From a captured frame of environment 1 (its own masses), the stored deterministic
    policy of that checkpoint, stepped by the environment itself on the host, retraces the
    captured states and actions for 40 steps."""
    env, run = played
    cap = run.capture(-1)
    q, qd, a = cap.load("qpos", env=1), cap.load("qvel", env=1), cap.load("action", env=1)
    assert not np.allclose(cap.load("model_fields/body_mass")[1], env.mj_model.body_mass)
    player = Player(run, env)
    player.use_policy(cap.info)
    t0 = 10
    first = player.start(cap.info, env_index=1, t=t0)
    np.testing.assert_array_equal(first.qpos, q[t0])
    for k in range(1, 41):
        f = player.step()
        assert f.t == k
        np.testing.assert_allclose(f.action, a[t0 + k], atol=1e-4, err_msg=f"action at step {t0 + k}")
        np.testing.assert_allclose(f.qpos, q[t0 + k], atol=1e-4, err_msg=f"qpos at step {t0 + k}")
        np.testing.assert_allclose(f.qvel, qd[t0 + k], atol=1e-3, err_msg=f"qvel at step {t0 + k}")
    # Under the nominal masses instead, the same start drifts away: the fields are applied.
    nominal = Player(run, env)
    nominal.use_policy(cap.info)
    nominal.start(cap.info, env_index=1, t=t0)
    nominal._model = nominal._base_model
    drift = max(float(np.abs(nominal.step().qvel - qd[t0 + k + 1]).max()) for k in range(20))
    assert drift > 1e-3
    # reset goes back to the captured frame; the same steps again give the same states.
    assert player.reset().t == 0
    np.testing.assert_allclose(player.step().qpos, q[t0 + 1], atol=1e-4)


def test_hot_swap_push_and_bad_requests(played):
    env, run = played
    early, late = run.captures[0], run.captures[-1]
    player = Player(run, env)
    with pytest.raises(PlayUnavailable, match="no policy"):
        player.action(np.zeros(env.observation_size))
    player.use_policy(early)
    player.start(early, env_index=0, t=5)
    obs = player.state.obs
    a_early = player.action(obs)
    np.testing.assert_allclose(a_early, run.capture(early).load("action", env=0)[6], atol=1e-4)
    player.use_policy(late)  # hot swap: the other checkpoint acts from the same state
    assert player.policy_capture.id == late.id
    assert not np.allclose(player.action(obs), a_early)
    # A push on the pole (body 2) moves it away from where the unpushed play goes.
    free = [player.step().qvel.copy() for _ in range(5)]
    player.reset()
    player.push(2, force=(30.0, 0.0, 0.0))
    pushed = [player.step().qvel.copy() for _ in range(5)]
    assert np.abs(pushed[-1] - free[-1]).max() > 0.1
    player.push(None)
    with pytest.raises(ValueError, match="out of range"):
        player.push(0, force=(1, 0, 0))
    with pytest.raises(PlayUnavailable, match="out of range"):
        player.start(late, env_index=7, t=0)
    with pytest.raises(PlayUnavailable, match="out of range"):
        player.start(late, env_index=0, t=10_000)
    with pytest.raises(KeyError):
        player.set_info("no such command", 1.0)
    key = sorted(player.state.info)[0]
    old = np.asarray(player.state.info[key])
    player.set_info(key, np.ones_like(old) * 3)
    np.testing.assert_array_equal(np.asarray(player.state.info[key]), np.ones_like(old) * 3)


def _until(cond, what, timeout_s=120.0):
    import time

    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_the_viewer_plays_from_the_shown_step_swaps_pushes_and_gives_the_scene_back(played):
    import mujoco

    from test_serve import _free_port
    from trajscope.serve import Viewer

    env, run = played
    viewer = Viewer(run.url, port=_free_port(), play_env=env)
    try:
        viewer.panel(ScenePanel).layout.value = "one"
        viewer.panel(ScenePanel).env.value = 2
        viewer.load_capture(len(run.captures) - 1)
        viewer.show_step(12)
        panel = viewer.panel(PlayPanel)
        panel.start()  # the "play from here" button
        assert panel.player.started_from == (run.captures[-1].id, 2, 12)
        _until(lambda: panel.player.t >= 15, "15 played steps")
        panel.toggle()  # pause
        _until(panel.idle.is_set, "the play loop to stop stepping")
        viewer.act(panel.draw_played, panel.player.frame())
        # The scene draws the played state, not the captured frame 12.
        model = run.load_model()
        d = mujoco.MjData(model)
        d.qpos[:] = panel.player.qpos()
        mujoco.mj_kinematics(model, d)
        for g, node in viewer.stage.nodes.items():
            np.testing.assert_allclose(node.batched_positions[0], d.geom_xpos[g], atol=1e-5)
        assert not np.allclose(panel.player.qpos(), run.capture(-1).load("qpos", env=2)[12])
        assert "paused" in panel.text.content and "step" in panel.text.content
        # Swap the policy to the first checkpoint; push the pole with a fixed force.
        panel.policy.value = panel.policy.options[1]
        assert panel.player.policy_capture.index == run.captures[0].index
        panel.body.value = panel.body.options[2]
        panel.force.value = (25.0, 0.0, 0.0)
        panel.hold.value = True
        assert panel.player.xfrc is not None and panel.player.xfrc[2, 0] == 25.0
        # Dragging the handle pulls the body with a spring scaled by its mass; letting go
        # returns to the fixed force chosen above.
        panel.drag.value = True
        assert panel.handle is not None and panel.handle.visible
        body_pos = panel.body_position(2)
        panel.on_handle("start")
        panel.handle.position = tuple(body_pos + np.array([0.1, 0.0, 0.0]))
        panel.on_handle("update")
        mass = float(model.body_mass[2])
        np.testing.assert_allclose(panel.player.xfrc[2, :3], [5.0 * mass, 0.0, 0.0], rtol=1e-5)
        panel.on_handle("end")
        assert panel.player.xfrc[2, 0] == 25.0
        panel.reset()
        assert panel.player.t == 0
        # Scrubbing the timeline hands the scene back to the replay.
        viewer.show_step(30)
        assert not panel.active
        d.qpos[:] = run.capture(-1).load("qpos", env=2)[30]
        mujoco.mj_kinematics(model, d)
        for g, node in viewer.stage.nodes.items():
            np.testing.assert_allclose(node.batched_positions[0], d.geom_xpos[g], atol=1e-5)
        assert not viewer.errors and not panel.errors, (viewer.errors, panel.errors)
    finally:
        viewer.close()
    # Without an environment the panel says what it needs; the viewer lives on.
    bare = Viewer(run.url, port=_free_port())
    try:
        bare.panel(PlayPanel).safely(bare.panel(PlayPanel).start)
        assert "needs the environment" in bare.panel(PlayPanel).text.content and not bare.panel(PlayPanel).active
    finally:
        bare.close()


def test_play_stops_where_training_would_have_ended_the_episode(played):
    """From step 55 of a 60-step episode, play pauses by itself 5 steps later and says why;
    resume plays on past the end on purpose."""
    from test_serve import _free_port
    from trajscope.serve import Viewer

    env, run = played
    viewer = Viewer(run.url, port=_free_port(), play_env=env)
    try:
        viewer.load_capture(len(run.captures) - 1)
        viewer.show_step(55)
        panel = viewer.panel(PlayPanel)
        panel.start()
        _until(lambda: not panel.playing, "play to pause at the episode's end")
        assert panel.player.t == 5 and "episode's length is reached" in panel.text.content.replace("\\", "")
        panel.toggle()  # resume: on past the end
        _until(lambda: panel.player.t >= 8, "3 more steps past the end")
        assert panel.playing
    finally:
        viewer.close()


def test_playing_from_a_capture_without_parameters_uses_the_checkpoint_before_it(played, tmp_path):
    """A NaN guard's capture (training environments: no parameters) plays with the newest
    checkpoint at or before its step; "step once" advances one step at a time."""
    import shutil

    from test_serve import _free_port
    from trajscope.serve import Viewer

    env, run = played
    shutil.copytree(run.path, tmp_path / "p")
    src = run.capture(-1)
    with trajscope.RunWriter(tmp_path, name="p", strict=True) as w:
        names = ("qpos", "qvel", "reward", "done", "action")
        arrays = {n: src.load(n)[:20] for n in names}
        assert w.add_capture(step=500, kind="nan", obs=src.load("obs/obs")[:20], **arrays)
    viewer = Viewer(str(tmp_path / "p"), port=_free_port(), play_env=env)
    try:
        nan = next(c for c in viewer.run.captures if c.kind == "nan")
        viewer.load_capture(nan.index)
        viewer.show_step(5)
        panel = viewer.panel(PlayPanel)
        panel.start()
        panel.toggle()
        _until(panel.idle.is_set, "the play loop to stop stepping")
        used = panel.player.policy_capture
        assert used.kind == "eval" and used.step == 0  # the checkpoint at or before step 500
        t = panel.player.t
        panel.step_once()
        assert panel.player.t == t + 1 and not panel.errors, panel.errors
    finally:
        viewer.close()
