"""The viewer's server side: geometry, kinematics, and a live viser server on real runs."""

from __future__ import annotations

import json
import socket
import time

import mujoco
import numpy as np
import pytest

import trajscope
import trajscope.analyse
from conftest import simulate
from trajscope import sim
from trajscope.demo import write_demo_run
from trajscope.scene import _geometry
from trajscope.serve import (
    AnalysisPanel,
    ComparePanel,
    LivePanel,
    NanPanel,
    PixelsPanel,
    PlotsPanel,
    ReplayPanel,
    ScenePanel,
    TrainingCurvePanel,
    Viewer,
)

ALL_GEOMS = """
<mujoco>
  <asset>
    <hfield name="hf" nrow="4" ncol="5" size="1 1 0.2 0.1"/>
    <mesh name="tet" vertex="0 0 0  1 0 0  0 1 0  0 0 1"/>
  </asset>
  <worldbody>
    <geom type="plane" size="3 3 0.1"/>
    <geom type="hfield" hfield="hf" pos="4 0 0"/>
    <body pos="0 0 1">
      <freejoint/>
      <geom type="sphere" size="0.1"/>
      <geom type="capsule" size="0.05 0.2" pos="0.3 0 0"/>
      <geom type="ellipsoid" size="0.1 0.2 0.3" pos="0.6 0 0"/>
      <geom type="cylinder" size="0.1 0.25" pos="0.9 0 0"/>
      <geom type="box" size="0.1 0.2 0.3" pos="1.2 0 0"/>
      <geom type="mesh" mesh="tet" pos="1.5 0 0"/>
    </body>
  </worldbody>
</mujoco>
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_every_geom_type_has_a_mesh_of_the_right_size():
    m = mujoco.MjModel.from_xml_string(ALL_GEOMS)
    meshes = [_geometry.geom_mesh(m, g) for g in range(m.ngeom)]
    assert all(x is not None for x in meshes)
    ext = {int(m.geom_type[x.geom_id]): x.vertices.max(axis=0) - x.vertices.min(axis=0) for x in meshes if x}
    np.testing.assert_allclose(ext[_geometry.SPHERE], [0.2, 0.2, 0.2], atol=1e-6)
    np.testing.assert_allclose(ext[_geometry.CAPSULE], [0.1, 0.1, 0.5], atol=1e-6)
    np.testing.assert_allclose(ext[_geometry.ELLIPSOID], [0.2, 0.4, 0.6], atol=1e-6)
    np.testing.assert_allclose(ext[_geometry.CYLINDER], [0.2, 0.2, 0.5], atol=1e-6)
    np.testing.assert_allclose(ext[_geometry.BOX], [0.2, 0.4, 0.6], atol=1e-6)
    np.testing.assert_allclose(ext[_geometry.PLANE][:2], [6, 6], atol=1e-6)
    np.testing.assert_allclose(ext[_geometry.HFIELD][:2], [2, 2], atol=1e-6)
    for x in meshes:
        assert x is not None and x.faces.max() < len(x.vertices)


def test_mat_to_wxyz_matches_mujoco():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(200, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    mats = np.zeros((200, 9))
    for i in range(200):
        mujoco.mju_quat2Mat(mats[i], q[i])
    got = sim.mat_to_wxyz(mats)
    # q and -q are the same rotation.
    np.testing.assert_allclose(np.abs(np.sum(got * q, axis=1)), 1.0, atol=1e-9)


@pytest.fixture
def demo_run(tmp_path):
    return write_demo_run(str(tmp_path), name="demo", checkpoints=3, num_envs=4)


@pytest.fixture
def viewer(demo_run):
    v = Viewer(demo_run, port=_free_port(), poll_s=0.2)
    yield v
    v.close()


def test_scene_follows_the_stored_states(viewer, demo_run):
    run = trajscope.open_run(demo_run)
    model = run.load_model()
    cap = run.capture(2)
    assert viewer.shown is not None and viewer.shown.capture.info.index == 2  # latest capture first
    assert len(viewer.stage.nodes) == model.ngeom  # every geom drawn
    d = mujoco.MjData(model)
    for t in (0, 57, 199):
        viewer.show_step(t)
        d.qpos[:] = cap.load("qpos", env=0)[t]
        mujoco.mj_kinematics(model, d)
        for g, node in viewer.stage.nodes.items():
            np.testing.assert_allclose(node.batched_positions[0], d.geom_xpos[g], atol=1e-5)
    assert viewer.panel(ReplayPanel).step == 199
    # Plots: every metric key, grouped, nothing capped.
    assert set(viewer.panel(PlotsPanel).plots) == {"reward", "action", "info/alive"}
    np.testing.assert_array_equal(viewer.shown.series["info/alive"], cap.load("info/alive", env=0).astype(float))
    np.testing.assert_array_equal(viewer.shown.series["action[0]"], cap.load("action", env=0)[:, 0])
    # Observations are plotted on demand, one plot per 8 dimensions.
    viewer.panel(PlotsPanel).kinds["observations"].value = True
    assert {"obs/state"} <= set(viewer.panel(PlotsPanel).plots)  # 4 dimensions: one plot
    assert len(viewer.panel(PlotsPanel).plots["obs/state"].series) == 1 + 4 + 1
    viewer.panel(PlotsPanel).kinds["observations"].value = False
    assert "obs/state" not in viewer.panel(PlotsPanel).plots
    assert {s["label"].split(" = ")[0] for s in viewer.panel(PlotsPanel).plots["reward"].series} >= {
        "reward/upright",
        "reward/centered",
        "reward/ctrl",
    }
    # The legend gives each series' value at the shown step, not "--".
    viewer.act(viewer.show_step, 42)
    viewer.act(viewer.panel(PlotsPanel).catch_up, 42)
    upright = viewer.shown.series["metrics/reward/upright"][42]
    assert f"reward/upright = {upright:.4g}" in {s["label"] for s in viewer.panel(PlotsPanel).plots["reward"].series}


def test_grid_and_overlay_show_many_environments(viewer):
    viewer.panel(ScenePanel).count.value = 4
    viewer.panel(ScenePanel).layout.value = "grid"
    viewer.act(viewer.reload)
    stage = viewer.stage
    ground = {g for g in stage.nodes if stage.model.geom_type[g] == _geometry.PLANE}
    node = next(n for g, n in stage.nodes.items() if g not in ground)
    assert len(viewer.shown.envs) == 4 and node.batched_positions.shape == (4, 3)
    xs = {round(float(p[0]), 3) for p in node.batched_positions}
    assert len(xs) >= 2  # laid out side by side
    # One ground under them all (not a floor per environment, overlapping), reaching past
    # every environment on every side.
    lo, hi = stage.content_box()
    for g in ground:
        floor = stage.nodes[g]
        assert floor.batched_positions.shape == (1, 3)
        half = np.asarray(floor.batched_scales)[0, :2] * stage.envs.local_hi[g, :2]
        centre = np.asarray(floor.batched_positions)[0, :2]
        assert np.all(centre - half < lo[:2]) and np.all(centre + half > hi[:2]), (centre, half, lo, hi)
    viewer.panel(ScenePanel).layout.value = "overlay"
    viewer.act(viewer.reload)
    ground = {g for g in viewer.stage.nodes if viewer.stage.model.geom_type[g] == _geometry.PLANE}
    assert ground and all(viewer.stage.nodes[g].opacity is None for g in ground)  # the floor stays opaque
    assert all(n.opacity is not None and n.opacity < 1 for g, n in viewer.stage.nodes.items() if g not in ground)


def test_wireframe_and_transparency_toggle_and_hold_across_reloads(viewer):
    """MuJoCo viewer's W and T: every geom's edges, see-through bodies (the ground stays
    opaque); the flags hold when the meshes are built again (another layout) and go off."""
    sp = viewer.panel(ScenePanel)
    nodes = viewer.stage.nodes
    ground = {g for g in nodes if viewer.stage.model.geom_type[g] == _geometry.PLANE}
    assert not any(n.wireframe for n in nodes.values())
    sp.wireframe.value = True
    sp.transparent.value = True
    assert all(n.wireframe for n in viewer.stage.nodes.values())
    assert all(viewer.stage.nodes[g].opacity is None for g in ground)
    assert all(0 < n.opacity < 1 for g, n in viewer.stage.nodes.items() if g not in ground)
    sp.count.value = 3
    sp.layout.value = "grid"  # new meshes
    assert all(n.wireframe for n in viewer.stage.nodes.values())
    assert all(0 < n.opacity < 1 for g, n in viewer.stage.nodes.items() if g not in ground)
    sp.wireframe.value = False
    sp.transparent.value = False
    assert not any(n.wireframe for n in viewer.stage.nodes.values())
    assert all(n.opacity is None for n in viewer.stage.nodes.values())  # the demo's geoms are opaque
    assert not viewer.errors, viewer.errors


def test_switching_capture_and_environment(viewer, demo_run):
    viewer.load_capture(0)
    assert viewer.shown.capture.info.index == 0
    viewer.panel(ScenePanel).env.value = 3
    viewer.act(viewer.reload)
    assert viewer.shown.envs == [3]
    want = trajscope.open_run(demo_run).capture(0).load("reward", env=3)
    np.testing.assert_array_equal(viewer.shown.series["reward"], want.astype(float))


def test_live_follow_and_nan_finder(tmp_path, model):
    kw = simulate(model, T=20, E=3)
    w = trajscope.RunWriter(tmp_path, name="live", model=model, strict=True)
    w.add_capture(step=0, **kw)
    w.flush()
    v = Viewer(str(tmp_path / "live"), port=_free_port(), poll_s=0.1)
    try:
        v.follow_latest.value = True
        bad = {k: np.array(x, copy=True) for k, x in kw.items()}
        bad["qpos"][7, 2, 0] = np.nan
        w.add_capture(step=100, **bad)
        w.flush()
        v.poll()
        assert v.shown.capture.info.step == 100
        assert "2 captures" in v.status.content  # the header counts what arrived
        assert "qpos" in v.panel(NanPanel).text.content and not v.panel(NanPanel).jump.disabled
        v.act(v.panel(NanPanel).jump_to_nan)
        assert v.shown.envs == [2] and v.t == 7  # the non-finite frame is shown, not crashed on
        v.show_step(8)
    finally:
        w.close()
        v.close()


def test_damaged_capture_shows_an_error_and_the_server_lives(tmp_path, model):
    kw = simulate(model, T=5, E=2)
    with trajscope.RunWriter(tmp_path, name="bad", model=model, strict=True) as w:
        w.add_capture(step=0, **kw)
        w.add_capture(step=1, **kw)
    run = trajscope.open_run(tmp_path / "bad")
    d = tmp_path / "bad" / "captures" / run.captures[1].id
    (d / "qpos.zs").write_bytes(b"x")
    m = json.loads((d / "capture.json").read_text())
    v = Viewer(str(tmp_path / "bad"), port=_free_port())
    try:
        assert v.errors and "truncated" in v.errors[-1]
        v.act(v.load_capture, 0)
        assert v.shown.capture.info.index == 0  # the good capture still shows
        assert m["capture_id"] == d.name
    finally:
        v.close()


def test_live_switch_and_playback_of_streamed_chunks(tmp_path, model):
    """The viewer's side of the live stream, fed by a writer as training would feed it."""
    w = trajscope.RunWriter(tmp_path, name="lv", model=model, strict=True, keep_live=3)
    w.add_capture(step=0, **simulate(model, T=10, E=2))
    w.flush()
    url = str(tmp_path / "lv")
    v = Viewer(url, port=_free_port(), poll_s=3600, live=True)  # polled by the test alone: no race with the poll thread
    try:
        ctl = trajscope.store.read_live_control(url)
        assert ctl.on and ctl.active()  # switched on by the viewer, lease fresh
        assert "waiting for training" in v.panel(LivePanel).status.content
        for i in range(5):  # training streams five chunks; the writer keeps three
            w.add_capture(step=100 * (i + 1), kind="live", **simulate(model, T=8, E=3, seed=i))
        w.set_live_status(
            trajscope.store.LiveStatus(
                updated_unix_s=time.time(), streaming=True, env_steps=900, chunks_sent=5, num_envs=3, chunk_steps=8
            )
        )
        w.flush()
        run = trajscope.open_run(url)
        assert [c.step for c in run.live_chunks()] == [300, 400, 500]
        v.poll()
        assert v.panel(LivePanel).shown is not None and v.panel(LivePanel).shown.step == 500  # the newest chunk first
        assert v.shown.capture.info.kind == "live" and v.shown.qpos.shape == (8, 3, model.nq)  # all, side by side
        assert v.panel(ReplayPanel).playing
        assert "**on**" in v.panel(LivePanel).status.content and "400 steps" in v.panel(LivePanel).status.content
        poses = v.browser.current.poses
        w.add_capture(step=600, kind="live", **simulate(model, T=8, E=3, seed=9))
        w.flush()
        v.act(v.panel(LivePanel).next_live_chunk)
        assert v.panel(LivePanel).shown.step == 600  # the next chunk follows on
        assert v.browser.current.poses != poses  # with its own poses, not the last chunk's
        v.panel(LivePanel).on.value = False
        v.act(v.panel(LivePanel).write_control)
        assert not trajscope.store.read_live_control(url).on
        v.panel(LivePanel).watch.value = False
        v.act(v.panel(LivePanel).on_watch)
        assert v.panel(LivePanel).shown is None and v.shown.capture.info.kind == "eval"  # back to the captures
        v.panel(LivePanel).on.value = True
        v.act(v.panel(LivePanel).write_control)
    finally:
        w.close()
        v.close()
    assert not trajscope.store.read_live_control(url).on  # a closed viewer switches it off


