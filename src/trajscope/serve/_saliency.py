"""The saliency panel: what the shown checkpoint's policy (or critic) looks at, for the
selected environment of an evaluation capture.

Image observations get a heat map over the pixels panel's images; state observations a bar
chart of per-feature saliency at the current step. The networks are rebuilt from the run
(``run.json``'s ``network`` and the capture's ``params``): computing needs JAX and brax,
viewing does not, so the panel says why when it cannot compute. Results are cached per
(capture, environment, target, method), over the whole episode, scaled by the episode's
largest value so that brightness compares across steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import analyse, store
from .._escape import md
from . import _shown
from ._panel import Panel

BAR_W, BAR_H = 320, 110


class SaliencyPanel(Panel):
    tab = "Analysis"

    @classmethod
    def create(cls, viewer: Any) -> SaliencyPanel:
        panel = cls(viewer.server, on_change=lambda: viewer.act(panel.refresh))
        return panel

    def on_run(self, run: store.Run) -> None:
        self.set_run(run)

    def on_load(self, view: Any) -> None:
        """The heat maps of the shown capture, laid over its pixels (``view.overlays``)."""
        self.update(view.shown)
        view.overlays["saliency"] = self.overlay_strips

    def refresh(self) -> None:
        """The settings changed: compute again for the shown capture, and draw the step again."""
        if self.viewer is None:
            return
        self.on_load(self.viewer.view)
        self.viewer.redraw()

    def on_step(self, frames: _shown.Shown, t: int) -> None:
        self.show(t)

    def __init__(self, server: Any, *, on_change: Callable[[], None]) -> None:
        self.server = server
        self._on_change = on_change
        self.run: store.Run | None = None
        self._policies: dict[int, analyse.Policy | str] = {}
        self.cache: dict[tuple[int, int, str, str], dict[str, np.ndarray]] = {}
        self._current: dict[str, np.ndarray] | None = None
        self.overlay_strips: dict[str, np.ndarray] = {}
        """The pixels panel's images with the heat map in, by key (empty when off)."""
        self.bars: Any = None
        gui = server.gui
        with gui.add_folder("Saliency", expand_by_default=False) as self.folder:
            self.on = gui.add_checkbox(
                "saliency",
                False,
                hint="What the checkpoint's network looks at: heat map on images, bars for state features "
                "(needs JAX and brax in the viewer's Python)",
            )
            self.target = gui.add_dropdown("of", ("policy", "value"), hint="The policy's action or the critic's value")
            self.method = gui.add_dropdown(
                "method",
                ("gradient", "perturbation"),
                hint="|d output / d input|, or the output's change when a feature is replaced by its mean "
                "or an image patch blurred (Greydanus et al. 2018)",
            )
            self.note = gui.add_markdown("")
        for h in (self.on, self.target, self.method):
            h.on_update(lambda _: self._on_change())

    def set_run(self, run: store.Run | None) -> None:
        self.run = run
        self._policies = {}
        self.cache = {}
        self._current = None

    # ------------------------------------------------------------------ computing

    def _policy(self, cap: store.Capture) -> analyse.Policy | str:
        index = cap.info.index
        if index not in self._policies:
            if cap.info.kind != "eval" or not cap.keys("params"):
                self._policies[index] = "this capture stores no network parameters (only evaluation captures do)"
            else:
                try:
                    assert self.run is not None
                    self._policies[index] = analyse.capture_policy(self.run, cap)
                except ImportError as e:
                    self._policies[index] = f"saliency needs JAX and brax in the viewer's Python ({e})"
                except analyse.PolicyUnavailable as e:
                    self._policies[index] = str(e)
        return self._policies[index]

    def update(self, frames: _shown.Shown | None) -> None:
        """Compute (or take from the cache) the saliency of the shown capture's selected env."""
        self._current = None
        self.overlay_strips = {}
        if frames is None or not self.on.value:
            self.note.content = ""
            return
        cap = frames.capture
        policy = self._policy(cap)
        if isinstance(policy, str):
            self.note.content = f"_{md(policy)}_"
            return
        target, method = self.target.value, self.method.value
        if target == "value" and policy.value_apply is None:
            self.note.content = "_no value parameters stored (BraxRecorder(store_params='all') keeps them)_"
            return
        key = (cap.info.index, frames.selected, target, method)
        if key not in self.cache:
            t0 = time.perf_counter()
            self.cache[key] = analyse.capture_saliency(cap, frames.selected, policy, target=target, method=method)
            self.note.content = f"computed in {time.perf_counter() - t0:.1f} s"
        self._current = self.cache[key]
        self.overlay_strips = self._overlays(frames)

    # ------------------------------------------------------------------ showing

    def _overlays(self, frames: _shown.Shown) -> dict[str, np.ndarray]:
        """Pixel-panel images with the heat map blended in, by observation key."""
        if self._current is None:
            return {}
        out = {}
        for key, strip in frames.pixels.items():
            sal = self._current.get(key)
            if sal is not None:
                out[key] = blend(strip, heat_strip(sal))
        return out

    def show(self, t: int) -> None:
        """The bar chart of the state features' saliency at step ``t``."""
        vectors = {k: v for k, v in (self._current or {}).items() if v.ndim == 2}
        if not vectors:
            if self.bars is not None:
                self.bars.remove()
                self.bars = None
            return
        values = np.concatenate([v[min(t, len(v) - 1)] for v in vectors.values()])
        img = bar_image(values)
        names = [f"{k}[{i}]" for k, v in vectors.items() for i in range(v.shape[1])]
        top = np.argsort(-values)[:3]
        label = "top: " + ", ".join(f"{names[i]} {values[i]:.2f}" for i in top if values[i] > 0)
        if self.bars is None:
            with self.folder:
                self.bars = self.server.gui.add_image(img, label=label, format="png")
        else:
            self.bars.image = img
            self.bars.label = label


