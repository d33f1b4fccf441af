"""A multi-process JAX training (``jax.distributed``: two CPU processes on 127.0.0.1)
writes one run: every process's captures and live chunks land, none clobbers another,
and the viewer shows them as one run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import simulate
from servers import free_port
from trajscope.store import RunWriter, open_run

WORKER = Path(__file__).with_name("multihost_worker.py")


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    pytest.importorskip("mujoco_playground")
    root = tmp_path_factory.mktemp("multihost")
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(i), str(port), str(root)],
            stdout=subprocess.PIPE,
            stderr=open(root / f"worker{i}.log", "wb"),
            text=True,
            env=env,
        )
        for i in range(2)
    ]
    outs = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=600)
            assert p.returncode == 0, (root / f"worker{procs.index(p)}.log").read_text()[-3000:]
            outs.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            p.kill()
    return root, outs


def test_every_process_writes_into_one_run(two_process_run):
    root, (p0, p1) = two_process_run
    assert p0["name"] == p1["name"]  # process 0's name, broadcast to the other
    assert (p0["process_index"], p1["process_index"]) == (0, 1)
    assert p0["theta_checksum"] == p1["theta_checksum"]  # the collective made them agree
    assert p0["dropped"] == p1["dropped"] == 0
    assert [d.name for d in root.iterdir() if d.is_dir()] == [p0["name"]]
    run = open_run(root / p0["name"])
    assert run.problems == []
    by_process = {i: [c for c in run.captures if c.process_index == i] for i in (0, 1)}
    assert [len(v) for v in by_process.values()] == [3, 3]
    assert [c.step for c in by_process[0]] == [c.step for c in by_process[1]]
    for c in run.captures:
        assert f"-p{c.process_index}-" in c.id
        assert run.capture(c).load("qpos").shape[1] == 3
    # Each process evaluates its own environments (its own reset keys).
    a, b = (run.capture(by_process[i][0]).load("qpos") for i in (0, 1))
    assert not np.array_equal(a, b)
    chunks = run.live_chunks()
    assert {c.process_index for c in chunks} == {0, 1}
    assert run.live_status() is not None  # written by process 0 alone
    assert run.metadata["writer"]["pid"] != 0
    out = subprocess.run(
        [sys.executable, "-m", "trajscope", "info", "--json", str(root / p0["name"])],
        capture_output=True,
        text=True,
        check=True,
    )
    assert sorted(c["process_index"] for c in json.loads(out.stdout)["captures"]) == [0, 0, 0, 1, 1, 1]


def test_viewer_shows_the_processes_as_one_run(two_process_run):
    from trajscope.serve import Viewer

    root, (p0, _) = two_process_run
    viewer = Viewer(str(root), port=free_port())
    try:
        assert list(viewer.runs) == [p0["name"]]
        labels = viewer.capture_menu.options
        assert len(labels) == 6 and sum("process 1" in x for x in labels) == 3
        viewer.act(viewer.load_capture, 0)
        viewer.act(viewer.load_capture, 5)
        assert viewer.errors == []
    finally:
        viewer.close()


def test_processes_prune_only_their_own_live_chunks(tmp_path, model):
    writers = [RunWriter(tmp_path, name="r", model=model, strict=True, keep_live=2, process_index=i) for i in (0, 1)]
    for step in range(4):
        for w in writers:
            w.add_capture(step=step, kind="live", **simulate(model, T=3, E=1, seed=step))
            w.flush()
    for w in writers:
        w.close()
    chunks = open_run(tmp_path / "r").live_chunks()
    assert sorted((c.process_index, c.step) for c in chunks) == [(0, 2), (0, 3), (1, 2), (1, 3)]


def test_only_process_zero_writes_run_metadata(tmp_path, model):
    with RunWriter(tmp_path, name="r", model=model, strict=True, process_index=1, env_name="other") as w:
        w.add_capture(step=1, **simulate(model, T=3, E=1))
    assert not (tmp_path / "r" / "run.json").exists() and not (tmp_path / "r" / "model").exists()
    with RunWriter(tmp_path, name="r", model=model, strict=True, process_index=0, env_name="lead") as w:
        w.add_capture(step=2, **simulate(model, T=3, E=1))
    run = open_run(tmp_path / "r")
    assert run.metadata["env_name"] == "lead"
    assert [(c.step, c.process_index) for c in run.captures] == [(1, 1), (2, 0)]
    with pytest.raises(ValueError, match="process_index"):
        RunWriter(tmp_path, name="r", process_index=-1)
