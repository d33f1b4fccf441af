"""Replay played in each browser tab: the pose blocks are exact to their quantum, tabs play
apart, the server hears the step a tab settles on, a server seek moves every tab, and the
page's arrow keys switch environments. Real headless Chromium (Debian's)."""

from __future__ import annotations

import time

import numpy as np
import pytest

import trajscope
from servers import free_port
from test_serve_browser import ARGS, CHROMIUM
from trajscope import scene, sim
from trajscope.demo import write_demo_run
from trajscope.serve import ScenePanel, Viewer


def _wait(cond, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_pose_blocks_hold_mujocos_poses_to_their_quantum_in_under_half_the_bytes(tmp_path):
    run = trajscope.open_run(write_demo_run(str(tmp_path), name="demo", checkpoints=1, num_envs=6))
    cap = run.capture(-1)
    qpos = cap.load("qpos")  # (T, E, nq)
    model = run.load_model()
    kin = sim.Kinematics(model, qpos.shape[1], None)
    pos = np.empty((qpos.shape[0], qpos.shape[1], model.ngeom, 3))
    quat = np.empty((qpos.shape[0], qpos.shape[1], model.ngeom, 4))
    for t in range(qpos.shape[0]):
        pos[t], quat[t], _ = kin.poses(qpos[t])
    for lo in range(0, qpos.shape[0], scene.BLOCK_STEPS):
        P, Q = pos[lo : lo + scene.BLOCK_STEPS], quat[lo : lo + scene.BLOCK_STEPS]
        data = scene.encode_block(P, Q)
        p, q = scene.decode_block(data)
        span = (P.max(axis=(0, 1)) - P.min(axis=(0, 1))).max()
        assert np.abs(p - P).max() <= max(span, 1e-6) / 65535 + 1e-6  # half a quantum, and float32
        same = np.where(Q[..., :1] < 0, -Q, Q)  # one sign per rotation
        assert np.abs(q - same).max() <= 2e-5
        assert len(data) < 0.5 * (P.size + Q.size) * 4  # against float32 poses
    with pytest.raises(ValueError, match="known version"):
        scene.decode_block(b"\0" * 40)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (scripts/setup.sh installs it)")
def test_each_tab_plays_by_itself_and_the_server_hears_where_it_settles(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    run = write_demo_run(str(tmp_path), name="demo", checkpoints=2, num_envs=4)
    v = Viewer(run, port=free_port(), poll_s=3600)
    state = "window.__trajscopePlayer && window.__trajscopePlayer.state()"
    try:
        v.panel(ScenePanel).layout.value = "grid"
        v.act(v.reload)
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            a = browser.new_page(viewport={"width": 960, "height": 600})
            b = browser.new_page(viewport={"width": 960, "height": 600})
            for page in (a, b):
                page.goto(v.url)
                # Every block of the capture came, and the first frame is drawn by the tab.
                page.wait_for_function(f"({state}) && ({state}).shown >= 0 && ({state}).received === ({state}).blocks")
            T = v.shown.num_steps
            assert a.evaluate(f"({state}).steps") == T
            sent = v.browser.sent_bytes
            # The blocks went once to each tab: poses of 4 envs are not sent again while playing.
            a.keyboard.press("Space")
            a.wait_for_function(f"({state}).step > 5")
            assert b.evaluate(f"({state}).step") == 0 and not b.evaluate(f"({state}).playing")  # the other tab stays
            assert v.browser.sent_bytes == sent
            _wait(lambda: v.t > 0)  # the server hears the playing tab (a few times a second)
            a.keyboard.press("Space")  # pause: the step it settles on reaches the panels
            a.wait_for_function(f"!({state}).playing")
            settled = a.evaluate(f"({state}).step")
            _wait(lambda: v.t == settled)
            # The server moves the step (a NaN found, a state picked): every tab follows.
            v.act(v.show_step, 11)
            for page in (a, b):
                page.wait_for_function(f"({state}).step === 11 && ({state}).shown === 11")
            # rscope's keys: right arrow, the next environment; up, the newer capture.
            assert int(v.panel(ScenePanel).env.value) == 0
            sent = v.browser.sent_bytes
            b.keyboard.press("ArrowRight")
            _wait(lambda: int(v.panel(ScenePanel).env.value) == 1)
            b.wait_for_function(f"({state}).shown === ({state}).step")
            assert v.browser.sent_bytes == sent  # the same capture's poses are not sent again
            b.keyboard.press("ArrowDown")
            _wait(lambda: v.shown is not None and v.shown.capture.info.index == 0)
            b.wait_for_function(f"({state}).received === ({state}).blocks")
            assert not v.errors
            browser.close()
    finally:
        v.close()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (scripts/setup.sh installs it)")
def test_past_64_envs_the_selected_one_and_its_neighbours_are_drawn_in_full_the_rest_coarse(tmp_path):
    """70 environments on a grid: the selected one and its 63 nearest get every triangle,
    the other 6 coarse meshes; the page says so; the tab poses both sets from the same
    blocks, each instance where MuJoCo puts its environment; selecting another env moves
    the full set without sending any pose again."""
    playwright = pytest.importorskip("playwright.sync_api")
    run = write_demo_run(str(tmp_path), name="many", checkpoints=1, num_envs=70)
    v = Viewer(run, port=free_port(), poll_s=3600)
    state = "window.__trajscopePlayer && window.__trajscopePlayer.state()"
    try:
        sp = v.panel(ScenePanel)
        sp.layout.value = "grid"
        sp.count.value = 70
        _wait(lambda: v.shown is not None and len(v.shown.envs) == 70)
        stage = v.stage
        assert stage.drawn_in_full() == (64, 6)
        envs = stage.envs
        assert envs is not None and 0 in envs.full and len(envs.coarse) == 6
        assert "and its 63 nearest" in sp.detail.content and "other 6 coarse" in sp.detail.content
        g = max(envs.coarse_nodes, key=lambda i: len(envs.nodes[i].faces))  # a rounded geom
        full_faces, coarse_faces = len(envs.nodes[g].faces), len(envs.coarse_nodes[g].faces)
        assert coarse_faces < full_faces
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 960, "height": 600})
            page.goto(v.url)
            page.wait_for_function(f"({state}) && ({state}).received === ({state}).blocks")
            v.act(v.show_step, 20)
            page.wait_for_function(f"({state}).shown === 20")
            # Where MuJoCo puts each environment's geom g at step 20, grid offsets added.
            kin = sim.Kinematics(v.model, 70, None)
            pos, _, _ = kin.poses(v.shown.qpos[20])
            world = pos[:, g] + stage.offsets()
            span = float(np.ptp(pos[:, g], axis=0).max()) + 1e-3
            for node, slots in ((envs.nodes[g], envs.full), (envs.coarse_nodes[g], envs.coarse)):
                got = np.array(page.evaluate(f"window.__trajscopePlayer.positions({node.name!r})")).reshape(-1, 3)
                np.testing.assert_allclose(got, world[slots], atol=span / 65535 * 8 + 1e-5)
            sent = v.browser.sent_bytes
            sp.env.value = 69  # the far corner: now it and its neighbours are drawn in full
            _wait(lambda: 69 in stage.envs.full and 0 not in stage.envs.full)
            assert "env 69 and its 63 nearest" in sp.detail.content
            page.wait_for_function(f"({state}).shown === 20")
            assert v.browser.sent_bytes == sent
            assert not v.errors, v.errors
            browser.close()
    finally:
        v.close()


