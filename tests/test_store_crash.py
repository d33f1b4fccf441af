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
