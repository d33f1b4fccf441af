"""The replay panel: the timeline, play/pause, stepping, speed and loop, and the thread
that plays at the environment's control rate."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ._panel import Panel

SPEEDS = ("0.1", "0.25", "0.5", "1", "2", "4")


class ReplayPanel(Panel):
    tab = ""  # above the tabs: the timeline stays at hand

    @classmethod
    def create(cls, viewer: Any) -> ReplayPanel:
        return cls(viewer.server, on_step=lambda t: viewer.act(viewer.show_step, t))

    def on_capture(self, frames: Any) -> None:
        self.set_length(frames.num_steps)

    def on_step(self, frames: Any, t: int) -> None:
        self.show_step(t)

    def __init__(self, server: Any, *, on_step: Callable[[int], None]) -> None:
        gui = server.gui
        self._on_step = on_step
        self.playing = False
        with gui.add_folder("Replay"):
            self.slider = gui.add_slider("step", 0, 1, 1, 0, hint="Drag to scrub through the capture")
            with gui.add_folder("controls", expand_by_default=True):
                self.play_button = gui.add_button("play", icon=None)
                self.back = gui.add_button("step back")
                self.fwd = gui.add_button("step forward")
            self.speed = gui.add_dropdown("speed", SPEEDS, initial_value="1", hint="Multiple of real time")
            self.loop = gui.add_checkbox("loop", True)
        self.slider.on_update(lambda _: on_step(int(self.slider.value)))
        self.play_button.on_click(lambda _: self.toggle())
        self.back.on_click(lambda _: self.step_by(-1))
        self.fwd.on_click(lambda _: self.step_by(1))

    def set_length(self, num_steps: int) -> None:
        self.slider.max = max(num_steps - 1, 1)

    def show_step(self, t: int) -> None:
        if int(self.slider.value) != t:
            self.slider.value = t

    def set_playing(self, playing: bool) -> None:
        self.playing = playing
        self.play_button.label = "pause" if playing else "play"

    def toggle(self) -> None:
        self.set_playing(not self.playing)

    def step_by(self, k: int) -> None:
        self.set_playing(False)
        self._on_step(int(self.slider.value) + k)

    def run(
        self,
        stop: threading.Event,
        *,
        state: Callable[[], tuple[int, int] | None],
        dt_s: Callable[[], float],
        at_end: Callable[[], bool],
    ) -> None:
        """Play until ``stop``: ``state()`` gives ``(t, T)`` of what is shown (None: nothing);
        ``at_end()`` is asked when playback passes the last step and returns True when it
        moved on by itself (the next live chunk)."""
        next_t = time.monotonic()
        while not stop.is_set():
            now = state()
            if not self.playing or now is None:
                time.sleep(0.05)
                next_t = time.monotonic()
                continue
            dt = dt_s()
            speed = float(self.speed.value)
            # Skip steps rather than fall behind real time when the browser frame rate limits.
            frame_s = max(dt / speed, 1 / 30)
            steps = max(1, round(frame_s * speed / dt))
            t, T = now
            t += steps
            if t >= T:
                if at_end():
                    next_t = time.monotonic() + frame_s
                    time.sleep(frame_s)
                    continue
                if not self.loop.value:
                    self.set_playing(False)
                    continue
                t = 0
            self._on_step(t)
            next_t += frame_s
            time.sleep(max(0.0, next_t - time.monotonic()))
