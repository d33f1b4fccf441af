"""The live panel: switch the training's live stream on and off, its rate, watching it,
and how far behind training the shown chunk is."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .. import store
from ._panel import Panel

STALE_S = 20.0
"""Seconds without a word (a step, or the recorder's heartbeat) before the page says so; the
recorder's heartbeat comes every 5 s, a remote run is read every 5 s."""


class LivePanel(Panel):
    tab = "Scene"

    @classmethod
    def create(cls, viewer: Any) -> LivePanel:
        panel = cls(viewer.server, on_watch=lambda: viewer.act(panel.on_watch), on_error=viewer.show_error)
        if viewer.start_live:  # serve(live=True): the stream on and watched from the start
            panel.on.value = True
        return panel

    def on_run(self, run: store.Run) -> None:
        self.set_run(run)
        if self.viewer is not None and self.viewer.start_live and not self._started:
            self._started = True
            self.write_control()
            self._setting = True
            try:
                self.watch.value = True
            finally:
                self._setting = False

    def on_capture(self, frames: Any) -> None:
        """A capture is shown in place of a chunk: the watch has ended."""
        if self.viewer is not None and not self.viewer.view.live and self.shown is not None:
            self.shown = None
            if self.watch.value:
                self._setting = True
                try:
                    self.watch.value = False
                finally:
                    self._setting = False
                self.draw_status()

    def on_end(self, frames: Any) -> None:
        """The tabs played the chunk to its end: the next one."""
        if self.viewer is not None and self.viewer.view.live:
            self.next_live_chunk()

    def on_poll(self) -> None:
        self.renew()
        self.draw_status()
        if self._run is not None and not self.ended:
            status = self._run.live_status()
            if status is not None and status.finished:
                self.end(status)
                return
            self.running = self.running or status is not None
        if self.watch.value and self.shown is None and self.viewer is not None:
            self.next_live_chunk(newest=True)

    def on_watch(self) -> None:
        """ "watch live" switched: play the newest chunk, or go back to the captures."""
        if self._setting or self.viewer is None:
            return
        if not self.watch.value:
            self.shown = None
            run = self.viewer.view.run
            if run is not None and run.captures:
                self.viewer.load_capture(len(run.captures) - 1)
            return
        self.next_live_chunk(newest=True)

    def next_live_chunk(self, *, newest: bool = False) -> None:
        """Play the chunk after the one shown; hold the last frame while training has not
        sent the next one."""
        cap = self.next_chunk(newest=newest)
        if cap is not None and self.viewer is not None:
            self.viewer.open(cap, play=True, source="live")
        self.draw_status()

    def end(self, status: store.LiveStatus) -> None:
        """Training has finished: switch the stream off, stop playing its last chunk, show
        the newest capture, and say so."""
        self.ended = True
        watching = bool(self.watch.value) or self.running
        self.on.value = False
        self._setting = True
        try:
            self.watch.value = False
        finally:
            self._setting = False
        self.shown = None
        self.end_note = "showing the newest capture" if watching else "its stream is over"
        self.status.content = f"training **finished** at {int(status.env_steps):,} env steps; {self.end_note}"
        if watching and self.viewer is not None and self._run is not None and self._run.captures:
            self.viewer.load_capture(len(self._run.captures) - 1)

    def __init__(self, server: Any, *, on_watch: Callable[[], None], on_error: Callable[[str], None]) -> None:
        gui = server.gui
        self._on_error = on_error
        self._setting = False
        self._started = False
        self.renewed = 0.0
        self.shown: store.CaptureInfo | None = None
        """The live chunk on screen; None while a capture is shown."""
        with gui.add_folder("Live training"):
            self.on = gui.add_checkbox(
                "stream training envs", False, hint="Ask the training process to stream its first environments"
            )
            self.rate = gui.add_slider(
                "rate", 0.05, 1.0, 0.05, 1.0, hint="Fraction of real time streamed: lower costs training less"
            )
            self.watch = gui.add_checkbox("watch live", False, hint="Play the stream in the scene")
            self.status = gui.add_markdown("live stream: off")
        self._run: store.Run | None = None
        self.ended = False
        """The open run's training has finished (its stream says so)."""
        self.running = False
        """This viewer saw the open run's training stream before it finished."""
        self.end_note = ""
        self.on.on_update(lambda _: self.write_control())
        self.rate.on_update(lambda _: self.write_control())
        self.watch.on_update(lambda _: on_watch())

    def set_run(self, run: store.Run) -> None:
        self._run = run
        self.shown = None
        self.ended = self.running = False
        self.end_note = ""

    def write_control(self) -> None:
        if self._run is None:
            return
        try:
            self._run.switch_live(bool(self.on.value), rate=float(self.rate.value))
        except OSError as e:
            self._on_error(f"cannot switch the live stream (the run directory is not writable): {e}")
            return
        self.renewed = time.monotonic()
        self.draw_status()

    def renew(self) -> None:
        """Renew the lease of an ``on`` switch when it is due."""
        if self.on.value and time.monotonic() - self.renewed > store.LiveControl.RENEW_S:
            self.write_control()

    def next_chunk(self, *, newest: bool = False) -> store.Capture | None:
        """The chunk to play after the one shown (the newest if playback fell two behind,
        or if ``newest``); None while training has not sent a later one."""
        if self._run is None or not self.watch.value:
            return None
        chunks = self._run.live_chunks()
        current = self.shown.id if self.shown is not None else ""
        later = [c for c in chunks if c.id > current]
        if not later:
            return None
        info = later[-1] if newest or len(later) > 2 else later[0]
        try:
            cap = self._run.capture(info)
        except (store.FormatError, OSError):
            return None  # deleted by the writer while being read: the next one will do
        self.shown = info
        return cap

    def draw_status(self) -> None:
        if self._run is None:
            return
        status = self._run.live_status()
        if status is None:
            self.status.content = (
                "live stream: waiting for training's first report (compiling the training step takes a "
                "minute or more on a CPU; a training run without `live=K` never reports)"
                if self.on.value
                else "live stream: off (this run has never streamed)"
            )
            return
        if status.finished:
            note = f"; {self.end_note}" if self.end_note else ""
            self.status.content = f"training **finished** at {int(status.env_steps):,} env steps{note}"
            return
        now = time.time()
        age = now - status.updated_unix_s
        alive = now - status.alive_unix_s if status.alive_unix_s is not None else None
        state = "**on**" if status.streaming else "off"
        lines = [f"live stream: {state} · training at {int(status.env_steps):,} env steps"]
        if alive is not None and alive <= STALE_S:
            if age > STALE_S:  # the recorder lives: training evaluates, checkpoints or compiles
                lines.append(
                    f"training has not stepped for {age:.0f} s (evaluating or checkpointing); its recorder is alive"
                )
        elif min(age, alive if alive is not None else age) > STALE_S:
            quiet = min(age, alive) if alive is not None else age
            lines.append(f"no word from training for {quiet:.0f} s: stopped, or its machine cannot reach this run")
        shown = self.shown
        if shown is not None:
            behind = max(0, status.env_steps - shown.step)
            lines.append(
                f"showing {shown.num_envs} envs at {shown.step:,} steps: {behind:,} steps behind training, "
                f"recorded {max(0.0, time.time() - shown.wall_time_unix_s):.1f} s ago"
            )
        self.status.content = "  \n".join(lines)

    def close(self) -> None:
        """A closing viewer switches the stream off."""
        if self.on.value and self._run is not None:
            try:
                self._run.switch_live(False)
            except OSError:
                pass
