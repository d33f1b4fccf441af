"""Everything written reads back bit-exact, whole or one environment at a time."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import trajscope
import trajscope.analyse
from conftest import XML, all_kinds, simulate


def _write(root, model, captures, **kw):
    with trajscope.RunWriter(root, name="r", model=model, env_name="fixture", strict=True, **kw) as w:
        for step, args in captures:
            assert w.add_capture(step=step, **args)
    assert w.stats.written == len(captures) and w.stats.dropped == 0
    return w


@pytest.mark.parametrize("compress", [True, False], ids=["zlib-shuffle", "npy"])
@pytest.mark.parametrize("url_kind", ["local", "file", "memory"])
def test_every_array_kind_round_trips(tmp_path, model, url_kind, compress):
    root = {"local": str(tmp_path), "file": f"file://{tmp_path}", "memory": f"memory://ts-{tmp_path.name}"}[url_kind]
    kw = all_kinds(model)
    _write(root, model, [(1000, kw)], compress=compress)
    run = trajscope.open_run(f"{root}/r")
    (info,) = run.captures
    assert (info.step, info.kind, info.num_steps, info.num_envs) == (1000, "eval", 7, 3)
    cap = run.capture(0)
    for name in ("qpos", "qvel", "act", "mocap_pos", "mocap_quat", "action", "reward", "done", "value"):
        got = cap.load(name)
        assert got.dtype == np.asarray(kw[name]).dtype
        np.testing.assert_array_equal(got, kw[name])
    for group in ("metrics", "info", "model_fields"):
        got = cap.group(group)
        assert set(got) == set(kw[group])
        for k, v in kw[group].items():
            np.testing.assert_array_equal(got[k], v)
    obs = cap.obs()
    assert isinstance(obs, dict) and set(obs) == set(kw["obs"])
    for k, v in kw["obs"].items():
        assert obs[k].dtype == v.dtype, k
        np.testing.assert_array_equal(obs[k], v)
    params = cap.group("params")
    np.testing.assert_array_equal(params["policy/hidden_0/kernel"], kw["params"]["policy"]["hidden_0"]["kernel"])
    np.testing.assert_array_equal(params["normalizer/mean"], kw["params"]["normalizer"]["mean"])
    # Images are stored as uint8 with their value range recorded.
    e = cap.entry("obs/pixels/depth_centred")
    assert e["stored_dtype"] == "uint8" and e["encoding"]["value_range"] == [-0.5, 0.5] and e["encoding"]["lossless"]
    assert cap.entry("obs/pixels/rgb_unit")["encoding"]["value_range"] == [0.0, 1.0]
    raw = cap.load("obs/pixels/rgb_unit", decode=False)
    np.testing.assert_array_equal(raw, np.rint(kw["obs"]["pixels/rgb_unit"] * 255).astype(np.uint8))
    # The model is stored exactly as trained.
    m2 = run.load_model()
    assert (m2.nq, m2.nv, m2.nu, m2.na, m2.nmocap) == (model.nq, model.nv, model.nu, model.na, model.nmocap)
    np.testing.assert_array_equal(m2.body_mass, model.body_mass)
    assert run.model_info["geom_types"] == ["plane", "sphere", "capsule", "box"]


@pytest.mark.parametrize("compress", [True, False], ids=["zlib-shuffle", "npy"])
def test_one_environment_reads_only_its_slice(tmp_path, model, compress):
    kw = all_kinds(model, T=5, E=4)
    _write(tmp_path, model, [(0, kw)], compress=compress)
    cap = trajscope.open_run(tmp_path / "r").capture(0)
    for e in range(4):
        traj = cap.trajectory(e)
        np.testing.assert_array_equal(traj["qpos"], kw["qpos"][:, e])
        np.testing.assert_array_equal(traj["obs/pixels/rgb_unit"], kw["obs"]["pixels/rgb_unit"][:, e])
        np.testing.assert_array_equal(cap.load("model_fields/geom_rgba", env=e), kw["model_fields"]["geom_rgba"][e])
        assert "params/policy/hidden_0/kernel" not in traj
    with pytest.raises(IndexError):
        cap.load("qpos", env=4)


def test_single_array_observation_and_minimal_capture(tmp_path, model):
    kw = simulate(model, T=4, E=2)
    obs = np.arange(4 * 2 * 5, dtype=np.float32).reshape(4, 2, 5)
    _write(tmp_path, model, [(0, {"qpos": kw["qpos"]}), (10, {"qpos": kw["qpos"], "obs": obs})])
    run = trajscope.open_run(tmp_path / "r")
    assert run.capture(0).obs() is None
    assert run.capture(0).names() == ["qpos"]
    np.testing.assert_array_equal(run.capture(1).obs(), obs)
    assert run.captures[0].mean_return is None


def test_float_images_that_are_not_on_the_uint8_grid(tmp_path, model):
    rng = np.random.default_rng(3)
    T, E = 3, 2
    qpos = simulate(model, T=T, E=E)["qpos"]
    smooth = rng.uniform(0, 1, (T, E, 4, 4, 3)).astype(np.float32)
    _write(tmp_path, model, [(0, {"qpos": qpos, "obs": {"pixels/a": smooth}})])
    _write(tmp_path, model, [(1, {"qpos": qpos, "obs": {"pixels/a": smooth}})], lossless_images=True)
    run = trajscope.open_run(tmp_path / "r")
    lossy, exact = run.capture(0), run.capture(1)
    assert lossy.entry("obs/pixels/a")["encoding"]["lossless"] is False
    np.testing.assert_allclose(lossy.load("obs/pixels/a"), smooth, atol=0.5 / 255 + 1e-7)
    np.testing.assert_array_equal(exact.load("obs/pixels/a"), smooth)


def test_listing_summary_matches_arrays(tmp_path, model):
    caps = [(s, simulate(model, T=6, E=3, seed=s)) for s in (30, 10, 20)]
    _write(tmp_path, model, caps)
    run = trajscope.open_run(tmp_path / "r")
    assert [c.step for c in run.captures] == [10, 20, 30]
    for c in run.captures:
        kw = dict(caps)[c.step]
        # Return of the first episode: rewards up to and including the first done, per env.
        returns = []
        for e in range(3):
            r = 0.0
            for t in range(6):
                r += float(kw["reward"][t, e])
                if kw["done"][t, e]:
                    break
            returns.append(r)
        assert c.mean_return == pytest.approx(np.mean(returns), rel=1e-6)


def test_nonfinite_states_are_stored_and_located(tmp_path, model):
    kw = simulate(model, T=6, E=3)
    kw["qvel"][4, 2, 1] = np.nan
    kw["reward"][2, 1] = np.inf  # env 1 never ends, so its return is infinite
    kw["metrics"] = {"m": np.zeros((6, 3))}
    kw["metrics"]["m"][2, 1] = np.nan
    _write(tmp_path, model, [(0, kw)])
    c = trajscope.open_run(tmp_path / "r").captures[0]
    assert c.summary["first_nonfinite"] == {
        "qvel": {"t": 4, "env": 2},
        "reward": {"t": 2, "env": 1},
        "metrics/m": {"t": 2, "env": 1},
    }
    assert c.mean_return is None  # an infinite return is not a number to show
    got = trajscope.open_run(tmp_path / "r").capture(0).load("qvel")
    assert np.isnan(got[4, 2, 1]) and np.isfinite(np.delete(got.ravel(), 4 * 3 * model.nv + 2 * model.nv + 1)).all()


def test_appending_and_concurrent_writers_do_not_collide(tmp_path, model):
    kw = simulate(model, T=3, E=2)
    _write(tmp_path, model, [(0, kw)])
    writers = [trajscope.RunWriter(tmp_path, name="r", model=model, strict=True) for _ in range(3)]
    threads = [
        threading.Thread(target=lambda w=w: [w.add_capture(step=100, qpos=kw["qpos"]) for _ in range(5)])
        for w in writers
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in writers:
        w.close()
    run = trajscope.open_run(tmp_path / "r")
    assert len(run.captures) == 16 and not run.problems
    assert len({c.id for c in run.captures}) == 16
    assert run.metadata["env_name"] == "fixture"  # the first writer's metadata is kept
    # Default names are unique, so two runs of the same environment sit side by side.
    a = trajscope.RunWriter(tmp_path, env_name="same", model=model)
    b = trajscope.RunWriter(tmp_path, env_name="same", model=model)
    a.close(), b.close()
    assert a.path != b.path
    assert {r.name for r in trajscope.list_runs(tmp_path)} >= {"r", a.name, b.name}


def test_root_defaults_to_env_var(tmp_path, model, monkeypatch):
    monkeypatch.setenv("TRAJSCOPE_DIR", str(tmp_path / "env_root"))
    with trajscope.RunWriter(name="x", model=model, strict=True) as w:
        w.add_capture(step=0, qpos=simulate(model, T=2, E=1)["qpos"])
    assert (tmp_path / "env_root" / "x" / "run.json").exists()


def test_model_from_mjcf_path_keeps_the_xml(tmp_path):
    p = tmp_path / "m.xml"
    p.write_text(XML)
    with trajscope.RunWriter(tmp_path / "runs", name="x", model=p, strict=True):
        pass
    run = trajscope.open_run(tmp_path / "runs" / "x")
    assert (tmp_path / "runs" / "x" / "model" / "model.xml").read_text() == XML
    assert run.load_model().nq == 8


def test_readers_see_captures_appear_while_writing(tmp_path, model):
    kw = simulate(model, T=3, E=2)
    w = trajscope.RunWriter(tmp_path, name="r", model=model, strict=True)
    w.add_capture(step=0, qpos=kw["qpos"])
    w.flush()
    run = trajscope.open_run(tmp_path / "r")
    assert len(run.captures) == 1
    w.add_capture(step=1, qpos=kw["qpos"])
    w.flush()
    new = run.refresh()
    assert [c.step for c in new] == [1] and len(run.captures) == 2
    assert run.refresh() == []
    w.close()


def test_a_format_1_0_run_still_opens(tmp_path):
    """A run written by trajscope's format 1.0 (kept in tests/data, made by that version's
    writer) reads with this reader: captures without a reset frame, arrays intact; and the
    viewer's summary figures are those it stored."""
    import shutil
    from pathlib import Path

    src = Path(__file__).parent / "data" / "format-1.0-run"
    run = trajscope.open_run(shutil.copytree(src, tmp_path / "old"))
    assert run.format_version == "1.0" and len(run.captures) == 2
    for info in run.captures:
        assert info.reset_frame is False and info.num_steps == 200
        cap = run.capture(info)
        cap.verify()
        assert cap.load("qpos").shape == (200, 2, run.model_info["nq"])
        returns = trajscope.analyse.episode_returns(cap.load("reward"), cap.load("done"))
        assert info.mean_return == pytest.approx(float(returns.mean()), rel=1e-6)
    assert not run.check(checksums=True)


