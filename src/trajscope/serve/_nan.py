"""The NaN finder: where a capture first holds a non-finite value, and a jump there."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._escape import md
from ..format.summary import earliest_nonfinite
from . import _shown
from ._panel import Panel


class NanPanel(Panel):
    tab = "Scene"

    @classmethod
    def create(cls, viewer: Any) -> NanPanel:
        panel = cls(viewer.server, on_jump=lambda: viewer.act(panel.jump_to_nan))
        return panel

    def on_capture(self, frames: _shown.Shown) -> None:
        self.show(frames)

    def on_step(self, frames: _shown.Shown, t: int) -> None:
        self.show_step(t, self.viewer.view.bad if self.viewer is not None else [])

    def jump_to_nan(self) -> None:
        """Show the first non-finite value of the shown capture: its environment alone, at
        its step."""
        viewer = self.viewer
        if viewer is None or viewer.view.shown is None:
            return
        shown = viewer.view.shown
        first = earliest_nonfinite(shown.capture.info.summary)
        if first is None:
            return
        _, t, env = first
        viewer.view.layout, viewer.view.env = "one", env
        viewer.reload()
        viewer.show_step(t)

    def __init__(self, server: Any, *, on_jump: Callable[[], None]) -> None:
        with server.gui.add_folder("NaN finder", expand_by_default=False):
            self.text = server.gui.add_markdown("no capture")
            self.jump = server.gui.add_button("jump to first NaN", disabled=True)
        self.jump.on_click(lambda _: on_jump())

    def show(self, frames: _shown.Shown) -> None:
        hits = dict(frames.capture.info.summary.get("first_nonfinite", {}))
        first = earliest_nonfinite(frames.capture.info.summary)
        if first is None:
            self.text.content = "every value is finite"
            self.jump.disabled = True
            return
        lines = [
            f"- {md(k)}: step {v['t']}, env {v['env']}" for k, v in sorted(hits.items(), key=lambda kv: kv[1]["t"])
        ]
        self.text.content = f"first non-finite: **{md(first[0])}** at step {first[1]}, env {first[2]}\n" + "\n".join(
            lines
        )
        self.jump.disabled = False

    def show_step(self, t: int, bad_envs: list[int]) -> None:
        if bad_envs:
            self.text.content = f"step {t}: non-finite state in env {bad_envs}; last finite pose shown"
