"""The play panel: "play from here" runs a checkpoint's policy on the host from the shown
state (:class:`trajscope.play.Player`), in real time, drawn in place of the replay.

The environment is the user's (``Viewer(play_env=...)``, or ``trajscope view --play-env
playground:NAME``); it and JAX are loaded at the first click, so viewing never needs them.
While playing: pause, reset to the captured state, swap the policy to any capture's
checkpoint, push a body by dragging a handle (a spring force on the body, as MuJoCo's
viewer does) or by a fixed force, and edit ``state.info`` entries (commands).
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import store
from .._escape import md
from ._panel import Panel

STIFFNESS = 50.0
"""Drag spring: newtons per metre per kilogram of the dragged body (MuJoCo's viewer scales
its perturbation spring by the body's mass too)."""


class PlayPanel(Panel):
    tab = "Play"

    ended = ""
    """Why play paused at the episode's end (empty while it has not)."""
    episode_left: int | None = None
    """Steps from the start frame to the episode's end, when the run says."""

    @classmethod
    def create(cls, viewer: Any) -> PlayPanel:
        def where() -> tuple[store.Run, store.CaptureInfo, int, int] | None:
            with viewer.lock:
                view = viewer.view
                if view.run is None or view.shown is None:
                    return None
                return view.run, view.shown.capture.info, view.shown.selected, view.t

        panel = cls(
            viewer.server,
            env=viewer.play_env,
            env_spec=viewer.play_env_spec,
            where=where,
            draw=lambda frame: viewer.act(panel.draw_played, frame),
            on_start=lambda: viewer.act(viewer.play_tabs, False, True),
            on_stop=lambda: viewer.act(viewer.show_step, viewer.view.t),
        )
        return panel

    def on_run(self, run: store.Run) -> None:
        self.set_run(run)

    def on_step(self, frames: Any, t: int) -> None:
        """The server moved the step: the replay takes the scene back."""
        if self.active and self.viewer is not None and not self.viewer.view.stepped_in_browser:
            self.stop(back=False)

    def draw_played(self, frame: Any) -> None:
        """The played state in place of the selected environment's captured one."""
        viewer = self.viewer
        if viewer is None or viewer.view.shown is None or not self.active:
            return
        view = viewer.view
        slot = view.shown.selected_slot
        qpos, mp, mq = view.shown.state(view.t)
        qpos = qpos.copy()
        qpos[slot] = frame.qpos
        if mp is not None and frame.mocap_pos is not None:
            mp = mp.copy()
            mp[slot] = frame.mocap_pos
        if mq is not None and frame.mocap_quat is not None:
            mq = mq.copy()
            mq[slot] = frame.mocap_quat
        viewer.stage.pose((qpos, mp, mq))

    def __init__(
        self,
        server: Any,
        *,
        env: Any = None,
        env_spec: str | None = None,
        where: Callable[[], tuple[store.Run, store.CaptureInfo, int, int] | None],
        draw: Callable[[Any], None],
        on_start: Callable[[], None],
        on_stop: Callable[[], None],
    ) -> None:
        self.server = server
        self._env = env
        self._env_spec = env_spec
        self._where = where
        self._draw = draw
        self._on_start = on_start
        self._on_stop = on_stop
        self.player: Any = None
        self.playing = False
        self.active = False
        self.errors: list[str] = []
        self.steps_per_s = 0.0
        self.return_ = 0.0
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self.idle = threading.Event()
        """Set by the play loop once it has stopped stepping (paused, stopped)."""
        self._dragging = False
        self._run: store.Run | None = None
        self._model_of: store.Run | None = None
        self._kin_model: Any = None
        self._kin_data: Any = None
        self._caps: list[store.CaptureInfo] = []
        gui = server.gui
        with gui.add_folder("Play"):
            self.text = gui.add_markdown(self._unavailable_text() or "play the shown state forward with a policy")
            self.start_button = gui.add_button(
                "play from here",
                hint="Run a checkpoint's policy on the host from the shown step of the selected environment",
            )
            self.policy = gui.add_dropdown("policy of", ["(shown capture)"], hint="Swap checkpoints while playing")
            self.pause_button = gui.add_button("pause", disabled=True)
            self.step_button = gui.add_button("step once", disabled=True, hint="One control step (pauses)")
            self.reset_button = gui.add_button("reset to captured state", disabled=True)
            self.stop_button = gui.add_button("back to replay", disabled=True)
            self.body = gui.add_dropdown("push body", ["(none)"])
            self.drag = gui.add_checkbox(
                "drag to push", False, hint="A handle on the body: drag it and a spring pulls the body along"
            )
            self.force = gui.add_vector3("force (N)", (0.0, 0.0, 0.0), step=1.0)
            self.hold = gui.add_checkbox("apply force", False)
            self.info_key = gui.add_dropdown("command (state.info)", ["(none)"])
            self.info_value = gui.add_text("value", "")
        self.start_button.on_click(lambda _: self.safely(self.start))
        self.pause_button.on_click(lambda _: self.safely(self.toggle))
        self.step_button.on_click(lambda _: self.safely(self.step_once))
        self.reset_button.on_click(lambda _: self.safely(self.reset))
        self.stop_button.on_click(lambda _: self.safely(self.stop))
        self.policy.on_update(lambda _: self.safely(self._swap))
        self.hold.on_update(lambda _: self.safely(self._apply_force))
        self.force.on_update(lambda _: self.safely(self._apply_force))
        self.drag.on_update(lambda _: self.safely(self._show_handle))
        self.body.on_update(lambda _: self.safely(self._show_handle))
        self.info_value.on_update(lambda _: self.safely(self._set_info))
        self.handle: Any = None
        threading.Thread(target=self._loop, name="trajscope-play-policy", daemon=True).start()

    def _unavailable_text(self) -> str | None:
        if self._env is None and self._env_spec is None:
            return (
                "**Play needs the environment.** Start the viewer with `--play-env playground:NAME` "
                "(or `brax:NAME`), or pass `play_env=` to `trajscope.serve`; playing also needs JAX."
            )
        return None

    def safely(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` as the panel's buttons do: an error is shown in the panel, not raised."""
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - shown in the panel, never kills the viewer
            msg = f"{type(e).__name__}: {e}"
            self.errors.append(msg + "\n" + traceback.format_exc())
            self.text.content = f"**cannot play:** {md(msg)}"

    # ------------------------------------------------------------------ run

    def set_run(self, run: store.Run) -> None:
        """The captures whose checkpoints can act (those storing policy parameters)."""
        self._run = run
        self._caps = [c for c in run.captures if c.kind != "live"]
        labels = ["(shown capture)"] + [f"#{c.index} step {c.step}" for c in self._caps]
        if list(self.policy.options) != labels:
            self.policy.options = labels
        if self._model_of is run:
            return
        if self.player is not None and self.player.run is not run:
            self.stop()
            self.player = None
        self._model_of = run
        model = self._kin_model = run.load_model()
        self._kin_data = None
        self.body.options = ["(none)"] + [model.body(i).name or f"body {i}" for i in range(1, model.nbody)]

    def _env_loaded(self, run: Any) -> Any:
        if self._env is None:
            unavailable = self._unavailable_text()
            if unavailable:
                raise RuntimeError(unavailable)
            assert self._env_spec is not None
            self.text.content = f"loading {md(self._env_spec)} and JAX..."
            from ..play import load_env, trained_impl  # JAX, brax or Playground: only now

            self._env = load_env(self._env_spec, impl=trained_impl(run.metadata))
        return self._env

    def start(self) -> None:
        """Play from the shown step of the selected environment."""
        where = self._where()
        if where is None:
            raise RuntimeError("no capture shown")
        run, cap, env_index, t = where
        from ..play import Player  # JAX and brax: only now

        with self._lock:
            if self.player is None or self.player.run is not run:
                self.player = Player(run, self._env_loaded(run))
            policy = self._policy_capture() or self._checkpoint_for(run, cap)
            self.text.content = "compiling the policy and the environment step..."
            self.player.use_policy(policy)
            self.player.start(cap, env_index=env_index, t=t)
            self.return_ = 0.0
            self.ended = ""
            self.episode_left = _episode_left(run, cap, t)
            self.idle.clear()
            self._fill_info_keys()
            self.active = True
            self.playing = True
            self._on_start()
            for b in (self.pause_button, self.step_button, self.reset_button, self.stop_button):
                b.disabled = False
            self.pause_button.label = "pause"
            self._apply_force()
            self._show_handle()
            self._status()

    @staticmethod
    def _checkpoint_for(run: store.Run, cap: store.CaptureInfo) -> store.CaptureInfo:
        """The shown capture when it stores a policy; else (a NaN guard's or a live chunk of
        the training environments) the newest checkpoint at or before its step that does."""

        def has_params(c: store.CaptureInfo) -> bool:
            return any(n.startswith("params/") for n in c.array_names)

        if has_params(cap):
            return cap
        stored = [c for c in run.captures if c.kind == "eval" and has_params(c)]
        if not stored:
            raise RuntimeError("no capture of this run stores policy parameters to play with")
        before = [c for c in stored if c.step <= cap.step]
        return (before or stored)[-1]

    def _policy_capture(self) -> store.CaptureInfo | None:
        label = self.policy.value
        if label == "(shown capture)":
            return None
        i = list(self.policy.options).index(label) - 1
        return self._caps[i] if 0 <= i < len(self._caps) else None

    def _swap(self) -> None:
        with self._lock:
            if self.player is None or not self.active:
                return
            where = self._where()
            cap = self._policy_capture() or (where[1] if where else None)
            if cap is not None:
                self.player.use_policy(cap)
                self._status()

    def toggle(self) -> None:
        self.idle.clear()
        self.playing = not self.playing
        self.pause_button.label = "pause" if self.playing else "resume"
        self._status()

    def step_once(self) -> None:
        """Pause, and advance one control step (into a blow-up, one step at a time)."""
        if self.playing:
            self.toggle()
            self.idle.wait(5.0)
        with self._lock:
            if self.player is None or not self.active:
                return
            frame = self.player.step()
            self.return_ += frame.reward
        self._draw(frame)
        self._status(frame)

    def reset(self) -> None:
        with self._lock:
            if self.player is None:
                return
            frame = self.player.reset()
            self.return_ = 0.0
            self.ended = ""
            self._apply_force()
        self._draw(frame)  # outside the lock: drawing takes the viewer's
        self._status(frame)

    def stop(self, *, back: bool = True) -> None:
        """Back to the replay (``back``: the replay draws its step again)."""
        with self._lock:
            was = self.active
            self.active = self.playing = False
            for b in (self.pause_button, self.step_button, self.reset_button, self.stop_button):
                b.disabled = True
            if self.handle is not None:
                self.handle.visible = False
        if was:
            self.text.content = "play from here: run a checkpoint's policy from the shown step"
            if back:
                self._on_stop()

    def _fill_info_keys(self) -> None:
        keys = sorted(k for k, v in self.player.state.info.items() if np.ndim(np.asarray(v)) <= 1 and "/" not in k)
        opts = ["(none)", *keys]
        if list(self.info_key.options) != opts:
            self.info_key.options = opts

    def _set_info(self) -> None:
        key = self.info_key.value
        if self.player is None or key == "(none)" or not self.info_value.value.strip():
            return
        values = [float(x) for x in self.info_value.value.replace(",", " ").split()]
        self.player.set_info(key, values if len(values) > 1 else values[0])

    # ------------------------------------------------------------------ push

    def _body_index(self) -> int | None:
        names = list(self.body.options)
        i = names.index(self.body.value) if self.body.value in names else 0
        return i or None

    def _apply_force(self) -> None:
        if self.player is None or self._dragging:
            return
        body = self._body_index()
        if self.hold.value and body is not None:
            self.player.push(body, force=tuple(self.force.value))
        else:
            self.player.push(None)

    def _show_handle(self) -> None:
        on = bool(self.drag.value) and self.active and self._body_index() is not None
        if self.handle is None and on:
            self.handle = self.server.scene.add_transform_controls(
                "/trajscope/play/drag", scale=0.3, disable_rotations=True, depth_test=False
            )
            self.handle.on_update(lambda event: self.safely(lambda: self.on_handle(getattr(event, "phase", "update"))))
        if self.handle is not None:
            self.handle.visible = on

    def on_handle(self, phase: str) -> None:
        """viser's drag lifecycle: ``start`` when grabbed, ``update`` as it moves, ``end``."""
        if phase == "start":
            self._drag(True)
        elif phase == "end":
            self._drag(False)
            return
        self._drag_force()

    def _drag(self, on: bool) -> None:
        self._dragging = on
        if not on:
            self._apply_force()

    def _drag_force(self) -> None:
        if not self._dragging or self.player is None:
            return
        body = self._body_index()
        if body is None:
            return
        xpos = self.body_position(body)
        mass = float(self.player._base_model.body_mass[body]) if hasattr(self.player._base_model, "body_mass") else 1.0
        force = STIFFNESS * max(mass, 1e-3) * (np.asarray(self.handle.position) - xpos)
        self.player.push(body, force=tuple(float(f) for f in force))

    def body_position(self, body: int) -> np.ndarray:
        """Where ``body`` is in the played state (MuJoCo's kinematics on the host)."""
        import mujoco

        model = self._kin_model
        if self._kin_data is None:
            self._kin_data = mujoco.MjData(model)
        d = self._kin_data
        d.qpos[:] = self.player.qpos()
        mujoco.mj_kinematics(model, d)
        return np.array(d.xpos[body])

    # ------------------------------------------------------------------ loop

    def _status(self, frame: Any = None) -> None:
        p = self.player
        if p is None:
            return
        src = p.started_from
        pol = p.policy_capture
        state = "playing" if self.playing else "paused"
        rate = f" (computes {self.steps_per_s:.0f} steps/s)" if self.steps_per_s else ""
        lines = [
            f"**{state}** step {p.t} from capture {md(src[0][:12])}…, env {src[1]}, step {src[2]}{rate}",
            f"policy of capture #{pol.index} (step {pol.step}); return so far {self.return_:.3f}" if pol else "",
        ]
        if frame is not None and not frame.finite:
            lines.append("**the state is no longer finite** (reset to go back)")
        if self.ended:
            lines.append(f"**{md(self.ended)}**; resume plays on past it, reset goes back")
        self.text.content = "\n\n".join(x for x in lines if x)

    def _loop(self) -> None:
        last_status = 0.0
        next_t = time.monotonic()
        while not self._stop.is_set():
            if not (self.active and self.playing and self.player is not None):
                self.idle.set()
                time.sleep(0.03)
                next_t = time.monotonic()
                continue
            try:
                dt = float((self._run.metadata.get("control_dt_s") if self._run else None) or 0.02)
                t0 = time.perf_counter()
                with self._lock:
                    if not self.active:
                        continue
                    frame = self.player.step()
                    self.return_ += frame.reward
                rate = 1.0 / max(time.perf_counter() - t0, 1e-6)
                self.steps_per_s = 0.9 * self.steps_per_s + 0.1 * rate if self.steps_per_s else rate
                self._draw(frame)
                if self.handle is not None and self.handle.visible and not self._dragging:
                    body = self._body_index()
                    if body is not None:
                        self.handle.position = tuple(self.body_position(body))
                if not frame.finite:
                    self.playing = False
                    self.pause_button.label = "resume"
                elif not self.ended and (frame.done or frame.t >= (self.episode_left or 2**62)):
                    # The episode is over, as training would have ended it: stop there (resume
                    # plays on past it, on purpose).
                    self.ended = (
                        f"the episode ended (done) at step {frame.t}"
                        if frame.done
                        else f"the episode's length is reached (step {frame.t}: training's episode_length)"
                    )
                    self.playing = False
                    self.pause_button.label = "resume"
                    self._status(frame)
                if time.monotonic() - last_status > 0.25 or not frame.finite:
                    last_status = time.monotonic()
                    self._status(frame)
            except Exception as e:  # noqa: BLE001
                self.playing = False
                self.errors.append(f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
                self.text.content = f"**play stopped:** {type(e).__name__}: {md(e)}"
            next_t += dt
            time.sleep(max(0.0, next_t - time.monotonic()))
            if next_t < time.monotonic() - 1.0:
                next_t = time.monotonic()  # slower than real time: do not try to catch up

    def close(self) -> None:
        self._stop.set()


def _episode_left(run: store.Run, cap: store.CaptureInfo, t: int) -> int | None:
    """Control steps left in the episode from step ``t`` of a capture that starts at its
    reset state, by the training's recorded ``episode_length`` and ``action_repeat``; None
    when unknown (a live or NaN chunk starts mid-episode)."""
    conf = (run.metadata.get("config") or {}).get("trajscope") or {}
    length, repeat = conf.get("episode_length"), conf.get("action_repeat") or 1
    if not cap.reset_frame or not isinstance(length, int) or not isinstance(repeat, int) or repeat < 1:
        return None
    return max(1, length // repeat - int(t))
