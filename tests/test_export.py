"""Video export: real files rendered by MuJoCo offscreen, decoded again and looked at."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import trajscope
from conftest import simulate
from trajscope.serve import ScenePanel

imageio = pytest.importorskip("imageio.v2")
pytest.importorskip("imageio_ffmpeg")

COLOURS = np.array([[1, 0, 0, 1], [0, 1, 0, 1], [0, 0, 1, 1]], np.float32)


@pytest.fixture
def run(tmp_path, model):
    """Three environments falling from the same start, each box its own colour; env 1's
    state is NaN at steps 10 to 12."""
    kw = simulate(model, T=30, E=3)
    kw["qpos"][10:13, 1] = np.nan
    rgba = np.broadcast_to(model.geom_rgba, (3, *model.geom_rgba.shape)).copy()
    box = 2  # plane, mocap sphere, box, capsule
    rgba[:, box] = COLOURS
    with trajscope.RunWriter(tmp_path, name="v", model=model, control_dt_s=0.02, strict=True) as w:
        assert w.add_capture(step=100, model_fields={"geom_rgba": rgba}, **kw)
    return trajscope.open_run(tmp_path / "v")


def _dominant(tile):
    """How many pixels are mostly red, green and blue."""
    t = tile.astype(int)
    return [int(((t[..., c] > 80) & (t[..., c] > 2 * np.delete(t, c, axis=-1).max(axis=-1))).sum()) for c in range(3)]


def test_mp4_of_three_environments_has_their_frames_colours_and_a_nan_caption(run, tmp_path):
    out = tmp_path / "v.mp4"
    env = {k: v for k, v in os.environ.items() if k != "MUJOCO_GL"}  # the command chooses it
    res = subprocess.run(
        [sys.executable, "-m", "trajscope", "video", run.path, "--out", str(out), "--envs", "0,1,2",
         "--width", "160", "--height", "120", "--capture", "0"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "30/30" in res.stderr  # the progress bar reached the end
    reader = imageio.get_reader(out)
    frames = np.stack([reader.get_data(i) for i in range(reader.count_frames())])
    assert reader.get_meta_data()["fps"] == pytest.approx(50.0)
    assert frames.shape == (30, 240, 320, 3)  # three 160 x 120 tiles in a 2 x 2 grid
    assert np.abs(frames[0].astype(int) - frames[-1]).mean() > 1.0  # the bodies fell
    tiles = [frames[25, :120, :160], frames[25, :120, 160:], frames[25, 120:, :160]]
    red, green, blue = (_dominant(t) for t in tiles)
    assert red[0] > 50 and red[1] < red[0] / 5 and red[2] < red[0] / 5, (red, green, blue)
    assert green[1] > 50 and green[0] < green[1] / 5, (red, green, blue)
    assert blue[2] > 50 and blue[0] < blue[2] / 5, (red, green, blue)

    # Env 1's non-finite steps: still written, with a red caption band over its tile.
    def redness(t):  # of the caption band (white text on it adds to every channel alike)
        band = frames[t, 2:10, 160:300].astype(int)
        return float((band[..., 0] - band[..., 1]).mean())

    assert redness(11) > 50 and redness(20) < 10, (redness(11), redness(20))  # black when finite


def test_frames_from_python_gif_and_bad_requests(run, tmp_path):
    from trajscope import export

    frames = export.video(run, 0, envs=[2], width=64, height=48)
    assert frames.shape == (30, 48, 64, 3) and frames.dtype == np.uint8
    export.video(run, 0, out=tmp_path / "v.gif", envs=[0], width=64, height=48, steps=slice(0, 10))
    assert len(imageio.mimread(tmp_path / "v.gif")) == 10
    with pytest.raises(export.ExportError, match="out of range"):
        export.video(run, 0, envs=[5], out=tmp_path / "x.mp4")
    with pytest.raises(export.ExportError, match="unknown video type"):
        export.video(run, 0, out=tmp_path / "x.avi")
    with pytest.raises(export.ExportError, match="no camera 'nope'"):
        export.video(run, 0, camera="nope", out=tmp_path / "x.mp4")
    res = subprocess.run(
        [sys.executable, "-m", "trajscope", "video", run.path, "--out", str(tmp_path / "y.mp4"), "--capture", "9"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 2 and "no capture '9'" in res.stderr


def test_contacts_are_drawn_where_the_stored_state_touches(tmp_path, model):
    """A box resting slightly into the floor: with contacts on, MuJoCo's contact point and
    force arrow are drawn; in the air, nothing changes."""
    from trajscope import export

    kw = simulate(model, T=2, E=2)
    kw["qpos"][:, 0, 2] = 0.095  # env 0: the box's bottom 5 mm into the floor
    kw["qpos"][:, 1, 2] = 0.8  # env 1: in the air
    kw["qpos"][:, :, 3:7] = [1, 0, 0, 0]
    with trajscope.RunWriter(tmp_path, name="c", model=model, strict=True) as w:
        assert w.add_capture(step=0, **kw)
    run = trajscope.open_run(tmp_path / "c")
    for env, touching in ((0, True), (1, False)):
        plain, drawn = (
            export.video(run, 0, envs=[env], width=160, height=120, camera="track", contacts=c) for c in (False, True)
        )
        changed = int((np.abs(plain[0].astype(int) - drawn[0]).max(axis=-1) > 30).sum())
        assert (changed > 20) if touching else (changed == 0), (env, changed)


def test_tiles_shrink_to_fit_a_grid_unless_a_size_is_given():
    from trajscope.export import tile_size

    assert tile_size(1) == (480, 360) and tile_size(4) == (480, 360)  # 960x720 in all
    assert tile_size(16) == (240, 180) and tile_size(9) == (320, 240)
    assert tile_size(16, 400, 300) == (400, 300) and tile_size(16, 320) == (320, 240)


def test_the_default_camera_keeps_a_walking_robot_in_frame(tmp_path, model):
    """A floating-base body that walks 6 m away: the default camera tracks it (it stays in
    the middle of the picture); the fixed camera loses it."""
    import mujoco

    from trajscope import export, sim

    assert sim.floating_root(model) == 2  # the torso, hung from the world by a free joint
    hinge_only = mujoco.MjModel.from_xml_string(
        "<mujoco><worldbody><body><joint type='hinge'/><geom size='.1'/></body></worldbody></mujoco>"
    )
    assert sim.floating_root(hinge_only) is None and sim.camera(hinge_only).type == mujoco.mjtCamera.mjCAMERA_FREE
    T = 12
    kw = simulate(model, T=T, E=1)
    kw["qpos"][:, 0, :3] = np.stack([np.linspace(0, 6, T), np.zeros(T), np.full(T, 0.5)], axis=1)
    kw["qpos"][:, 0, 3:7] = [1, 0, 0, 0]
    with trajscope.RunWriter(tmp_path, name="w", model=model, strict=True) as w:
        assert w.add_capture(step=0, **kw)
    run = trajscope.open_run(tmp_path / "w")

    def box_pixels(frames):  # where the torso (grey-white box) is drawn, per frame
        return [np.argwhere(np.abs(f.astype(int) - f[0, 0]).max(axis=-1) > 60) for f in frames]

    tracked = list(export.frames(run, 0, width=160, height=120, caption=False))
    first, last = box_pixels([tracked[0], tracked[-1]])
    assert len(first) and len(last)
    assert np.abs(first.mean(axis=0) - last.mean(axis=0)).max() < 12  # still where it was
    # MuJoCo's own scene camera: the default one moves with the robot, the fixed one stays.
    renderer, data = sim.renderer(model, 120, 160), mujoco.MjData(model)
    moved = {}
    for name in ("auto", "fixed"):
        cam, xs = sim.camera(model, name), []
        for q in run.capture(0).load("qpos", env=0)[[0, -1]]:
            data.qpos[:] = q
            mujoco.mj_forward(model, data)
            renderer.update_scene(data, camera=cam)
            xs.append(float(renderer.scene.camera[0].pos[0]))
        moved[name] = xs[1] - xs[0]
    renderer.close()
    assert moved["auto"] == pytest.approx(6.0, abs=0.1) and moved["fixed"] == pytest.approx(0.0, abs=1e-6)


def test_single_file_html_replays_offline_in_chromium(tmp_path):
    """trajscope html writes one file; headless Chromium with the network off opens it from
    disk, asks for nothing outside it, and draws the scene moving over time."""
    import shutil
    import time

    playwright = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh installs it)")
    from PIL import Image

    from test_serve_browser import ARGS
    from trajscope.demo import write_demo_run

    run = write_demo_run(str(tmp_path), name="demo", checkpoints=1, num_envs=2)
    out = tmp_path / "replay.html"
    res = subprocess.run(
        [sys.executable, "-m", "trajscope", "html", run, "--out", str(out)], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr
    assert "viser" not in res.stdout and "http://" not in res.stdout, res.stdout  # no server is offered
    assert out.stat().st_size < 5e6
    text = out.read_text()
    assert "__VISER_EMBED_DATA__" in text and "https://" not in text.split("__VISER_EMBED_DATA__")[1][:200]
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        ctx = browser.new_context(offline=True, viewport={"width": 900, "height": 600})
        outside = []
        pg = ctx.new_page()
        pg.on("request", lambda r: outside.append(r.url) if r.url.split(":")[0] in ("http", "https", "ws") else None)
        pg.goto(out.as_uri())
        pg.wait_for_selector("canvas", timeout=60_000)

        def shot(name):
            path = tmp_path / f"{name}.png"
            pg.screenshot(path=str(path))
            return np.asarray(Image.open(path).convert("RGB")).astype(int)

        deadline = time.monotonic() + 90
        first = shot("html_first")
        while first.std() < 10 and time.monotonic() < deadline:  # until the scene is drawn
            first = shot("html_first")
        assert first.std() > 10  # not a blank page
        later = shot("html_later")
        while (np.abs(later - first).sum(axis=-1) > 60).sum() < 200 and time.monotonic() < deadline:
            later = shot("html_later")  # the replay plays: the pole, the label, the marker move
        assert (np.abs(later - first).sum(axis=-1) > 60).sum() >= 200
        # MuJoCo's colours as in the viewer: the scene room's script turned the tone curve off.
        pg.wait_for_function("window.__trajscopeColours && window.__trajscopeColours.untoned >= 3", timeout=30_000)
        browser.close()
    assert not outside, outside


def test_the_viewer_draws_contacts_of_the_stored_state(tmp_path, model):
    """The viewer's contacts toggle: points where the resting box meets the floor and force
    arrows pointing up, from MuJoCo's own collision and solver; none for a box in the air."""
    from test_serve import _free_port
    from trajscope.serve import Viewer

    kw = simulate(model, T=2, E=2)
    kw["qpos"][:, :, 3:7] = [1, 0, 0, 0]
    kw["qpos"][:, 0, 2] = 0.099  # env 0 rests on the floor
    kw["qpos"][:, 1, 2] = 0.8
    with trajscope.RunWriter(tmp_path, name="c", model=model, strict=True) as w:
        assert w.add_capture(step=0, **kw)
    viewer = Viewer(str(tmp_path / "c"), port=_free_port())
    try:
        viewer.panel(ScenePanel).contacts.value = True
        viewer.show_step(0)
        points, arrows = viewer.stage.envs.contact_nodes
        p = np.asarray(points.points)
        assert len(p) >= 4 and np.allclose(p[:, 2], 0.0, atol=0.01)
        assert (np.abs(p[:, :2] - kw["qpos"][0, 0, :2]) <= 0.1 + 1e-3).all()  # under the box
        seg = np.asarray(arrows.points)
        assert (seg[:, 1, 2] > seg[:, 0, 2]).all()  # the floor pushes up
        viewer.panel(ScenePanel).env.value = 1
        viewer.show_step(0)
        assert viewer.stage.envs.contact_nodes == []
        viewer.panel(ScenePanel).contacts.value = False
        assert not viewer.errors, viewer.errors
    finally:
        viewer.close()


