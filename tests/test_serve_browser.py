"""The viewer in a real headless Chromium: the scene renders, the GUI drives it.

Screenshots land in ``artifacts/`` (ignored by git) for people to look at.
"""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from trajscope.demo import write_demo_run
from trajscope.serve import AnalysisPanel, PlotsPanel, ScenePanel, Viewer

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
        _wait_pixels(pg, "viewer_loading", lambda px: px.std() > 10)  # the scene has rendered
        yield viewer, pg
        browser.close()
    viewer.close()


def _open_tab(pg, name):
    """Click a tab of the side panel, as a user would (viser's tabs: Replay, Plots, ...)."""
    pg.get_by_role("tab", name=name).click()


def _wait_pixels(pg, name, ok, timeout_s=60.0):
    """Screenshots until ``ok(pixels)`` holds (or the time is up); the last one. A wait on
    what the page shows, not on a fixed time: a loaded machine only makes it slower."""
    deadline = time.monotonic() + timeout_s
    while True:
        px = _canvas_pixels(pg, name)
        if ok(px) or time.monotonic() > deadline:
            return px


def _wait_framed(viewer, timeout_s=60.0):
    """Until the viewer has framed the connected browser."""
    deadline = time.monotonic() + timeout_s
    while not viewer.stage.framed_clients():
        assert time.monotonic() < deadline, "the browser was never framed"
        time.sleep(0.1)


def _changed(a, b):
    """Pixels that differ clearly between two screenshots."""
    return int((np.abs(a - b).sum(axis=-1) > 60).sum())


def _wait_step(pg, t):
    """Until the page's step slider shows ``t``."""
    pg.wait_for_function(f"Array.from(document.querySelectorAll('input')).some(e => e.value === '{t}')", timeout=60_000)


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
    viewer.act(viewer.show_step, 150)
    _wait_step(pg, 150)
    later = _wait_pixels(pg, "viewer_step150", lambda px: _changed(px, first) > 300)
    assert _changed(later, first) > 300  # the pole moved on screen (and the slider with it)
    for tab, texts in {
        "Scene": ("capture", "NaN finder", "layout"),
        "Plots": ("reward",),
        "Training": ("Training curve",),
    }.items():
        _open_tab(pg, tab)  # each tab shows its panels, under the run choice and the timeline
        for text in texts:
            pg.wait_for_function(f"document.body.innerText.includes({text!r})", timeout=30_000)
        assert "follow latest capture" in pg.inner_text("body")


def _boxes(pg, selector):
    """The page's elements matching ``selector``: [left, top, right, bottom] in CSS pixels."""
    return pg.evaluate(
        f"""() => [...document.querySelectorAll({selector!r})].map(e => {{
            const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; }})"""
    )