def test_before_the_first_capture_the_model_is_drawn_and_after_training_the_newest_capture(tmp_path, model):
    """A run whose training is still compiling: the model at rest, framed, and a header that
    says what comes; when training ends, the newest capture and "finished"."""
    w = trajscope.RunWriter(tmp_path, name="early", model=model, strict=True)
    w.flush()
    url = str(tmp_path / "early")
    v = Viewer(url, port=_free_port(), poll_s=0.1, live=True)
    try:
        assert v.stage.at_rest and v.shown is None
        nodes = [n for n in v.stage.nodes.values() if n is not None]
        assert nodes and all(np.isfinite(n.batched_positions).all() for n in nodes)
        box = v.stage.framed_box()
        assert box is not None and np.all(box[1] > box[0])  # the camera framed the model
        assert "no capture yet: the model is drawn at rest" in v.status.content
        assert "waiting for training's first report" in v.panel(LivePanel).status.content
        status = dict(updated_unix_s=time.time(), env_steps=64, chunks_sent=1, num_envs=2, chunk_steps=8)
        w.add_capture(step=0, **simulate(model, T=10, E=2))
        w.add_capture(step=64, kind="live", **simulate(model, T=8, E=2))
        w.set_live_status(trajscope.store.LiveStatus(streaming=True, **status))
        w.flush()
        v.poll()
        assert not v.stage.at_rest and v.panel(LivePanel).running
        w.add_capture(step=100, **simulate(model, T=10, E=2, seed=1))
        w.set_live_status(trajscope.store.LiveStatus(streaming=False, finished=True, **status))
        w.flush()
        v.poll()
        assert (
            v.panel(LivePanel).ended
            and not v.panel(LivePanel).on.value
            and not v.panel(LivePanel).watch.value
            and v.panel(LivePanel).shown is None
        )
        assert v.shown.capture.info.step == 100  # the newest capture
        assert "training **finished** at 64 env steps" in v.panel(LivePanel).status.content
    finally:
        w.close()
        v.close()


