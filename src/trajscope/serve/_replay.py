"""The replay panel: what the timeline is, now that each browser tab plays the capture
itself (``player.js``: the bar at the bottom of the page, with play/pause, scrubbing,
stepping, speed and loop, and the keys). The panel tells every tab where to go when the
server moves the step (a NaN found, a state picked in an analysis, step buttons here) and
says which step the tabs settled on."""

from __future__ import annotations

from typing import Any

from ._panel import Panel


class ReplayPanel(Panel):
    tab = ""  # above the tabs: the timeline stays at hand

    @classmethod
    def create(cls, viewer: Any) -> ReplayPanel:
        return cls(viewer)

    def __init__(self, viewer: Any) -> None:
        self.server = viewer.server
        self.viewer = viewer
        self._t = 0
        self._T = 0
        gui = self.server.gui
        with gui.add_folder("Replay"):
            self.status = gui.add_markdown("no capture")
            self.play_button = gui.add_button("play in every tab", hint="Start (or pause) the replay in every open tab")
            self.back = gui.add_button("step back", hint="Every tab one step back")
            self.fwd = gui.add_button("step forward", hint="Every tab one step forward")
        self.play_button.on_click(lambda _: viewer.act(self.toggle))
        self.back.on_click(lambda _: viewer.act(self.step_by, -1))
        self.fwd.on_click(lambda _: viewer.act(self.step_by, 1))

    def on_capture(self, frames: Any) -> None:
        self._T = frames.num_steps
        if self.viewer.view.play_on_load:
            self.viewer.view.playing = True  # the tabs start it themselves

    def on_step(self, frames: Any, t: int) -> None:
        view = self.viewer.view
        self._t = t
        if not view.stepped_in_browser:
            self.viewer.browser.command("seek", step=t)  # the server moved: every tab follows
            self.viewer.play_tabs(False)
        self._say()

    def _say(self) -> None:
        self.play_button.label = "pause every tab" if self.playing else "play in every tab"
        self.status.content = (
            f"step {self._t} of {max(self._T - 1, 0)} (as the tabs last settled) · each tab plays by itself: the bar "
            "at the bottom of the page; keys: space plays, ← → switch env, ↑ ↓ newer/older capture"
        )

    @property
    def playing(self) -> bool:
        """Whether the tab that reported last was playing."""
        return bool(self.viewer.view.playing)

    @property
    def step(self) -> int:
        """The step the panels show (the one a tab settled on, or the server moved to)."""
        return self._t

    def set_playing(self, playing: bool) -> None:
        """Play (or pause) in every tab."""
        self.viewer.play_tabs(playing)
        self._say()

    def toggle(self) -> None:
        self.set_playing(not self.playing)

    def step_by(self, k: int) -> None:
        self.set_playing(False)
        self.viewer.show_step(self._t + k)
