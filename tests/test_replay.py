"""A replay-buffer sample through the generic API: a prioritised buffer is stored, checked,
placed in the run's state map and drawn by priority; a click on one of its states replays
the nearest captured state."""

from __future__ import annotations

import types

import mujoco
import numpy as np
import pytest

import trajscope
import trajscope.analyse
from conftest import XML, simulate
from test_serve import _free_port
from trajscope.serve import AnalysisPanel


def _write(root, *, N=40):
    model = mujoco.MjModel.from_xml_string(XML)
    rng = np.random.default_rng(3)
    with trajscope.RunWriter(root, name="p", model=model, algorithm="custom-dqn", strict=True) as w:
        for i in range(2):
            kw = simulate(model, T=30, E=3, seed=i)
            w.add_capture(step=1000 * (i + 1), **kw)
        # The buffer holds states the last capture visited (before an episode's end: the
        # analyses place those), with priorities.
        d = kw["done"].astype(bool)
        live_t, live_e = np.nonzero(~((np.cumsum(d, axis=0) - d) > 0))
        pick = rng.integers(0, len(live_t), N)
        t, e = live_t[pick], live_e[pick]
        buffer = {
            "step": np.sort(rng.integers(0, 2000, N)),
            "qpos": kw["qpos"][t, e],
            "qvel": kw["qvel"][t, e],
            "priority": rng.uniform(0.1, 5.0, N).astype(np.float32),
        }
        w.add_capture(step=2001, buffer=buffer, **kw)
    return root / "p", buffer


def test_a_buffer_sample_is_checked(tmp_path):
    model = mujoco.MjModel.from_xml_string(XML)
    kw = simulate(model, T=5, E=2)
    with trajscope.RunWriter(tmp_path, name="b", model=model, strict=True) as w:
        with pytest.raises(ValueError, match="needs 'step'"):
            w.add_capture(step=0, buffer={"qpos": np.zeros((4, model.nq))}, **kw)
        with pytest.raises(ValueError, match="share their first axis"):
            w.add_capture(step=0, buffer={"step": np.arange(4), "reward": np.zeros(3)}, **kw)
        with pytest.raises(ValueError, match=r"expected \(N, nq="):
            w.add_capture(step=0, buffer={"step": np.arange(4), "qpos": np.zeros((4, model.nq + 1))}, **kw)
        with pytest.raises(ValueError, match="not among"):
            w.add_capture(step=0, buffer={"step": np.arange(4), "weights": np.zeros(4)}, **kw)


def test_a_prioritised_buffer_is_mapped_coloured_by_priority_and_picked(tmp_path):
    path, buffer = _write(tmp_path)
    run = trajscope.open_run(path)
    got = run.capture(2).group("buffer")
    for k, v in buffer.items():
        np.testing.assert_array_equal(got[k], v)
    doc, _ = trajscope.analyse.analyse_run(run)
    assert doc["buffer"] == {
        "capture": 2,
        "points": len(buffer["step"]),
        "skipped_nonfinite": 0,
        "oldest_step": int(buffer["step"].min()),
        "newest_step": int(buffer["step"].max()),
        "prioritised": True,
    }
    from trajscope.serve import Viewer

    viewer = Viewer(str(path), port=_free_port())
    try:
        panel = viewer.panel(AnalysisPanel)
        assert panel.wait(120) and panel.buffer_points is not None
        panel.show_map.value = True
        assert panel.buffer_map is not None
        # Brighter for higher priority: the colour ramp follows the priorities' order.
        lum = panel.buffer_colours().astype(float).sum(axis=1)
        order = np.argsort(buffer["priority"])
        assert lum[order[-1]] > lum[order[0]]
        # Each buffer state is a state of the last capture: clicked, that state is replayed.
        i = 7
        panel.on_buffer_pick(types.SimpleNamespace(instance_index=i))
        assert panel.picked is not None and not viewer.errors
        capture, env, t = panel.picked
        j = np.flatnonzero((panel.meta == [capture, env, t]).all(axis=1))[0]
        assert np.linalg.norm(panel.points[j] - panel.buffer_points[i]) < 1e-4
        frames = viewer.shown
        assert frames.capture.info.index == capture and viewer.t == t and frames.envs == [env]
        np.testing.assert_allclose(frames.qpos[t, 0], buffer["qpos"][i], atol=1e-6)
    finally:
        viewer.close()