def test_new_captures_say_whether_frame_0_is_the_reset(tmp_path, model):
    kw = simulate(model, T=6, E=2)
    with trajscope.RunWriter(tmp_path, name="r", model=model, strict=True) as w:
        w.add_capture(step=0, **kw)
        w.add_capture(step=1, reset_frame=True, **kw)
    a, b = trajscope.open_run(tmp_path / "r").captures
    assert (a.reset_frame, b.reset_frame) == (False, True)
    done_at = int(np.argmax(kw["done"][:, 0]))
    assert a.summary["episode_length"][0] == done_at + 1  # steps to the first done
    assert b.summary["episode_length"][0] == done_at  # frame 0 is no step


def test_smooth_trajectories_are_delta_coded_bit_exact_and_smaller(tmp_path, model):
    """Per-step arrays are stored as differences along time when that is smaller: simulated
    float32 positions (as JAX captures them) are; bits come back exactly (NaN, -0.0,
    infinities), whole and one environment at a time; noise is left as it is."""
    kw = simulate(model, T=200, E=3)
    rng = np.random.default_rng(0)
    kw["qpos"] = kw["qpos"].astype(np.float32)
    kw["qpos"][5, 1, 0] = np.float32(np.nan)
    kw["qpos"][6, 1, 0] = np.float32(-0.0)
    kw["qpos"][7, 2, 0] = np.float32(np.inf)
    kw["metrics"] = {"noise": rng.normal(size=(200, 3)).astype(np.float32)}
    _write(tmp_path, model, [(0, kw)])
    cap = trajscope.open_run(tmp_path / "r").capture(0)
    assert cap.entry("qpos")["codec"] == "zlib-shuffle-delta"
    assert cap.entry("metrics/noise")["codec"] == "zlib-shuffle"
    shuffled_only = len(trajscope.format.codecs.encode_zs(np.swapaxes(kw["qpos"], 0, 1).copy(), chunked=True)[0])
    assert cap.entry("qpos")["nbytes"] < shuffled_only
    got = cap.load("qpos")
    assert got.dtype == kw["qpos"].dtype
    np.testing.assert_array_equal(got.view(np.uint8), np.ascontiguousarray(kw["qpos"]).view(np.uint8))
    for e in range(3):
        np.testing.assert_array_equal(cap.load("qpos", env=e).view(np.uint8), kw["qpos"][:, e].copy().view(np.uint8))
    np.testing.assert_array_equal(cap.load("metrics/noise"), kw["metrics"]["noise"])
    cap.verify()


