"""The analyses of a real PPO training: the agent's behaviour moves away from where it
started as it learns, and its value function comes to predict what it gets."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

import trajscope

pytest.importorskip("brax")
from brax import envs
from brax.training.agents.ppo import train as ppo

from trajscope.capture import BraxRecorder
from trajscope.capture._demo import PPO_CONFIG

# The demo's PPO configuration (it learns inverted_pendulum), shortened.
PPO = {
    **PPO_CONFIG,
    "num_timesteps": 120_000,
    "num_evals": 5,
    "episode_length": 200,
    "num_envs": 64,
    "batch_size": 256,
    "num_minibatches": 4,
    "num_eval_envs": 8,
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("an")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = envs.get_environment("inverted_pendulum")
    rec = BraxRecorder(
        env, root=root, name="ppo", num_envs=8, episode_length=200, normalize_observations=True, config=PPO
    )
    with rec:
        ppo.train(env, policy_params_fn=rec.policy_params_fn(), **PPO)
    return str(root / "ppo")


def test_shift_grows_and_value_improves_as_the_policy_learns(trained):
    p = subprocess.run(
        [sys.executable, "-m", "trajscope", "analyse", trained, "--json"], capture_output=True, text=True, timeout=600
    )
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    run = trajscope.open_run(trained)
    returns = [c.mean_return for c in run.captures]
    assert returns[-1] > 3 * returns[0], returns  # it learned
    caps = doc["captures"]
    assert [c["step"] for c in caps] == [c.step for c in run.captures]
    assert {"step", "shift_prev", "shift_first", "noise_floor", "value_corr", "value_bias"} <= set(caps[0])
    assert {"shift_first_p", "shift_first_floor", "value_corr_ci"} <= set(caps[-1])
    assert set(doc["embedding"]) >= {"method", "points", "skipped_nonfinite"}
    # Behaviour moved away from the untrained policy's, beyond sampling noise over its 8
    # environments, and most at the end.
    first_shift = [c["shift_first"] for c in caps[1:]]
    assert caps[-1]["shift_first_p"] < 0.05 and first_shift[-1] > caps[-1]["shift_first_floor"]
    assert first_shift[-1] >= first_shift[0], first_shift
    # The value function learned what the returns are (the run's discount and reward scale
    # were read from the stored training config).
    assert doc["config"]["gamma"] == 0.97 and doc["config"]["reward_scaling"] == 10.0
    corr = [c["value_corr"] for c in caps]
    assert corr[-1] is not None and corr[-1] > 0.5 and corr[-1] > (corr[0] or -1.0), corr
    # Stored in the run, readable without recomputing.
    stored, arrays = run.analysis()
    assert stored["analysis"]["captures"] == caps
    assert arrays["points"].shape == (doc["embedding"]["points"], 2) and np.isfinite(arrays["points"]).all()