def test_a_viewer_beyond_loopback_requires_its_token(demo_run):
    import http.client

    from trajscope.serve import serve

    v = serve(demo_run, host="127.0.0.2", port=_free_port(), token="s3cret-token")
    try:
        assert v.host == "127.0.0.1"  # viser itself stays on loopback
        assert v.url.endswith("/?token=s3cret-token") and "127.0.0.2" in v.url

        def get(path, headers=None):
            c = http.client.HTTPConnection("127.0.0.2", v.gate.port, timeout=10)
            c.request("GET", path, headers=headers or {})
            r = c.getresponse()
            out = (r.status, dict(r.getheaders()), r.read())
            c.close()
            return out

        assert get("/")[0] == 401
        assert get("/?token=wrong")[0] == 401
        cookie = f"trajscope_{v.gate.port}"
        assert get("/", {"Cookie": f"{cookie}=wrong"})[0] == 401
        assert get("/", {"Cookie": f"{cookie}=s3cret-token"})[0] == 401  # the token is not the session key
        status, headers, _ = get("/?token=s3cret-token")
        assert status == 302 and headers["Location"] == "/"
        assert headers["Set-Cookie"].startswith(f"{cookie}=") and "HttpOnly" in headers["Set-Cookie"]
        assert "s3cret-token" not in headers["Set-Cookie"]
        session = headers["Set-Cookie"].split(";")[0]
        status, _, body = get("/", {"Cookie": session})
        assert status == 200 and b"<html" in body.lower()
        with pytest.raises(ConnectionRefusedError):  # viser does not listen on the public interface
            socket.create_connection(("127.0.0.2", v.port), timeout=1).close()
    finally:
        v.close()


