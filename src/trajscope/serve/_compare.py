"""Compare: a second capture (another checkpoint of the run, or a capture of another run of
the same model) drawn beside or over the shown one in a colour of its own, its series in
the same plots, on the same timeline.

The compared capture shows one environment (the selected environment's index, or its
last when it has fewer), tinted orange; side by side it stands one grid spacing to the
right of the shown environments; overlaid it is see-through on top of them. Its steps
follow the timeline; past its last step it holds its final state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import scene, sim, store
from .._escape import md
from . import _shown
from ._panel import Panel

TINT = np.array([255, 140, 0], np.uint8)
"""The compared capture's colour (every geom but the ground)."""
MODES = ("side by side", "overlaid")


def same_model(a: Any, b: Any) -> str | None:
    """Why two models cannot be compared (None when they can): their bodies and geoms."""
    if (a.nq, a.nbody, a.ngeom) != (b.nq, b.nbody, b.ngeom):
        return f"different models (nq, bodies, geoms: {(a.nq, a.nbody, a.ngeom)} against {(b.nq, b.nbody, b.ngeom)})"
    if [a.body(i).name for i in range(a.nbody)] != [b.body(i).name for i in range(b.nbody)]:
        return "different models (their bodies are named differently)"
    return None


class ComparePanel(Panel):
    """Another capture beside or over the shown one (loaded by the viewer before the other
    panels see a capture, so that the plots draw its series too)."""

    tab = "Training"

    @classmethod
    def create(cls, viewer: Any) -> ComparePanel:
        panel = cls(viewer.server, on_change=lambda: viewer.act(viewer.reload))
        panel.part_button.on_click(
            lambda _: panel.parts_at is not None and viewer.act(viewer.show_step, panel.parts_at)
        )
        return panel

    parts_at: int | None = None
    """With the same starts: the first step where the compared environment leaves the shown
    one's trajectory (None: it never does, or the starts differ)."""

    def on_run(self, run: store.Run) -> None:
        self.set_choices(self.viewer.runs if self.viewer is not None else {}, run)

    def on_capture(self, frames: _shown.Shown) -> None:
        """Load the compared capture beside the shown one (the scene has placed the shown
        environments); the plots draw again with its series."""
        viewer = self.viewer
        if viewer is None:
            return
        n = len(frames.envs)
        cols = int(np.ceil(np.sqrt(n))) if viewer.scene.layout.value == "grid" else 1
        try:
            self.load(viewer.scene.model, frames, cols * viewer.scene.spacing())
        except ValueError as e:
            viewer.show_error(str(e))
        if self.shown is not None and viewer.plots is not None:
            viewer.plots.on_capture(frames)

    def on_step(self, frames: _shown.Shown, t: int) -> None:
        self.pose(t)

    def __init__(self, server: Any, *, on_change: Callable[[], None]) -> None:
        self.server = server
        self._on_change = on_change
        self.choices: dict[str, tuple[str, int]] = {}
        """label to (run URL, capture index)"""
        self.shown: _shown.Shown | None = None
        self.label: str | None = None
        self.nodes: dict[int, Any] = {}
        self.kin: sim.Kinematics | None = None
        self._model: Any = None
        self._geoms: list[scene.GeomMesh] = []
        self._key: tuple[Any, ...] | None = None
        gui = server.gui
        with gui.add_folder("Compare", expand_by_default=False):
            self.text = gui.add_markdown("another capture beside or over this one, its series in the same plots")
            self.which = gui.add_dropdown(
                "compare with", ["(none)"], hint="A capture of this run, or of another run of the same model"
            )
            self.mode = gui.add_dropdown("as", MODES, initial_value=MODES[0])
            self.parted = gui.add_markdown("")
            self.part_button = gui.add_button(
                "jump to where they part",
                disabled=True,
                hint="Same starts: the first step where the compared environment leaves this one's trajectory",
            )
        self.which.on_update(lambda _: on_change())
        self.mode.on_update(lambda _: on_change())

    @property
    def active(self) -> bool:
        return self.shown is not None

    def set_choices(self, runs: dict[str, str], current: store.Run, *, others: bool = True) -> None:
        """Captures of the open run, then of the other runs listed (their listing only;
        ``others=False`` keeps those found before and refreshes the open run's alone)."""
        choices: dict[str, tuple[str, int]] = {}
        for c in current.captures:
            if c.kind != "live":
                choices[f"#{c.index} step {c.step}"] = (current.url, c.index)
        if not others:
            choices.update({k: v for k, v in self.choices.items() if v[0] != current.url})
            runs = {}
        for name, url in runs.items():
            if url == current.url or name == current.name:
                continue
            try:
                other = store.open_run(url)
            except store.FormatError:
                continue
            for c in other.captures:
                if c.kind != "live":
                    choices[f"{name} #{c.index} step {c.step}"] = (other.url, c.index)
        self.choices = choices
        options = ["(none)", *choices]
        if list(self.which.options) != options:
            keep = self.which.value if self.which.value in options else "(none)"
            self.which.options = options
            self.which.value = keep

    def load(self, model: Any, main: _shown.Shown, offset_x: float) -> None:
        """Load the chosen capture (or clear) for the shown capture ``main``."""
        label = self.which.value
        if label not in self.choices:
            self.clear()
            return
        url, index = self.choices[label]
        run = store.open_run(url)
        if url != main.capture.run.url:
            why = same_model(model, run.load_model())
            if why:
                self.clear()
                raise ValueError(f"cannot compare with {label}: {why}")
        cap = run.capture(index)
        env = min(main.selected, cap.info.num_envs - 1)
        self.shown = _shown.Shown.load(cap, [env], env)
        self.label = label
        key = (id(model), self.mode.value, offset_x)
        if key != self._key or not self.nodes:
            self._build(model)
            self._key = key
        self._offset = np.array([offset_x if self.mode.value == MODES[0] else 0.0, 0.0, 0.0])
        self.kin = sim.Kinematics(model, 1, self.shown.model_fields or None)
        self.text.content = f"**{md(label)}**, env {env}: orange, {md(self.mode.value)}"
        self._parting(main, cap, env)

    def _parting(self, main: _shown.Shown, cap: store.Capture, env: int) -> None:
        """Where the same environment, from the same start, parts from the shown one."""
        self.parts_at = None
        starts = main.capture.info.attrs.get("starts")
        same = isinstance(starts, dict) and starts.get("same") is True and starts == cap.info.attrs.get("starts")
        if not same or env != main.selected or self.shown is None:
            self.parted.content = "" if same else "different starts: the two are not compared step by step"
            self.part_button.disabled = True
            return
        a, b = main.qpos[:, main.selected_slot], self.shown.qpos[:, 0]
        T = min(len(a), len(b))
        apart = ~(np.abs(a[:T] - b[:T]).max(axis=1) <= 1e-3)  # NaN counts as apart
        self.parts_at = int(np.argmax(apart)) if apart.any() else None
        ra, rb = main.series.get("reward"), self.shown.series.get("reward")
        diff = (
            f"; return {np.nansum(rb) - np.nansum(ra):+.2f} against this capture"
            if ra is not None and rb is not None
            else ""
        )
        where = (
            f"parts from this one at step {self.parts_at}" if self.parts_at is not None else "never parts from this one"
        )
        self.parted.content = f"same starts: env {env} {where}{diff}"
        self.part_button.disabled = self.parts_at is None

    def _build(self, model: Any) -> None:
        for n in self.nodes.values():
            n.remove()
        self.nodes = {}
        self._model = model
        self._geoms = [g for g in (scene.geom_mesh(model, i) for i in range(model.ngeom)) if g]
        overlay = self.mode.value == MODES[1]
        for g in self._geoms:
            if int(model.geom_type[g.geom_id]) == scene.PLANE:
                continue  # one ground is enough
            self.nodes[g.geom_id] = self.server.scene.add_batched_meshes_simple(
                f"/compare/g{g.geom_id}",
                g.vertices,
                g.faces,
                batched_wxyzs=np.array([[1.0, 0, 0, 0]]),
                batched_positions=np.zeros((1, 3)),
                batched_colors=TINT[None],
                opacity=0.45 if overlay else None,
                lod="off",
                cast_shadow=False,
                receive_shadow=False,
            )

    def pose(self, t: int) -> None:
        """The compared environment at step ``t`` (its last step past its end)."""
        if self.shown is None or self.kin is None:
            return
        t = min(max(int(t), 0), self.shown.num_steps - 1)
        mp = self.shown.mocap_pos[t] if self.shown.mocap_pos is not None else None
        mq = self.shown.mocap_quat[t] if self.shown.mocap_quat is not None else None
        pos, wxyz, _ = self.kin.poses(self.shown.qpos[t], mp, mq)
        pos = pos + self._offset
        with self.server.atomic():
            for gid, node in self.nodes.items():
                node.batched_positions = pos[:, gid].astype(np.float32)
                node.batched_wxyzs = wxyz[:, gid].astype(np.float32)

    def clear(self) -> None:
        self.parts_at = None
        self.parted.content = ""
        self.part_button.disabled = True
        for n in self.nodes.values():
            n.remove()
        self.nodes = {}
        self._key = None
        self.shown = self.kin = None
        self.label = None
        self.text.content = "another capture beside or over this one, its series in the same plots"
