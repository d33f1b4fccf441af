"""The run analyses against known answers: planted shifts, a perfect value function,
planted behaviours; and bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from trajscope import analyse


def _source(index, arrays, *, step=None, reset_frame=True):
    return analyse.CaptureSource(
        index=index,
        step=index * 1000 if step is None else step,
        names=tuple(arrays),
        load=lambda n, a=arrays: a[n],
        reset_frame=reset_frame,
    )


def _gauss(rng, T, E, d, shift=0.0):
    return {"qpos": rng.normal(size=(T, E, d)) + shift}


def test_same_distribution_stays_below_the_noise_floor_a_shifted_one_goes_above():
    rng = np.random.default_rng(0)
    caps = [_source(i, _gauss(rng, 200, 8, 5)) for i in range(2)]
    caps.append(_source(2, _gauss(rng, 200, 8, 5, shift=1.5)))
    doc, arrays = analyse.analyse(caps, analyse.AnalysisConfig(codebook=16))
    same, moved = doc["captures"][1], doc["captures"][2]
    assert same["shift_prev"] < same["shift_prev_floor"] and same["shift_prev_p"] >= 0.05
    assert moved["shift_first"] > moved["shift_first_floor"] and moved["shift_first_p"] < 0.01
    assert moved["shift_first"] > 0.3 and moved["units"] == 8  # the environments are the units
    assert doc["embedding"]["method"] == "pca" and doc["embedding"]["points"] == len(arrays["points"]) == 3 * 1600
    assert arrays["point_capture_env_t"].shape == (4800, 3)
    # Every state is placed in one map: the shifted capture sits apart along its first axis.
    pc = arrays["point_capture_env_t"][:, 0]
    m = [arrays["points"][pc == i].mean(axis=0) for i in range(3)]
    assert np.linalg.norm(m[2] - m[0]) > 5 * np.linalg.norm(m[1] - m[0])


def _smooth(rng, T=400, E=16, shift=0.0, new_mode=0.0):
    """Each environment a slow oscillation of its own amplitude, frequency and phase (its
    states strongly correlated in time), drawn from one distribution per call; ``shift``
    moves every environment's mean, ``new_mode`` sends that share of them somewhere new."""
    t = np.arange(T)[:, None]
    amp, freq, phase = rng.uniform(0.5, 1.5, E), rng.uniform(0.005, 0.03, E), rng.uniform(0, 2 * np.pi, E)
    x = amp * np.sin(2 * np.pi * freq * t + phase) + shift
    q = np.stack([x, 20 * np.gradient(x, axis=0)], -1)
    q[:, : round(new_mode * E), 0] += 4.0
    return {"qpos": q + rng.normal(0, 0.02, q.shape)}


def test_smooth_trajectories_of_one_behaviour_are_not_flagged_more_than_the_test_level():
    """The old floor (random halves of a capture's states) called such captures 6 to 15
    times the floor apart. Resampling environments: at the 5% level, at most 10% of pairs of
    same-behaviour captures are flagged (the test's level, with room for 30 pairs)."""
    flagged = []
    for seed in range(30):
        rng = np.random.default_rng(seed)
        doc, _ = analyse.analyse([_source(i, _smooth(rng, T=200)) for i in range(2)], analyse.AnalysisConfig())
        flagged.append(doc["captures"][1]["shift_prev_p"] < 0.05)
    assert np.mean(flagged) <= 0.10, np.mean(flagged)


