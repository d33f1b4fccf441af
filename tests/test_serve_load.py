"""Several websocket clients on one viewer, one of them stalled (it opened the page's
websocket and never reads again): the others keep receiving every played frame's update.
``benchmarks/viewer.py`` measures the same with 20 clients and prints the rates."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

import trajscope
from servers import free_port
from trajscope.serve import ScenePanel


def _bench():
    path = Path(__file__).parents[1] / "benchmarks" / "viewer.py"
    spec = importlib.util.spec_from_file_location("viewer_bench", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_a_stalled_client_does_not_hold_up_the_others(tmp_path):
    pytest.importorskip("mujoco_playground")
    from trajscope.serve import Viewer

    bench = _bench()
    model = bench.humanoid()
    E, T, frames = 16, 60, 150
    with trajscope.RunWriter(tmp_path, name="load", model=model) as w:
        w.add_capture(step=0, **bench.simulate(model, E=E, T=T))
    v = Viewer(str(tmp_path / "load"), port=free_port(), poll_s=3600)
    stalled = readers = []
    try:
        v.panel(ScenePanel).layout.value = "grid"
        v.panel(ScenePanel).count.value = E
        v.reload()
        stalled = [bench.StalledClient(v.port)]
        readers = [bench.Client(v.port) for _ in range(5)]
        for c in readers:
            c.quiet()
        before = [c.messages for c in readers]
        sent = 0
        for i in range(1, frames + 1):  # from step 1: step 0 is shown already, and sends nothing
            v.show_step(i % T)
            sent += 1
            # Each frame waits until every reader has something new: were the server held up
            # by the stalled client, this would time out (and the assertion below fail).
            for c, n in zip(readers, before):
                c.wait_messages(n + sent // 4, timeout=60)
        got = [c.messages - n for c, n in zip(readers, before)]
        # Updates of frames played in quick succession may be merged, never lost for all.
        assert min(got) >= frames // 4, got
        assert all(c._thread.is_alive() for c in readers)
    finally:
        for c in [*readers, *stalled]:
            c.close()
        v.close()
