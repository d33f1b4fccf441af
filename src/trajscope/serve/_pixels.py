"""The pixels panel: every image observation of the selected environment at the current step."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _shown
from ._panel import Panel


class PixelsPanel(Panel):
    tab = "Plots"

    @classmethod
    def create(cls, viewer: Any) -> PixelsPanel:
        panel = cls(viewer.server)
        panel.on.on_update(lambda _: viewer.act(panel.redraw))
        return panel

    def on_step(self, frames: _shown.Shown, t: int) -> None:
        self.show(frames, t, self.viewer.view.overlay_strips() if self.viewer is not None else None)

    def redraw(self) -> None:
        """The images at the shown step, again (switched on or off)."""
        view = self.viewer.view
        if view.shown is not None:
            self.on_step(view.shown, view.t)

    def __init__(self, server: Any) -> None:
        self.server = server
        self.images: dict[str, Any] = {}
        self.folder = server.gui.add_folder("Pixels")
        with self.folder:
            self.on = server.gui.add_checkbox("show pixels", True, hint="Image observations of the selected env")

    def show(self, frames: _shown.Shown | None, t: int, overlays: dict[str, np.ndarray] | None = None) -> None:
        """The images at step ``t``; ``overlays`` replace them by key (the saliency heat map)."""
        keep = set(frames.pixels) if frames is not None and self.on.value else set()
        for key in list(self.images):
            if key not in keep:
                self.images.pop(key).remove()
        if frames is None or not keep:
            return
        for key, images in frames.pixels.items():
            over = (overlays or {}).get(key)
            img = over[t] if over is not None and over.shape == images.shape else images[t]
            label = f"{key} · {frames.pixel_labels.get(key, '')}" + (" · saliency" if img is not images[t] else "")
            if key in self.images:
                self.images[key].image = img
                self.images[key].label = label
            else:
                with self.folder:
                    self.images[key] = self.server.gui.add_image(img, label=label, format="png")