def test_the_trial_case_and_planted_changes_through_the_command_line(tmp_path):
    """Four captures of the same behaviour: no shift is significant. A shifted mean, and a
    new region visited by a quarter of 32 environments: both are."""
    import json
    import subprocess
    import sys

    import mujoco

    import trajscope

    model = mujoco.MjModel.from_xml_string(
        "<mujoco><worldbody><body><joint type='slide'/><joint type='hinge'/><geom size='.1'/></body>"
        "</worldbody></mujoco>"
    )
    rng = np.random.default_rng(100)
    with trajscope.RunWriter(tmp_path, name="same", model=model, strict=True) as w:
        for i in range(4):
            w.add_capture(step=1000 * i, **_smooth(rng))
    with trajscope.RunWriter(tmp_path, name="planted", model=model, strict=True) as w:
        w.add_capture(step=0, **_smooth(rng, E=32))
        w.add_capture(step=1000, **_smooth(rng, E=32, shift=0.5))
        w.add_capture(step=2000, **_smooth(rng, E=32, shift=0.5, new_mode=0.25))

    def analysed(name):
        cmd = [sys.executable, "-m", "trajscope", "analyse", str(tmp_path / name), "--json", "--features", "qpos"]
        p = subprocess.run(cmd, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)["captures"]

    same = analysed("same")
    assert all(c["shift_prev_p"] >= 0.05 and c["shift_prev"] < c["shift_prev_floor"] for c in same[1:]), same
    planted = analysed("planted")
    assert planted[1]["shift_prev_p"] < 0.05 and planted[1]["shift_prev"] > planted[1]["shift_prev_floor"]
    assert planted[2]["shift_prev_p"] < 0.05  # the new region, seen by 8 of 32 environments


def test_a_value_equal_to_the_return_to_go_scores_perfectly():
    rng = np.random.default_rng(1)
    T, E, gamma = 120, 6, 0.9
    reward = np.zeros((T, E))
    reward[1:] = rng.uniform(0, 1, (T - 1, E))
    done = np.zeros((T, E), bool)
    done[70, 2] = True
    done[40, 4] = True
    g = analyse.returns_to_go(reward, done, gamma, reset_frame=True)
    # Against a loop: state t's return is the rewards of the steps after it, to the episode's end.
    for e in range(E):
        for t in (0, 39, 69, 100):
            want, k = 0.0, t + 1
            while k < T:
                want += gamma ** (k - t - 1) * reward[k, e]
                if done[k, e]:
                    break
                k += 1
            assert g[t, e] == pytest.approx(want)
    arrays = {"qpos": rng.normal(size=(T, E, 2)), "reward": reward, "done": done, "value": g * 10.0}
    cfg = analyse.AnalysisConfig(gamma=gamma, reward_scaling=10.0)
    doc, placed = analyse.analyse([_source(0, arrays)], cfg)
    c = doc["captures"][0]
    # A value that is the return to go makes no TD error anywhere (in return units) ...
    td, where = placed["point_td_error"], placed["point_capture_env_t"]
    assert np.nanmax(np.abs(td)) < 1e-9
    assert np.all(np.isfinite(td) == (where[:, 2] < T - 1))  # the last frame has no step after it
    # ... and one wrong value stands out as the largest TD errors, around that state.
    wrong = dict(arrays, value=arrays["value"].copy())
    wrong["value"][50, 1] += 50.0  # 5 in return units
    _, placed = analyse.analyse([_source(0, wrong)], cfg)
    i = int(np.nanargmax(np.abs(placed["point_td_error"])))
    env, t = placed["point_capture_env_t"][i, 1:]
    assert env == 1 and t in (49, 50) and abs(placed["point_td_error"][i]) == pytest.approx(5.0, rel=0.2)
    assert c["value_corr"] == pytest.approx(1.0) and c["value_bias"] == pytest.approx(0.0, abs=1e-12)
    assert c["value_explained_variance"] == pytest.approx(1.0)
    noisy = dict(arrays, value=(g + rng.normal(0, 0.5, g.shape)) * 10.0)
    c2 = analyse.analyse([_source(0, noisy)], cfg)[0]["captures"][0]
    assert c2["value_corr"] < 0.95 and abs(c2["value_bias"]) < 0.2
    # Intervals from resampling environments: around the figure, wider when noisier.
    lo, hi = c["value_corr_ci"]
    assert lo == pytest.approx(1.0) and hi == pytest.approx(1.0)
    lo2, hi2 = c2["value_corr_ci"]
    assert lo2 <= c2["value_corr"] <= hi2 and hi2 - lo2 > 1e-3
    assert c2["value_bias_ci"][0] <= c2["value_bias"] <= c2["value_bias_ci"][1]
    # A solved task: every state earns the same return. A correlation of noise against a
    # constant would read as a broken critic; none is given, and the entry says why.
    solved = dict(arrays, reward=np.ones((T, E)), done=np.zeros((T, E), bool))
    g1 = analyse.returns_to_go(solved["reward"], solved["done"], gamma, reset_frame=True)
    solved["value"] = (g1 + rng.normal(0, 1e-3, g1.shape)) * 10.0
    c3 = analyse.analyse([_source(0, solved)], cfg)[0]["captures"][0]
    assert c3["value_corr"] is None and c3["value_explained_variance"] is None
    assert "no variance" in c3["value_note"] and c3["value_bias"] == pytest.approx(0.0, abs=1e-2)


