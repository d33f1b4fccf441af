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

from .. import store
from .._escape import md
from . import _shown
from ._panel import Panel

MODES = ("side by side", "overlaid")


def same_model(a: Any, b: Any) -> str | None:
    """Why two models cannot be compared (None when they can): their bodies and geoms."""
    if (a.nq, a.nbody, a.ngeom) != (b.nq, b.nbody, b.ngeom):
        return f"different models (nq, bodies, geoms: {(a.nq, a.nbody, a.ngeom)} against {(b.nq, b.nbody, b.ngeom)})"
    if [a.body(i).name for i in range(a.nbody)] != [b.body(i).name for i in range(b.nbody)]:
        return "different models (their bodies are named differently)"
    return None


class ComparePanel(Panel):
    """Another capture beside or over the shown one: in the load phase it puts the compared
    capture in the view (``view.comparison``: the plots draw its series) and its ghost on
    the stage."""

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

    def on_poll(self) -> None:
        view = self.viewer.view
        if self.viewer.new_captures and view.run is not None:
            self.set_choices(self.viewer.runs, view.run, others=False)

    def on_load(self, view: Any) -> None:
        """Load the compared capture for the shown one: into the view, its ghost on the stage."""
        stage = self.viewer.stage
        view.comparison, view.comparison_label = None, ""
        try:
            self.load(view.model, view.shown)
        except ValueError as e:
            self.viewer.show_error(str(e))
        if self.shown is None:
            stage.clear_ghost()
            return
        view.comparison, view.comparison_label = self.shown, self.label or ""
        stage.set_ghost(self.shown.model_fields, over=self.mode.value == MODES[1], offset=stage.beside_offset())

    def on_step(self, frames: _shown.Shown, t: int) -> None:
        """The compared environment at step ``t`` (its last step past its end)."""
        if self.shown is not None:
            self.viewer.stage.pose_ghost(self.shown.state(min(max(int(t), 0), self.shown.num_steps - 1)))

    def __init__(self, server: Any, *, on_change: Callable[[], None]) -> None:
        self.server = server
        self._on_change = on_change
        self.choices: dict[str, tuple[str, int]] = {}
        """label to (run URL, capture index)"""
        self.shown: _shown.Shown | None = None
        self.label: str | None = None
        self._key: tuple[str, int, int, str] | None = None
        """What ``shown`` holds: (run URL, capture index, env asked for, open run's URL)."""
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

    def load(self, model: Any, main: _shown.Shown | None) -> None:
        """Load the chosen capture (or clear) for the shown capture ``main``."""
        label = self.which.value
        if label not in self.choices or main is None:
            self.clear()
            return
        url, index = self.choices[label]
        env = main.selected
        if self.shown is not None and self._key == (url, index, env, main.capture.run.url):
            cap = self.shown.capture  # the same capture, env and open run: not read again on a reload
        else:
            run = store.open_run(url)
            if url != main.capture.run.url:
                why = same_model(model, run.load_model())
                if why:
                    self.clear()
                    raise ValueError(f"cannot compare with {label}: {why}")
            cap = run.capture(index)
            self.shown = _shown.Shown.load(cap, [min(env, cap.info.num_envs - 1)], min(env, cap.info.num_envs - 1))
            self._key = (url, index, env, main.capture.run.url)
        env = min(env, cap.info.num_envs - 1)
        self.label = label
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

    def clear(self) -> None:
        self.parts_at = None
        self.parted.content = ""
        self.part_button.disabled = True
        self.shown = None
        self.label = None
        self._key = None
        self.text.content = "another capture beside or over this one, its series in the same plots"