@pytest.mark.parametrize("host", ["0.0.0.0", "127.0.0.2"])
def test_the_exported_viewer_class_gates_too(demo_run, host, monkeypatch):
    """However the viewer is started, beyond loopback it sits behind the token gate."""
    import http.client

    monkeypatch.setenv("TRAJSCOPE_TOKEN", "from-env")
    port = _free_port()
    v = Viewer(demo_run, host=host, port=port)
    try:
        assert v.gate is not None and v.gate.port == port and v.host == "127.0.0.1" and v.port != port
        assert v.url.endswith("/?token=from-env")
        for token, want in (("", 401), ("?token=nope", 401), ("?token=from-env", 302)):
            c = http.client.HTTPConnection("127.0.0.1" if host == "0.0.0.0" else host, port, timeout=10)
            c.request("GET", "/" + token)
            assert c.getresponse().status == want, token
            c.close()
    finally:
        v.close()


def test_grid_keeps_the_selected_env_and_the_camera_follows_it(viewer, demo_run):
    """The selected environment is always drawn in grid and overlay, whatever its index,
    and "camera follows env" centres on it, not on the first shown."""
    cap = trajscope.open_run(demo_run).capture(2)
    viewer.panel(ScenePanel).layout.value = "grid"
    viewer.panel(ScenePanel).count.value = 2
    viewer.panel(ScenePanel).env.value = 3
    viewer.act(viewer.reload)
    assert viewer.shown.envs == [0, 3] and viewer.shown.selected == 3
    np.testing.assert_array_equal(viewer.shown.series["reward"], cap.load("reward", env=3).astype(float))
    viewer.panel(ScenePanel).follow.value = True
    viewer.show_step(50)
    model = viewer.stage.model
    d = mujoco.MjData(model)
    d.qpos[:] = cap.load("qpos", env=3)[50]
    mujoco.mj_kinematics(model, d)
    want = d.xpos[1] + viewer.stage.offsets(2)[1]  # env 3 is drawn second in the grid
    np.testing.assert_allclose(viewer.stage.follow_target(viewer.shown.selected_slot), want, atol=1e-6)
    assert not np.allclose(want, viewer.stage.offsets(2)[0] + viewer.stage.envs.kin.body_pos(1)[0])
    assert not viewer.errors


def test_values_at_the_current_step_follow_the_timeline(viewer, demo_run):
    cap = trajscope.open_run(demo_run).capture(2)
    reward = cap.load("reward", env=0)
    for t in (3, 120):
        viewer.show_step(t)
        assert f"**step {t}**" in viewer.panel(PlotsPanel).values.content
        assert f"| reward | {float(reward[t]):.4g} |" in viewer.panel(PlotsPanel).values.content
    assert "| reward\\/upright |" in viewer.panel(PlotsPanel).values.content  # keys escaped: they come from the run


