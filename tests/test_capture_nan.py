"""The NaN guard on a real brax PPO training whose environment blows up at a known step."""

from __future__ import annotations

import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import trajscope

pytest.importorskip("brax")
from brax import envs
from brax.training.agents.ppo import train as ppo

from conftest import TINY_PPO
from trajscope.capture import BraxRecorder, NonFiniteTrainingError

KW = TINY_PPO  # the capture tests' tiny PPO
BLOW_UP_AT = 30
"""The step of every episode whose state is made non-finite."""


class BlowsUp:
    """inverted_pendulum whose joint positions become NaN at its 30th step since reset, over
    brax's auto-resets (its own counter in ``state.info``, which auto-reset keeps)."""

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
        ps = nstate.pipeline_state
        ps = ps.replace(q=jnp.where(t == BLOW_UP_AT, jnp.nan, ps.q))
        return nstate.replace(pipeline_state=ps, info={**nstate.info, "blowup_t": t})


@pytest.fixture(scope="module")
def env():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return BlowsUp(envs.get_environment("inverted_pendulum"))


def _train(env, rec):
    """PPO as brax runs it. Every environment blows up, so the parameters turn NaN and brax's
    own check that they are replicated fails at the very end of training: the guard lets
    training go on, brax stops it there."""
    seen = []
    with pytest.raises(AssertionError):
        ppo.train(
            env,
            wrap_env_fn=rec.wrap_env_fn(),
            policy_params_fn=rec.policy_params_fn(chain=lambda step, *_: seen.append(step)),
            **KW,
        )
    return seen


@pytest.fixture(scope="module")
def caught(env, tmp_path_factory):
    root = tmp_path_factory.mktemp("nan")
    rec = BraxRecorder(env, root=root, name="n", num_envs=2, episode_length=50, nan_guard=16, value=False)
    with rec:
        checkpoints = _train(env, rec)
    return rec, checkpoints, str(root / "n")


def test_the_steps_before_the_first_nan_are_caught_and_training_goes_on(caught):
    rec, checkpoints, path = caught
    run = trajscope.open_run(path)
    (nan,) = [c for c in run.captures if c.kind == "nan"]
    assert nan.num_steps == 16 and nan.num_envs == 8  # the guard's steps, its 8 affected envs
    assert nan.step == BLOW_UP_AT * KW["num_envs"]  # env steps when it happened
    cap = run.capture(nan)
    q = cap.load("qpos")
    assert np.isnan(q[-1]).all() and np.isfinite(q[:-1]).all()  # the injected step is the last kept
    assert np.abs(np.diff(q[:-1], axis=0)).max() > 0  # the steps before it: a moving pendulum
    assert nan.summary["first_nonfinite"]["qpos"] == {"t": 15, "env": 0}
    assert cap.manifest["attrs"]["first_nonfinite_field"] == "qpos"
    # Eight distinct training envs (an env whose episode ended at that very step was reset by
    # brax, so it is not among them).
    envs_caught = rec.nan.tripped["envs"]
    assert len(set(envs_caught)) == 8 and all(0 <= e < KW["num_envs"] for e in envs_caught)
    # Training went on past the NaN: checkpoints after it, each captured.
    assert max(checkpoints) > nan.step and [c.kind for c in run.captures].count("eval") == len(checkpoints)


def test_stop_raises_at_the_next_checkpoint(env, tmp_path):
    rec = BraxRecorder(
        env, root=tmp_path, name="s", num_envs=2, episode_length=50, nan_guard=8, nan_guard_stop=True, value=False
    )
    with rec, pytest.raises(NonFiniteTrainingError, match="became non-finite \\(qpos\\)"):
        ppo.train(env, wrap_env_fn=rec.wrap_env_fn(), policy_params_fn=rec.policy_params_fn(), **KW)
    kinds = [c.kind for c in trajscope.open_run(tmp_path / "s").captures]
    assert "nan" in kinds


def test_the_viewer_opens_on_the_step_before_the_first_nan(caught):
    import socket

    from trajscope.serve import Viewer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    v = Viewer(caught[2], port=port)
    try:
        assert v.shown.capture.info.kind == "nan" and v.t == 14  # the last finite step
        assert "NaN caught: qpos non-finite" in v.capture_menu.options[0]  # listed first
        assert v.capture_menu.value == v.capture_menu.options[0]
        assert not v.errors
    finally:
        v.close()