def heat_strip(sal: np.ndarray) -> np.ndarray:
    """``(T, H, W[, C])`` saliency as ``(T, H, W')`` laid out as ``image_strip`` lays the
    images out (stacked frames side by side)."""
    a = sal if sal.ndim == 4 else sal[..., None]
    out = np.concatenate([a[..., g].sum(-1) for g in _shown.frame_channels(a.shape[-1])], axis=2)
    top = out.max()
    return out / top if top > 0 else out


def blend(rgb: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """Images ``(T, H, W, 3)`` uint8 with a heat map ``(T, H, W)`` in 0..1 over them (hot
    colours, opaque where the saliency is high)."""
    h = np.clip(heat, 0, 1)[..., None]
    colour = np.concatenate([np.clip(3 * h, 0, 1), np.clip(3 * h - 1, 0, 1), np.clip(3 * h - 2, 0, 1)], -1) * 255
    alpha = 0.8 * h
    return np.clip(rgb * (1 - alpha) + colour * alpha, 0, 255).astype(np.uint8)


def bar_image(values: np.ndarray) -> np.ndarray:
    """A bar chart of values in 0..1 as an RGB image, one bar per value."""
    img = np.full((BAR_H, BAR_W, 3), 250, np.uint8)
    n = max(1, len(values))
    edges = np.linspace(2, BAR_W - 2, n + 1).astype(int)
    for i, v in enumerate(np.clip(np.nan_to_num(values), 0, 1)):
        top = round(float((BAR_H - 4) * (1 - v))) + 2
        x0, x1 = edges[i], max(edges[i] + 1, edges[i + 1] - (1 if n < 64 else 0))
        img[top : BAR_H - 2, x0:x1] = (40, 110, 200)
    img[BAR_H - 2 :, :] = 120
    return img


def saliency_overlay(
    cap: store.Capture, env: int, key: str, sal: np.ndarray, *, min_height_px: int = 192
) -> np.ndarray:
    """One environment's images of observation ``key`` with the saliency ``sal`` (its
    shape, from :func:`trajscope.analyse.capture_saliency`) as a heat map over them, as RGB
    ``(T, H', W', 3)``, enlarged (nearest pixel) to at least ``min_height_px`` rows."""
    e = cap.entry(f"obs/{key}")
    strip, _ = _shown.image_strip(cap.load(f"obs/{key}", env=env, decode=False), e.get("encoding") or {})
    out = blend(strip, heat_strip(sal))
    k = max(1, -(-min_height_px // out.shape[1]))
    return np.repeat(np.repeat(out, k, axis=1), k, axis=2)


def feature_map(flat: np.ndarray, *, min_px: int = 256) -> np.ndarray:
    """Per-feature saliency over steps ``(T, D)`` in 0..1 as an RGB image (features down,
    steps across), hot colours, enlarged to at least ``min_px`` on each side."""
    img = blend(np.zeros((1, *flat.T.shape, 3)), flat.T[None])[0]
    ky = max(1, -(-min_px // img.shape[0]))
    kx = max(1, -(-min_px // img.shape[1]))
    return np.repeat(np.repeat(img, ky, axis=0), kx, axis=1)


def _heat_colours(h: np.ndarray) -> np.ndarray:
    """The heat map's colours (as :func:`blend` draws them) for values ``h`` in 0..1."""
    h = np.clip(h, 0, 1)[..., None]
    rgb = np.concatenate([np.clip(3 * h, 0, 1), np.clip(3 * h - 1, 0, 1), np.clip(3 * h - 2, 0, 1)], -1)
    return (rgb * 255).astype(np.uint8)


def saliency_figure(
    image: np.ndarray,
    *,
    title: str,
    x_label: str | None = None,
    x_ticks: list[tuple[float, str]] = (),  # type: ignore[assignment]
    y_label: str | None = None,
    y_ticks: list[tuple[float, str]] = (),  # type: ignore[assignment]
    scale: str = "saliency, relative to this picture's largest (0 to 1)",
) -> np.ndarray:
    """``image`` as a picture that reads alone: a title, tick labels along the bottom
    (``x_ticks``: fraction of the width, text) and the left (``y_ticks``), axis labels, and
    a colour bar with its scale. Text from a run is drawn as pixels, never interpreted."""
    import textwrap

    from PIL import Image, ImageDraw

    h, w = image.shape[:2]
    left = 60 if y_label else (44 if y_ticks else 6)
    right = 8
    width = left + w + right
    lines = textwrap.wrap(title[:240], max(20, (width - 8) // 6)) or [""]
    top = 8 + 12 * len(lines)
    axis = 34 if x_ticks or x_label else 6
    bottom = axis + 36
    canvas = Image.new("RGB", (width, top + h + bottom), (255, 255, 255))
    canvas.paste(Image.fromarray(np.asarray(image, np.uint8)), (left, top))
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(lines):
        draw.text((4, 4 + 12 * i), line, fill=(0, 0, 0))
    for frac, text in x_ticks:
        x = left + round(frac * (w - 1))
        draw.line((x, top + h, x, top + h + 4), fill=(0, 0, 0))
        draw.text((x - 3 * len(text), top + h + 6), text, fill=(0, 0, 0))
    if x_label:
        draw.text((left, top + h + 18), x_label, fill=(60, 60, 60))
    for frac, text in y_ticks:
        y = top + round(frac * (h - 1))
        draw.line((left - 4, y, left, y), fill=(0, 0, 0))
        draw.text((left - 6 - 6 * len(text[:7]), y - 5), text[:7], fill=(0, 0, 0))
    if y_label:  # written upwards along the left edge
        label = Image.new("RGB", (max(h, 8), 12), (255, 255, 255))
        ImageDraw.Draw(label).text((2, 0), y_label[: max(1, h // 6)], fill=(60, 60, 60))
        canvas.paste(label.rotate(90, expand=True), (0, top))
    # The colour bar: 0 to 1 left to right, and under it what the scale is.
    bar_y = top + h + axis
    bar_w = min(w, 200)
    bar = _heat_colours(np.linspace(0, 1, bar_w))[None].repeat(8, axis=0)
    canvas.paste(Image.fromarray(bar), (left, bar_y))
    draw.rectangle((left, bar_y, left + bar_w - 1, bar_y + 7), outline=(0, 0, 0))
    draw.text((left, bar_y + 10), "0", fill=(0, 0, 0))
    draw.text((left + bar_w - 6, bar_y + 10), "1", fill=(0, 0, 0))
    draw.text((left, bar_y + 22), scale[:90], fill=(60, 60, 60))
    return np.asarray(canvas)


def step_ticks(steps: range, n: int = 5) -> list[tuple[float, str]]:
    """Up to ``n`` ticks over ``steps`` laid across a picture's width."""
    if len(steps) <= 1:
        return [(0.0, str(steps[0]))] if len(steps) else []
    picks = np.unique(np.linspace(0, len(steps) - 1, n).round().astype(int))
    return [(i / (len(steps) - 1), str(steps[i])) for i in picks]


def write_png(path: str, image: np.ndarray) -> None:
    import imageio.v3 as iio

    iio.imwrite(path, np.asarray(image, np.uint8), extension=".png")
