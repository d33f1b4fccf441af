"""The viewer in a real headless Chromium: the scene renders, the GUI drives it.

Screenshots land in ``artifacts/`` (ignored by git) for people to look at.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

from trajscope._demo import write_demo_run
from trajscope.serve import Viewer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (scripts/setup.sh installs it)"
)
ARTIFACTS = Path(__file__).parents[1] / "artifacts"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-gl=angle",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def page(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    run = write_demo_run(str(tmp_path), name="demo", checkpoints=2, num_envs=4)
    viewer = Viewer(run, port=_free_port())
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_page(viewport={"width": 1280, "height": 800})
        pg.goto(viewer.url, wait_until="domcontentloaded")
        pg.wait_for_selector("canvas", timeout=30_000)
        pg.wait_for_timeout(3000)
        yield viewer, pg
        browser.close()
    viewer.close()


def _canvas_pixels(pg, name):
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    pg.screenshot(path=str(path))
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def test_scene_renders_and_scrubbing_moves_it(page):
    viewer, pg = page
    first = _canvas_pixels(pg, "viewer_step0")
    assert first.std() > 10  # not a blank page
    viewer._safe(viewer.show_step, 150)
    pg.wait_for_timeout(1500)
    later = _canvas_pixels(pg, "viewer_step150")
    changed = (np.abs(later - first).sum(axis=-1) > 60).sum()
    assert changed > 300, changed  # the pole moved on screen (and the slider with it)
    body = pg.inner_text("body")
    for text in ("capture", "reward", "NaN finder", "Training curve"):
        assert text in body


def test_gui_switches_environment_and_capture(page):
    viewer, pg = page
    viewer._gui_mode.value = "grid"
    viewer._gui_count.value = 4
    viewer._safe(viewer._reload)
    pg.wait_for_timeout(1500)
    grid = _canvas_pixels(pg, "viewer_grid")
    assert grid.std() > 10
    viewer._safe(viewer.load_capture, 0)
    pg.wait_for_timeout(1000)
    values = pg.evaluate("Array.from(document.querySelectorAll('input, select')).map(e => e.value)")
    assert any(v.startswith("#0 step 0") for v in values), values
