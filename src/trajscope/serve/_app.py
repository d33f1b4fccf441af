"""The web viewer: a viser server over runs read through the store's reader.

One shared state for every connected browser (what one does, all see): the open run, its
model, the frames of the open capture (``_shown.Shown``, numpy only) and the current
step. This module is the thin app: it chooses runs and captures, follows new ones as they
are written, plays, and calls every panel of :data:`PANELS` at the five moments of the
panel contract (:mod:`._panel`). Each panel is a module of its own.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import scene as _scene
from .. import store
from .._escape import md, md_lines
from ..format.summary import earliest_nonfinite
from ..format.training import ReturnSettings
from . import _shown
from ._analysis import AnalysisPanel
from ._compare import ComparePanel
from ._curve import SceneCurve, TrainingCurvePanel
from ._guard import Guard, guarded_viser
from ._live import LivePanel
from ._nan import NanPanel
from ._panels import PANELS
from ._pixels import PixelsPanel
from ._play import PlayPanel
from ._plots import PlotsPanel
from ._replay import ReplayPanel
from ._saliency import SaliencyPanel
from ._scene import ScenePanel

TABS = ("Scene", "Plots", "Training", "Analysis", "Play")
"""The side panel's tabs, in order, under the run choice and the timeline that stand above
them; each panel names its own (``Panel.tab``; ``""``: above the tabs)."""

RUNS_POLL_S = 5.0
"""How often a viewer of a root of runs looks for new runs while one is open (local)."""
POLL_S = {"local": 1.0, "remote": 5.0}
"""How often a viewer looks for new captures and the live stream's status: on a remote
filesystem each look is a request billed by the store (see docs/remote.md for the count)."""


UNGATED = ("127.0.0.1", "localhost", "::1")
"""The interfaces served without the token gate (unless a token is given); any other,
another loopback address included, gets the gate."""


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
    return store.run_folders(path)


def _folder(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


class Viewer:
    """Serves runs under ``path`` (a run folder, a root of runs, or an fsspec URL).

    On a loopback ``host`` (the default; reach it through ``ssh -L``) nothing else is
    needed. On any other ``host``, or when a ``token`` is given (or ``$TRAJSCOPE_TOKEN`` is
    set), viser itself stays on 127.0.0.1 at a private port that answers only the gate, and
    a token gate listens on ``host:port`` (``token``, else ``$TRAJSCOPE_TOKEN``, else a
    random one); :attr:`url` carries the token. There is no way to serve beyond loopback
    without it. Either way no web page of another origin can open the viewer's websocket
    and no request for a foreign host name is answered (:mod:`._guard`);
    ``allow_origins`` (e.g. ``["https://proxy.example:8443"]``) lets a proxy's or a
    notebook's pages in.

    ``panels``: the panel classes, in page order (default :data:`PANELS`); each keeps the
    contract of :class:`trajscope.serve.Panel`.
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
        panels: list[type] | None = None,
        allow_origins: Sequence[str] = (),
    ) -> None:
        self.path = path
        token = token or os.environ.get("TRAJSCOPE_TOKEN") or None
        gated = host not in UNGATED or token is not None
        self.guard = Guard.make(bind_host=host, allow_origins=allow_origins, inner=gated)
        """What this viewer's servers refuse (foreign hosts and origins), and how often."""
        self.server = guarded_viser(self.guard, host="127.0.0.1" if gated else host, port=0 if gated else port)
        self.host, self.port = ("127.0.0.1" if gated else host), self.server.get_port()
        self.gate: Any = None
        if gated:
            from ._auth import TokenGate

            try:
                self.gate = TokenGate(host, port, self.port, token or secrets.token_urlsafe(18), guard=self.guard)
            except BaseException:
                self.server.stop()
                raise
        elif port and self.port != port:
            msg = f"trajscope viewer: port {port} is busy; serving on port {self.port} instead"
            print(msg, file=sys.stderr)
            warnings.warn(msg, stacklevel=2)
        self._lock = threading.RLock()
        self.play_env, self.play_env_spec = play_env, play_env_spec
        """The environment as trained, for the Play panel (an object, or a spec string)."""
        self._stop = threading.Event()
        remote = "://" in path and not path.startswith("file://")
        self.poll_s = poll_s if poll_s is not None else POLL_S["remote" if remote else "local"]
        """Seconds between looks for news (see :data:`POLL_S`)."""
        self._runs_poll_s = max(RUNS_POLL_S, 6 * self.poll_s)
        self.errors: list[str] = []
        """Every error shown on the page, oldest first."""
        self._unreadable: dict[str, str] = {}
        """Runs that could not be opened, by name, and why (not retried by polling)."""
        self.run: store.Run | None = None
        self.model: Any = None
        """The open run's ``mujoco.MjModel``."""
        self.shown: _shown.Shown | None = None
        self.t = 0
        self.new_captures: list[store.CaptureInfo] = []
        """Captures listed by the last poll that the one before had not seen."""
        self._runs_polled = time.monotonic()
        self.runs: dict[str, str] = {}
        """Runs under the viewed path: folder name to URL."""
        self.stepped_in_browser = False
        """True while panels are shown a step a browser tab settled on (its scene is posed
        there already); False when the server moved the step (every tab then follows)."""
        self.play_on_load = False
        """The capture being loaded starts playing in every tab (a live chunk)."""
        self._report: tuple[int, int, int, bool, bool] | None = None
        self._report_lock = threading.Lock()
        self._reported = threading.Event()
        self._ended: int | None = None
        try:
            from ._browser import BrowserReplay

            self.browser = BrowserReplay(self.server, on_step=self._on_browser_step, on_key=self._on_browser_key)
            """The player in every tab (:mod:`._browser`)."""
            self.browser.start_step = lambda: self.t
            self._build_gui(PANELS if panels is None else panels)
        except BaseException:
            self.server.stop()
            if self.gate is not None:
                self.gate.close()
            raise
        self.runs = find_runs(path)
        self._root = not self._is_run(path)
        self.run_menu.options = list(self.runs) or ["(no runs)"]
        if self.runs:
            self.run_menu.value = list(self.runs)[-1]
            self.act(self.open_run, self.run_menu.value)
        else:
            self.show_error(f"no runs under {path}")
        if live:
            self.scene.layout.value = "grid"  # every streamed environment side by side
            self.live.on.value = True
            self.live.watch.value = True
        self.server.on_client_connect(lambda _: self.act(self.scene.frame_new_clients))
        threading.Thread(target=self._browser_loop, name="trajscope-steps", daemon=True).start()
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
            host = f"[{host}]" if ":" in host else host
            return f"http://{host}:{self.gate.port}/?token={self.gate.token}"
        return f"http://{'localhost' if self.host in ('127.0.0.1', '0.0.0.0') else self.host}:{self.port}"

    # ------------------------------------------------------------------ GUI

    def _build_gui(self, panels: list[type]) -> None:
        gui = self.server.gui
        self.server.scene.set_up_direction("+z")
        self.server.scene.add_light_directional("/light", position=(2.0, -3.0, 5.0), intensity=2.0)
        self.status = gui.add_markdown("trajscope")
        """The header: the open run, what is known of it, its number of captures."""
        self.error = gui.add_markdown("", visible=False)
        """The last error, when one is shown."""
        # Above the tabs: which run and capture, then (the first panel) the timeline, so that
        # scrubbing stays at hand whichever tab is open. The tabs, most used first: the scene,
        # plots and pixels with the panel's whole height, training, analysis, play.
        self.tabs: dict[str, Any] = {}
        """The side panel's tabs, by name (``TABS``, then those panels ask for)."""
        with gui.add_folder("Run"):
            self.run_menu = gui.add_dropdown("run", ["(loading)"], hint="Runs under the folder or URL being viewed")
            self.capture_menu = gui.add_dropdown(
                "capture", ["(none)"], hint="One rollout per checkpoint: its index, training step and mean return"
            )
            self.follow_latest = gui.add_checkbox(
                "follow latest capture", False, hint="Show each new capture as training writes it"
            )
        self.panels: list[Any] = []
        group: Any = None
        for cls in panels:
            if not cls.tab:
                panel = cls.create(self)
            else:
                if group is None:
                    group = gui.add_tab_group()
                    self.tabs = {name: group.add_tab(name) for name in TABS}
                if cls.tab not in self.tabs:
                    self.tabs[cls.tab] = group.add_tab(cls.tab)
                with self.tabs[cls.tab]:
                    panel = cls.create(self)
            panel.viewer = self
            self.panels.append(panel)
        self.run_menu.on_update(lambda _: self.act(self.open_run, self.run_menu.value))
        self.capture_menu.on_update(lambda _: self.act(self._on_capture_choice))

    def panel(self, cls: type) -> Any:
        """The panel of class ``cls`` (None when the viewer has none)."""
        return next((p for p in self.panels if isinstance(p, cls)), None)

    # The panels the app itself works with (each None when not in the panel list).
    @property
    def replay(self) -> ReplayPanel:
        return self.panel(ReplayPanel)

    @property
    def scene(self) -> ScenePanel:
        return self.panel(ScenePanel)

    @property
    def plots(self) -> PlotsPanel:
        return self.panel(PlotsPanel)

    @property
    def pixels(self) -> PixelsPanel:
        return self.panel(PixelsPanel)

    @property
    def saliency(self) -> SaliencyPanel:
        return self.panel(SaliencyPanel)

    @property
    def nan(self) -> NanPanel:
        return self.panel(NanPanel)

    @property
    def play(self) -> PlayPanel:
        return self.panel(PlayPanel)

    @property
    def analysis(self) -> AnalysisPanel:
        return self.panel(AnalysisPanel)

    @property
    def live(self) -> LivePanel:
        return self.panel(LivePanel)

    @property
    def compare(self) -> ComparePanel:
        return self.panel(ComparePanel)

    @property
    def training_curve(self) -> TrainingCurvePanel:
        return self.panel(TrainingCurvePanel)

    @property
    def curve3d(self) -> SceneCurve:
        """The training curve's clickable copy in the scene."""
        return self.panel(TrainingCurvePanel).scene_curve

    def act(self, fn: Any, *args: Any) -> None:
        """Run ``fn(*args)`` under the viewer's lock, as every GUI action and panel hook
        runs; an exception is shown on the page and the viewer goes on serving."""
        try:
            with self._lock:
                fn(*args)
        except Exception as e:  # noqa: BLE001 - the page shows it, the server lives on
            self.show_error(f"{type(e).__name__}: {e}")
            traceback.print_exc()

    def show_error(self, text: str) -> None:
        """Show what went wrong; ``text`` may quote a run's files, so it is escaped."""
        self.errors.append(text)
        self.error.content = f"**Error:** {md_lines(text)}"
        self.error.visible = True

    def _each(self, hook: str, *args: Any) -> None:
        """Call one hook of every panel, in order; one that fails is reported, the others run."""
        for p in self.panels:
            try:
                getattr(p, hook)(*args)
            except Exception as e:  # noqa: BLE001 - one panel's failure is not the viewer's
                self.show_error(f"{type(p).__name__}.{hook}: {type(e).__name__}: {e}")
                traceback.print_exc()

    # ------------------------------------------------------------------ runs and captures

    def open_run(self, name: str) -> None:
        """Open the run ``name`` (a folder name of :attr:`runs`); an unreadable one is shown
        as such with the reason, and the viewer goes on serving the others."""
        if name not in self.runs:
            return
        try:
            run = store.open_run(self.runs[name])
            model = run.load_model()  # vetted out of process: a damaged model cannot end this one
        except store.FormatError as e:
            self._unreadable[name] = str(e)
            self.run = self.shown = None
            self.capture_menu.options = ["(run unreadable)"]
            self.status.content = f"**{md(name)}**  \nunreadable: {md(e.problem)}"
            self.show_error(str(e))
            return
        self._unreadable.pop(name, None)
        self.run, self.model = run, model
        self.shown = None
        self._each("on_run", run)
        self._update_capture_list(select_last=True)

    def _show_header(self) -> None:
        """The run's name, what is known of it and its number of captures."""
        assert self.run is not None
        meta = self.run.metadata
        known = [md(meta[k]) for k in ("env_name", "algorithm") if meta.get(k)]
        skipped = self.scene.skipped if self.scene is not None else 0
        self.status.content = (
            f"**{md(self.run.name)}**  \n{' · '.join([*known, f'{len(self.run.captures)} captures'])}"
            + (f"  \n{skipped} geom(s) cannot be drawn" if skipped else "")
        )

    def _labels(self) -> list[str]:
        assert self.run is not None
        out = []
        for c in self.run.captures:
            if c.kind == "nan":
                first = earliest_nonfinite(c.summary)
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
        if self.compare is not None:
            self.compare.set_choices(self.runs, self.run, others=False)
        labels = self._labels()
        problems = [f"{p.path}: {p.problem}" for p in self.run.problems if not p.incomplete]
        if problems:
            self.show_error("damaged captures skipped:  \n" + "  \n".join(problems[:10]))
        if not labels:
            self.capture_menu.options = ["(no captures yet)"]
            self.status.content += (
                "  \nno capture yet: the model is drawn at rest. The first evaluation capture comes at "
                "the first checkpoint, once training has compiled (a minute or more on a CPU)"
            )
            return
        current = self.capture_menu.value
        nan = [i for i, c in enumerate(self.run.captures) if c.kind == "nan"]
        # What the NaN guard caught comes first: it is what a user needs to see first.
        self.capture_menu.options = [labels[i] for i in nan] + [x for i, x in enumerate(labels) if i not in nan]
        if select_last and nan:
            self._open_nan(nan[-1])
            return
        self.capture_menu.value = labels[-1] if select_last or current not in labels else current
        if select_last:
            self.load_capture(len(labels) - 1)

    def _open_nan(self, index: int) -> None:
        """Open a capture of the NaN guard at the last step before its first non-finite value."""
        assert self.run is not None
        first = earliest_nonfinite(self.run.captures[index].summary)
        self.scene.layout.value = "one"
        if first is not None:
            self.scene.env.value = first[2]
        self.load_capture(index)
        if first is not None:
            self.show_step(max(0, first[1] - 1))

    def _on_capture_choice(self) -> None:
        value = self.capture_menu.value
        if self.run is None or not value.startswith("#"):
            return
        index = int(value[1:].split()[0])
        if self.shown is None or self.shown.capture.info.index != index or self.live.shown is not None:
            if self.live.shown is not None:
                self.live.watch.value = False
            self.load_capture(index)

    def load_capture(self, index: int) -> None:
        """Show capture ``index`` of the open run."""
        assert self.run is not None
        self.live.shown = None
        cap = self.run.capture(index)
        label = self._labels()[index]
        if self.capture_menu.value != label:
            self.capture_menu.value = label
        self._open(cap)

    def _open(self, cap: store.Capture, *, play: bool = False) -> None:
        self.scene.set_capture_size(cap.info.num_envs)
        self._load(cap, play=play)

    def reload(self) -> None:
        """Load the shown capture again (the shown environments, layout or comparison changed)."""
        if self.shown is not None:
            self._load(self.shown.capture)

    def _load(self, cap: store.Capture, *, play: bool = False) -> None:
        E = cap.info.num_envs
        settings = ReturnSettings.of_run(self.run.metadata if self.run is not None else None)
        self.shown = _shown.Shown.load(
            cap,
            self.scene.shown(E),
            self.scene.selected(E),
            gamma=settings.gamma,
            reward_scaling=settings.reward_scaling,
        )
        self.t = min(self.t, cap.info.num_steps - 1)
        # One update for the browsers: the rebuilt scene (old meshes removed, new ones
        # added at their poses), the plots and the step arrive together, so a browser never
        # draws the empty or unposed scene in between.
        self.play_on_load = play
        try:
            with self.server.atomic():
                self.error.visible = False  # before what may show a new one (compare)
                self._each("on_capture", self.shown)
                self.show_step(self.t, from_browser=play)  # a chunk that plays: the tabs start at 0
        finally:
            self.play_on_load = False

    def show_step(self, t: int, *, from_browser: bool = False) -> None:
        """Show step ``t`` of the open capture in every panel; every tab goes there too,
        unless ``from_browser`` (a tab settled there: it shows it already)."""
        frames = self.shown
        if frames is None:
            return
        if self.play is not None and self.play.active and not from_browser:
            self.play.stop()  # the replay takes the scene back
        t = int(min(max(t, 0), frames.num_steps - 1))
        self.t = t
        self.stepped_in_browser = from_browser
        try:
            self._each("on_step", frames, t)
        finally:
            self.stepped_in_browser = False

    @property
    def live_shown(self) -> bool:
        """A live chunk is shown (not a capture)."""
        return self.live is not None and self.live.shown is not None

    def play_where(self) -> tuple[store.Run, store.CaptureInfo, int, int] | None:
        """What "play from here" starts from: the shown capture, selected env and step."""
        with self._lock:
            if self.run is None or self.shown is None:
                return None
            return self.run, self.shown.capture.info, self.shown.selected, self.t

    def draw_played(self, frame: Any) -> None:
        """The played state in place of the selected environment's captured one."""
        frames = self.shown
        if frames is None or not self.play.active:
            return
        self.scene.pose(frames, self.t, override=(frames.selected_slot, frame))

    def show_pixels(self) -> None:
        """Draw the pixel observations at the shown step again."""
        if self.shown is not None:
            self.pixels.on_step(self.shown, self.t)

    def refresh_saliency(self) -> None:
        """Saliency settings changed: compute it for the shown capture, draw the pixels."""
        self.saliency.update(self.shown)
        if self.shown is not None:
            self.pixels.on_step(self.shown, self.t)
            self.saliency.show(self.t)

    def show_state(self, capture: int, env: int, t: int) -> None:
        """Replay one state: capture ``capture``, environment ``env`` alone, step ``t``."""
        if self.run is None:
            return
        self.live.watch.value = False
        self.scene.layout.value = "one"
        self.scene.env.value = env
        self.load_capture(capture)
        self.show_step(t)

    def beside_envs(self, side: int) -> tuple[np.ndarray, float, np.ndarray] | None:
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

    def jump_to_nan(self) -> None:
        """Show the first non-finite value of the shown capture: its environment alone, at
        its step."""
        if self.shown is None:
            return
        first = earliest_nonfinite(self.shown.capture.info.summary)
        if first is None:
            return
        _, t, env = first
        self.scene.layout.value = "one"
        self.scene.env.value = env
        self._load(self.shown.capture)
        self.show_step(t)

    # ------------------------------------------------------------------ playback and live follow

    def _on_browser_step(self, client_id: int, rec_id: int, step: int, playing: bool, ended: bool) -> None:
        """A tab reports its step (viser's thread): kept, the latest only, for the loop."""
        with self._report_lock:
            self._report = (client_id, rec_id, step, playing, ended)
        self._reported.set()

    def _on_browser_key(self, client_id: int, key: str) -> None:
        self.act(self.key, key)

    def key(self, key: str) -> None:
        """An arrow key on the page: ``left``/``right`` the previous/next environment,
        ``up``/``down`` the newer/older capture (rscope's keys)."""
        if key in ("left", "right") and self.scene is not None and self.shown is not None:
            E = self.shown.capture.info.num_envs
            self.scene.env.value = int(min(max(int(self.scene.env.value) + (1 if key == "right" else -1), 0), E - 1))
            self.reload()
        elif key in ("up", "down") and self.run is not None and self.run.captures and not self.live_shown:
            now = self.shown.capture.info.index if self.shown is not None else len(self.run.captures) - 1
            index = min(max(now + (1 if key == "up" else -1), 0), len(self.run.captures) - 1)
            if self.shown is None or index != now:
                self.load_capture(index)

    REPORTS_PER_S = 4.0
    """At most this many steps reported by tabs are shown in the panels each second."""

    def _browser_loop(self) -> None:
        """The panels follow the step the tabs report (at most :data:`REPORTS_PER_S`, the
        latest one); a live chunk played to its end brings the next."""
        while not self._stop.is_set():
            if not self._reported.wait(0.5):
                continue
            self._reported.clear()
            with self._report_lock:
                report, self._report = self._report, None
            if report is None:
                continue
            _, rec_id, step, playing, ended = report
            rec = self.browser.current
            if rec is None or rec.id != rec_id:
                continue  # a step of a capture no longer shown
            if self.replay is not None:
                self.replay.reported(playing)
            if ended and self.live_shown:
                if self._ended != rec_id:
                    self._ended = rec_id
                    self.act(self.next_live_chunk)
            elif step != self.t or not playing:
                self.act(lambda t=step: self.show_step(t, from_browser=True))
            self._stop.wait(1.0 / self.REPORTS_PER_S)

    def _poll_loop(self) -> None:
        """Every ``poll_s``: the reads (runs under a root, the open run's new captures) made
        without the viewer's lock, so GUI actions never wait for a slow filesystem; what
        they found is then shown under it."""
        while not self._stop.wait(self.poll_s):
            runs = None
            if self._root and time.monotonic() - self._runs_polled > self._runs_poll_s:
                try:
                    runs = find_runs(self.path)
                except Exception as e:  # noqa: BLE001 - shown; the next poll tries again
                    self.show_error(f"listing {self.path}: {type(e).__name__}: {e}")
            run, found = self.run, None
            if run is not None:
                try:
                    found = run.refresh()
                except Exception as e:  # noqa: BLE001 - as above
                    self.show_error(f"{type(e).__name__}: {e}")
            self.act(self.poll, runs, (run, found))

    def on_live_watch(self) -> None:
        """ "watch live" switched: play the newest chunk, or go back to the captures."""
        if not self.live.watch.value:
            self.live.shown = None
            if self.run is not None and self.run.captures:
                self.load_capture(len(self.run.captures) - 1)
            return
        self.next_live_chunk(newest=True)

    def next_live_chunk(self, *, newest: bool = False) -> None:
        """Play the chunk after the one shown; hold the last frame while training has not
        sent the next one."""
        cap = self.live.next_chunk(newest=newest)
        if cap is not None:
            self.t = 0
            self._open(cap, play=True)
        self.live.draw_status()

    def poll(self, runs: dict[str, str] | None = None, found: tuple[Any, Any] = (None, None)) -> None:
        """Pick up new runs under a root and new captures of the open run, then call every
        panel's ``on_poll`` (the live stream's lease, new curves and analyses); follow the
        latest capture if asked. ``runs`` and ``found`` (the run refreshed, its new
        captures): what the poll thread read already, without the lock."""
        now = time.monotonic()
        if runs is None and (self.run is None or (self._root and now - self._runs_polled > self._runs_poll_s)):
            runs = find_runs(self.path)
        if runs is not None:
            self._runs_polled = now
            if runs != self.runs:
                self.runs = runs
                self.run_menu.options = list(runs) or ["(no runs)"]
                if self.run is not None and self.run_menu.value not in runs:
                    self.run_menu.value = _folder(self.run.url)
        if self.run is None:
            if self.run_menu.value in self._unreadable:
                return  # the user looks at why it is unreadable; they choose another
            readable = [n for n in self.runs if n not in self._unreadable]
            if readable:
                self.run_menu.value = readable[-1]
                self.open_run(readable[-1])
            return
        run, new = found
        self.new_captures = new if run is self.run and new is not None else self.run.refresh()
        if self.new_captures:
            self._update_capture_list(select_last=False)
        self._each("on_poll")
        if self.new_captures and self.follow_latest.value and self.live.shown is None:
            self.load_capture(len(self.run.captures) - 1)

    def close(self) -> None:
        self._stop.set()
        if self.gate is not None:
            self.gate.close()
        for p in self.panels:
            try:
                p.close()
            except Exception:  # noqa: BLE001 - closing goes on
                traceback.print_exc()
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
    allow_origins: Sequence[str] = (),
) -> Viewer:
    """Start the viewer; returns once it listens (it serves from background threads, so a
    training script can call it and go on training). ``live``: switch the live stream on
    and watch it. Beyond loopback a token gate is in front (see :class:`Viewer`).
    ``play_env``: the environment as trained (an object, or ``"playground:NAME"`` /
    ``"brax:NAME"``), for the Play panel's "play from here". ``poll_s``: seconds between
    looks for new captures (default :data:`POLL_S`: 1 locally, 5 on remote filesystems).
    ``allow_origins``: origins besides the viewer's own whose pages may open its websocket
    (a TLS proxy's, a notebook server's)."""
    env, spec = (None, play_env) if isinstance(play_env, str) else (play_env, None)
    return Viewer(
        path,
        host=host,
        port=port,
        live=live,
        token=token,
        play_env=env,
        play_env_spec=spec,
        poll_s=poll_s,
        allow_origins=allow_origins,
    )
