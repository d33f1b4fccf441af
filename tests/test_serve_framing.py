"""The viewer as a user meets it, in a real headless Chromium: every layout draws every
shown environment, framed whole in the part of the canvas beside the control panel, for a
nominal run, a run with randomised sizes, colours and masses, and a model of every geom type.

Each check is made from screenshots: the pixels that change when the (non-plane) geoms are
hidden must cover each shown environment's projected position, and none may touch the
canvas border or lie under the panel. Screenshots are kept in ``artifacts/``.
"""

from __future__ import annotations

import copy
import time
import warnings
from pathlib import Path

import mujoco
import numpy as np
import pytest

import trajscope
from test_serve import ALL_GEOMS, _free_port
from test_serve_browser import ARGS, CHROMIUM, _wait_framed
from trajscope import scene
from trajscope.scene import _geometry
from trajscope.serve import ScenePanel, Viewer, _shown

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
ARTIFACTS = Path(__file__).parents[1] / "artifacts"
W, H = 1280, 800


def _simulate(model, fields, *, T, seed):
    """Random actions in MuJoCo, each environment with its own model fields."""
    rng = np.random.default_rng(seed)
    E = len(next(iter(fields.values()))) if fields else 4
    qpos = np.zeros((T, E, model.nq))
    for e in range(E):
        m = copy.copy(model)
        for name, v in fields.items():
            getattr(m, name)[...] = v[e]
        d = mujoco.MjData(m)
        for t in range(T):
            d.ctrl[:] = rng.uniform(-1, 1, m.nu)
            mujoco.mj_step(m, d)
            qpos[t, e] = d.qpos
    return qpos


def _pendulum_model():
    pytest.importorskip("brax")
    from brax import envs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return envs.get_environment("inverted_pendulum").sys.mj_model


def _write(root, name, model, fields, E):
    qpos = _simulate(model, fields or {"body_mass": np.tile(model.body_mass, (E, 1))}, T=40, seed=1)
    with trajscope.RunWriter(root, name=name, model=model, strict=True) as w:
        w.add_capture(step=0, qpos=qpos, model_fields=fields or None)
    return str(Path(root) / name)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("framing")
    rng = np.random.default_rng(0)
    out = {}
    pend = _pendulum_model()
    E = 6
    out["pendulum"] = _write(root, "pendulum", pend, None, E)
    out["pendulum_randomised"] = _write(
        root,
        "pendulum_randomised",
        pend,
        {
            "geom_size": pend.geom_size * rng.uniform(0.5, 2.0, (E, pend.ngeom, 1)),
            "geom_rgba": np.concatenate([rng.uniform(size=(E, pend.ngeom, 3)), np.ones((E, pend.ngeom, 1))], -1),
            "body_mass": pend.body_mass * rng.uniform(0.5, 1.5, (E, pend.nbody)),
        },
        E,
    )
    out["all_geoms"] = _write(root, "all_geoms", mujoco.MjModel.from_xml_string(ALL_GEOMS), None, 4)
    # Mocap bodies, a filtered actuator, and an environment whose state is never finite.
    from conftest import XML, simulate

    model = mujoco.MjModel.from_xml_string(XML)
    kw = simulate(model, T=20, E=3)
    kw["qpos"][:, 1] = np.nan
    with trajscope.RunWriter(root, name="mocap_nan", model=model, strict=True) as w:
        w.add_capture(step=0, **kw)
    out["mocap_nan"] = str(root / "mocap_nan")
    return out


def _open_page(p, viewer):
    """Chromium on the viewer's page, its canvas up; the software-WebGL notice hidden (it
    would cover the canvas' corner in every shot)."""
    browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    pg = browser.new_page(viewport={"width": W, "height": H})
    pg.goto(viewer.url, wait_until="domcontentloaded")
    pg.wait_for_selector("canvas", timeout=30_000)
    pg.add_style_tag(content=".mantine-Notifications-root { display: none !important; }")
    return browser, pg


def _shot(pg):
    from PIL import Image

    return np.asarray(Image.open(__import__("io").BytesIO(pg.screenshot())).convert("RGB")).astype(int)


def _settled(pg, timeout_s=60.0):
    """A screenshot once two in a row agree: the page has drawn what it was sent."""
    deadline = time.monotonic() + timeout_s
    last = _shot(pg)
    while True:
        now = _shot(pg)
        if (np.abs(now - last).sum(axis=-1) > 30).sum() < 20 or time.monotonic() > deadline:
            return now
        last = now


