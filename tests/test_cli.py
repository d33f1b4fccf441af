"""The command line as a user and a script would use it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

import trajscope
from conftest import simulate


def _run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "trajscope", *args], capture_output=True, text=True, env=env)


def test_info_json_contract(tmp_path, model):
    kw = simulate(model, T=6, E=3)
    with trajscope.RunWriter(tmp_path, name="r", model=model, env_name="fixture", algorithm="ppo", strict=True) as w:
        w.add_capture(step=5, metrics={"reward/a": np.ones((6, 3))}, **kw)
        w.add_capture(step=9, kind="live", qpos=kw["qpos"])
    p = _run("info", str(tmp_path / "r"), "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["format_version"] == trajscope.FORMAT_VERSION
    assert {k: out["model"][k] for k in ("nq", "nv", "nu", "nbody")} == {"nq": 8, "nv": 7, "nu": 2, "nbody": 4}
    assert out["model"]["geom_types"] == ["plane", "sphere", "capsule", "box"]
    (c0,) = out["captures"]  # live chunks are listed apart
    assert {k: c0[k] for k in ("index", "step", "kind", "num_envs", "num_steps", "metric_keys")} == {
        "index": 0,
        "step": 5,
        "kind": "eval",
        "num_envs": 3,
        "num_steps": 6,
        "metric_keys": ["reward/a"],
    }
    assert c0["mean_return"] == trajscope.open_run(tmp_path / "r").captures[0].mean_return
    (c1,) = out["live"]["chunks"]
    assert c1["kind"] == "live" and c1["step"] == 9 and c1["mean_return"] is None
    text = _run("info", str(tmp_path / "r")).stdout
    assert "nq=8 nv=7 nu=2 nbody=4" in text and "reward/a" in text and "live" in text


def test_ls_lists_runs_with_last_capture(tmp_path, model):
    kw = simulate(model, T=3, E=1)
    for name, steps in (("a", [1, 2]), ("b", [7])):
        with trajscope.RunWriter(tmp_path, name=name, model=model, env_name=f"env_{name}", strict=True) as w:
            for s in steps:
                w.add_capture(step=s, **kw)
    (tmp_path / "not_a_run").mkdir()
    out = json.loads(_run("ls", str(tmp_path), "--json").stdout)
    assert [(r["name"], r["num_captures"], r["last_capture"]["step"]) for r in out] == [("a", 2, 2), ("b", 1, 7)]
    text = _run("ls", str(tmp_path)).stdout
    assert "env_a" in text and "step 7" in text


def test_demo_writes_a_run_that_info_reads(tmp_path):
    p = _run("demo", "--scripted", "--root", str(tmp_path), "--name", "demo", "--no-serve")
    assert p.returncode == 0, p.stderr
    assert "6 capture(s)" in p.stdout
    run = trajscope.open_run(tmp_path / "demo")
    assert len(run.captures) == 6 and not run.problems and not run.check(checksums=True)
    assert "metrics/reward/upright" in run.captures[0].array_names


def test_console_script_and_help():
    p = subprocess.run(["trajscope", "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "info" in p.stdout and "ls" in p.stdout


def test_bad_arguments_fail_at_once_with_one_line_that_says_what_to_do(tmp_path):
    """Each bad path or environment exits non-zero before serving, with one clear line."""
    a_file = tmp_path / "capture.npy"
    a_file.write_bytes(b"x")
    cases = [
        (("view", str(a_file)), "is a file; give a run folder"),
        (("view", str(tmp_path / "typo")), "no such folder"),
        (("ls", str(tmp_path / "missing")), "no such folder"),
        (("info", str(tmp_path / "typo")), "no run here"),
        (("view", str(tmp_path), "--play-env", "gym:Cartpole"), "use playground:NAME[@jax|@warp] or brax:NAME"),
        (("view", str(tmp_path), "--play-env", "brax:inverted_pendulm"), "did you mean inverted_pendulum"),
    ]
    for args, message in cases:
        p = _run(*args)
        assert p.returncode == 2, (args, p.returncode, p.stdout, p.stderr)
        last = [line for line in p.stderr.splitlines() if line.strip() and "Warning" not in line][-1]
        assert message in last and "Traceback" not in p.stderr, (args, p.stderr)
