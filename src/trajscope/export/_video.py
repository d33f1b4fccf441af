"""Video of captured rollouts, rendered offscreen by MuJoCo's own renderer.

Each environment is drawn with its own randomised model fields (colours, sizes, positions)
from its stored state; several environments are tiled in a grid. Frames get a caption
(capture, environment, step, return so far). A state that is not finite is drawn at its
last finite pose with a red caption; the other frames are written as usual.

Needs an offscreen OpenGL: EGL where a GPU or Mesa's EGL is installed, else OSMesa; MuJoCo
reads ``MUJOCO_GL`` when it is first imported, so set it before (the ``trajscope`` command
sets ``egl`` when it is unset and there is no display). Encoding is imageio's (the
``imageio-ffmpeg`` package for MP4 and WebM, pillow for GIF): no hand-written encoder.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from .. import sim, store


class ExportError(RuntimeError):
    """What cannot be exported, and why."""


def _caption(img: np.ndarray, text: str, *, alarm: bool = False) -> np.ndarray:
    """``text`` on a dark band at the top of ``img`` (pillow's built-in font)."""
    try:
        from PIL import Image, ImageDraw
    except ImportError:
        return img
    im = Image.fromarray(img)
    draw = ImageDraw.Draw(im)
    band = min(16, img.shape[0] // 4)
    draw.rectangle((0, 0, img.shape[1], band), fill=(120, 0, 0) if alarm else (0, 0, 0))
    draw.text((4, 2), text, fill=(255, 255, 255))
    return np.asarray(im)


def _tile(images: Sequence[np.ndarray]) -> np.ndarray:
    n = len(images)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    h, w, c = images[0].shape
    out = np.zeros((rows * h, cols * w, c), np.uint8)
    for i, img in enumerate(images):
        r, k = divmod(i, cols)
        out[r * h : (r + 1) * h, k * w : (k + 1) * w] = img
    return out


GRID_PX = (960, 720)
"""The largest a tiled video is by default: its tiles shrink to fit (rendering is most of the
time on a CPU, and it grows with the pixels drawn)."""


def tile_size(n: int, width: int | None = None, height: int | None = None) -> tuple[int, int]:
    """Each environment's picture: as given, else 480x360 alone and, tiled, as large as fits
    ``n`` tiles in :data:`GRID_PX` (at least 160x120), keeping 4:3."""
    if width is not None and height is not None:
        return int(width), int(height)
    cols = math.ceil(math.sqrt(n))
    w = max(160, min(480, GRID_PX[0] // cols) // 8 * 8)
    w = int(width) if width is not None else w
    return w, int(height) if height is not None else w * 3 // 4


def frames(
    run: store.Run | str,
    capture: int | str | store.CaptureInfo = -1,
    *,
    envs: Sequence[int] | str = (0,),
    steps: slice | None = None,
    width: int | None = None,
    height: int | None = None,
    camera: str | None = "auto",
    caption: bool = True,
    contacts: bool = False,
) -> Iterator[np.ndarray]:
    """Rendered frames ``(H', W', 3)`` uint8 of a capture, one per step: ``envs`` tiled
    (``"grid"``: every environment of the capture, up to 16). ``contacts``: draw contact
    points and contact force arrows, recomputed by ``mj_forward`` from the stored state, as
    MuJoCo's viewer draws them."""
    import copy

    import mujoco

    run = store.open_run(run) if isinstance(run, str) else run
    cap = run.capture(capture)
    info = cap.info
    env_list = list(range(min(info.num_envs, 16))) if envs == "grid" else [int(e) for e in envs]
    bad = [e for e in env_list if not 0 <= e < info.num_envs]
    if bad or not env_list:
        raise ExportError(f"envs {bad or env_list} out of range: the capture has {info.num_envs}")
    width, height = tile_size(len(env_list), width, height)
    base = run.load_model()
    model = copy.copy(base)
    try:
        renderer = sim.renderer(model, height, width)
        cam = sim.camera(model, camera)
    except sim.RenderError as e:
        raise ExportError(str(e)) from None
    names = cap.names("")
    # Contacts as the simulator found them where the capture stored them (contacts=k),
    # else MuJoCo's own, recomputed from the stored positions.
    stored = contacts and all(f"info/contact/{k}" in cap.names("info") for k in ("pos", "normal", "count"))
    option = mujoco.MjvOption()
    if contacts and not stored:
        option.flags[mujoco.mjtVisFlag.mjVIS_CONTACTPOINT] = True
        option.flags[mujoco.mjtVisFlag.mjVIS_CONTACTFORCE] = True
    data = mujoco.MjData(model)
    fields = {k: cap.load(f"model_fields/{k}") for k in cap.keys("model_fields")}
    per_env = []
    for e in env_list:
        per_env.append(
            {
                "qpos": cap.load("qpos", env=e),
                "mocap_pos": cap.load("mocap_pos", env=e) if "mocap_pos" in names else None,
                "mocap_quat": cap.load("mocap_quat", env=e) if "mocap_quat" in names else None,
                "reward": cap.load("reward", env=e) if "reward" in names else None,
                "last": None,
                # Each tile its own camera: a tracking one follows its own environment's robot.
                "cam": sim.camera(model, camera) if len(env_list) > 1 else cam,
                "aimed": False,
                "contacts": {k: cap.load(f"info/contact/{k}", env=e) for k in ("pos", "normal", "count")}
                if stored
                else None,
            }
        )
    T = info.num_steps
    ts = range(T)[steps] if steps is not None else range(T)
    returns = [0.0] * len(env_list)
    try:
        for t in ts:
            tiles = []
            for i, e in enumerate(env_list):
                s = per_env[i]
                sim.apply_model_fields(model, fields, e)
                q = s["qpos"][t]
                finite = bool(np.isfinite(q).all())
                if finite:
                    data.qpos[:] = q
                    if s["mocap_pos"] is not None and np.isfinite(s["mocap_pos"][t]).all():
                        data.mocap_pos[:] = s["mocap_pos"][t]
                    if s["mocap_quat"] is not None and np.isfinite(s["mocap_quat"][t]).all():
                        data.mocap_quat[:] = s["mocap_quat"][t]
                    mujoco.mj_forward(model, data)
                    c = s["cam"]
                    if not s["aimed"] and getattr(c, "type", None) == mujoco.mjtCamera.mjCAMERA_TRACKING:
                        c.lookat[:] = data.subtree_com[c.trackbodyid]  # centred from the first frame
                        s["aimed"] = True
                    renderer.update_scene(data, camera=c, scene_option=option)
                    if s["contacts"] is not None:
                        _draw_stored_contacts(renderer.scene, model, s["contacts"], t)
                    img = renderer.render().copy()
                    s["last"] = img
                else:
                    img = s["last"] if s["last"] is not None else np.zeros((height, width, 3), np.uint8)
                if s["reward"] is not None and np.isfinite(s["reward"][t]):
                    returns[i] += float(s["reward"][t])  # a reset frame's reward is 0
                if caption:
                    text = f"#{info.index} step {info.step} env {e} t={t} return {returns[i]:.2f}"
                    img = _caption(img, text if finite else f"env {e} t={t}: non-finite state", alarm=not finite)
                tiles.append(img)
            yield tiles[0] if len(tiles) == 1 else _tile(tiles)
    finally:
        renderer.close()  # also when the consumer stops early or fails


def video(
    run: store.Run | str,
    capture: int | str | store.CaptureInfo = -1,
    *,
    out: str | os.PathLike[str] | None = None,
    envs: Sequence[int] | str = (0,),
    fps: float | None = None,
    width: int | None = None,
    height: int | None = None,
    camera: str | None = "auto",
    steps: slice | None = None,
    contacts: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray | None:
    """Render a capture to a video file ``out`` (``.mp4``, ``.webm``, ``.gif``), or, with
    no ``out``, return the frames ``(N, H, W, 3)`` (for ``mediapy.show_video``).

    ``fps`` defaults to real time (1 / the run's control step). ``progress(done, total)``
    is called after every frame. ``contacts``: contact points and force arrows."""
    run = store.open_run(run) if isinstance(run, str) else run
    cap = run.capture(capture)
    dt = float(run.metadata.get("control_dt_s") or 0.02)
    fps = float(fps or round(1.0 / dt, 3))
    total = len(range(cap.info.num_steps)[steps] if steps is not None else range(cap.info.num_steps))
    gen = frames(run, cap.info, envs=envs, steps=steps, width=width, height=height, camera=camera, contacts=contacts)
    if out is None:
        got = []
        for i, f in enumerate(gen):
            got.append(f)
            if progress:
                progress(i + 1, total)
        return np.stack(got)
    path = os.fspath(out)
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".mp4", ".webm", ".gif"):
        raise ExportError(f"{path}: unknown video type {ext!r} (use .mp4, .webm or .gif)")
    import imageio.v2 as imageio

    if ext != ".gif":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise ExportError("MP4 and WebM need the imageio-ffmpeg package (pip install 'trajscope[video]')") from None
    # Written under a temporary name beside it and renamed when whole: a killed export
    # leaves no half-written video under the name asked for (at most a hidden .partial file).
    folder, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f".{name}.partial-{os.getpid()}{ext}")
    if ext == ".gif":
        writer = imageio.get_writer(tmp, mode="I", duration=1000.0 / fps, loop=0)
    else:
        codec = "libx264" if ext == ".mp4" else "libvpx-vp9"
        # macro_block_size=1 keeps the exact frame size (libx264 wants even sizes: they are).
        writer = imageio.get_writer(tmp, fps=fps, codec=codec, quality=8, macro_block_size=1)
    try:
        try:
            for i, f in enumerate(gen):
                writer.append_data(_even(f) if ext != ".gif" else f)
                if progress:
                    progress(i + 1, total)
        finally:
            writer.close()
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return None


def _even(img: np.ndarray) -> np.ndarray:
    """H.264 and VP9 in yuv420p need even sizes: pad by one black row or column."""
    h, w = img.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return img
    out = np.zeros((h + h % 2, w + w % 2, 3), np.uint8)
    out[:h, :w] = img
    return out


def _draw_stored_contacts(scene: Any, model: Any, c: dict[str, np.ndarray], t: int) -> None:
    """The stored contacts of frame ``t`` (``pos``, ``normal`` ``(T, k, 3)``, ``count``
    ``(T,)``) added to a MuJoCo scene: orange points and their normals (red, a quarter of the
    model's extent long)."""
    import mujoco

    size = 0.02 * float(model.stat.extent or 1.0)
    length = 0.25 * float(model.stat.extent or 1.0)
    n = min(max(int(c["count"][t]), 0), c["pos"].shape[1])
    for j in range(n):
        p, nrm = np.asarray(c["pos"][t, j], float), np.asarray(c["normal"][t, j], float)
        if not (np.isfinite(p).all() and np.isfinite(nrm).all()) or scene.ngeom + 2 > scene.maxgeom:
            return
        g = scene.geoms[scene.ngeom]
        mujoco.mjv_initGeom(
            g,
            mujoco.mjtGeom.mjGEOM_SPHERE,
            np.full(3, size),
            p,
            np.eye(3).ravel(),
            np.array([1, 0.55, 0, 1], np.float32),
        )
        scene.ngeom += 1
        g = scene.geoms[scene.ngeom]
        mujoco.mjv_initGeom(
            g,
            mujoco.mjtGeom.mjGEOM_CAPSULE,
            np.zeros(3),
            np.zeros(3),
            np.zeros(9),
            np.array([0.85, 0.1, 0.1, 1], np.float32),
        )
        mujoco.mjv_connector(g, mujoco.mjtGeom.mjGEOM_CAPSULE, size / 3, p, p + length * nrm)
        scene.ngeom += 1
