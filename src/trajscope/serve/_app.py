"""The web viewer: a viser server over runs read through the store's reader.

One shared state for every connected browser (what one does, all see): the view
(:class:`._view.View`: the open run, its model, the shown arrays and step, which
environments, comparison, overlays, source) and the stage (:class:`trajscope.scene.Stage`:
what the 3D scene draws and from where). This module is the thin app: it chooses runs and
captures, follows new ones as they are written, draws the shown step on the stage and sends
each capture to the tabs' players, and calls every panel of :data:`PANELS` at the moments
of the panel contract (:mod:`._panel`). It names no panel: each is a module of its own.
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
from ._guard import Guard, guarded_viser
from ._panels import PANELS
from ._view import View

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


def first_free_port(host: str, port: int, tries: int = 100) -> int:
    """``port`` if it is free on ``host``, else the next free one after it (viser's own
    search for one starts a server trajscope's guard does not cover)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for p in range(port, min(port + tries, 65536)):
        with socket.socket(family) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as a server binds: a closed one's port is free
            try:
                s.bind((host, p))
            except OSError:
                continue
            return p
    raise OSError(f"no free port among {port}..{port + tries - 1} on {host}")


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
        asked = port
        if not gated and port:
            port = first_free_port(host, port)
        self.server = guarded_viser(self.guard, host="127.0.0.1" if gated else host, port=0 if gated else port)
        self.host, self.port = ("127.0.0.1" if gated else host), self.server.get_port()
        self.gate: Any = None
        self.moved_from: int | None = None
        """The port asked for, when it was busy and the viewer serves on another (None: it did not move)."""
        if gated:
            from ._auth import TokenGate

            try:
                self.gate = TokenGate(host, port, self.port, token or secrets.token_urlsafe(18), guard=self.guard)
            except BaseException:
                self.server.stop()
                raise
        elif asked and self.port != asked:
            self.moved_from = asked
            msg = f"trajscope viewer: port {asked} is busy; serving on port {self.port} instead"
            print(msg, file=sys.stderr)
            warnings.warn(msg, stacklevel=2)
        self.lock = threading.RLock()
        """Held by every GUI action and panel hook (:meth:`act`); a panel's own thread takes
        it to read the view consistently."""
        self.play_env, self.play_env_spec = play_env, play_env_spec
        """The environment as trained, for the Play panel (an object, or a spec string)."""
        self.start_live = live
        """``serve(live=True)``: the live stream is switched on and watched from the start."""
        self._stop = threading.Event()
        remote = "://" in path and not path.startswith("file://")
        self.poll_s = poll_s if poll_s is not None else POLL_S["remote" if remote else "local"]
        """Seconds between looks for news (see :data:`POLL_S`)."""
        self._runs_poll_s = max(RUNS_POLL_S, 6 * self.poll_s)
        self.errors: list[str] = []
        """Every error shown on the page, oldest first."""
        self._unreadable: dict[str, str] = {}
        """Runs that could not be opened, by name, and why (not retried by polling)."""
        self.view = View(layout="grid" if live else "one")
        """What is shown (:class:`._view.View`): every panel reads it."""
        self.new_captures: list[store.CaptureInfo] = []
        """Captures listed by the last poll that the one before had not seen."""
        self._runs_polled = time.monotonic()
        self.runs: dict[str, str] = {}
        """Runs under the viewed path: folder name to URL."""
        self._report: tuple[int, int, int, bool, bool] | None = None
        self._report_lock = threading.Lock()
        self._reported = threading.Event()
        self._ended: int | None = None
        self._stop_recording: threading.Event | None = None
        self._recording_failed = False
        try:
            from ._browser import BrowserReplay

            self.browser = BrowserReplay(self.server, on_step=self._on_browser_step, on_key=self._on_browser_key)
            """The player in every tab (:mod:`._browser`)."""
            self.browser.start_step = lambda: self.view.t
            self.stage = _scene.Stage(self.server, page_size=self.browser.page_size)
            """What the 3D scene draws and from where (:class:`trajscope.scene.Stage`)."""
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
        self.server.on_client_connect(lambda _: self.act(self.stage.frame_new_clients))
        threading.Thread(target=self._browser_loop, name="trajscope-steps", daemon=True).start()
        threading.Thread(target=self._poll_loop, name="trajscope-poll", daemon=True).start()

    @staticmethod
    def _is_run(path: str) -> bool:
        try:
            store.open_run(path)
            return True
        except store.FormatError:
            return False

    # The view's main fields, read often.
    @property
    def run(self) -> store.Run | None:
        """The open run."""
        return self.view.run

    @property
    def model(self) -> Any:
        """The open run's ``mujoco.MjModel``."""
        return self.view.model

    @property
    def shown(self) -> _shown.Shown | None:
        """The shown capture's arrays."""
        return self.view.shown

    @property
    def t(self) -> int:
        """The shown step."""
        return self.view.t

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
        self.port_notice = gui.add_markdown(  # said on the page too: a forwarded port may point elsewhere
            f"**Serving on port {self.port}**: port {self.moved_from} was busy (forward this one: "
            f"`ssh -L {self.port}:localhost:{self.port} HOST`)",
            visible=self.moved_from is not None,
        )
        """Shown when the port asked for was busy: which one the viewer serves on instead."""
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

    def act(self, fn: Any, *args: Any) -> None:
        """Run ``fn(*args)`` under the viewer's lock, as every GUI action and panel hook
        runs; an exception is shown on the page and the viewer goes on serving."""
        try:
            with self.lock:
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
        view = self.view
        try:
            run = store.open_run(self.runs[name])
            model = run.load_model()  # vetted out of process: a damaged model cannot end this one
        except store.FormatError as e:
            self._unreadable[name] = str(e)
            view.run = view.shown = None
            self.capture_menu.options = ["(run unreadable)"]
            self.status.content = f"**{md(name)}**  \nunreadable: {md(e.problem)}"
            self.show_error(str(e))
            return
        self._unreadable.pop(name, None)
        view.run, view.model, view.shown, view.source = run, model, None, "captures"
        view.comparison, view.overlays = None, {}
        self.stage.set_model(model)
        if not run.captures:
            self.stage.show_rest()
        self._each("on_run", run)
        self._update_capture_list(select_last=True)

    def _show_header(self) -> None:
        """The run's name, what is known of it and its number of captures."""
        run = self.view.run
        assert run is not None
        meta = run.metadata
        known = [md(meta[k]) for k in ("env_name", "algorithm") if meta.get(k)]
        skipped = self.stage.skipped
        self.status.content = f"**{md(run.name)}**  \n{' · '.join([*known, f'{len(run.captures)} captures'])}" + (
            f"  \n{skipped} geom(s) cannot be drawn" if skipped else ""
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
        self.view.layout = "one"
        if first is not None:
            self.view.env = first[2]
        self.load_capture(index)
        if first is not None:
            self.show_step(max(0, first[1] - 1))

    def _on_capture_choice(self) -> None:
        value = self.capture_menu.value
        if self.run is None or not value.startswith("#"):
            return
        index = int(value[1:].split()[0])
        if self.shown is None or self.shown.capture.info.index != index or self.view.live:
            self.load_capture(index)

    def load_capture(self, index: int) -> None:
        """Show capture ``index`` of the open run (the live stream's watch ends)."""
        assert self.run is not None
        cap = self.run.capture(index)
        label = self._labels()[index]
        if self.capture_menu.value != label:
            self.capture_menu.value = label
        self.open(cap)

    def open(self, cap: store.Capture, *, play: bool = False, source: str = "captures") -> None:
        """Show ``cap`` (a capture, or a live chunk with ``source="live"``); ``play``: every
        tab starts playing it from the start."""
        self.view.source = source
        if play:
            self.view.t = 0
        self._load(cap, play=play)

    def reload(self) -> None:
        """Load the shown capture again (the view's environments, layout or comparison changed)."""
        if self.shown is not None:
            self._load(self.shown.capture)

    def _load(self, cap: store.Capture, *, play: bool = False) -> None:
        """The load phase, then drawing: the shown arrays are read; the stage arranges the
        shown environments; every panel's ``on_load`` adds to the view what it contributes
        (a comparison, an overlay); then every ``on_capture`` and the step are drawn."""
        view = self.view
        E = cap.info.num_envs
        settings = ReturnSettings.of_run(view.run.metadata if view.run is not None else None)
        view.env = view.selected(E)
        shown = _shown.Shown.load(
            cap, view.shown_envs(E), view.selected(E), gamma=settings.gamma, reward_scaling=settings.reward_scaling
        )
        view.shown = shown
        view.t = min(view.t, cap.info.num_steps - 1)
        # One update for the browsers: the rebuilt scene (old meshes removed, new ones
        # added at their poses), the plots and the step arrive together, so a browser never
        # draws the empty or unposed scene in between.
        view.play_on_load = play
        try:
            with self.server.atomic():
                self.error.visible = False  # before what may show a new one (compare)
                self.stage.arrange(
                    len(shown.envs),
                    shown.model_fields,
                    view.layout,
                    shown.state(view.t),
                    key=tuple(shown.envs),
                    selected=shown.selected_slot,
                )
                self._each("on_load", view)
                self._each("on_capture", shown)
                self._send_to_browsers(shown, view.t, playing=play)
                self.show_step(view.t, from_browser=play)  # a chunk that plays: the tabs start at 0
        finally:
            view.play_on_load = False

    def _send_to_browsers(self, shown: _shown.Shown, t: int, *, playing: bool = False) -> None:
        """Encode the shown environments' poses over the whole capture (a thread of its own,
        the block holding step ``t`` first) and send them to every tab as they are encoded.
        The same capture and environments shown again (another one selected, drawn in full)
        reuse the poses encoded and sent already: only the nodes they pose change."""
        from ._browser import Recording

        envs = self.stage.envs
        assert envs is not None
        browser = self.browser
        run = self.view.run
        dt = float((run.metadata.get("control_dt_s") if run is not None else None) or 0.02)
        drawn = envs.drawn()
        poses_key = (  # never id(): a freed capture's id is reused by the next live chunk
            self.view.run.url if self.view.run is not None else "",
            shown.capture.info.id,
            shown.capture.info.index,
            tuple(shown.envs),
            tuple(envs.node_names()),
            tuple(envs.items),
        )
        now = browser.current
        same = now is not None and now.poses_key == poses_key and not self._recording_failed
        rec = Recording(
            id=browser.new_id(),
            num_steps=shown.num_steps,
            dt_s=dt,
            nodes=[name for name, _, _ in drawn],
            offsets=self.stage.offsets().astype(np.float32),
            block_steps=_scene.BLOCK_STEPS,
            label=f"capture #{shown.capture.info.index}",
            follow=self.view.live,
            node_items=[items for _, items, _ in drawn],
            node_slots=[slots for _, _, slots in drawn],
            poses_key=poses_key,
        )
        if same:
            assert now is not None
            rec.poses, rec.blocks = now.poses, now.blocks  # the encoder fills the list they share
            browser.publish(rec, step=t, playing=playing)
            return
        if self._stop_recording is not None:
            self._stop_recording.set()
        self._recording_failed = False
        browser.publish(rec, step=t, playing=playing)
        stop = self._stop_recording = threading.Event()
        qpos, mp, mq = shown.qpos, shown.mocap_pos, shown.mocap_quat

        def encode() -> None:
            try:
                for index, data in envs.pose_blocks(qpos, mp, mq, first=t // rec.block_steps, stop=stop):
                    browser.add_block(rec, index, data)
            except Exception as e:  # noqa: BLE001 - shown; the server still poses on seeks
                self._recording_failed = True
                self.show_error(f"replay in the browser: {type(e).__name__}: {e}")

        threading.Thread(target=encode, name="trajscope-encode", daemon=True).start()

    def show_step(self, t: int, *, from_browser: bool = False) -> None:
        """Show step ``t`` of the open capture in every panel; the stage is posed there and
        every tab goes there too, unless ``from_browser`` (a tab settled there: it shows it
        already)."""
        view, shown = self.view, self.view.shown
        if shown is None:
            return
        t = int(min(max(t, 0), shown.num_steps - 1))
        view.t = t
        view.bad = [shown.envs[i] for i in np.flatnonzero(~shown.finite_at(t))]
        if not from_browser:
            # The tabs pose the scene themselves on their own steps; the server's copy is
            # posed only where the server moves (posing 256 envs costs tens of ms).
            self.stage.pose(shown.state(t))
        view.stepped_in_browser = from_browser
        try:
            self._each("on_step", shown, t)
        finally:
            view.stepped_in_browser = False

    def redraw(self) -> None:
        """The view changed but not the step (an overlay, a setting): every panel draws the
        shown step again; the scene and the tabs stay as they are."""
        self.show_step(self.view.t, from_browser=True)

    def show_state(self, capture: int, env: int, t: int) -> None:
        """Replay one state: capture ``capture``, environment ``env`` alone, step ``t``."""
        if self.run is None:
            return
        self.view.layout, self.view.env = "one", env
        self.load_capture(capture)
        self.show_step(t)

    def play_tabs(self, playing: bool, release: bool = False) -> None:
        """Every tab plays (or pauses); ``release``: every tab also hands the scene's poses
        back to the server (the Play panel draws there) until the step moves again."""
        self.browser.command("play" if playing else "pause")
        self.view.playing = playing
        if release:
            self.browser.command("release")

    # ------------------------------------------------------------------ tabs: steps and keys

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
        view = self.view
        if key in ("left", "right") and view.shown is not None:
            E = view.shown.capture.info.num_envs
            view.env = int(min(max(view.env + (1 if key == "right" else -1), 0), E - 1))
            self.reload()
        elif key in ("up", "down") and self.run is not None and self.run.captures and not view.live:
            now = view.shown.capture.info.index if view.shown is not None else len(self.run.captures) - 1
            index = min(max(now + (1 if key == "up" else -1), 0), len(self.run.captures) - 1)
            if view.shown is None or index != now:
                self.load_capture(index)

    REPORTS_PER_S = 4.0
    """At most this many steps reported by tabs are shown in the panels each second."""

    def _browser_loop(self) -> None:
        """The panels follow the step the tabs report (at most :data:`REPORTS_PER_S`, the
        latest one); a recording played to its end is the panels' ``on_end``."""
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
            if ended:
                if self._ended != rec_id:
                    self._ended = rec_id
                    self.act(lambda: self.shown is not None and self._each("on_end", self.shown))
            elif step != self.view.t or playing != self.view.playing or not playing:
                self.view.playing = playing
                self.act(lambda t=step: self.show_step(t, from_browser=True))
            self._stop.wait(1.0 / self.REPORTS_PER_S)

    # ------------------------------------------------------------------ news

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
        self.stage.frame_new_clients()
        self._each("on_poll")
        if self.new_captures and self.follow_latest.value and not self.view.live:
            self.load_capture(len(self.run.captures) - 1)

    def close(self) -> None:
        self._stop.set()
        if self._stop_recording is not None:
            self._stop_recording.set()
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