TEXTURED = """
<mujoco>
  <asset>
    <texture name="grid" type="2d" builtin="checker" width="64" height="64" rgb1="1 0 0" rgb2="0 0 1"/>
    <material name="floor" texture="grid" texrepeat="2 2"/>
    <texture name="cube" type="cube" builtin="flat" width="8" height="8" rgb1="0 1 0"/>
    <material name="boxmat" texture="cube"/>
    <mesh name="tri" vertex="0 0 0  1 0 0  0 1 0  0 0 1" texcoord="0 0  1 0  0 1  1 1"
          face="0 2 1  0 1 3  0 3 2  1 2 3"/>
    <material name="meshmat" texture="grid"/>
  </asset>
  <worldbody>
    <geom name="floor" type="plane" size="2 2 0.1" material="floor"/>
    <body pos="0 0 1">
      <freejoint/>
      <geom type="box" size="0.1 0.1 0.1" material="boxmat"/>
      <geom type="mesh" mesh="tri" material="meshmat"/>
    </body>
  </worldbody>
</mujoco>
"""


def test_textures_are_drawn_from_the_model(tmp_path):
    m = mujoco.MjModel.from_xml_string(TEXTURED)
    floor, box, tri = (_geometry.geom_mesh(m, g) for g in range(m.ngeom))
    assert floor.texture is not None and floor.texture.image.shape == (64, 64, 3)
    img = floor.texture.image
    assert {tuple(c) for c in img.reshape(-1, 3)} == {(255, 0, 0), (0, 0, 255)}  # the checker's two colours
    np.testing.assert_allclose(floor.texture.uv.max(axis=0), [2, 2])  # texrepeat over the plane
    assert box.texture is None  # cube textures: drawn in the material's colour
    assert tri.texture is not None and tri.texture.uv.shape == (12, 2)  # one vertex per face corner
    d = mujoco.MjData(m)
    qpos = np.zeros((4, 2, m.nq))
    for e in range(2):
        mujoco.mj_resetData(m, d)
        for t in range(4):
            for _ in range(20):
                mujoco.mj_step(m, d)
            qpos[t, e] = d.qpos
    kw = {"qpos": qpos}
    with trajscope.RunWriter(tmp_path, name="tex", model=m, strict=True) as w:
        w.add_capture(step=0, **kw)
    v = Viewer(str(tmp_path / "tex"), port=_free_port())
    try:
        from viser._scene_handles import BatchedGlbHandle

        assert isinstance(v.stage.nodes[0], BatchedGlbHandle) and isinstance(v.stage.nodes[2], BatchedGlbHandle)
        v.show_step(3)
        d = mujoco.MjData(m)
        d.qpos[:] = kw["qpos"][3, 0]
        mujoco.mj_kinematics(m, d)
        np.testing.assert_allclose(v.stage.nodes[2].batched_positions[0], d.geom_xpos[2], atol=1e-5)
        assert not v.errors
    finally:
        v.close()


def test_randomised_sizes_scale_each_environments_geoms(tmp_path):
    """Per-environment geom_size changes what is drawn: each geom's instances are scaled so
    that its mesh has the environment's size (the mesh's extent, measured, not assumed)."""
    m = mujoco.MjModel.from_xml_string(ALL_GEOMS)
    rng = np.random.default_rng(0)
    E = 3
    sizes = m.geom_size * rng.uniform(0.5, 2.0, (E, m.ngeom, 3))
    kw = simulate_free(m, T=4, E=E)
    with trajscope.RunWriter(tmp_path, name="s", model=m, strict=True) as w:
        w.add_capture(step=0, model_fields={"geom_size": sizes}, **kw)
    v = Viewer(str(tmp_path / "s"), port=_free_port())
    try:
        v.panel(ScenePanel).layout.value = "grid"
        assert v.shown.envs == [0, 1, 2]
        for g in v.stage.envs.geoms:
            t = int(m.geom_type[g.geom_id])
            scales = np.asarray(v.stage.nodes[g.geom_id].batched_scales)
            if g.geom_id in v.stage.envs.ground:
                assert len(scales) == 1  # one ground under the grid, sized to reach past it
                continue
            for e in range(E):
                extent = (g.vertices * scales[e]).max(axis=0)
                s = sizes[e, g.geom_id]
                want = {
                    _geometry.SPHERE: [s[0]] * 3,
                    _geometry.ELLIPSOID: s[:3],
                    _geometry.BOX: s[:3],
                    _geometry.CYLINDER: [s[0], s[0], s[1]],
                    _geometry.CAPSULE: [s[0], s[0], s[1] + s[0]],
                    _geometry.PLANE: [s[0], s[1], 0.0],
                }.get(t)
                if want is None:  # meshes and height fields are not sized by geom_size
                    np.testing.assert_allclose(scales[e], 1.0)
                else:
                    np.testing.assert_allclose(extent, want, rtol=1e-3, atol=1e-6)
        # Alone, an environment stands on its own ground, at its own size.
        v.panel(ScenePanel).layout.value = "one"
        v.act(v.reload)
        for g in v.stage.envs.ground:
            e = v.shown.selected
            extent = (v.stage.envs.geoms[[x.geom_id for x in v.stage.envs.geoms].index(g)].vertices).max(axis=0)
            got = extent * np.asarray(v.stage.nodes[g].batched_scales)[0]
            np.testing.assert_allclose(got[:2], sizes[e, g, :2], rtol=1e-3)
        assert not v.errors
    finally:
        v.close()


