"""Saliency with known answers, and on a real tiny brax PPO run whose policy sees pixels:
the networks rebuilt from the run reproduce the captured actions and values, and their
saliency reaches the command line and the viewer."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import trajscope
import trajscope.analyse
import trajscope.demo
from trajscope import analyse
from trajscope.serve import PixelsPanel, SaliencyPanel

jax = pytest.importorskip("jax")
jnp = jax.numpy


def _linear(W):
    return lambda p, o: o @ p.T


def test_gradient_saliency_of_a_linear_policy_is_its_absolute_weights_summed():
    rng = np.random.default_rng(0)
    W = rng.normal(size=(3, 5)).astype(np.float32)
    W[:, 2] = 0.0  # an ignored input
    obs = rng.normal(size=(7, 5)).astype(np.float32)
    s = analyse.saliency(_linear(W), jnp.asarray(W), obs)
    assert s.shape == obs.shape and s.dtype == np.float32
    np.testing.assert_allclose(s, np.broadcast_to(np.abs(W).sum(0), obs.shape), rtol=1e-6)
    assert (s[:, 2] == 0).all()


def test_perturbation_saliency_has_the_closed_form_of_a_linear_policy_and_zero_where_ignored():
    rng = np.random.default_rng(1)
    W = rng.normal(size=(2, 4)).astype(np.float32)
    W[:, 3] = 0.0
    obs = rng.normal(size=(9, 4)).astype(np.float32)
    s = analyse.saliency(_linear(W), jnp.asarray(W), obs, method="perturbation")
    # Replacing feature k by its mean changes the output by W[:, k] * (x_k - mean_k).
    want = 0.5 * ((W[None, :, :] * (obs - obs.mean(0))[:, None, :]) ** 2).sum(1)
    np.testing.assert_allclose(s, want, rtol=1e-4, atol=1e-7)
    # Zero to rounding (XLA's matrix product may sum in another order once an input changes).
    assert s[:, 3].max() < 1e-9 * s[:, :3].max() and (s[:, :3] > 0).all()


def test_image_saliency_finds_the_pixels_the_policy_uses():
    """A policy that reads only the left half of an image, and a state it ignores."""
    rng = np.random.default_rng(2)
    img = rng.uniform(size=(4, 12, 16, 3)).astype(np.float32)
    Wi = np.zeros((2, 12, 16, 3), np.float32)
    Wi[:, :, :6] = rng.normal(size=(2, 12, 6, 3))

    def policy(p, o):
        return jnp.tanh(jnp.einsum("nhwc,ahwc->na", o["pixels/view"], p))

    obs = {"pixels/view": img, "state": rng.normal(size=(4, 3)).astype(np.float32)}
    g = analyse.saliency(policy, jnp.asarray(Wi), obs)
    assert g["pixels/view"].shape == img.shape and g["state"].shape == (4, 3)
    assert (g["state"] == 0).all() and (g["pixels/view"][:, :, 6:] == 0).all() and g["pixels/view"][:, :, :6].min() > 0
    p = analyse.saliency(policy, jnp.asarray(Wi), obs, method="perturbation", sigma_px=1.0, stride_px=1)
    pix = p["pixels/view"]
    assert pix.shape == img.shape and np.isfinite(pix).all() and (p["state"] == 0).all()
    # The Gaussian mask reaches a few pixels past the used half, not the far side.
    assert pix[:, :, :6].mean() > 1e3 * pix[:, :, 12:].mean()


def test_saliency_refuses_unknown_methods_and_ragged_batches():
    W = jnp.ones((1, 2))
    with pytest.raises(ValueError, match="method"):
        analyse.saliency(_linear(W), W, np.ones((3, 2)), method="lime")
    with pytest.raises(ValueError, match="leading"):
        analyse.saliency(lambda p, o: o["a"] + o["b"][:1], W, {"a": np.ones((3, 1)), "b": np.ones((2, 1))})


# ---------------------------------------------------------------- a real PPO run on pixels

pytest.importorskip("brax")


class PixelPendulum:
    """brax's inverted pendulum with a 12x16 image of the cart (bottom rows) and the pole's
    tip (top rows), rendered in JAX, beside the state vector."""

    def __init__(self, env):
        self._env = env
        self.unwrapped = env
        self.sys, self.dt, self.action_size = env.sys, env.dt, env.action_size
        self.observation_size = {"state": (env.observation_size,), "pixels/view_0": (12, 16, 3)}

    def _obs(self, s):
        q = s.pipeline_state.q
        cart = jnp.clip((q[0] + 1.0) / 2.0, 0, 1)
        tip = jnp.clip(0.5 + jnp.sin(q[1]), 0, 1)
        cols, rows = jnp.linspace(0, 1, 16), jnp.linspace(0, 1, 12)[:, None]
        a = jnp.exp(-(((cols - cart) / 0.1) ** 2))[None, :] * (rows > 0.7)
        b = jnp.exp(-(((cols - tip) / 0.1) ** 2))[None, :] * (rows < 0.3)
        img = jnp.stack([a, b, 0.5 * (a + b)], -1)
        return {"state": s.obs, "pixels/view_0": jnp.round(img * 255) / 255}

    def reset(self, rng):
        s = self._env.reset(rng)
        return s.replace(obs=self._obs(s))

    def step(self, state, action):
        s = self._env.step(state.replace(obs=state.obs["state"]), action)
        return s.replace(obs=self._obs(s))

    def __getattr__(self, name):
        return getattr(self._env, name)


def train_pixel_run(root: str) -> None:
    """A tiny brax PPO run on pixels (vision networks), captured into ``root/pix``."""
    from brax import envs
    from brax.training.agents.ppo import networks_vision
    from brax.training.agents.ppo import train as ppo

    from trajscope.capture import BraxRecorder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = PixelPendulum(envs.get_environment("inverted_pendulum"))
    factory = functools.partial(
        networks_vision.make_ppo_networks_vision,
        policy_hidden_layer_sizes=(16,),
        value_hidden_layer_sizes=(16,),
        cnn_output_channels=(4,),
        cnn_kernel_size=(3,),
        cnn_stride=(2,),
        policy_obs_key="state",
        value_obs_key="state",
    )
    rec = BraxRecorder(
        env,
        root=root,
        name="pix",
        num_envs=2,
        episode_length=30,
        network_factory=factory,
        normalize_observations=True,
        store_params="all",
        strict=True,
    )
    ppo.train(
        env,
        num_timesteps=2_000,
        num_evals=2,
        episode_length=30,
        num_envs=8,
        batch_size=8,
        num_minibatches=2,
        unroll_length=5,
        num_eval_envs=2,
        vision=True,
        normalize_observations=True,
        network_factory=factory,
        wrap_env_fn=rec.wrap_env_fn(),
        policy_params_fn=rec.policy_params_fn(),
        seed=1,
    )
    rec.close()


@pytest.fixture(scope="module")
def pixel_run(tmp_path_factory):
    """Trained in a fresh Python process: in three of five full suite runs on a 2-core CPU,
    XLA crashed (segfault or abort) compiling this vision network's evaluation late in the
    long suite process, never when the module ran alone; a child process keeps the suite's
    state out of it, and the training it checks is the same."""
    root = tmp_path_factory.mktemp("saliency")
    here = str(Path(__file__).parent)
    code = f"import sys; sys.path.insert(0, {here!r}); import test_saliency as t; t.train_pixel_run({str(root)!r})"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    return trajscope.open_run(root / "pix")


def test_the_rebuilt_networks_reproduce_the_captured_actions_and_values(pixel_run):
    run = pixel_run
    net = run.metadata["network"]
    assert net["kind"] == "ppo_vision" and net["normalize_observations"] is True
    assert net["kwargs"]["policy_obs_key"] == "state" and net["observation_size"]["pixels/view_0"] == [12, 16, 3]
    cap = run.capture(len(run.captures) - 1)
    policy = trajscope.analyse.capture_policy(run, cap)
    obs, action, value = cap.obs(), cap.load("action"), cap.load("value")
    assert isinstance(obs, dict) and set(obs) == {"state", "pixels/view_0"}
    T, E = action.shape[:2]
    flat = {k: v.reshape(T * E, *v.shape[2:]) for k, v in obs.items()}
    # Frame t holds the state's observation; the action of frame t+1 is the policy's answer.
    prev = {k: v[:-1].reshape(-1, *v.shape[2:]) for k, v in obs.items()}
    got = np.asarray(policy.action(prev))
    np.testing.assert_allclose(got, action[1:].reshape(-1, action.shape[-1]), atol=1e-5)
    assert policy.value is not None
    np.testing.assert_allclose(np.asarray(policy.value(flat)).reshape(T, E), value, atol=1e-5)


@pytest.mark.parametrize("method", ["gradient", "perturbation"])
def test_saliency_of_a_captured_episode_has_the_observations_shapes(pixel_run, method):
    run = pixel_run
    cap = run.capture(len(run.captures) - 1)
    policy = trajscope.analyse.capture_policy(run, cap)
    for target in ("policy", "value"):
        s = trajscope.analyse.capture_saliency(cap, 1, policy, target=target, method=method)
        obs = cap.obs(env=1)
        assert set(s) == set(obs)
        for k, v in s.items():
            assert v.shape == obs[k].shape and np.isfinite(v).all() and v.max() == pytest.approx(1.0), (target, k)
            assert (v >= 0).all() and (v > 0).mean() > 0.05, (target, k)


def test_a_saliency_picture_reads_alone_with_title_ticks_and_colour_bar():
    from trajscope.serve import feature_map, saliency_figure, step_ticks

    flat = np.linspace(0, 1, 40 * 6).reshape(40, 6)  # 40 steps, 6 features
    raw = feature_map(flat)
    pic = saliency_figure(
        raw,
        title="state: features by step",
        x_label="step",
        x_ticks=step_ticks(range(100, 140)),
        y_label="feature",
        y_ticks=[((i + 0.5) / 6, f"[{i}]") for i in range(6)],
    )
    H, W = raw.shape[:2]
    assert pic.shape[0] > H + 40 and pic.shape[1] > W + 40  # room for the title, ticks, labels, bar
    assert (pic[:20] < 128).any()  # the title is drawn above the map
    left = pic[:, :50]
    assert (left < 128).any()  # tick labels and the axis label on the left
    # The colour bar under the map runs from black through red and yellow to white.
    below = pic[-30:]
    reds = (below[..., 0] > 200) & (below[..., 1] < 80) & (below[..., 2] < 80)
    yellows = (below[..., 0] > 200) & (below[..., 1] > 200) & (below[..., 2] < 80)
    assert reds.any() and yellows.any()
    assert [t for _, t in step_ticks(range(100, 140))][::4] == ["100", "139"]


def test_the_saliency_command_writes_overlays_and_refuses_runs_it_cannot_rebuild(pixel_run, tmp_path):
    import imageio.v3 as iio

    out = tmp_path / "sal"
    cmd = [sys.executable, "-m", "trajscope", "saliency", pixel_run.url, "--out", str(out), "--steps", "0:5"]
    p = subprocess.run([*cmd, "--json"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["capture"] == len(pixel_run.captures) - 1 and len(doc["mean_saliency"]["state"]) == 4
    pngs = sorted(out.glob("pixels_view_0_t*.png"))
    assert [x.name for x in pngs] == [f"pixels_view_0_t{t:05d}.png" for t in range(5)]
    img = iio.imread(pngs[0])
    assert img.shape[0] >= 192 and img.shape[2] == 3 and img.std() > 0
    assert (img[:18] == 255).mean() < 0.99  # a title over the picture, not a bare heat map
    features = iio.imread(out / "state_features_by_step.png")
    assert (features[:, :40] < 128).any()  # feature labels on the left
    # A run written through the generic API does not say how to rebuild its networks.
    plain = trajscope.demo.write_demo_run(tmp_path, name="plain", checkpoints=1)
    p = subprocess.run([*cmd[:4], str(plain), "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert p.returncode == 2 and "does not describe its networks" in p.stderr


def test_the_viewer_shows_saliency_over_pixels_and_bars_for_state(pixel_run):
    from test_serve import _free_port
    from trajscope.serve import Viewer

    viewer = Viewer(pixel_run.url, port=_free_port())
    try:
        viewer.load_capture(len(pixel_run.captures) - 1)
        plain = viewer.panel(PixelsPanel).images["pixels/view_0"].image.copy()
        viewer.panel(SaliencyPanel).on.value = True
        assert not viewer.errors, viewer.errors
        strips = viewer.panel(SaliencyPanel).overlay_strips
        assert strips["pixels/view_0"].shape == viewer.shown.pixels["pixels/view_0"].shape
        shown = viewer.panel(PixelsPanel).images["pixels/view_0"]
        assert "saliency" in shown.label and not np.array_equal(shown.image, plain)
        bars = viewer.panel(SaliencyPanel).bars
        assert bars is not None and bars.label.startswith("top: state[")
        viewer.panel(SaliencyPanel).target.value = "value"
        viewer.show_step(3)
        assert not viewer.errors and "value" in {k[2] for k in viewer.panel(SaliencyPanel).cache}
    finally:
        viewer.close()