def _changed_from(pg, before, *, at_least=200, timeout_s=60.0):
    """Screenshots until the page differs from ``before`` (an update sent to the browser
    has been drawn), then until it holds still."""
    deadline = time.monotonic() + timeout_s
    while (np.abs(_shot(pg) - before).sum(axis=-1) > 40).sum() < at_least:
        assert time.monotonic() < deadline, "the page never showed the update"
    return _settled(pg)


def _drawn(shot):
    """Whether the canvas left of the panel shows a scene rather than its bare background
    (a browser shows the background alone while it compiles new materials' shaders, which
    software WebGL on a loaded machine may take seconds to do)."""
    canvas = shot[:, : W - scene.PANEL_PX]
    return (np.abs(canvas - canvas[H // 2, 10]).sum(axis=-1) > 40).sum() > 1000


def _content_mask(viewer, pg, timeout_s=60.0):
    """Pixels showing the environments: those that change when the non-plane geoms hide."""
    deadline = time.monotonic() + timeout_s
    shown = _settled(pg)
    while not _drawn(shown):
        assert time.monotonic() < deadline, "the scene was never drawn"
        shown = _settled(pg)
    content = [g for g in viewer.stage.envs.geoms if int(viewer.stage.model.geom_type[g.geom_id]) != _geometry.PLANE]
    for g in content:
        viewer.stage.nodes[g.geom_id].visible = False
    hidden = _changed_from(pg, shown)
    viewer.panel(ScenePanel).apply_groups()
    _changed_from(pg, hidden)
    return shown, _opened(np.abs(shown - hidden).sum(axis=-1) > 40)


def _opened(mask):
    """``mask`` without its lines one or two pixels thin: viser lowers its resolution on a
    loaded machine between two shots, which moves the ground's edge against the background
    by a pixel; a drawn geom is a blob that survives (eroded, then grown back)."""

    def near(m):  # each pixel's four neighbours (none past the border)
        p = np.pad(m, 1)
        return p[:-2, 1:-1], p[2:, 1:-1], p[1:-1, :-2], p[1:-1, 2:]

    def erode(m):
        a, b, c, d = near(m)
        return m & a & b & c & d

    def dilate(m):
        a, b, c, d = near(m)
        return m | a | b | c | d

    return dilate(dilate(erode(erode(mask))))


@pytest.mark.parametrize("case", ["pendulum", "pendulum_randomised", "all_geoms", "mocap_nan"])
def test_every_layout_draws_and_frames_every_shown_env(runs, case):
    playwright = pytest.importorskip("playwright.sync_api")
    viewer = Viewer(runs[case], port=_free_port())
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        with playwright.sync_playwright() as p:
            browser, pg = _open_page(p, viewer)
            pg.wait_for_function("document.body.innerText.includes('captures')", timeout=60_000)
            _wait_framed(viewer)  # for its own canvas, once it has reported it
            E = viewer.shown.capture.info.num_envs
            assert int(viewer.panel(ScenePanel).count.value) == min(E, _shown.MAX_SHOWN)  # all shown by default
            # On one page, as a user would switch: overlay then grid is where it drew nothing.
            for layout in ("one", "grid", "overlay", "grid"):
                before = _settled(pg)
                changes = layout != viewer.panel(ScenePanel).layout.value
                viewer.panel(ScenePanel).layout.value = layout
                if changes:  # the new layout and its framing have reached the page
                    _wait_framed(viewer)
                    _changed_from(pg, before, at_least=500)
                frames = viewer.shown
                assert len(frames.envs) == (1 if layout == "one" else E)
                shot, mask = _content_mask(viewer, pg)
                from PIL import Image

                Image.fromarray(shot.astype(np.uint8)).save(ARTIFACTS / f"framing_{case}_{layout}.png")
                (client,) = viewer.server.get_clients().values()
                cam = client.camera
                # viser may render below the page's resolution: the same aspect, fewer pixels.
                assert cam.image_width / cam.image_height == pytest.approx(W / H, rel=0.02)
                t = viewer.t
                mp = frames.mocap_pos[t] if frames.mocap_pos is not None else None
                mq = frames.mocap_quat[t] if frames.mocap_quat is not None else None
                pos, _, _ = viewer.stage.envs.kin.poses(frames.qpos[t], mp, mq)
                pos = pos + viewer.stage.offsets(len(frames.envs))[:, None, :]
                keep = [
                    g.geom_id
                    for g in viewer.stage.envs.geoms
                    if int(viewer.stage.model.geom_type[g.geom_id]) != _geometry.PLANE and g.group < 3
                ]
                px = scene.project(
                    pos[:, keep], position=cam.position, look_at=cam.look_at, fov_y=cam.fov, width_px=W, height_px=H
                )
                # The panel is opaque and its text changes between shots: look left of it.
                visible_w = W - scene.PANEL_PX
                mask = mask[:, :visible_w]
                ys, xs = np.nonzero(mask)
                assert len(xs) > 200, f"{case}/{layout}: nothing drawn"
                for slot, env in enumerate(frames.envs):
                    hits = 0
                    for x, y in px[slot]:
                        if np.isfinite(x) and 0 <= x < visible_w and 0 <= y < H:
                            x0, y0 = int(x), int(y)
                            hits += int(mask[max(0, y0 - 12) : y0 + 13, max(0, x0 - 12) : x0 + 13].any())
                    assert hits > 0, f"{case}/{layout}: env {env} is not drawn where it is"
                # Framed whole beside the panel: every corner of the shown geoms' box projects
                # into the visible part, nothing drawn touches its edges, and it fills a good
                # part of it rather than sitting small in the distance.
                lo, hi = viewer.stage.framed_box()
                corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
                cpx = scene.project(
                    corners, position=cam.position, look_at=cam.look_at, fov_y=cam.fov, width_px=W, height_px=H
                )
                assert np.isfinite(cpx).all() and (cpx >= 0).all(), (case, layout, cpx.round())
                assert (cpx[:, 0] <= visible_w).all() and (cpx[:, 1] <= H).all(), (case, layout, cpx.round())
                edges = (xs.min(), ys.min(), xs.max(), ys.max())
                assert edges[0] > 2 and edges[1] > 2 and edges[2] < visible_w - 3 and edges[3] < H - 3, (
                    case,
                    layout,
                    edges,
                )
                span = max((cpx[:, 0].max() - cpx[:, 0].min()) / visible_w, (cpx[:, 1].max() - cpx[:, 1].min()) / H)
                assert span > 0.5, (case, layout, span)
            # The user turns the camera away; "reset view" turns it back to the framing's view.
            (client,) = viewer.server.get_clients().values()
            cam = client.camera
            view = np.asarray(scene.VIEW_DIRECTION, float) / np.linalg.norm(scene.VIEW_DIRECTION)

            def angle():  # degrees between the camera's view and the framing's direction
                d = np.asarray(cam.position, float) - np.asarray(cam.look_at, float)  # towards the camera
                return float(np.degrees(np.arccos(np.clip(d @ view / np.linalg.norm(d), -1, 1))))

            with client.atomic():
                cam.look_at = np.asarray(cam.look_at, float) + np.array([2.0, 2.0, -1.5])
            deadline = time.monotonic() + 30
            while angle() < 10:
                assert time.monotonic() < deadline, "the camera did not turn away"
                time.sleep(0.05)
            pg.get_by_role("button", name="reset view").click()
            while angle() > 2:
                assert time.monotonic() < deadline, angle()
                time.sleep(0.05)
            assert not viewer.errors
            browser.close()
    finally:
        viewer.close()


def test_randomised_sizes_are_drawn_in_the_browser(tmp_path):
    """Two spheres, the second randomised to twice the radius and coloured apart: on screen
    the second covers about four times the pixels of the first (more, being nearer)."""
    playwright = pytest.importorskip("playwright.sync_api")
    m = mujoco.MjModel.from_xml_string(
        '<mujoco><worldbody><body pos="0 0 0.5"><freejoint/><geom type="sphere" size="0.1"/></body>'
        "</worldbody></mujoco>"
    )
    qpos = np.tile(m.qpos0, (3, 2, 1))
    fields = {
        "geom_size": np.array([[[0.1, 0, 0]], [[0.2, 0, 0]]]),
        "geom_rgba": np.array([[[1.0, 0, 0, 1]], [[0, 0, 1.0, 1]]]),
    }
    with trajscope.RunWriter(tmp_path, name="s", model=m, strict=True) as w:
        w.add_capture(step=0, qpos=qpos, model_fields=fields)
    viewer = Viewer(str(tmp_path / "s"), port=_free_port())
    try:
        with playwright.sync_playwright() as p:
            browser, pg = _open_page(p, viewer)
            viewer.panel(ScenePanel).layout.value = "grid"
            _wait_framed(viewer)
            shot = _settled(pg)[:, : W - scene.PANEL_PX]
            ARTIFACTS.mkdir(exist_ok=True)
            from PIL import Image

            Image.fromarray(shot.astype(np.uint8)).save(ARTIFACTS / "randomised_sizes.png")
            red = ((shot[..., 0] > 120) & (shot[..., 1] < 90) & (shot[..., 2] < 90)).sum()
            blue = ((shot[..., 2] > 120) & (shot[..., 0] < 90) & (shot[..., 1] < 90)).sum()
            # About 4x the area; perspective (the second sits nearer the camera) adds to it.
            assert red > 100 and 2.5 < blue / red < 12, (red, blue)
            browser.close()
    finally:
        viewer.close()