def simulate_free(m, *, T, E):
    """qpos of a model with one free body, falling in MuJoCo."""
    d = mujoco.MjData(m)
    out = np.zeros((T, E, m.nq))
    for t in range(T):
        mujoco.mj_step(m, d)
        out[t] = d.qpos
    return {"qpos": out}


def test_plot_groups_split_wide_vectors_and_follow_the_kinds_chosen():
    from trajscope.serve import _shown

    series = {"reward": 0, "metrics/reward/a": 0, "metrics/height": 0, "info/level": 0}
    series |= {f"obs/state[{j}]": 0 for j in range(20)} | {f"action[{j}]": 0 for j in range(3)}
    groups = _shown.plot_groups(series)
    # The reward beside its terms (one scale); value and return (return units) on their own.
    assert groups["reward"] == ["reward", "metrics/reward/a"] and "value & realised return" not in groups
    with_value = _shown.plot_groups({"reward": 0, "value": 0, "realised return": 0})
    assert with_value == {"reward": ["reward"], "value & realised return": ["value", "realised return"]}
    assert groups["metrics"] == ["metrics/height"] and groups["info/level"] == ["info/level"]
    assert groups["action"] == ["action[0]", "action[1]", "action[2]"]
    assert [g for g in groups if g.startswith("obs/")] == ["obs/state [0-7]", "obs/state [8-15]", "obs/state [16-23]"]
    assert sum(len(v) for k, v in groups.items() if k.startswith("obs/")) == 20
    assert set(_shown.plot_groups(series, ("actions",))) == {"action"}


def test_every_kind_of_pixel_observation_is_shown(tmp_path, model):
    """Greyscale (T, E, H, W), stacked frames (9 channels), float images kept as floats
    (lossless mode, and with NaN): each reaches the pixel panel as RGB with its range."""
    from trajscope.serve import _shown

    T, E, H, W = 5, 2, 6, 8
    rng = np.random.default_rng(0)
    grey = (rng.integers(0, 256, (T, E, H, W)) / 255.0).astype(np.float32)
    stack = rng.integers(0, 256, (T, E, H, W, 9), dtype=np.uint8)
    depth = rng.uniform(0.3, 7.0, (T, E, H, W, 1)).astype(np.float32)  # not on the k/255 grid
    depth[2, 1, 3, 4, 0] = np.nan
    kw = simulate(model, T=T, E=E)
    kw["obs"] = {"pixels/grey": grey, "pixels/stack": stack, "pixels/depth": depth}
    with trajscope.RunWriter(tmp_path, name="px", model=model, strict=True, lossless_images=True) as w:
        w.add_capture(step=0, **kw)
    v = Viewer(str(tmp_path / "px"), port=_free_port())
    try:
        v.panel(ScenePanel).env.value = 1
        f = v.shown
        assert set(f.pixels) == {"pixels/grey", "pixels/stack", "pixels/depth"}
        g = f.pixels["pixels/grey"]
        assert g.shape == (T, H, W, 3) and g.dtype == np.uint8
        np.testing.assert_array_equal(g[..., 0], np.rint(grey[:, 1] * 255).astype(np.uint8))  # k/255: exact
        assert "values 0 to 1" in f.pixel_labels["pixels/grey"]
        s = f.pixels["pixels/stack"]
        assert s.shape == (T, H, 3 * W, 3) and "3 frames stacked" in f.pixel_labels["pixels/stack"]
        np.testing.assert_array_equal(s[:, :, W : 2 * W], stack[:, 1, ..., 3:6])  # the second frame, in place
        d = f.pixels["pixels/depth"]
        assert tuple(d[2, 3, 4]) == _shown.NAN_RGB and "1 non-finite" in f.pixel_labels["pixels/depth"]
        finite = depth[:, 1, ..., 0][np.isfinite(depth[:, 1, ..., 0])]
        assert f"values {finite.min():.3g} to {finite.max():.3g}" in f.pixel_labels["pixels/depth"]
        v.show_step(2)
        assert set(v.panel(PixelsPanel).images) == set(f.pixels)
        assert "3 frames stacked" in v.panel(PixelsPanel).images["pixels/stack"].label
        assert not v.errors
    finally:
        v.close()


def test_new_runs_under_a_root_appear_while_one_is_open(tmp_path, model):
    """A root written by several trainings: runs started after the viewer opened one are
    listed as they appear (within RUNS_POLL_S), and the open run stays open."""
    from trajscope.serve import _app

    kw = simulate(model, T=5, E=2)
    with trajscope.RunWriter(tmp_path, name="first", model=model, strict=True) as w:
        w.add_capture(step=0, **kw)
    v = Viewer(str(tmp_path), port=_free_port(), poll_s=0.1)
    try:
        assert v.run is not None and v.run.name == "first"
        with trajscope.RunWriter(tmp_path, name="second", model=model, strict=True) as w:
            w.add_capture(step=0, **kw)
        deadline = time.monotonic() + 10 * _app.RUNS_POLL_S
        while "second" not in v.run_menu.options:
            assert time.monotonic() < deadline, v.run_menu.options
            time.sleep(0.05)
        assert v.run.name == "first" and v.run_menu.value == "first"
        v.run_menu.value = "second"
        assert v.run.name == "second" and v.shown.capture.info.num_envs == 2
    finally:
        v.close()


