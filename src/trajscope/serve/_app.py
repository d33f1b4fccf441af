"""The web viewer: a viser server over runs read through the store's reader.

One shared state for every connected browser (what one does, all see): the open run, the
frames of the open capture (``_frames.Frames``, numpy only) and the current step. Each
panel is a module of its own (scene, replay, plots, pixels, NaN finder, live); this one
wires them together, chooses runs and captures, and follows new ones as they are written.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
import traceback
from typing import Any

import numpy as np

from .. import scene as _scene
from .. import store
from .._escape import md, md_lines
from . import _frames
from ._analysis import AnalysisPanel
from ._compare import ComparePanel
from ._curve import SceneCurve
from ._live import LivePanel
from ._nan import NanPanel
from ._pixels import PixelsPanel
from ._play import PlayPanel
from ._plots import PlotsPanel
from ._replay import ReplayPanel
from ._saliency import SaliencyPanel
from ._scene import ScenePanel

LOOPBACK = ("127.0.0.1", "localhost", "::1")
RUNS_POLL_S = 5.0
"""How often a viewer of a root of runs looks for new runs while one is open (local)."""
POLL_S = {"local": 1.0, "remote": 5.0}
"""How often a viewer looks for new captures and the live stream's status: on a remote
filesystem each look is a request billed by the store (see docs/remote.md for the count)."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a viewer started in-process)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_runs(path: str) -> dict[str, str]:
    """A run folder gives itself; a root gives the runs under it, by folder name (unique;
    the name a run gives itself in run.json could claim another run's)."""
    try:
        run = store.open_run(path)
        return {_folder(run.url): run.url}
    except store.FormatError:
        pass
    return {_folder(r.path): r.path for r in store.list_runs(path)}