def test_training_videos_reach_tensorboard_and_wandb(run, tmp_path, monkeypatch):
    """The on_video hand-offs: an animated GIF image summary in a real TensorBoard event file
    at the capture's step, and a wandb.Video in an offline W&B run."""
    import struct

    pytest.importorskip("jax")
    tbx = pytest.importorskip("tensorboardX")
    from trajscope import export
    from trajscope.capture import video_to_tensorboard, video_to_wandb

    mp4 = tmp_path / "v.mp4"
    export.video(run, 0, out=mp4, envs=[0], width=64, height=48, steps=slice(0, 12))
    writer = tbx.SummaryWriter(str(tmp_path / "tb"))
    video_to_tensorboard(writer, tag="rollout")(str(mp4), 4200)
    writer.close()
    from tensorboardX.proto.event_pb2 import Event

    events = []
    for f in (tmp_path / "tb").iterdir():
        data = f.read_bytes()
        i = 0
        while i < len(data):  # TFRecord: length, its CRC, the event, its CRC
            (n,) = struct.unpack("<Q", data[i : i + 8])
            events.append(Event.FromString(data[i + 12 : i + 12 + n]))
            i += 12 + n + 4
    images = [(e.step, v) for e in events for v in e.summary.value if v.tag == "rollout"]
    assert len(images) == 1 and images[0][0] == 4200
    gif = images[0][1].image
    assert gif.encoded_image_string[:6] == b"GIF89a" and (gif.width, gif.height) == (64, 48)

    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    wb = wandb.init(mode="offline", dir=str(tmp_path), project="trajscope-test")
    try:
        video_to_wandb("rollout")(str(mp4), 4200)
    finally:
        wb.finish()
    logged = list((tmp_path / "wandb").rglob("media/videos/rollout_*.mp4"))
    assert len(logged) == 1 and logged[0].stat().st_size > 0