def test_realised_return_is_plotted_beside_the_value(tmp_path, model):
    """The Plots show, for the selected env, the discounted return it actually got from each
    frame (the run's discount, in the value's units) beside the value predicted there."""
    kw = simulate(model, T=30, E=2)
    kw["reward"] = np.abs(kw["reward"])
    kw["done"][:] = False
    kw["done"][20, 1] = True
    gamma, scaling = 0.9, 10.0
    want = trajscope.analyse.returns_to_go(kw["reward"], kw["done"], gamma, reset_frame=True) * scaling
    kw["value"] = want.astype(np.float32)
    with trajscope.RunWriter(
        tmp_path, name="v", model=model, strict=True, config={"discounting": gamma, "reward_scaling": scaling}
    ) as w:
        w.add_capture(step=0, reset_frame=True, **kw)
    v = Viewer(str(tmp_path / "v"), port=_free_port())
    try:
        v.panel(ScenePanel).env.value = 1
        np.testing.assert_allclose(v.shown.series["realised return"], want[:, 1], rtol=1e-6)
        np.testing.assert_allclose(v.shown.series["value"], want[:, 1], rtol=1e-6)
        labels = {s["label"].split(" = ")[0] for s in v.panel(PlotsPanel).plots["value & realised return"].series}
        assert {"value", "realised return"} <= labels
    finally:
        v.close()


def test_the_analysis_follows_a_run_being_written(tmp_path, model):
    w = trajscope.RunWriter(tmp_path, name="a", model=model, strict=True)
    for step in range(2):
        w.add_capture(step=step, **simulate(model, T=20, E=3, seed=step))
    w.flush()
    v = Viewer(str(tmp_path / "a"), port=_free_port(), poll_s=3600)
    try:
        assert "not analysed yet" in v.panel(AnalysisPanel).status.content
        v.panel(AnalysisPanel).compute()
        assert v.panel(AnalysisPanel).wait(120) and len(v.panel(AnalysisPanel).doc["captures"]) == 2
        w.add_capture(step=5, **simulate(model, T=20, E=3, seed=5))
        w.flush()
        v.poll()  # the viewer's poll picks up the capture and analyses again
        assert v.panel(AnalysisPanel).wait(120)
        assert [c["step"] for c in v.panel(AnalysisPanel).doc["captures"]] == [0, 1, 5]
        assert [c["step"] for c in trajscope.open_run(tmp_path / "a").analysis()[0]["analysis"]["captures"]] == [
            0,
            1,
            5,
        ]
    finally:
        v.close()
        w.close()


def test_compare_draws_another_capture_beside_or_over_and_in_the_same_plots(tmp_path, model):
    """Compare with another checkpoint of the run, then with a capture of another run of the
    same model: drawn in orange at its own states on the shared timeline, its series dashed
    in the same plots; a run of another model is refused with a reason."""
    from trajscope.demo import write_demo_run

    root = tmp_path / "runs"
    write_demo_run(str(root), name="a", checkpoints=2, num_envs=2)
    write_demo_run(str(root), name="b", checkpoints=1, num_envs=2)
    with trajscope.RunWriter(root, name="c", model=model, strict=True) as w:  # another model
        w.add_capture(step=0, **simulate(model, T=5, E=1))
    v = Viewer(str(root), port=_free_port())
    try:
        v.run_menu.value = "a"
        run = trajscope.open_run(root / "a")
        labels = list(v.panel(ComparePanel).which.options)
        assert "#0 step 0" in labels and any(x.startswith("b #0") for x in labels), labels
        v.panel(ComparePanel).which.value = "#0 step 0"
        assert v.panel(ComparePanel).active and v.shown.capture.info.index == 1  # the latest shown, #0 compared
        mj = run.load_model()
        d = mujoco.MjData(mj)
        compared = v.panel(ComparePanel).shown
        for mode, dx in (("side by side", v.stage.spacing), ("overlaid", 0.0)):
            v.panel(ComparePanel).mode.value = mode
            v.show_step(40)
            d.qpos[:] = run.capture(0).load("qpos", env=0)[40]
            mujoco.mj_kinematics(mj, d)
            for g, node in v.stage.ghost.nodes.items():
                np.testing.assert_allclose(node.batched_positions[0], d.geom_xpos[g] + [dx, 0, 0], atol=1e-5)
        assert v.panel(ComparePanel).shown is compared  # reloads (mode changes) did not read it again
        reward = v.panel(PlotsPanel).plots["reward"]
        assert any("(#0 step 0)" in s["label"] for s in reward.series)
        other = next(x for x in labels if x.startswith("b #0"))
        v.panel(ComparePanel).which.value = other
        assert v.panel(ComparePanel).active and v.panel(ComparePanel).label == other
        # A capture of a different model: refused, said, nothing drawn.
        v.panel(ComparePanel).set_choices({"c": str(root / "c")}, v.run)
        v.panel(ComparePanel).which.value = next(x for x in v.panel(ComparePanel).which.options if x.startswith("c #0"))
        assert not v.panel(ComparePanel).active and any("different models" in e for e in v.errors), v.errors
    finally:
        v.close()