def test_planted_behaviours_come_out_as_separate_clusters():
    """Two distinct periodic motions (slow swing, fast jitter) in different captures."""
    T, E = 160, 4
    t = np.arange(T)[:, None, None]
    phase = np.arange(E)[None, :, None] * 0.7
    slow = {"qpos": np.concatenate([np.sin(0.1 * t + phase), np.cos(0.1 * t + phase)], axis=2)}
    fast = {"qpos": np.concatenate([0.3 * np.sign(np.sin(1.3 * t + phase)), 0.3 * np.cos(2.0 * t + phase)], axis=2)}
    for a in (slow, fast):
        a["action"] = np.diff(a["qpos"], axis=0, prepend=a["qpos"][:1])
    doc, _ = analyse.analyse([_source(0, slow), _source(1, fast)], analyse.AnalysisConfig(window=8))
    k = doc["clusters"]["k"]
    share_slow, share_fast = (np.array(c["cluster_share"]) for c in doc["captures"])
    # Each capture's windows fall in clusters the other's do not use.
    assert k >= 2
    assert (np.minimum(share_slow, share_fast).sum()) < 0.05, (share_slow, share_fast)
    for c in doc["captures"]:  # each share with an interval from resampling the environments
        ci = np.array(c["cluster_share_ci"])
        assert ci.shape == (k, 2) and np.all(ci[:, 0] <= np.array(c["cluster_share"]) + 1e-12)
        assert np.all(np.array(c["cluster_share"]) <= ci[:, 1] + 1e-12)
    typical = doc["clusters"]["typical"]
    assert all(len(w) >= 1 for w in typical)
    owners = {frozenset(w["capture"] for w in ws) for ws in typical}
    assert all(len(o) == 1 for o in owners)  # a cluster's typical windows come from one behaviour


def test_bad_input_gives_partial_results_and_clear_messages():
    rng = np.random.default_rng(2)
    good = _gauss(rng, 50, 4, 3)
    nan = _gauss(rng, 50, 4, 3)
    nan["qpos"][10:20, 1] = np.nan
    wide = _gauss(rng, 50, 4, 5)
    novalue = {"qqq": np.zeros((50, 4))}
    doc, arrays = analyse.analyse([_source(0, good), _source(1, nan), _source(2, wide), _source(3, novalue)])
    assert [c["index"] for c in doc["captures"]] == [0, 1]
    assert doc["embedding"]["skipped_nonfinite"] == 10
    text = " ".join(doc["problems"])
    assert "5 state features where the first capture has 3" in text and "none of the features" in text
    assert doc["captures"][0]["value_corr"] is None  # no value captured: no value figures
    one, _ = analyse.analyse([_source(0, good)])
    assert one["captures"][0]["shift_prev"] is None and "one capture" in " ".join(one["problems"])
    none, arrays = analyse.analyse([_source(0, novalue)])
    assert none["captures"] == [] and arrays == {}
    with pytest.raises(ValueError, match="method must be one of"):
        analyse.analyse([_source(0, good)], analyse.AnalysisConfig(method="nope"))