def _folder(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


class Viewer:
    """Serves runs under ``path`` (a run folder, a root of runs, or an fsspec URL).

    On a loopback ``host`` (the default; reach it through ``ssh -L``) nothing else is
    needed. On any other ``host`` viser itself stays on 127.0.0.1 at a private port and a
    token gate listens on ``host:port`` (``token``, else ``$TRAJSCOPE_TOKEN``, else a random
    one); :attr:`url` carries the token. There is no way to serve beyond loopback without it.
    """

    def __init__(
        self,
        path: str,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        poll_s: float | None = None,
        live: bool = False,
        token: str | None = None,
        play_env: Any = None,
        play_env_spec: str | None = None,
    ) -> None:
        import viser

        self.path = path
        gated = host not in LOOPBACK
        self.server = viser.ViserServer(host="127.0.0.1" if gated else host, port=0 if gated else port, verbose=False)
        self.host, self.port = ("127.0.0.1" if gated else host), self.server.get_port()
        self.gate: Any = None
        if gated:
            from ._auth import TokenGate

            try:
                self.gate = TokenGate(
                    host, port, self.port, token or os.environ.get("TRAJSCOPE_TOKEN") or secrets.token_urlsafe(18)
                )
            except BaseException:
                self.server.stop()
                raise
        self._lock = threading.RLock()
        self._play_env = (play_env, play_env_spec)
        self._stop = threading.Event()
        remote = "://" in path and not path.startswith("file://")
        self._poll_s = poll_s if poll_s is not None else POLL_S["remote" if remote else "local"]
        self._runs_poll_s = max(RUNS_POLL_S, 6 * self._poll_s)
        self.errors: list[str] = []
        self._unreadable: dict[str, str] = {}
        """Runs that could not be opened, by name, and why (not retried by polling)."""
        self.run: store.Run | None = None
        self._skipped_geoms = 0
        self.frames: _frames.Frames | None = None
        self.t = 0
        self._runs_polled = time.monotonic()
        self._build_gui()
        self._runs = find_runs(path)
        self._root = not self._is_run(path)
        self._gui_run.options = list(self._runs) or ["(no runs)"]
        if self._runs:
            self._gui_run.value = list(self._runs)[-1]
            self._safe(self.open_run, self._gui_run.value)
        else:
            self._show_error(f"no runs under {path}")
        if live:
            self.scene.layout.value = "grid"  # every streamed environment side by side
            self.live.on.value = True
            self.live.watch.value = True
        self.server.on_client_connect(lambda _: self._safe(self.scene.frame_new_clients))
        threading.Thread(target=self._play_loop, name="trajscope-play", daemon=True).start()
        threading.Thread(target=self._poll_loop, name="trajscope-poll", daemon=True).start()

    @staticmethod
    def _is_run(path: str) -> bool:
        try:
            store.open_run(path)
            return True
        except store.FormatError:
            return False

    @property
    def url(self) -> str:
        """Where to point a browser (with the token, when a token gate is in front)."""
        if self.gate is not None:
            host = socket.gethostname() if self.gate.host in ("0.0.0.0", "::", "") else self.gate.host
            return f"http://{host}:{self.gate.port}/?token={self.gate.token}"
        return f"http://{'localhost' if self.host in ('127.0.0.1', '0.0.0.0') else self.host}:{self.port}"

    # ------------------------------------------------------------------ GUI

    def _build_gui(self) -> None:
        gui = self.server.gui
        self.server.scene.set_up_direction("+z")
        self.server.scene.add_light_directional("/light", position=(2.0, -3.0, 5.0), intensity=2.0)
        self._status = gui.add_markdown("trajscope")
        self._error = gui.add_markdown("", visible=False)
        # The most used controls first: what is shown, the timeline, which envs, their plots.
        with gui.add_folder("Run"):
            self._gui_run = gui.add_dropdown("run", ["(loading)"], hint="Runs under the folder or URL being viewed")
            self._gui_capture = gui.add_dropdown(
                "capture", ["(none)"], hint="One rollout per checkpoint: its index, training step and mean return"
            )
            self._gui_latest = gui.add_checkbox(
                "follow latest capture", False, hint="Show each new capture as training writes it"
            )
        self.replay = ReplayPanel(self.server, on_step=lambda t: self._safe(self.show_step, t))
        self.scene = ScenePanel(self.server, on_change=lambda: self._safe(self._reload))
        self.plots = PlotsPanel(self.server)
        self.pixels = PixelsPanel(self.server)
        self.saliency = SaliencyPanel(self.server, on_change=lambda: self._safe(self._refresh_saliency))
        self.nan = NanPanel(self.server, on_jump=lambda: self._safe(self._jump_nan))
        self.play = PlayPanel(
            self.server,
            env=self._play_env[0],
            env_spec=self._play_env[1],
            where=self._play_where,
            draw=lambda frame: self._safe(self._draw_played, frame),
            on_start=lambda: self.replay.set_playing(False),
            on_stop=lambda: self._safe(self.show_step, self.t),
        )
        self.analysis = AnalysisPanel(
            self.server, on_pick=lambda c, e, t: self._safe(self.show_state, c, e, t), on_error=self._show_error
        )
        self.analysis.show_map.on_update(lambda _: self._safe(self._frame_with_map))
        self.live = LivePanel(self.server, on_watch=lambda: self._safe(self._on_live_watch), on_error=self._show_error)
        self.plots.on_kinds(lambda: self._safe(self._redraw_plots))
        self.plots.add_curve_folder()
        with self.plots.curve_folder:
            self.curve3d = SceneCurve(self.server, on_pick=lambda i: self._safe(self.load_capture, i))
        self.curve3d.show.on_update(lambda _: self._safe(self._show_curve3d))
        self.compare = ComparePanel(self.server, on_change=lambda: self._safe(self._reload))
        self.scene.add_groups_folder()
        self.pixels.on.on_update(lambda _: self._safe(self._show_pixels, self.t))
        self._gui_run.on_update(lambda _: self._safe(self.open_run, self._gui_run.value))
        self._gui_capture.on_update(lambda _: self._safe(self._on_capture_choice))

    def _safe(self, fn: Any, *args: Any) -> None:
        """Run a GUI action; show what went wrong instead of dying."""
        try:
            with self._lock:
                fn(*args)
        except Exception as e:  # noqa: BLE001 - the page shows it, the server lives on
            self._show_error(f"{type(e).__name__}: {e}")
            traceback.print_exc()

    def _show_error(self, text: str) -> None:
        """Show what went wrong; ``text`` may quote a run's files, so it is escaped."""
        self.errors.append(text)
        self._error.content = f"**Error:** {md_lines(text)}"
        self._error.visible = True

    # ------------------------------------------------------------------ runs and captures

    def open_run(self, name: str) -> None:
        if name not in self._runs:
            return
        try:
            run = store.open_run(self._runs[name])
            model = run.load_model()  # vetted out of process: a damaged model cannot end this one
        except store.FormatError as e:
            # Unreadable: say why, and keep serving (the other runs of a root stay viewable).
            self._unreadable[name] = str(e)
            self.run = self.frames = None
            self._gui_capture.options = ["(run unreadable)"]
            self._status.content = f"**{md(name)}**  \nunreadable: {md(e.problem)}"
            self._show_error(str(e))
            return
        self._unreadable.pop(name, None)
        self.run = run
        self._skipped_geoms = self.scene.set_model(model)
        self.live.set_run(run)
        self.saliency.set_run(run)
        self.play.set_run(run)
        self.compare.set_choices(self._runs, run)
        self._update_capture_list(select_last=True)
        self._place_map()
        self._place_curve3d()
        self.analysis.set_run(run)
        self.plots.draw_curve(run)

    def _show_header(self) -> None:
        """The run's name, what is known of it and its number of captures."""
        assert self.run is not None
        meta = self.run.metadata
        known = [md(meta[k]) for k in ("env_name", "algorithm") if meta.get(k)]
        skipped = self._skipped_geoms
        self._status.content = (
            f"**{md(self.run.name)}**  \n{' · '.join([*known, f'{len(self.run.captures)} captures'])}"
            + (f"  \n{skipped} geom(s) cannot be drawn" if skipped else "")
        )

    def _labels(self) -> list[str]:
        assert self.run is not None
        out = []
        for c in self.run.captures:
            if c.kind == "nan":
                first = _frames.first_nonfinite(c.summary)
                what = f"{first[0]} non-finite" if first else "non-finite"
                out.append(f"#{c.index} step {c.step} · NaN caught: {what} · nan")
                continue
            ret = "-" if c.mean_return is None else f"{c.mean_return:.1f}"
            proc = "" if c.process_index is None else f" · process {c.process_index}"
            out.append(f"#{c.index} step {c.step} · return {ret} · {c.kind}{proc}")
        return out

    def _update_capture_list(self, *, select_last: bool = False) -> None:
        assert self.run is not None
        self._show_header()  # its count of captures, which just changed
        self.compare.set_choices(self._runs, self.run, others=False)
        labels = self._labels()
        problems = [f"{p.path}: {p.problem}" for p in self.run.problems if not p.incomplete]
        if problems:
            self._show_error("damaged captures skipped:  \n" + "  \n".join(problems[:10]))
        if not labels:
            self._gui_capture.options = ["(no captures yet)"]
            return
        current = self._gui_capture.value
        nan = [i for i, c in enumerate(self.run.captures) if c.kind == "nan"]
        # What the NaN guard caught comes first: it is what a user needs to see first.
        self._gui_capture.options = [labels[i] for i in nan] + [x for i, x in enumerate(labels) if i not in nan]
        if select_last and nan:
            self._open_nan(nan[-1])
            return
        self._gui_capture.value = labels[-1] if select_last or current not in labels else current
        if select_last:
            self.load_capture(len(labels) - 1)

    def _open_nan(self, index: int) -> None:
        """Open a capture of the NaN guard at the last step before its first non-finite value."""
        assert self.run is not None
        first = _frames.first_nonfinite(self.run.captures[index].summary)
        self.scene.layout.value = "one"
        if first is not None:
            self.scene.env.value = first[2]
        self.load_capture(index)
        if first is not None:
            self.show_step(max(0, first[1] - 1))

    def _on_capture_choice(self) -> None:
        value = self._gui_capture.value
        if self.run is None or not value.startswith("#"):
            return
        index = int(value[1:].split()[0])
        if self.frames is None or self.frames.capture.info.index != index or self.live.shown is not None:
            if self.live.shown is not None:
                self.live.watch.value = False
            self.load_capture(index)

    def load_capture(self, index: int) -> None:
        """Show capture ``index`` of the open run."""
        assert self.run is not None
        self.live.shown = None
        cap = self.run.capture(index)
        label = self._labels()[index]
        if self._gui_capture.value != label:
            self._gui_capture.value = label
        self._open(cap)

    def _open(self, cap: store.Capture) -> None:
        self.scene.set_capture_size(cap.info.num_envs)
        self.replay.set_length(cap.info.num_steps)
        self._load(cap)

    def _reload(self) -> None:
        if self.frames is not None:
            self._load(self.frames.capture)

    def _load(self, cap: store.Capture) -> None:
        E = cap.info.num_envs
        conf = (self.run.metadata.get("config") or {}) if self.run is not None else {}
        self.frames = _frames.Frames.load(
            cap,
            self.scene.shown(E),
            self.scene.selected(E),
            gamma=float(conf.get("discounting") or 0.99),
            reward_scaling=float(conf.get("reward_scaling") or 1.0),
        )
        # One update for the browsers: the rebuilt scene (old meshes removed, new ones
        # added at their poses), the plots and the step arrive together, so a browser never
        # draws the empty or unposed scene in between.
        with self.server.atomic():
            self._error.visible = False  # before what may show a new one (compare)
            self.scene.show(self.frames, self.t)
            self._load_compare()
            cmp = self.compare.frames
            self.plots.draw(self.frames, self.t, compare=cmp, label=self.compare.label or "")
            self.curve3d.draw(self.run, cap.info.index)
            self.nan.show(self.frames)
            self.saliency.update(self.frames)
            self.show_step(min(self.t, cap.info.num_steps - 1))

    def show_step(self, t: int) -> None:
        """Pose the scene, the plot values and the pixel panels at step ``t``."""
        frames = self.frames
        if frames is None:
            return
        if self.play.active:
            self.play.stop()  # the replay takes the scene back
        t = int(min(max(t, 0), frames.num_steps - 1))
        self.t = t
        bad = self.scene.pose(frames, t)
        self.compare.pose(t)
        self.replay.show_step(t)
        self.nan.show_step(t, bad)
        self.plots.show_values(frames, t)
        self.plots.move_marker(t)
        if self.live.shown is None:
            self.analysis.show_frame(frames.capture.info.index, frames.selected, t)
        self._show_pixels(t)

    def _load_compare(self) -> None:
        """The compared capture for the shown one; a model that differs shows why."""
        assert self.frames is not None
        n = len(self.frames.envs)
        cols = int(np.ceil(np.sqrt(n))) if self.scene.layout.value == "grid" else 1
        try:
            self.compare.load(self.scene.model, self.frames, cols * self.scene.spacing())
        except ValueError as e:
            self._show_error(str(e))

    def _play_where(self) -> tuple[store.Run, store.CaptureInfo, int, int] | None:
        """What "play from here" starts from: the shown capture, selected env and step."""
        with self._lock:
            if self.run is None or self.frames is None:
                return None
            return self.run, self.frames.capture.info, self.frames.selected, self.t

    def _draw_played(self, frame: Any) -> None:
        """The played state in place of the selected environment's captured one."""
        frames = self.frames
        if frames is None or not self.play.active:
            return
        self.scene.pose(frames, self.t, override=(frames.selected_slot, frame))

    def _show_pixels(self, t: int) -> None:
        self.pixels.show(self.frames, t, self.saliency.overlay_strips)
        self.saliency.show(t)

    def _refresh_saliency(self) -> None:
        self.saliency.update(self.frames)
        self._show_pixels(self.t)

    def show_state(self, capture: int, env: int, t: int) -> None:
        """Replay one state: capture ``capture``, environment ``env`` alone, step ``t``."""
        if self.run is None:
            return
        self.live.watch.value = False
        self.scene.layout.value = "one"
        self.scene.env.value = env
        self.load_capture(capture)
        self.show_step(t)

    def _beside_envs(self, side: int) -> tuple[np.ndarray, float, np.ndarray] | None:
        """Where a square about as large as the environments stands upright beside them as
        the camera starts out (facing it): the corner of their box furthest to that side
        (``+1`` right, ``-1`` left), the square's size, and the horizontal right vector."""
        box = self.scene.content_box()
        if box is None:
            return None
        lo, hi = box
        d = _scene.VIEW_DIRECTION / np.linalg.norm(_scene.VIEW_DIRECTION)
        right = np.cross(-d, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        size = max(1.0, 1.2 * float(np.max(hi - lo)))
        corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
        start = corners[np.argmax(side * (corners @ right))]
        return np.array([start[0], start[1], lo[2]]), size, right

    def _place_map(self) -> None:
        """The state map stands to the right of the environments, about as large as they are."""
        where = self._beside_envs(+1)
        if where is not None:
            start, size, right = where
            self.analysis.place(start + np.array([*(0.3 * size * right[:2]), 0.0]), size, right=right)

    def _place_curve3d(self) -> None:
        """The clickable training curve stands to the left of the environments, about as
        large as they are (the state map stands to their right)."""
        where = self._beside_envs(-1)
        if where is not None:
            start, size, right = where
            self.curve3d.place(start - np.array([*(1.3 * size * right[:2]), 0.0]), size, right=right)

    def _show_curve3d(self) -> None:
        """Draw (or remove) the clickable curve; frame it with the environments when shown."""
        self._place_curve3d()
        shown = self.frames.capture.info.index if self.frames is not None else None
        self.curve3d.draw(self.run, shown)
        box, curve = self.scene.content_box(), self.curve3d.box()
        if box is not None and curve is not None:
            self.scene.frame_box((np.minimum(box[0], curve[0]), np.maximum(box[1], curve[1])))

    def _frame_with_map(self) -> None:
        """Frame the environments and the map together when the map is switched on."""
        box = self.scene.content_box()
        if not self.analysis.show_map.value or box is None or self.analysis.map is None:
            return
        mlo, mhi = self.analysis.map_box()
        self.scene.frame_box((np.minimum(box[0], mlo), np.maximum(box[1], mhi)))

    def _redraw_plots(self) -> None:
        if self.frames is not None:
            self.plots.draw(self.frames, self.t)
            self.plots.show_values(self.frames, self.t)

    def _jump_nan(self) -> None:
        if self.frames is None:
            return
        first = _frames.first_nonfinite(self.frames.capture.info.summary)
        if first is None:
            return
        _, t, env = first
        self.scene.layout.value = "one"
        self.scene.env.value = env
        self._load(self.frames.capture)
        self.show_step(t)

    # ------------------------------------------------------------------ playback and live follow

    def _play_loop(self) -> None:
        def state() -> tuple[int, int] | None:
            return None if self.frames is None else (self.t, self.frames.num_steps)

        def dt_s() -> float:
            return float((self.run.metadata.get("control_dt_s") if self.run else None) or 0.02)

        def at_end() -> bool:
            if self.live.shown is None:
                return False
            self._safe(self._next_live_chunk)
            return True

        while not self._stop.is_set():
            try:
                self.replay.run(self._stop, state=state, dt_s=dt_s, at_end=at_end)
            except Exception as e:  # noqa: BLE001 - bad data never ends playback for good
                self._show_error(f"playback: {type(e).__name__}: {e}")
                self.replay.set_playing(False)
                self._stop.wait(0.5)

    def _poll_loop(self) -> None:
        while not self._stop.wait(self._poll_s):
            self._safe(self.poll)

    def _on_live_watch(self) -> None:
        if not self.live.watch.value:
            self.live.shown = None
            if self.run is not None and self.run.captures:
                self.load_capture(len(self.run.captures) - 1)
            return
        self._next_live_chunk(newest=True)

    def _next_live_chunk(self, *, newest: bool = False) -> None:
        """Play the chunk after the one shown; hold the last frame while training has not
        sent the next one."""
        cap = self.live.next_chunk(newest=newest)
        if cap is not None:
            self.t = 0
            self._open(cap)
            self.replay.set_playing(True)
        self.live.draw_status()

    def poll(self) -> None:
        """Pick up new runs under a root and new captures of the open run; follow the
        latest capture if asked; renew the live switch's lease."""
        now = time.monotonic()
        if self.run is None or (self._root and now - self._runs_polled > self._runs_poll_s):
            self._runs_polled = now
            runs = find_runs(self.path)
            if runs != self._runs:
                self._runs = runs
                self._gui_run.options = list(runs) or ["(no runs)"]
                if self.run is not None and self._gui_run.value not in runs:
                    self._gui_run.value = _folder(self.run.url)
        if self.run is None:
            if self._gui_run.value in self._unreadable:
                return  # the user looks at why it is unreadable; they choose another
            readable = [n for n in self._runs if n not in self._unreadable]
            if readable:
                self._gui_run.value = readable[-1]
                self.open_run(readable[-1])
            return
        self.scene.frame_new_clients()
        self.plots.catch_up(self.t)
        self.live.renew()
        self.live.draw_status()
        if self.live.watch.value and self.live.shown is None:
            self._next_live_chunk(newest=True)
        new = self.run.refresh()
        if new:
            self._update_capture_list(select_last=False)
            self.plots.draw_curve(self.run)
            if self.curve3d.show.value:
                shown = self.frames.capture.info.index if self.frames is not None else None
                self.curve3d.draw(self.run, shown)
            if any(c.kind == "eval" for c in new):
                self.analysis.new_captures()
            if self._gui_latest.value and self.live.shown is None:
                self.load_capture(len(self.run.captures) - 1)

    def close(self) -> None:
        self._stop.set()
        if self.gate is not None:
            self.gate.close()
        self.live.close()
        self.play.close()
        self.server.stop()


def serve(
    path: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    live: bool = False,
    token: str | None = None,
    play_env: Any = None,
    poll_s: float | None = None,
) -> Viewer:
    """Start the viewer; returns once it listens (it serves from background threads, so a
    training script can call it and go on training). ``live``: switch the live stream on
    and watch it. Beyond loopback a token gate is in front (see :class:`Viewer`).
    ``play_env``: the environment as trained (an object, or ``"playground:NAME"`` /
    ``"brax:NAME"``), for the Play panel's "play from here". ``poll_s``: seconds between
    looks for new captures (default :data:`POLL_S`: 1 locally, 5 on remote filesystems)."""
    env, spec = (None, play_env) if isinstance(play_env, str) else (play_env, None)
    return Viewer(path, host=host, port=port, live=live, token=token, play_env=env, play_env_spec=spec, poll_s=poll_s)
