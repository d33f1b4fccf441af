"""The training curve: mean return by checkpoint (and an off-policy trainer's replay-buffer
fill) as plots, and a copy in the scene whose points can be clicked.

viser's GUI plots (uPlot) have no click events, so the training curve's clickable copy
stands in the 3D scene, upright to the left of the environments as the camera starts out:
one disc per capture (mean return against env step), joined by a line, the shown capture
in red. A click on a disc opens that capture.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import store
from ._panel import Panel
from ._plots import PALETTE

DOT = (31, 119, 180)
NOW = (220, 30, 30)


def _box(radius: float) -> tuple[np.ndarray, np.ndarray]:
    """A small cube: every side clickable from any view."""
    v = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], np.float32) * radius
    faces = [(0, 1, 3), (0, 3, 2), (4, 6, 7), (4, 7, 5), (0, 4, 5), (0, 5, 1)]
    faces += [(2, 3, 7), (2, 7, 6), (0, 2, 6), (0, 6, 4), (1, 5, 7), (1, 7, 3)]
    return v, np.array(faces, np.uint32)


class SceneCurve:
    def __init__(self, server: Any, *, on_pick: Callable[[int], None]) -> None:
        self.server = server
        self._on_pick = on_pick
        self.points: Any = None
        self.line: Any = None
        self.indices: list[int] = []
        self.positions = np.zeros((0, 3))
        self.origin = np.zeros(3)
        self.size = 1.0
        self.right = np.array([1.0, 0.0, 0.0])
        self.show = server.gui.add_checkbox(
            "clickable curve in the scene",
            False,
            hint="The training curve beside the environments: click a point to open that capture",
        )

    def place(self, origin: np.ndarray, size: float, *, right: np.ndarray) -> None:
        """Its lower left corner at ``origin``, ``size`` wide along ``right`` and as high."""
        self.origin, self.size = np.asarray(origin, float), float(size)
        self.right = np.asarray(right, float) / np.linalg.norm(right)

    def draw(self, run: store.Run | None, shown: int | None) -> None:
        for h in (self.points, self.line):
            if h is not None:
                h.remove()
        self.points = self.line = None
        caps = [c for c in run.captures if c.mean_return is not None and c.kind != "live"] if run else []
        if not self.show.value or not caps:
            self.indices, self.positions = [], np.zeros((0, 3))
            return
        x = np.array([c.step for c in caps], float)
        y = np.array([c.mean_return for c in caps], float)
        u = (x - x.min()) / (x.max() - x.min()) if x.max() > x.min() else np.full(len(x), 0.5)
        v = (y - y.min()) / (y.max() - y.min()) if y.max() > y.min() else np.full(len(y), 0.5)
        up = np.array([0.0, 0.0, 1.0])
        pos = self.origin + self.size * (u[:, None] * self.right + v[:, None] * up)
        self.indices = [c.index for c in caps]
        self.positions = pos
        colours = np.array([NOW if c.index == shown else DOT for c in caps], np.uint8)
        verts, faces = _box(self.size / 60)
        self.points = self.server.scene.add_batched_meshes_simple(
            "/trajscope/curve/points",
            verts,
            faces,
            batched_wxyzs=np.tile([1.0, 0.0, 0.0, 0.0], (len(pos), 1)),
            batched_positions=pos.astype(np.float32),
            batched_colors=colours,
            lod="off",
            cast_shadow=False,
            receive_shadow=False,
        )
        self.points.on_click(lambda event: self.on_pick(event))
        if len(pos) > 1:
            segs = np.stack([pos[:-1], pos[1:]], axis=1).astype(np.float32)
            self.line = self.server.scene.add_line_segments(
                "/trajscope/curve/line", segs, DOT, thickness=self.size / 200
            )

    def on_pick(self, event: Any) -> None:
        """What viser calls on a click of a point (its instance): that capture opens."""
        i = getattr(event, "instance_index", None)
        if i is not None and 0 <= int(i) < len(self.indices):
            self._on_pick(self.indices[int(i)])

    def box(self) -> tuple[np.ndarray, np.ndarray] | None:
        if not len(self.positions):
            return None
        return self.positions.min(axis=0), self.positions.max(axis=0)


class TrainingCurvePanel(Panel):
    """The run's training curve, drawn again as captures arrive; its clickable copy in the
    scene (:class:`SceneCurve`) opens a capture."""

    tab = "Training"

    @classmethod
    def create(cls, viewer: Any) -> TrainingCurvePanel:
        return cls(viewer)

    def __init__(self, viewer: Any) -> None:
        self.viewer = viewer
        self.server = viewer.server
        self.curve: Any = None
        self.buffer_curve: Any = None
        self._placed: Any = None
        self.folder = self.server.gui.add_folder("Training curve")
        with self.folder:
            self.scene_curve = SceneCurve(self.server, on_pick=lambda i: viewer.act(viewer.load_capture, i))
        self.scene_curve.show.on_update(lambda _: viewer.act(self.show_in_scene))

    def on_run(self, run: store.Run) -> None:
        self.draw_curve(run)
        self._placed = None

    def on_capture(self, frames: Any) -> None:
        run = self.viewer.view.run
        if self._placed is not run:  # beside the environments as first framed for this run
            self._placed = run
            self._place()
        self.scene_curve.draw(run, frames.capture.info.index if frames.capture.info.kind != "live" else None)

    def on_poll(self) -> None:
        if self.viewer.new_captures and self.viewer.view.run is not None:
            self.draw_curve(self.viewer.view.run)
            if self.scene_curve.show.value:
                shown = self.viewer.view.shown.capture.info.index if self.viewer.view.shown is not None else None
                self.scene_curve.draw(self.viewer.view.run, shown)

    def _place(self) -> None:
        """The clickable curve stands to the left of the environments, about as large as
        they are (the state map stands to their right)."""
        where = self.viewer.stage.beside(-1)
        if where is not None:
            start, size, right = where
            self.scene_curve.place(start - np.array([*(1.3 * size * right[:2]), 0.0]), size, right=right)

    def show_in_scene(self) -> None:
        """Draw (or remove) the clickable curve; frame it with the environments when shown."""
        self._place()
        frames = self.viewer.view.shown
        self.scene_curve.draw(self.viewer.view.run, frames.capture.info.index if frames is not None else None)
        box, curve = self.viewer.stage.content_box(), self.scene_curve.box()
        if box is not None and curve is not None:
            self.viewer.stage.frame_box((np.minimum(box[0], curve[0]), np.maximum(box[1], curve[1])))

    def draw_curve(self, run: store.Run) -> None:
        """Mean captured return by checkpoint; and an off-policy trainer's replay-buffer fill
        (``training/buffer_current_size`` of the captures' metrics), when it reported one."""
        from viser import uplot

        caps = [c for c in run.captures if c.mean_return is not None]
        for h in (self.curve, self.buffer_curve):
            if h is not None:
                h.remove()
        self.curve = self.buffer_curve = None
        if not caps or self.folder is None:
            return
        fill = [(c.step, c.attrs.get("metrics", {}).get(BUFFER_FILL)) for c in run.captures]
        fill = [(s, float(v)) for s, v in fill if isinstance(v, (int, float))]
        if fill:
            with self.folder:
                self.buffer_curve = self.server.gui.add_uplot(
                    tuple(np.array(col, float) for col in zip(*fill)),
                    (
                        uplot.Series(label="env step"),
                        uplot.Series(label="transitions", stroke=PALETTE[1], width=2, points={"show": True}),
                    ),
                    title="replay buffer fill by checkpoint",
                    aspect=2.0,
                    scales={"x": uplot.Scale(time=False)},
                )
        x = np.array([c.step for c in caps], float)
        y = np.array([c.mean_return for c in caps], float)
        with self.folder:
            self.curve = self.server.gui.add_uplot(
                (x, y),
                (
                    uplot.Series(label="env step"),
                    uplot.Series(label="mean return", stroke=PALETTE[0], width=2, points={"show": True}),
                ),
                title="mean return by checkpoint",
                aspect=2.0,
                scales={"x": uplot.Scale(time=False)},
            )


BUFFER_FILL = "training/buffer_current_size"
"""brax SAC's replay-buffer size among its metrics."""