@pytest.mark.parametrize("method,package", [("tsne", "openTSNE"), ("umap", "umap")])
def test_tsne_and_umap_maps_place_every_state(method, package):
    pytest.importorskip(package)
    rng = np.random.default_rng(3)
    caps = [_source(i, _gauss(rng, 60, 4, 6, shift=2.0 * i)) for i in range(3)]
    doc, arrays = analyse.analyse(caps, analyse.AnalysisConfig(method=method, pool_size=300, codebook=8))
    assert doc["embedding"]["method"] == method and arrays["points"].shape == (720, 2)
    assert np.isfinite(arrays["points"]).all()
    pc = arrays["point_capture_env_t"][:, 0]
    m = np.array([arrays["points"][pc == i].mean(axis=0) for i in range(3)])
    spread = np.mean([arrays["points"][pc == i].std(axis=0).mean() for i in range(3)])
    assert np.linalg.norm(m[2] - m[0]) > spread  # far-apart state distributions, apart on the map


def test_a_damaged_capture_file_is_left_out_with_its_name(tmp_path):
    """Through the store: a truncated array file of one capture; the others are analysed."""
    import mujoco

    import trajscope
    from conftest import XML, simulate

    model = mujoco.MjModel.from_xml_string(XML)
    with trajscope.RunWriter(tmp_path, name="r", model=model, strict=True) as w:
        for step in range(3):
            w.add_capture(step=step, **simulate(model, T=20, E=2, seed=step))
    run = trajscope.open_run(tmp_path / "r")
    victim = tmp_path / "r" / "captures" / run.captures[1].id / "qpos.zs"
    victim.write_bytes(victim.read_bytes()[:20])
    doc, arrays = analyse.analyse_run(run)
    assert [c["step"] for c in doc["captures"]] == [0, 2]
    assert any("capture 1 (step 1): unreadable" in p and "qpos.zs" in p for p in doc["problems"]), doc["problems"]
    assert run.analysis() is not None and len(arrays["points"]) > 0


def test_same_start_checkpoints_are_compared_env_by_env():
    """Two checkpoints from the same starts: where each environment's trajectories part, its
    return difference, whether the mean difference is beyond noise, and the reward terms
    that changed most."""
    rng = np.random.default_rng(3)
    T, E = 60, 8
    q = np.cumsum(rng.normal(0, 0.1, (T, E, 3)), axis=0)
    parts = [5, 10, 15, 20, 25, 30, 35, 40]
    q2 = q.copy()
    for e, t in enumerate(parts):
        q2[t:, e] += 0.5  # env e's trajectory leaves the first one's at step t
    reward = rng.uniform(0, 1, (T, E))
    a = {"qpos": q, "reward": reward, "metrics/reward/upright": reward, "metrics/reward/effort": 0 * reward}
    b = {
        "qpos": q2,
        "reward": reward + 0.5,
        "metrics/reward/upright": reward + 0.5,
        "metrics/reward/effort": 0.01 + 0 * reward,
    }
    same = {"same": True, "seed": 0}
    caps = [
        analyse.CaptureSource(index=i, step=i, names=tuple(x), load=lambda n, x=x: x[n], reset_frame=True, starts=same)
        for i, x in enumerate((a, b))
    ]
    doc, _ = analyse.analyse(caps, analyse.AnalysisConfig(features=("qpos",)))
    paired = doc["captures"][1]["paired_prev"]
    assert paired["compared_with"] == 0 and paired["parts_at"] == parts
    np.testing.assert_allclose(paired["return_diff"], np.full(E, 0.5 * T))
    assert paired["return_diff_p"] < 0.05  # every environment gained: beyond noise
    assert [t["name"] for t in paired["terms"]] == ["reward/upright", "reward/effort"]  # largest change first
    assert paired["terms"][0]["mean_change"] == pytest.approx(0.5)
    # Fresh starts are not compared env by env: their environments are not the same ones.
    fresh = [dataclasses.replace(c, starts={"same": False, "seed": 0}) for c in caps]
    doc, _ = analyse.analyse(fresh, analyse.AnalysisConfig(features=("qpos",)))
    assert "paired_prev" not in doc["captures"][1]


