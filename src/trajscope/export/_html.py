"""One HTML file that replays a capture in 3D in any browser: no server, no network.

The scene room's stage draws the capture as the viewer's does (:class:`trajscope.scene.Stage`:
the same meshes, randomised colours and sizes, light, poses, grid and framing), in a viser server of its
own that is recorded step by step with viser's scene serializer and written with viser's
bundled client inlined (``StateSerializer.as_html``): one file, no CDN. The recording keeps
scene messages only, so what the viewer shows in its panels reaches the page through the
scene: a label with the capture, the step and the return so far, and a plot of the selected
environment's reward (and value, when stored) drawn as an image beside the environments,
with a marker that moves along it as the replay plays. The viewer is not involved.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable

import numpy as np

from .. import store
from ._video import ExportError

PLOT_W, PLOT_H = 960, 400
"""The plot image's pixels: drawn at twice the size it stands at, so that its labels stay sharp."""
FONT_PX = 26
"""The plot's labels: about 13 CSS pixels tall where the plot fills half a 1280-pixel page."""


def _plot_image(series: dict[str, np.ndarray]) -> tuple[np.ndarray, float, float]:
    """A line plot of ``series`` (PIL) with its step axis and value range labelled, and
    the x pixel of its first and last step."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=FONT_PX)
    im = Image.new("RGB", (PLOT_W, PLOT_H), (255, 255, 255))
    draw = ImageDraw.Draw(im)
    values = [np.asarray(v, np.float64) for v in series.values()]
    finite = np.concatenate([v[np.isfinite(v)] for v in values]) if values else np.zeros(1)
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    ticks = [f"{hi:.3g}", f"{lo:.3g}"]
    left = 16 + max(draw.textlength(x, font=font) for x in ticks)
    right, top, bottom = PLOT_W - 20, 2 * FONT_PX, PLOT_H - 2 * FONT_PX
    draw.rectangle((left, top, right, bottom), outline=(150, 150, 150), width=2)
    draw.text((8, top), ticks[0], fill=(40, 40, 40), font=font)
    draw.text((8, bottom - FONT_PX), ticks[1], fill=(40, 40, 40), font=font)
    n_steps = max((len(v) for v in values), default=1)
    draw.text((left, bottom + 8), "step 0", fill=(40, 40, 40), font=font)
    end = f"step {n_steps - 1}"
    draw.text((right - draw.textlength(end, font=font), bottom + 8), end, fill=(40, 40, 40), font=font)
    colours = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)]
    x_legend = left
    for k, (name, v) in enumerate(series.items()):
        colour = colours[k % len(colours)]
        n = len(v)
        xs = left + (right - left) * np.arange(n) / max(n - 1, 1)
        ys = bottom - (bottom - top) * (np.nan_to_num(v, nan=lo) - lo) / (hi - lo)
        draw.line(list(zip(xs.tolist(), ys.tolist())), fill=colour, width=4)
        draw.text((x_legend, 6), name, fill=colour, font=font)
        x_legend += draw.textlength(name, font=font) + 2 * FONT_PX
    return np.asarray(im), float(left), float(right)


def html(
    run: store.Run | str,
    capture: int | str | store.CaptureInfo = -1,
    *,
    out: str | os.PathLike[str],
    env: int = 0,
    grid: int = 0,
    steps: slice | None = None,
    every: int = 1,
    dark_mode: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write ``out``: a single HTML file replaying a capture in 3D; returns its size.

    ``env``: the environment shown (and plotted); ``grid``: show this many environments
    side by side instead (the viewer's grid layout); ``every``: record every n-th step (a
    smaller file for long captures; playback keeps real time)."""
    import viser

    from .. import scene

    run = store.open_run(run) if isinstance(run, str) else run
    cap = run.capture(capture)
    info = cap.info
    if not 0 <= env < info.num_envs:
        raise ExportError(f"env {env} out of range: the capture has {info.num_envs}")
    n = min(grid, info.num_envs) if grid > 1 else 1
    envs = sorted({env, *[e for e in range(info.num_envs) if e != env][: n - 1]})
    layout = "grid" if n > 1 else "one"

    def per_env(name: str) -> np.ndarray | None:
        if name not in cap:
            return None
        store.check_allocation(cap.dir, cap.nbytes(name, env=0) * len(envs))
        return np.stack([cap.load(name, env=e) for e in envs], axis=1)

    qpos = per_env("qpos")
    assert qpos is not None
    mocap_pos, mocap_quat = per_env("mocap_pos"), per_env("mocap_quat")
    fields = {k: np.stack([cap.load(f"model_fields/{k}", env=e) for e in envs]) for k in cap.keys("model_fields")}
    series = {k: cap.load(k, env=env).astype(float) for k in ("reward", "value") if k in cap}
    T = info.num_steps
    model = run.load_model()

    def pose(t: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        mp = mocap_pos[t] if mocap_pos is not None else None
        mq = mocap_quat[t] if mocap_quat is not None else None
        return qpos[t], mp, mq

    with contextlib.redirect_stdout(io.StringIO()):  # viser's banner: no server is offered to anyone here
        server = viser.ViserServer(host="127.0.0.1", port=0, verbose=False)
    try:
        stage = scene.Stage(server, panel_px=0)  # a file has no control panel over its canvas
        stage.set_model(model)
        dt = float(run.metadata.get("control_dt_s") or 0.02) * max(1, every)
        ts = list(range(T))[steps if steps is not None else slice(None)][:: max(1, every)]
        if not ts:
            raise ExportError(f"no steps to export: the capture has {T}")
        stage.arrange(len(envs), fields, layout, pose(ts[0]), key=tuple(envs))
        stage.pose(pose(ts[0]))
        lo, hi = stage.content_box() or stage.envs.model_box()  # type: ignore[union-attr]
        size = float(max(hi[0] - lo[0], hi[2] - lo[2], 0.5))
        label = server.scene.add_label("/trajscope/export/label", "", position=(lo[0], lo[1], hi[2] + 0.1 * size))
        marker = None
        right_edge = hi[0]
        if series:
            img, x0, x1 = _plot_image(series)
            width = 0.8 * size
            height = width * PLOT_H / PLOT_W
            centre = np.array([hi[0] + 0.15 * size + width / 2, (lo[1] + hi[1]) / 2, lo[2] + height / 2])
            right_edge = hi[0] + 0.15 * size + width
            # Standing upright, facing the default camera (-y): rotate the image plane about x.
            wxyz = (np.cos(np.pi / 4), np.sin(np.pi / 4), 0.0, 0.0)
            server.scene.add_image("/trajscope/export/plot", img, width, height, position=centre, wxyz=wxyz)
            marker_x = (centre[0] - width / 2) + width * np.array([x0, x1]) / PLOT_W
            marker = server.scene.add_box(
                "/trajscope/export/marker",
                color=(220, 30, 30),
                dimensions=(0.004 * width, 0.004 * width, height),
                position=(marker_x[0], centre[1] - 0.01 * size, centre[2]),
            )
        # The recording's camera: from the front (-y), a little right and above, framing the
        # environments and the plot (a file has no server to frame each browser).
        stage.frame_box(
            (np.asarray(lo, float), np.array([right_edge, hi[1], max(hi[2], lo[2] + 0.5)])),
            direction=np.array([0.2, -1.0, 0.3]),
        )
        returns = np.nancumsum(np.nan_to_num(series.get("reward", np.zeros(T)), nan=0.0))
        serializer = server.get_scene_serializer()
        for i, t in enumerate(ts):
            stage.pose(pose(t))
            label.text = f"#{info.index} · env step {info.step} · env {env} · t={t} · return {returns[t]:.2f}"
            if marker is not None:
                frac = t / max(T - 1, 1)
                marker.position = (
                    float(marker_x[0] + frac * (marker_x[1] - marker_x[0])),
                    marker.position[1],
                    marker.position[2],
                )
            serializer.insert_sleep(dt)
            if progress:
                progress(i + 1, len(ts))
        page = serializer.as_html(dark_mode=dark_mode)
        page = _with_colours(page)
    finally:
        with contextlib.redirect_stdout(io.StringIO()):
            server.stop()
    data = page.encode()
    with open(os.fspath(out), "wb") as f:
        f.write(data)
    return len(data)


def _with_colours(page: str) -> str:
    """The page with the scene room's colour script (MuJoCo's colours, no tone curve) run
    once viser's client has started."""
    from importlib import resources

    script = resources.files("trajscope.scene").joinpath("colours.js").read_text()
    tag = f"<script>{script}</script>"
    i = page.rfind("</body>")
    return page[:i] + tag + page[i:] if i >= 0 else page + tag