def test_plots_stand_beside_the_scene_on_a_wide_page(tmp_path):
    """On a 1600x1000 page the plots get a column of their own left of the 3D scene: every
    plot whole on the page (no scrolling), none over the canvas, the environment framed in
    the canvas right of them, the player's bar too; "in this tab" puts them back in the side
    panel and the canvas takes the page again. A page under 1400 px keeps them in the tab."""
    playwright = pytest.importorskip("playwright.sync_api")
    from trajscope.serve import _plots

    run = write_demo_run(str(tmp_path), name="demo", checkpoints=1, num_envs=2)
    viewer = Viewer(run, port=_free_port())
    plots = viewer.panel(PlotsPanel)
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            pg = browser.new_page(viewport={"width": 1600, "height": 1000})
            pg.goto(viewer.url, wait_until="domcontentloaded")
            pg.wait_for_selector("canvas", timeout=30_000)
            deadline = time.monotonic() + 60
            while plots.where.value != _plots.WHERE[1] or not viewer.stage.framed_clients():
                assert time.monotonic() < deadline, (plots.where.value, viewer.stage.framed_clients())
                time.sleep(0.1)
            assert viewer.stage.left_px == _plots.COLUMN_PX
            pg.wait_for_function(
                "[...document.querySelectorAll('canvas')].some(c => c.getBoundingClientRect().left > 400)",
                timeout=30_000,
            )
            canvas = max(_boxes(pg, "canvas"), key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
            assert canvas[0] >= _plots.COLUMN_PX - 5 and canvas[2] == pytest.approx(1600, abs=2)
            pg.wait_for_function("document.querySelectorAll('.uplot').length >= 2", timeout=30_000)
            for left, top, right, bottom in _boxes(pg, ".uplot"):
                assert 0 <= left and right <= canvas[0] + 1 and 0 <= top and bottom <= 1000, (left, top, right, bottom)
                assert right - left > 400 and bottom - top >= _plots.COLUMN_PLOT_PX  # wide, and as tall as asked
            pg.wait_for_function(
                f"document.getElementById('trajscope-player').getBoundingClientRect().left >= {canvas[0]}",
                timeout=30_000,
            )
            # The environment is framed in the canvas: its bodies project inside it.
            (client,) = viewer.server.get_clients().values()
            cam = client.camera
            from trajscope import scene

            t = viewer.t
            pos, _, _ = viewer.stage.envs.kin.poses(viewer.shown.qpos[t], None, None)
            cw = canvas[2] - canvas[0]
            px = scene.project(
                pos[0], position=cam.position, look_at=cam.look_at, fov_y=cam.fov, width_px=cw, height_px=1000
            )
            px = px[np.isfinite(px).all(axis=1)]
            assert len(px) and (px[:, 0] > 0).all() and (px[:, 0] < cw - scene.PANEL_PX).all(), px
            # Back in the tab: the column goes, the canvas takes the page again.
            viewer.act(setattr, plots.where, "value", _plots.WHERE[0])
            pg.wait_for_function(
                "[...document.querySelectorAll('canvas')].every(c => c.getBoundingClientRect().left < 20)",
                timeout=30_000,
            )
            assert viewer.stage.left_px == 0 and not plots.column.visible
            narrow = Viewer(run, port=_free_port())
            try:
                pg2 = browser.new_page(viewport={"width": 1280, "height": 800})
                pg2.goto(narrow.url, wait_until="domcontentloaded")
                _wait_framed(narrow)
                narrow.act(narrow.panel(PlotsPanel).on_poll)
                assert narrow.panel(PlotsPanel).where.value == _plots.WHERE[0] and narrow.stage.left_px == 0
            finally:
                narrow.close()
            browser.close()
    finally:
        viewer.close()


GO1_STYLE = """
<mujoco model="go1-style">
  <visual>
    <global offwidth="1280" offheight="960"/>
    <headlight diffuse="0.6 0.6 0.6" ambient="0.3 0.3 0.3" specular="0 0 0"/>
  </visual>
  <default>
    <default class="visual"><geom type="mesh" contype="0" conaffinity="0" group="2" material="dark"/></default>
  </default>
  <asset>
    <texture type="2d" name="groundplane" builtin="checker" mark="edge" rgb1="0.2 0.3 0.4" rgb2="0.1 0.2 0.3"
             markrgb="0.8 0.8 0.8" width="300" height="300"/>
    <material name="groundplane" texture="groundplane" texuniform="true" texrepeat="5 5" reflectance="0.2"/>
    <material name="dark" rgba="0.2 0.2 0.2 1"/>
    <material name="metal" rgba="0.9 0.95 0.95 1" specular="1" shininess="0.9"/>
    <material name="red" rgba="0.8 0.1 0.1 1"/>
    <mesh name="hull" vertex="0.15 0 0  -0.15 0 0  0 0.15 0  0 -0.15 0  0 0 0.15  0 0 -0.15"/>
  </asset>
  <worldbody>
    <light name="spotlight" mode="targetbodycom" target="trunk" pos="3 0 4"/>
    <geom name="floor" size="0 0 0.05" type="plane" material="groundplane"/>
    <body name="trunk" pos="0 0 0.3">
      <freejoint/>
      <geom class="visual" mesh="hull" pos="0 -0.45 0"/>
      <geom class="visual" mesh="hull" pos="0 -0.15 0" material="metal"/>
      <geom class="visual" mesh="hull" pos="0 0.15 0" material="red"/>
      <geom class="visual" mesh="hull" pos="0 0.45 0" rgba="0.1 0.6 0.2 1"/>
    </body>
  </worldbody>
</mujoco>
"""
"""Menagerie's way of colouring a robot (the Unitree Go1's ``visual`` class: mesh geoms with
``material="dark"``, rgba 0.2), a material with a highlight, a geom rgba over its default,
Menagerie's checker ground and a spot light on the trunk; the meshes are stand-ins, as the
Go1's own meshes are not in this environment."""


def test_colours_are_drawn_as_mujocos_renderer_draws_them(tmp_path):
    """The viewer's picture of a Menagerie-style model beside MuJoCo's own renderer from the
    same camera: every geom's median colour within 60 of 255 per channel (the dark material
    dark, as MuJoCo draws it; before, it was light grey: 173 against 70)."""
    playwright = pytest.importorskip("playwright.sync_api")
    import mujoco
    from PIL import Image

    import trajscope

    m = mujoco.MjModel.from_xml_string(GO1_STYLE)
    d = mujoco.MjData(m)
    mujoco.mj_forward(m, d)
    with trajscope.RunWriter(tmp_path, name="go1", model=m, strict=True) as w:
        w.add_capture(step=0, qpos=np.tile(d.qpos, (3, 1, 1)))
    viewer = Viewer(str(tmp_path / "go1"), port=_free_port())
    W, H = 960, 720
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            pg = browser.new_page(viewport={"width": W, "height": H})
            pg.goto(viewer.url, wait_until="domcontentloaded")
            pg.wait_for_selector("canvas", timeout=30_000)
            pg.add_style_tag(content=".mantine-Notifications-root { display: none !important; }")
            _wait_framed(viewer)
            # Every material of the scene has had its tone curve turned off, and the page has
            # drawn since (two screenshots in a row agree).
            pg.wait_for_function(
                """() => { let all = true; let n = 0;
                   const p = window.__trajscopePlayer; const s = p && p.viewer && p.viewer.mutable.current.scene;
                   if (!s) return false;
                   s.traverse(o => { for (const m of [].concat(o.material || [])) {
                     n++; all = all && m.toneMapped === false; } });
                   return n > 4 && all; }""",
                timeout=60_000,
            )
            shot = _canvas_pixels(pg, "colours_viewer")
            deadline = time.monotonic() + 60
            while True:
                again = _canvas_pixels(pg, "colours_viewer")
                if _changed(again, shot) < 20 or time.monotonic() > deadline:
                    break
                shot = again
            (client,) = viewer.server.get_clients().values()
            cam = client.camera
            position, look_at, fov = np.asarray(cam.position), np.asarray(cam.look_at), float(cam.fov)
            browser.close()
    finally:
        viewer.close()
    # MuJoCo's renderer, from the browser's camera.
    m.vis.global_.fovy = np.degrees(fov)
    cam = mujoco.MjvCamera()
    cam.type = mujoco.mjtCamera.mjCAMERA_FREE
    back = position - look_at
    cam.lookat[:] = look_at
    cam.distance = float(np.linalg.norm(back))
    cam.azimuth = float(np.degrees(np.arctan2(-back[1], -back[0])))
    cam.elevation = float(np.degrees(np.arcsin(-back[2] / np.linalg.norm(back))))
    with mujoco.Renderer(m, H, W) as r:
        r.update_scene(d, camera=cam)
        mj = r.render().astype(int)
        r.enable_segmentation_rendering()
        r.update_scene(d, camera=cam)
        seg = r.render()[..., 0]
    Image.fromarray(np.concatenate([shot, mj], axis=1).astype(np.uint8)).save(ARTIFACTS / "colours_beside_mujoco.png")
    for g in range(m.ngeom):
        inner = seg == g
        for _ in range(3 if g else 0):  # away from the edges, where the two antialias apart
            inner = inner & np.roll(inner, 1, 0) & np.roll(inner, -1, 0) & np.roll(inner, 1, 1) & np.roll(inner, -1, 1)
        inner[:, W - 360 :] = False  # the side panel covers the page's right
        assert inner.sum() > 500, (g, inner.sum())
        ours, theirs = np.median(shot[inner], axis=0), np.median(mj[inner], axis=0)
        assert np.abs(ours - theirs).max() <= 60, (g, ours, theirs)
        assert np.argmax(ours) == np.argmax(theirs) or np.ptp(theirs) < 10, (g, ours, theirs)


def test_gui_switches_environment_and_capture(page):
    viewer, pg = page
    one = _canvas_pixels(pg, "viewer_one")
    viewer.panel(ScenePanel).layout.value = "grid"
    viewer.panel(ScenePanel).count.value = 4
    viewer.act(viewer.reload)
    grid = _wait_pixels(pg, "viewer_grid", lambda px: px.std() > 10 and _changed(px, one) > 300)
    assert grid.std() > 10 and _changed(grid, one) > 300  # four environments now, not one
    viewer.act(viewer.load_capture, 0)
    pg.wait_for_function(
        "Array.from(document.querySelectorAll('input, select')).some(e => e.value.startsWith('#0 step 0'))",
        timeout=60_000,
    )


def test_token_gated_viewer_renders_through_the_gate(tmp_path):
    """Beyond loopback the page and its websocket pass the token gate via the cookie."""
    playwright = pytest.importorskip("playwright.sync_api")
    from trajscope.serve import serve

    run = write_demo_run(str(tmp_path), name="demo", checkpoints=1, num_envs=2)
    viewer = serve(run, host="127.0.0.2", port=_free_port())
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            pg = browser.new_page(viewport={"width": 1280, "height": 800})
            denied = pg.goto(viewer.url.split("?")[0], wait_until="domcontentloaded")
            assert denied is not None and denied.status == 401
            pg.goto(viewer.url, wait_until="domcontentloaded")
            assert "token" not in pg.url  # the redirect took it out of the address bar
            pg.wait_for_selector("canvas", timeout=30_000)
            shot = _wait_pixels(pg, "viewer_token_gate", lambda px: px.std() > 10)
            assert shot.std() > 10 and "capture" in pg.inner_text("body")
            assert len(viewer.server.get_clients()) == 1  # the websocket got through
            browser.close()
    finally:
        viewer.close()


def test_browsers_share_state_and_a_stalled_client_holds_up_nobody(page):
    """Two browsers see the same step; a client that stops reading does not stall them."""
    import socket as socket_

    import viser
    from websockets.sync.client import connect

    viewer, pg = page
    pg2 = pg.context.browser.new_page(viewport={"width": 1280, "height": 800})
    pg2.goto(viewer.url, wait_until="domcontentloaded")
    pg2.wait_for_selector("canvas", timeout=30_000)
    # A client that connects and then never reads: a tiny receive buffer fills at once.
    raw = socket_.socket()
    raw.setsockopt(socket_.SOL_SOCKET, socket_.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", viewer.port))
    stalled = connect(
        f"ws://127.0.0.1:{viewer.port}", sock=raw, subprotocols=[f"viser-v{viser.__version__}"], max_queue=1
    )
    try:
        viewer.panel(ScenePanel).layout.value = "grid"
        viewer.panel(ScenePanel).count.value = 4
        viewer.act(viewer.reload)
        for i in range(600):  # far more than the stalled client's buffers hold
            viewer.act(viewer.show_step, i % 200)
        viewer.act(viewer.show_step, 150)
        for p in (pg, pg2):
            _wait_step(p, 150)
        a, b = _canvas_pixels(pg, "viewer_browser_a"), _canvas_pixels(pg2, "viewer_browser_b")
        assert a.std() > 10 and b.std() > 10
        # Both show the same scene (same camera, same state): nearly the same pixels.
        assert (np.abs(a - b).sum(axis=-1) > 60).mean() < 0.02
    finally:
        stalled.close()
        pg2.close()


def test_plot_markers_follow_the_replay(page):
    """Every plot's marker moves with the timeline, and the plots stay drawn (uPlot went blank
    when the marker series began with a gap: the y ranges are fixed now)."""
    from io import BytesIO

    from PIL import Image
    from playwright.sync_api import Error as PlaywrightError

    viewer, pg = page
    _open_tab(pg, "Plots")
    plot = pg.locator(".uplot").first
    plot.scroll_into_view_if_needed()

    def shot(t):
        viewer.act(viewer.show_step, t)
        viewer.act(viewer.panel(PlotsPanel).catch_up, t)
        _wait_step(pg, t)
        deadline = time.monotonic() + 60

        def grab() -> np.ndarray | None:
            try:  # the plot may be drawn anew (its element replaced) while it is taken
                return np.asarray(Image.open(BytesIO(plot.screenshot(timeout=10_000))).convert("RGB")).astype(int)
            except PlaywrightError:
                if time.monotonic() > deadline:
                    raise
                return None

        while True:  # until the picture holds still
            a, b = grab(), grab()
            if a is None or b is None:
                continue
            if (a.shape == b.shape and _changed(a, b) == 0) or time.monotonic() > deadline:
                return b

    early, late = shot(10), shot(190)
    ARTIFACTS.mkdir(exist_ok=True)
    Image.fromarray(early.astype(np.uint8)).save(ARTIFACTS / "plot_marker_10.png")
    Image.fromarray(late.astype(np.uint8)).save(ARTIFACTS / "plot_marker_190.png")
    for img in (early, late):  # the curve is drawn (the palette's first colour, #1f77b4)
        blue = (np.abs(img - np.array([31, 119, 180])).sum(axis=-1) < 60).sum()
        assert blue > 50, blue
    diff = np.abs(early - late).sum(axis=-1) > 60
    cols = np.nonzero(diff.any(axis=0))[0]
    w = early.shape[1]
    # The marker left the start of the plot and arrived at its end.
    assert cols.size and cols.min() < 0.35 * w and cols.max() > 0.75 * w, (cols.min(), cols.max(), w)


def test_pixel_panels_show_greyscale_stacked_and_float_images(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    import mujoco

    import trajscope
    from conftest import XML, simulate

    model = mujoco.MjModel.from_xml_string(XML)
    T, E, H, W = 4, 1, 24, 32
    rng = np.random.default_rng(0)
    kw = simulate(model, T=T, E=E)
    depth = rng.uniform(0.3, 7.0, (T, E, H, W, 1)).astype(np.float32)
    depth[:, :, :4, :4] = np.nan
    kw["obs"] = {
        "pixels/grey": (rng.integers(0, 256, (T, E, H, W)) / 255.0).astype(np.float32),
        "pixels/stack": rng.integers(0, 256, (T, E, H, W, 9), dtype=np.uint8),
        "pixels/depth": depth,
    }
    with trajscope.RunWriter(tmp_path, name="px", model=model, strict=True, lossless_images=True) as w:
        w.add_capture(step=0, **kw)
    viewer = Viewer(str(tmp_path / "px"), port=_free_port())
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            pg = browser.new_page(viewport={"width": 1280, "height": 2000})
            pg.goto(viewer.url, wait_until="domcontentloaded")
            pg.wait_for_selector("[role=tab]", timeout=60_000)
            _open_tab(pg, "Plots")
            for text in ("3 frames stacked", "non-finite (magenta)", "values 0 to 1"):
                pg.wait_for_function(f"document.body.innerText.includes({text!r})", timeout=60_000)
            # The three panels' images have the strips' aspect: the stack three frames wide.
            pg.wait_for_function(
                "Array.from(document.querySelectorAll('img')).filter(i => i.naturalWidth > 0).length >= 3",
                timeout=60_000,
            )
            sizes = pg.evaluate(
                "Array.from(document.querySelectorAll('img')).map(i => [i.naturalWidth, i.naturalHeight])"
            )
            assert [W, H] in sizes and [3 * W, H] in sizes, sizes
            pg.screenshot(path=str(ARTIFACTS / "viewer_pixels.png"), full_page=True)
            browser.close()
    finally:
        viewer.close()


def test_analysis_panel_map_click_replays_that_state(page):
    """The Analysis panel computes and stores the run's analysis; its state map is drawn
    beside the replay, and a click on a point in the browser loads that capture,
    environment and step."""
    from trajscope import scene

    viewer, pg = page
    viewer.panel(AnalysisPanel).compute()
    assert viewer.panel(AnalysisPanel).wait(300)
    assert viewer.panel(AnalysisPanel).points is not None and len(viewer.panel(AnalysisPanel).points) > 100
    assert viewer.run.analysis() is not None  # stored in the run
    _open_tab(pg, "Analysis")
    pg.wait_for_function("document.body.innerText.includes('states on a pca map')", timeout=60_000)
    pg.add_style_tag(content=".mantine-Notifications-root { display: none !important; }")
    viewer.panel(AnalysisPanel).show_map.value = True
    _wait_framed(viewer)
    _wait_pixels(pg, "analysis_map", lambda px: px.std() > 10)
    # Until the camera has settled: two screenshots in a row the same.
    last = _canvas_pixels(pg, "analysis_map")
    deadline = time.monotonic() + 60
    while _changed(last, now := _canvas_pixels(pg, "analysis_map")) > 0 and time.monotonic() < deadline:
        last = now
    (client,) = viewer.server.get_clients().values()
    cam = client.camera
    w, h = 1280, 800
    world = viewer.panel(AnalysisPanel).world(viewer.panel(AnalysisPanel).points)
    px = scene.project(world, position=cam.position, look_at=cam.look_at, fov_y=cam.fov, width_px=w, height_px=h)
    # A point of the last capture, late in its episode, well inside the visible canvas.
    meta = viewer.panel(AnalysisPanel).meta
    ok = np.isfinite(px).all(axis=1) & (px[:, 0] > 40) & (px[:, 0] < w - 380) & (px[:, 1] > 40) & (px[:, 1] < h - 40)
    ok &= (meta[:, 0] == meta[:, 0].min()) & (meta[:, 2] > 20)
    assert ok.any()
    i = np.flatnonzero(ok)[0]
    pg.mouse.click(float(px[i, 0]), float(px[i, 1]))
    deadline = time.monotonic() + 60
    while viewer.panel(AnalysisPanel).picked is None:
        assert time.monotonic() < deadline, "the click on the map reached no point"
        time.sleep(0.05)
    capture, env, t = viewer.panel(AnalysisPanel).picked
    # The point clicked (or one drawn at the same spot) is replayed.
    assert np.linalg.norm(px[np.flatnonzero((meta == [capture, env, t]).all(axis=1))[0]] - px[i]) < 12
    deadline = time.monotonic() + 30
    while not (viewer.shown.capture.info.index == capture and viewer.t == t):
        assert time.monotonic() < deadline, (viewer.shown.capture.info.index, viewer.t, capture, t)
        time.sleep(0.05)
    assert viewer.shown.envs == [env] and viewer.panel(ScenePanel).layout.value == "one"
    _wait_step(pg, t)
    _canvas_pixels(pg, "analysis_map_clicked")