DECOR_XML = """
<mujoco model="decor">
  <option timestep="0.01"/>
  <worldbody>
    <light name="sun" pos="0 0 3" dir="0 0.6 -0.8"/>
    <geom type="plane" size="2 2 0.1"/>
    <camera name="side" pos="0 -2 0.6" xyaxes="1 0 0 0 0.3 1" fovy="50"/>
    <body name="torso" pos="0 0 0.5">
      <freejoint/>
      <geom type="box" size="0.1 0.1 0.1" mass="2"/>
      <site name="tip" pos="0.1 0 0.1" size="0.03" rgba="0 1 0 1"/>
      <camera name="ego" pos="0.1 0 0" xyaxes="0 -1 0 0 0 1"/>
      <body name="arm" pos="0.1 0 0">
        <joint name="elbow" type="hinge" axis="0 1 0"/>
        <geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.03"/>
        <site name="hand" pos="0.3 0 0" type="box" size="0.02 0.02 0.02"/>
      </body>
    </body>
  </worldbody>
  <actuator><motor joint="elbow"/></actuator>
</mujoco>
"""


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (scripts/setup.sh installs it)")
def test_sites_frames_centres_of_mass_and_cameras_are_drawn_where_mujoco_puts_them(tmp_path):
    """MuJoCo viewer's decorations, each a toggle: the tab poses them from the capture's
    blocks where MuJoCo's kinematics puts them at that step; "look through" a model camera
    puts the browser's camera there."""
    import mujoco

    playwright = pytest.importorskip("playwright.sync_api")
    model = mujoco.MjModel.from_xml_string(DECOR_XML)
    rng = np.random.default_rng(0)
    d = mujoco.MjData(model)
    T, E = 40, 2
    qpos = np.zeros((T, E, model.nq))
    for e in range(E):
        mujoco.mj_resetData(model, d)
        for t in range(T):
            d.ctrl[:] = rng.uniform(-1, 1)
            mujoco.mj_step(model, d)
            qpos[t, e] = d.qpos
    with trajscope.RunWriter(tmp_path, name="decor", model=model) as w:
        w.add_capture(step=0, qpos=qpos, reward=np.zeros((T, E)))
    v = Viewer(str(tmp_path / "decor"), port=free_port(), poll_s=3600)
    state = "window.__trajscopePlayer && window.__trajscopePlayer.state()"
    try:
        sp = v.panel(ScenePanel)
        sp.layout.value = "grid"
        for k in ("sites", "frames", "com", "cameras", "lights"):
            sp.decorations[k].value = True
        envs = v.stage.envs
        assert set(envs.deco_nodes) == {"site0", "site1", "framex", "framey", "framez", "com", "camera0", "camera1",
                                        "lights"}  # fmt: skip
        assert list(sp.look.options) == ["(free camera)", "0: side", "1: ego"]
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 960, "height": 600})
            page.goto(v.url)
            page.wait_for_function(f"({state}) && ({state}).received === ({state}).blocks")
            v.act(v.show_step, 25)
            page.wait_for_function(f"({state}).shown === 25")
            off = v.stage.offsets()
            want = {"site0": [], "site1": [], "com": [], "framex": [], "camera1": []}
            for e in range(E):
                d.qpos[:] = qpos[25, e]
                mujoco.mj_kinematics(model, d)
                mujoco.mj_comPos(model, d)
                mujoco.mj_camlight(model, d)
                want["site0"].append([d.site_xpos[0] + off[e]])
                want["site1"].append([d.site_xpos[1] + off[e]])
                want["com"].append([d.xipos[b] + off[e] for b in (1, 2)])
                want["framex"].append([d.xpos[b] + off[e] for b in (1, 2)])
                want["camera1"].append([d.cam_xpos[1] + off[e]])
            for name, per_env in want.items():
                # Instances run item by item, environment by environment within each.
                expect = np.array(per_env).transpose(1, 0, 2).reshape(-1, 3)
                got = page.evaluate(f"window.__trajscopePlayer.positions({envs.deco_nodes[name].name!r})")
                np.testing.assert_allclose(np.array(got).reshape(-1, 3), expect, atol=2e-3)
            # Look through the body's camera: the browser's camera goes there, at the step shown.
            sp.look.value = "1: ego"
            cam = next(iter(v.server.get_clients().values())).camera
            _wait(lambda: np.allclose(cam.position, want["camera1"][v.shown.selected_slot][0], atol=1e-3))
            assert not v.errors, v.errors
            browser.close()
    finally:
        v.close()
