"""The analyse room's summaries against plain Python loops."""

from __future__ import annotations

import numpy as np
import pytest

from trajscope import analyse


def test_episode_returns_and_lengths_against_a_loop():
    rng = np.random.default_rng(0)
    r = rng.normal(size=(20, 9))
    d = rng.uniform(size=(20, 9)) < 0.1
    got, lengths = analyse.episode_returns(r, d), analyse.episode_lengths(d)
    for e in range(9):
        want, n = 0.0, 20
        for t in range(20):
            want += r[t, e]
            if d[t, e]:
                n = t + 1
                break
        assert got[e] == pytest.approx(want)
        assert lengths[e] == n


def test_first_nonfinite_finds_the_earliest_step_against_a_loop():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 5, 4)).astype(np.float32)
    for t, e, i in ((17, 3, 2), (9, 4, 0), (9, 1, 3), (25, 0, 1)):
        x[t, e, i] = np.nan if i % 2 else np.inf
    want = next((t, e) for t in range(30) for e in range(5) if not np.isfinite(x[t, e]).all())
    assert analyse.first_nonfinite(x) == want == (9, 1)
    assert analyse.first_nonfinite(np.zeros((3, 2))) is None
    assert analyse.first_nonfinite(np.zeros((3, 2), np.int32)) is None


def test_summarize_names_every_per_step_array():
    T, E = 6, 3
    reward = np.ones((T, E), np.float32)
    done = np.zeros((T, E), bool)
    done[2, 1] = True
    obs = np.zeros((T, E, 2))
    obs[4, 2, 1] = np.nan
    s = analyse.summarize({"reward": reward, "done": done, "metrics/x": np.full((T, E), 2.0), "obs/state": obs})
    assert s["returns"] == [6.0, 3.0, 6.0] and s["mean_return"] == pytest.approx(5.0)
    assert s["episode_length"] == [6, 3, 6]
    assert s["metric_means"] == {"x": 2.0}
    assert s["first_nonfinite"] == {"obs/state": {"t": 4, "env": 2}}
