"""The README's first step, walked as a new user would: `trajscope demo` in a terminal, the
page open in a browser from the start, nothing clicked. What is on screen is checked at
each stage: the model drawn before the first capture, the training environments moving
live, the captures arriving, and after training the newest capture and "finished"."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from test_serve_browser import ARGS, ARTIFACTS, CHROMIUM, _free_port

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
DOCS_IMAGES = Path(__file__).parents[1] / "docs" / "images"


def _shot(pg, name: str) -> np.ndarray:
    from PIL import Image

    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"readme_{name}.png"
    pg.screenshot(path=str(path))
    if os.environ.get("TRAJSCOPE_DOC_IMAGES"):  # refresh the screenshots in docs/images
        shutil.copy(path, DOCS_IMAGES / f"demo_{name}.png")
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def _drawn(img: np.ndarray) -> int:
    """Pixels of the 3D canvas that are not the white background: something is drawn."""
    return int((_scene(img).min(axis=-1) < 200).sum())


def _scene(img: np.ndarray) -> np.ndarray:
    """The 3D canvas: right of the plots' column (a 1600-pixel page has one), left of the
    side panel."""
    from trajscope.serve import _plots

    return img[:, _plots.COLUMN_PX + 10 : img.shape[1] - 420]


def test_the_demo_shows_the_model_then_live_training_then_the_newest_capture(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    pytest.importorskip("brax")
    port = _free_port()
    lines: list[str] = []
    cmd = [sys.executable, "-m", "trajscope", "demo", "--root", str(tmp_path), "--name", "d", "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--steps", "1"],  # brax trains whole epochs: the fewest this demo can
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()

    def printed(pattern: str, timeout_s: float) -> re.Match:
        deadline = time.monotonic() + timeout_s
        while True:
            for line in list(lines):
                m = re.search(pattern, line)
                if m:
                    return m
            assert proc.poll() is None or time.monotonic() < deadline, "".join(lines[-30:])
            assert time.monotonic() < deadline, f"{pattern!r} never printed:\n" + "".join(lines[-30:])
            time.sleep(0.2)

    try:
        url = printed(r"trajscope viewer: (http://\S+)", 120).group(1)
        # The terminal says what brax will really train, and that it is compiling.
        printed(r"brax trains whole epochs: [\d,]+ steps", 60)
        printed(r"compiling the training step", 60)
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            pg = browser.new_page(viewport={"width": 1600, "height": 1000})
            pg.goto(url, wait_until="domcontentloaded")
            pg.wait_for_selector("canvas", timeout=60_000)
            pg.add_style_tag(content=".mantine-Notifications-root { display: none !important; }")
            body = lambda: pg.inner_text("body").replace("\\", "")  # noqa: E731 - markdown escapes
            # Before the first capture (training compiles for a minute on a CPU; less when JAX's
            # compilation cache has the programs): the model at rest, and the page says so.
            if "no capture yet" in body():
                assert "drawn at rest" in body() and "waiting for training" in body()
                deadline = time.monotonic() + 60
                while _drawn(_shot(pg, "start")) < 500:
                    assert time.monotonic() < deadline, "the model was not drawn before the first capture"
                    time.sleep(0.5)
            # During training, without a click: the live training environments move.
            pg.wait_for_function("document.body.innerText.includes('behind training')", timeout=300_000)
            a = _scene(_shot(pg, "training"))
            deadline = time.monotonic() + 120
            while np.abs(_scene(_shot(pg, "training")) - a).sum(axis=-1).__gt__(60).sum() < 200:
                assert time.monotonic() < deadline, "the live environments did not move on screen"
                time.sleep(0.5)
            assert re.search(r"\d+ captures", body())
            # After training: the terminal says so, and so does the page, on the newest capture.
            done = printed(r"done in \d+ s: (\d+) captures", 600)
            pg.wait_for_function("document.body.innerText.includes('finished at')", timeout=120_000)
            n = len([c for c in (tmp_path / "d" / "captures").iterdir() if c.is_dir()])
            assert int(done.group(1)) >= n >= 2
            pg.wait_for_function(f"document.body.innerText.includes('{n} captures')", timeout=60_000)
            pg.wait_for_function("document.body.innerText.includes('showing the newest capture')", timeout=60_000)
            # The timeline is the newest evaluation capture's (1001 frames), not a live chunk's.
            pg.wait_for_function("document.body.innerText.includes('1000')", timeout=60_000)
            # (the tab plays it: the step it stands at changes, its length does not; a live
            # chunk's timeline would end at 63)
            text = body()
            assert re.search(r"step \d+ (/|of) 1000\b", text) and not re.search(r"step \d+ (/|of) 63\b", text), text
            assert _drawn(_shot(pg, "after")) > 500
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