def test_clicking_a_point_of_the_training_curve_opens_its_capture(viewer, demo_run):
    """The training curve's clickable copy in the scene: one point per capture at (env step,
    mean return), the shown one in red; a click on a point (viser's click event on its
    instance) opens that capture."""
    import types

    run = trajscope.open_run(demo_run)
    viewer.panel(TrainingCurvePanel).scene_curve.show.value = True
    curve = viewer.panel(TrainingCurvePanel).scene_curve
    assert curve.indices == [c.index for c in run.captures if c.mean_return is not None]
    steps = np.array([run.captures[i].step for i in curve.indices], float)
    along = curve.positions @ curve.right
    assert np.all(np.diff(along) > 0) == np.all(np.diff(steps) > 0)  # later checkpoints further right
    colours = np.asarray(curve.points.batched_colors)
    shown = curve.indices.index(viewer.shown.capture.info.index)
    assert tuple(colours[shown]) == (220, 30, 30) and sum(tuple(c) == (220, 30, 30) for c in colours) == 1
    target = curve.indices[0]
    curve.on_pick(types.SimpleNamespace(instance_index=0))  # what viser calls on a click
    assert viewer.shown.capture.info.index == target
    assert tuple(np.asarray(viewer.panel(TrainingCurvePanel).scene_curve.points.batched_colors)[0]) == (220, 30, 30)
    viewer.panel(TrainingCurvePanel).scene_curve.show.value = False
    assert viewer.panel(TrainingCurvePanel).scene_curve.points is None


def test_switching_the_state_map_on_computes_it_and_brings_it_into_view(viewer):
    """The map asked for before the run was analysed: computed, drawn, and framed with the
    environments, facing the starting camera."""
    from trajscope import scene

    a = viewer.panel(AnalysisPanel)
    assert a.points is None and a.map is None
    a.show_map.value = True
    viewer.act(a.on_show_map)  # what ticking the box in the browser does
    assert a.wait(300) and a.map is not None and a.points is not None
    lo, hi = viewer.stage.framed_box()
    mlo, mhi = a.map_box()
    assert np.all(lo <= mlo + 1e-9) and np.all(hi >= mhi - 1e-9)  # the camera frames the map too
    envs_lo, envs_hi = viewer.stage.content_box()
    assert np.all(lo <= envs_lo + 1e-9) and np.all(hi >= envs_hi - 1e-9)  # and the environments
    # The map stands upright facing the camera's starting heading (its normal is the
    # horizontal part of the view direction).
    normal = np.cross(a.map_right(), [0.0, 0.0, 1.0])
    view = np.asarray(scene.VIEW_DIRECTION, float) * [1.0, 1.0, 0.0]
    assert abs(normal @ view) / np.linalg.norm(view) > 0.99


def test_the_live_status_tells_a_training_that_evaluates_from_one_that_stopped(tmp_path, model):
    """Between training steps (an evaluation, a checkpoint) the recorder's heartbeat says it
    lives: the page says training evaluates; when both are old, that no word came."""
    w = trajscope.RunWriter(tmp_path, name="hb", model=model, strict=True)
    w.add_capture(step=0, **simulate(model, T=10, E=2))
    now = time.time()
    status = dict(streaming=False, env_steps=640, chunks_sent=0, num_envs=2, chunk_steps=8)
    w.set_live_status(trajscope.store.LiveStatus(updated_unix_s=now - 90, alive_unix_s=now, **status))
    w.flush()
    v = Viewer(str(tmp_path / "hb"), port=_free_port(), poll_s=3600)
    try:
        live = v.panel(LivePanel)
        live.draw_status()
        assert "evaluating or checkpointing" in live.status.content and "no word" not in live.status.content
        w.set_live_status(trajscope.store.LiveStatus(updated_unix_s=now - 90, alive_unix_s=now - 60, **status))
        w.flush()
        live.draw_status()
        assert "no word from training for 60 s" in live.status.content, live.status.content
    finally:
        v.close()
        w.close()


def test_a_busy_port_is_said_in_the_terminal_and_on_the_page(demo_run, capsys):
    """Asked for a port that is taken, the viewer serves on another and says so twice: on
    stderr (where the user started it) and at the top of the page."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        with pytest.warns(UserWarning, match=f"port {busy} is busy"):
            v = Viewer(demo_run, port=busy)
        try:
            assert v.port != busy and v.moved_from == busy
            assert f"port {busy} is busy; serving on port {v.port}" in capsys.readouterr().err
            assert v.port_notice.visible and f"port {busy} was busy" in v.port_notice.content
            assert f"ssh -L {v.port}:localhost:{v.port}" in v.port_notice.content
        finally:
            v.close()
    quiet = Viewer(demo_run, port=_free_port())
    try:
        assert quiet.moved_from is None and not quiet.port_notice.visible
    finally:
        quiet.close()
