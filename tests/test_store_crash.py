"""A writer killed with SIGKILL at any moment leaves every completed capture readable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import trajscope
from trajscope import RunWriter

WRITER = textwrap.dedent(
    """
    import sys, numpy as np, trajscope
    root = sys.argv[1]
    def arrays(step):
        rng = np.random.default_rng(step)
        return dict(qpos=rng.normal(size=(200, 64, 40)).astype(np.float32),
                    reward=rng.normal(size=(200, 64)).astype(np.float32),
                    obs={"pixels/cam": rng.integers(0, 256, (200, 64, 16, 16, 3), dtype=np.uint8)})
    w = trajscope.RunWriter(root, name="crash", max_queue=4)
    step = 0
    while True:
        w.add_capture(step=step, **arrays(step))
        if step % 3 == 2:
            w.flush()
            print("flushed", step, flush=True)
        step += 1
    """
)


def expected(step):
    rng = np.random.default_rng(step)
    return (
        rng.normal(size=(200, 64, 40)).astype(np.float32),
        rng.normal(size=(200, 64)).astype(np.float32),
        rng.integers(0, 256, (200, 64, 16, 16, 3), dtype=np.uint8),
    )


@pytest.mark.parametrize("extra_delay_s", [0.0, 0.013, 0.037])
def test_sigkill_mid_run_keeps_completed_captures(tmp_path, extra_delay_s):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)], stdout=subprocess.PIPE, text=True)
    flushed = -1
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    while flushed < 5 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        flushed = int(line.split()[1])
    time.sleep(extra_delay_s)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert flushed >= 5, "writer did not get going"

    run = trajscope.open_run(tmp_path / "crash")
    steps = [c.step for c in run.captures]
    # Everything flushed before the kill is there, in order, with nothing lost in between.
    assert steps[: flushed + 1] == list(range(flushed + 1))
    assert steps == list(range(len(steps)))
    assert all(p.incomplete for p in run.problems), run.problems
    assert not run.check()
    for info in run.captures:
        cap = run.capture(info)
        qpos, reward, pix = expected(info.step)
        np.testing.assert_array_equal(cap.load("qpos"), qpos)
        np.testing.assert_array_equal(cap.load("reward"), reward)
        np.testing.assert_array_equal(cap.load("obs/pixels/cam"), pix)


def test_a_written_capture_survives_a_power_loss_as_far_as_fsync_can_make_it(tmp_path, model, monkeypatch):
    """What a power loss cannot take once the writer counts a capture written: every array
    file and the manifest reach the disk before the manifest's rename, the rename itself
    (the capture folder fsynced after it), and the capture folder's own entry (the
    captures folder fsynced once it is made). The calls, in order, as the kernel sees them."""
    from conftest import simulate

    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with RunWriter(tmp_path, name="r", model=model, strict=True) as w:
        w.add_capture(step=1, **simulate(model, T=3, E=2))
    run_dir = str((tmp_path / "r").resolve())
    captures = os.path.join(run_dir, "captures")
    (cid,) = os.listdir(captures)
    cdir = os.path.join(captures, cid)
    assert captures in synced and synced.index(captures) < synced.index(cdir)  # the folder's entry first
    arrays = [p for p in synced if p.startswith(cdir + "/") and ".tmp-" not in p]
    manifest_tmp = next(i for i, p in enumerate(synced) if p.startswith(os.path.join(cdir, "capture.json.tmp-")))
    after = synced.index(cdir, manifest_tmp)  # the rename made durable after the manifest's bytes
    assert set(arrays) == {os.path.join(cdir, f) for f in os.listdir(cdir) if f != "capture.json"}
    assert all(synced.index(a) < manifest_tmp for a in arrays) and after > manifest_tmp
    assert run_dir in synced  # run.json's rename, and the captures folder made in it