def test_observations_as_float16_only_when_asked_and_only_where_they_fit(tmp_path, model):
    """``obs_float16=True``: float observations come back as their dtype to float16's
    precision (NaN and infinities kept), images and every other array exactly; an
    observation float16 cannot hold stays exact. Off by default."""
    kw = simulate(model, T=120, E=2)
    rng = np.random.default_rng(1)
    state = rng.normal(size=(120, 2, 6)).astype(np.float32)
    state[3, 0, 1] = np.nan
    state[4, 1, 2] = -np.inf
    big = rng.normal(size=(120, 2, 2)).astype(np.float32)
    big[7, 0, 0] = 1e6  # beyond float16's 65504
    pixels = rng.integers(0, 256, size=(120, 2, 4, 5, 3), dtype=np.uint8)
    kw["obs"] = {"state": state, "big": big, "pixels/view": pixels}
    for name, opts in (("exact", {}), ("half", {"obs_float16": True})):
        _write(tmp_path / name, model, [(0, kw)], **opts)
    exact = trajscope.open_run(tmp_path / "exact" / "r").capture(0)
    half = trajscope.open_run(tmp_path / "half" / "r").capture(0)
    assert "encoding" not in exact.entry("obs/state")
    np.testing.assert_array_equal(exact.load("obs/state"), state)
    assert half.entry("obs/state")["stored_dtype"] == "float16"
    assert half.entry("obs/state")["encoding"]["kind"] == "float16"
    got = half.load("obs/state")
    assert got.dtype == np.float32 and got.shape == state.shape
    finite = np.isfinite(state)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(state))
    assert got[4, 1, 2] == -np.inf
    np.testing.assert_allclose(got[finite], state[finite], rtol=1e-3, atol=1e-4)
    assert not np.array_equal(got[finite], state[finite])  # it is lossy
    np.testing.assert_array_equal(half.load("obs/state", env=1), got[:, 1])
    assert "encoding" not in half.entry("obs/big")
    np.testing.assert_array_equal(half.load("obs/big"), big)
    np.testing.assert_array_equal(half.load("obs/pixels/view"), pixels)
    np.testing.assert_array_equal(half.load("qpos"), kw["qpos"])
    assert half.entry("obs/state")["nbytes"] < 0.7 * exact.entry("obs/state")["nbytes"]
    half.verify()


def test_derived_files_stay_inside_the_run(tmp_path, model):
    """RunWriter.write_file puts a file under the run (as training videos are) and refuses
    paths that would leave it; Run.videos() lists what is under videos/."""
    w = _write(tmp_path, model, [(0, simulate(model, T=3, E=1))])
    url = w.write_file("videos/abc.mp4", b"not really a video")
    assert (tmp_path / "r" / "videos" / "abc.mp4").read_bytes() == b"not really a video"
    assert trajscope.open_run(tmp_path / "r").videos() == {"abc": url}
    for bad in ("../escape.mp4", "/etc/passwd", "videos/../../x", "videos//x", "./x"):
        with pytest.raises(ValueError, match="inside the run"):
            w.write_file(bad, b"x")
    assert not (tmp_path / "escape.mp4").exists()