def test_every_reward_term_is_triaged_with_its_worst_env_and_step():
    """30 reward terms (mjlab's bars stop at 20): each one's spread over the environments and
    its worst environment and step, planted."""
    rng = np.random.default_rng(5)
    T, E = 50, 8
    arrays = {"qpos": rng.normal(size=(T, E, 2)), "reward": rng.uniform(0.5, 1.0, (T, E))}
    for j in range(30):
        m = rng.uniform(0.5, 1.0, (T, E))
        m[:, j % E] -= 0.3  # env j % 8 is the worst for term j ...
        m[7 + j % 40, j % E] = -5.0  # ... and its worst step is 7 + j
        m[0] = -9.0  # the reset frame (no action taken there), lower still: never the worst
        arrays[f"metrics/reward/term{j:02d}"] = m
    doc, _ = analyse.analyse([_source(0, arrays)], analyse.AnalysisConfig(features=("qpos",)))
    terms = doc["captures"][0]["terms"]
    assert len(terms) == 31 and "reward" in terms
    for j in range(30):
        t = terms[f"reward/term{j:02d}"]
        assert (t["worst_env"], t["worst_step"], t["worst_value"]) == (j % E, 7 + j, -5.0)
        assert t["p10"] <= t["median"] <= t["p90"]
    # Without a reset frame, frame 0 is a step like any other.
    doc, _ = analyse.analyse([_source(0, arrays, reset_frame=False)], analyse.AnalysisConfig(features=("qpos",)))
    assert doc["captures"][0]["terms"]["reward/term00"]["worst_step"] == 0


def test_new_captures_are_placed_into_the_existing_map_without_refitting(tmp_path):
    """The live map: captures written after an analysis are placed into its map (the same
    projection: a capture identical to the first lands exactly on it), with their shifts."""
    import mujoco

    import trajscope

    model = mujoco.MjModel.from_xml_string(
        "<mujoco><worldbody><body><joint type='slide'/><joint type='hinge'/><geom size='.1'/></body>"
        "</worldbody></mujoco>"
    )
    rng = np.random.default_rng(11)
    first = _smooth(rng, T=100, E=8)
    with trajscope.RunWriter(tmp_path, name="live", model=model, strict=True) as w:
        w.add_capture(step=0, **first)
        w.add_capture(step=1000, **_smooth(rng, T=100, E=8, shift=1.0))
    run = trajscope.open_run(tmp_path / "live")
    _, arrays0 = analyse.analyse_run(run)
    with trajscope.RunWriter(tmp_path, name="live", model=model, strict=True) as w:
        w.add_capture(step=2000, **first)  # the first behaviour again
    run.refresh()
    doc, arrays = analyse.analyse_run(run, refit=False)
    assert doc["map"] == {"fitted_on": [0, 1], "placed_since": [2]}
    n0 = len(arrays0["points"])
    np.testing.assert_array_equal(arrays["points"][:n0], arrays0["points"])  # the map did not move
    pc = arrays["point_capture_env_t"]
    again, orig = arrays["points"][pc[:, 0] == 2], arrays["points"][pc[:, 0] == 0]
    np.testing.assert_allclose(np.sort(again, axis=0), np.sort(orig, axis=0), atol=1e-5)
    new = doc["captures"][-1]
    assert new["shift_first"] == pytest.approx(0.0, abs=1e-9) and new["shift_prev_p"] < 0.05
    assert run.analysis().result["map"]["placed_since"] == [2]  # stored
    # A refit fits the map on all three again.
    doc, _ = analyse.analyse_run(run)
    assert doc["map"] == {"fitted_on": [0, 1, 2], "placed_since": []}
