"""Bad input gets a clear error naming the file and the problem, and loses nothing else."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import trajscope
from conftest import simulate
from trajscope.store import FormatError, TrajscopeWarning, UnsupportedVersionError


@pytest.fixture
def run_dir(tmp_path, model):
    kw = simulate(model, T=5, E=2)
    with trajscope.RunWriter(tmp_path, name="r", model=model, strict=True) as w:
        for step in (0, 1, 2):
            w.add_capture(step=step, **kw)
    return tmp_path / "r"


def _cap_dir(run_dir, i):
    return run_dir / "captures" / trajscope.open_run(run_dir).captures[i].id


def _info_json(run_dir):
    p = subprocess.run(
        [sys.executable, "-m", "trajscope", "info", str(run_dir), "--json"], capture_output=True, text=True
    )
    return p.returncode, json.loads(p.stdout) if p.stdout else None, p.stderr


def test_corrupt_manifest_is_listed_as_a_problem(run_dir):
    d = _cap_dir(run_dir, 1)
    (d / "capture.json").write_text('{"format_version": "1.0", "capture_')
    run = trajscope.open_run(run_dir)
    assert [c.step for c in run.captures] == [0, 2]
    (p,) = run.problems
    assert p.path.endswith(f"{d.name}/capture.json") and "corrupt or truncated JSON" in p.problem
    rc, out, _ = _info_json(run_dir)
    assert rc == 1 and [c["step"] for c in out["captures"]] == [0, 2]
    assert out["problems"][0]["path"] == str(d / "capture.json")
    text = subprocess.run(
        [sys.executable, "-m", "trajscope", "info", str(run_dir)], capture_output=True, text=True
    ).stdout
    assert f"{d / 'capture.json'}: corrupt or truncated JSON" in text


def test_truncated_array_file(run_dir):
    d = _cap_dir(run_dir, 0)
    f = d / "qvel.zs"
    f.write_bytes(f.read_bytes()[:-7])
    cap = trajscope.open_run(run_dir).capture(0)
    with pytest.raises(FormatError, match=r"qvel\.zs: truncated") as e:
        cap.load("qvel")
    assert e.value.path == str(f)
    with pytest.raises(FormatError, match="truncated"):
        cap.load("qvel", env=1)
    np.testing.assert_array_equal(cap.load("qpos").shape, (5, 2, 8))  # the rest still loads
    rc, out, _ = _info_json(run_dir)
    assert rc == 1 and out["problems"][0]["path"] == str(f) and "truncated" in out["problems"][0]["problem"]


def test_flipped_bytes_fail_the_checksum(run_dir):
    f = _cap_dir(run_dir, 2) / "qpos.zs"
    data = bytearray(f.read_bytes())
    data[-3] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="checksum mismatch"):
        trajscope.open_run(run_dir).capture(2).load("qpos")
    p = subprocess.run(
        [sys.executable, "-m", "trajscope", "info", str(run_dir), "--checksums"], capture_output=True, text=True
    )
    assert p.returncode == 1 and f"{f}: checksum mismatch" in p.stdout


def test_corrupt_npy_header(tmp_path, model):
    with trajscope.RunWriter(tmp_path, name="n", model=model, compress=False, strict=True) as w:
        w.add_capture(step=0, **simulate(model, T=5, E=2))
    f = _cap_dir(tmp_path / "n", 0) / "reward.npy"
    data = f.read_bytes()
    f.write_bytes(data[:10] + b"{'descr': <garbage" + data[28:])
    with pytest.raises(FormatError, match=r"reward\.npy: corrupt \.npy header"):
        trajscope.open_run(tmp_path / "n").capture(0).load("reward", env=0)


def test_corrupt_compressed_stream(run_dir):
    f = _cap_dir(run_dir, 1) / "qvel.zs"
    data = bytearray(f.read_bytes())
    data[3:9] = b"garbag"  # same length: only decompression or the checksum can tell
    f.write_bytes(bytes(data))
    cap = trajscope.open_run(run_dir).capture(1)
    with pytest.raises(FormatError, match=r"qvel\.zs: corrupt compressed data"):
        cap.load("qvel", env=0)
    with pytest.raises(FormatError, match=r"qvel\.zs: checksum mismatch"):
        cap.load("qvel")
    np.testing.assert_array_equal(
        cap.load("qvel", env=1), simulate(trajscope.open_run(run_dir).load_model(), T=5, E=2)["qvel"][:, 1]
    )


def test_unknown_major_version(run_dir):
    meta = json.loads((run_dir / "run.json").read_text())
    meta["format_version"] = "2.0"
    (run_dir / "run.json").write_text(json.dumps(meta))
    with pytest.raises(UnsupportedVersionError, match=r"run\.json: format version 2\.0 is not supported"):
        trajscope.open_run(run_dir)
    rc, _, err = _info_json(run_dir)
    assert rc == 2 and "format version 2.0 is not supported" in err
    # A newer minor version of the same major is read.
    meta["format_version"] = "1.7"
    meta["added_in_1_7"] = {"x": 1}
    (run_dir / "run.json").write_text(json.dumps(meta))
    assert len(trajscope.open_run(run_dir).captures) == 3


def test_unknown_capture_version_missing_array_and_wrong_shapes(run_dir):
    edits = {
        0: lambda m: m.update(format_version="9.1"),
        1: lambda m: m.update(arrays=[a for a in m["arrays"] if a["key"] != "qpos"]),
        2: lambda m: [a.update(shape=[5, 2, 7]) for a in m["arrays"] if a["key"] == "qpos"],
    }
    dirs = {i: _cap_dir(run_dir, i) for i in edits}
    for i, edit in edits.items():
        f = dirs[i] / "capture.json"
        m = json.loads(f.read_text())
        edit(m)
        f.write_text(json.dumps(m))
    run = trajscope.open_run(run_dir)
    assert run.captures == []
    problems = {p.id: p.problem for p in run.problems}
    assert "format version 9.1 is not supported" in problems[dirs[0].name]
    assert "required array 'qpos' is missing" in problems[dirs[1].name]
    assert "qpos has 7 entries on its nq axis but the run's model has nq=8" in problems[dirs[2].name]


def test_missing_run_and_missing_array_file(tmp_path, run_dir):
    with pytest.raises(FormatError, match=r"run\.json: no run here"):
        trajscope.open_run(tmp_path / "nothing")
    (_cap_dir(run_dir, 0) / "done.zs").unlink()
    with pytest.raises(FormatError, match="array file is missing"):
        trajscope.open_run(run_dir).capture(0).load("done")
    with pytest.raises(KeyError, match="has no array 'nope'"):
        trajscope.open_run(run_dir).capture(0).load("nope")


def test_incomplete_capture_folder_is_reported_not_read(run_dir):
    partial = run_dir / "captures" / "000000000099-eval-deadbeef"
    partial.mkdir()
    (partial / "qpos.npy").write_bytes(b"\x93NUMPY half")
    run = trajscope.open_run(run_dir)
    assert len(run.captures) == 3
    (p,) = run.problems
    assert p.incomplete and "no capture.json" in p.problem
    rc, out, _ = _info_json(run_dir)
    assert rc == 0 and out["problems"][0]["incomplete"]


def test_object_arrays_are_refused(tmp_path):
    f = tmp_path / "x.npy"
    np.save(f, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    from trajscope.format import codecs as _npy

    with pytest.raises(FormatError, match="object arrays are refused"):
        _npy.decode(str(f), f.read_bytes())


def test_invalid_captures_are_dropped_with_a_warning_or_raised_in_strict_mode(tmp_path, model):
    kw = simulate(model, T=4, E=2)
    bad = dict(kw, qvel=kw["qvel"][:, :, :3])
    with trajscope.RunWriter(tmp_path, name="s", model=model, strict=True) as w:
        with pytest.raises(ValueError, match=r"qvel has 3 entries on its nv axis but the run's model has nv=7"):
            w.add_capture(step=0, **bad)
        with pytest.raises(ValueError, match=r"reward has shape \(3, 2\), expected \(T, E\)"):
            w.add_capture(step=0, qpos=kw["qpos"], reward=kw["reward"][:3])
        with pytest.raises(ValueError, match="kind must be one of"):
            w.add_capture(step=0, qpos=kw["qpos"], kind="train")
    w = trajscope.RunWriter(tmp_path, name="n", model=model)
    with pytest.warns(TrajscopeWarning, match="capture dropped: qvel has 3 entries"):
        assert w.add_capture(step=0, **bad) is False
    assert w.add_capture(step=0, qpos=kw["qpos"], metrics={"x": np.zeros((4, 3))}) is False  # warned once, counted
    assert w.add_capture(step=1, **kw) is True
    w.close()
    assert (w.stats.dropped_invalid, w.stats.written) == (2, 1)


def test_damaged_model_file(run_dir):
    (run_dir / "model" / "model.mjb.z").write_bytes(b"not a model")
    run = trajscope.open_run(run_dir)
    assert len(run.captures) == 3  # the captures stay readable
    with pytest.raises(FormatError, match=r"model cannot be loaded: model\.mjb\.z: .*incorrect header"):
        run.load_model()
