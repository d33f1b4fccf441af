"""Full, read-only and vanished disks: training-side calls keep returning, drops are counted."""

from __future__ import annotations

import shutil
import subprocess
import threading

import pytest

import trajscope
from conftest import simulate
from trajscope.store import TrajscopeWarning


def _mount_tmpfs(path, options):
    path.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {p.stderr.strip()}")
    return path


@pytest.fixture
def small_disk(tmp_path):
    path = _mount_tmpfs(tmp_path / "small", "size=256k")
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def readonly_disk(tmp_path):
    path = _mount_tmpfs(tmp_path / "ro", "ro,size=64k")
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)


def _add(w, kw, n, first_step=0):
    """Queue ``n`` captures; what ``add_capture`` returned for each."""
    return [w.add_capture(step=first_step + i, **kw) for i in range(n)]


class _NotReady:
    """An array whose values are not ready yet, as a JAX array still being computed: its
    shape is known at once, its values only once ``ready`` is set. The writer thread blocks
    reading it, which holds the writer still without any timing."""

    def __init__(self, a, ready, started):
        self._a, self._ready, self._started = a, ready, started
        self.shape, self.dtype = a.shape, a.dtype

    def __array__(self, dtype=None, copy=None):
        self._started.set()
        assert self._ready.wait(60)
        return self._a


def test_disk_full_drops_and_counts(small_disk, model):
    kw = simulate(model, T=50, E=16)  # about 150 kB a capture
    w = trajscope.RunWriter(small_disk, name="full", model=model)
    with pytest.warns(TrajscopeWarning, match="No space left on device") as rec:
        oks = _add(w, kw, 6)
        w.close()
    assert all(oks)  # queued at once; the disk's failures are the writer thread's
    assert len([r for r in rec if "No space" in str(r.message)]) == 1  # warned once
    assert w.stats.written >= 1 and w.stats.dropped_write_error >= 1
    assert w.stats.written + w.stats.dropped == 6
    run = trajscope.open_run(small_disk / "full")
    assert len(run.captures) == w.stats.written and not run.check()
    assert not run.problems  # partial captures were cleaned up where possible


def test_readonly_directory_never_raises_into_training(readonly_disk, model):
    kw = simulate(model, T=5, E=2)
    with pytest.warns(TrajscopeWarning, match="Read-only file system"):
        w = trajscope.RunWriter(readonly_disk, name="ro", model=model)
        assert all(_add(w, kw, 5))  # every call returned, queued; nothing raised
        w.close()
    assert w.stats.written == 0 and w.stats.dropped_write_error == 5
    with pytest.raises(OSError):
        trajscope.RunWriter(readonly_disk, name="ro2", model=model, strict=True)


def test_vanished_run_directory_is_recreated(tmp_path, model):
    kw = simulate(model, T=5, E=2)
    with trajscope.RunWriter(tmp_path / "root", name="v", model=model) as w:
        w.add_capture(step=0, **kw)
        w.flush()
        shutil.rmtree(tmp_path / "root")
        with pytest.warns(TrajscopeWarning, match="vanished; recreated"):  # said, not silent
            w.add_capture(step=1, **kw)
            w.flush()
        w.add_capture(step=2, **kw)
    assert w.stats.written == 3 and w.stats.dropped == 0 and w.stats.recreated == 1
    # The run is whole again: metadata, model and the captures written after the loss.
    run = trajscope.open_run(tmp_path / "root" / "v")
    assert [c.step for c in run.captures] == [1, 2] and run.load_model().nq == model.nq


def test_queue_full_drops_instead_of_blocking(tmp_path, model):
    kw = simulate(model, T=5, E=2)
    ready, started = threading.Event(), threading.Event()
    w = trajscope.RunWriter(tmp_path, name="q", model=model, max_queue=1)
    assert w.add_capture(step=0, **dict(kw, value=_NotReady(kw["value"], ready, started)))
    assert started.wait(60)  # the writer thread is busy with it, and stays so
    with pytest.warns(TrajscopeWarning, match="write queue is full"):
        # One capture waits in the queue; the rest are dropped, and the calls return.
        assert _add(w, kw, 4, first_step=1) == [True, False, False, False]
    assert w.stats.dropped_queue_full == 3
    ready.set()
    w.close()
    assert w.stats.written == 2
    assert [c.step for c in trajscope.open_run(tmp_path / "q").captures] == [0, 1]


def test_warnings_as_errors_never_reach_training(readonly_disk, model, capfd):
    """pytest's filterwarnings (like ``python -W error``) turns TrajscopeWarning into an
    exception; the writer must neither raise into the caller nor lose its thread."""
    kw = simulate(model, T=5, E=2)
    w = trajscope.RunWriter(readonly_disk, name="x", model=model)
    assert all(w.add_capture(step=s, **kw) for s in range(3))
    bad = dict(kw, qvel=kw["qvel"][:, :, :2])
    assert w.add_capture(step=3, **bad) is False  # invalid: dropped, warned on the caller's thread
    w.close(timeout=30)
    assert (w.stats.dropped_write_error, w.stats.dropped_invalid) == (3, 1)
    err = capfd.readouterr().err
    assert "Read-only file system" in err and "capture dropped" in err