def test_without_an_offscreen_opengl_the_command_says_what_to_install(run, tmp_path):
    """MUJOCO_GL=glfw on a machine without a display: no window system, so no context; the
    command exits 2 with what to install, and writes no file."""
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    env["MUJOCO_GL"] = "glfw"
    out = tmp_path / "x.mp4"
    res = subprocess.run(
        [sys.executable, "-m", "trajscope", "video", run.path, "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert "cannot render offscreen" in res.stderr and "MUJOCO_GL=egl" in res.stderr
    assert not out.exists()


def test_an_interrupted_video_export_leaves_no_file_under_its_name(tmp_path):
    """The video is written under a hidden temporary name and renamed when whole: stopped
    while it renders (Ctrl-C), the command leaves nothing under the name asked for, nor the
    temporary file."""
    import signal
    import time

    from trajscope.demo import write_demo_run

    run = write_demo_run(str(tmp_path / "runs"), name="demo", checkpoints=1, num_envs=2)
    out = tmp_path / "out" / "v.mp4"
    out.parent.mkdir()
    cmd = [sys.executable, "-m", "trajscope", "video", run, "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not list(out.parent.glob(".v.mp4.partial-*")):  # it has started writing
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no partial file appeared"
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode != 0
    assert not out.exists() and not list(out.parent.iterdir()), list(out.parent.iterdir())
