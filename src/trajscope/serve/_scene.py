"""The 3D scene panel: which environments are shown (layout, selection, count), drawn by
the scene room's :class:`trajscope.scene.EnvScene`; camera framing and following for each
browser, geom groups."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import scene as _scene
from . import _shown
from ._panel import Panel


class ScenePanel(Panel):
    """Draws the shown environments of the open capture."""

    tab = "Scene"

    @classmethod
    def create(cls, viewer: Any) -> ScenePanel:
        return cls(viewer.server, on_change=lambda: viewer.act(viewer.reload))

    def on_run(self, run: Any) -> None:
        self.skipped = self.set_model(self.viewer.model)
        if not run.captures:
            self.show_rest()

    def on_capture(self, frames: _shown.Shown) -> None:
        t = self.viewer.t if self.viewer is not None else 0
        self.show(frames, t)
        if self.viewer is not None:
            self.send_to_browsers(frames, t, playing=self.viewer.play_on_load)

    def on_step(self, frames: _shown.Shown, t: int) -> None:
        if self.viewer is not None and self.viewer.stepped_in_browser:
            # The tabs pose the scene themselves; the server's copy stays where the server
            # last put it (posing every shown environment costs tens of ms at 256 envs).
            self.bad = [frames.envs[i] for i in np.flatnonzero(~frames.finite_at(t))]
            if self.follow.value:
                self._follow_step(frames, t)
            return
        self.bad = self.pose(frames, t)

    def send_to_browsers(self, frames: _shown.Shown, t: int, *, playing: bool = False) -> None:
        """Encode the shown environments' poses over the whole capture (a thread of its own,
        the block holding step ``t`` first) and send them to every tab as they are encoded."""
        from ._browser import Recording

        assert self.envs is not None
        if self._stop_recording is not None:
            self._stop_recording.set()
        browser = self.viewer.browser
        dt = float((self.viewer.run.metadata.get("control_dt_s") if self.viewer.run else None) or 0.02)
        rec = Recording(
            id=browser.new_id(),
            num_steps=frames.num_steps,
            dt_s=dt,
            nodes=self.envs.node_names(),
            offsets=self.offsets(len(frames.envs)).astype(np.float32),
            block_steps=_scene.BLOCK_STEPS,
            label=f"capture #{frames.capture.info.index}",
            follow=self.viewer.live_shown,
        )
        browser.publish(rec, step=t, playing=playing)
        stop = self._stop_recording = threading.Event()
        qpos, mp, mq = frames.qpos, frames.mocap_pos, frames.mocap_quat
        envs = self.envs

        def encode() -> None:
            try:
                for index, data in envs.pose_blocks(qpos, mp, mq, first=t // rec.block_steps, stop=stop):
                    browser.add_block(rec, index, data)
            except Exception as e:  # noqa: BLE001 - shown; the server still poses on seeks
                self.viewer.show_error(f"replay in the browser: {type(e).__name__}: {e}")

        threading.Thread(target=encode, name="trajscope-encode", daemon=True).start()

    _stop_recording: threading.Event | None = None

    def close(self) -> None:
        if self._stop_recording is not None:
            self._stop_recording.set()

    def on_poll(self) -> None:
        self.frame_new_clients()

    skipped = 0
    """Geoms of the open run's model that cannot be drawn."""
    bad: list[int] = []  # noqa: RUF012 - replaced, never mutated
    """Shown environments whose state is not finite at the shown step."""

    def __init__(self, server: Any, *, on_change: Callable[[], None]) -> None:
        self.server = server
        self.envs: _scene.EnvScene | None = None
        """What is drawn: the open run's model, the shown environments."""
        self._framed: tuple[tuple[int, ...], str] | None = None
        self._box: tuple[np.ndarray, np.ndarray] | None = None
        self._content: tuple[np.ndarray, np.ndarray] | None = None
        self._framed_clients: set[int] = set()
        self._spacing = 1.0
        gui = server.gui
        self._count_chosen = False
        self._setting = False
        with gui.add_folder("Environments"):
            self.layout = gui.add_dropdown(
                "layout",
                _shown.LAYOUTS,
                initial_value="one",
                hint="one: the selected env alone; grid: envs side by side; overlay: envs on top of each other",
            )
            self.env = gui.add_slider(
                "selected env", 0, 1, 1, 0, hint="The env whose plots, values and pixels are shown"
            )
            self.count = gui.add_slider(
                "envs shown",
                1,
                1,
                1,
                1,
                disabled=True,
                hint=f"How many envs grid and overlay draw (default: all, up to {_shown.MAX_SHOWN})",
            )
            self.follow = gui.add_checkbox("camera follows env", False, hint="Keep the selected env in view")
            self.reset_view = gui.add_button(
                "reset view", hint="Point every browser's camera back at the shown environments"
            )
            self.contacts = gui.add_checkbox(
                "contacts",
                False,
                hint="Contact points of the shown envs: as simulated, with their normals, where the capture "
                "stored them (contacts=k), else recomputed by MuJoCo from stored positions, with force arrows",
            )
            self.groups: list[Any] = []
            self._add_groups_folder()

        def layout_changed() -> None:
            self.count.disabled = self.layout.value == "one"
            on_change()

        def count_changed() -> None:
            if not self._setting:
                self._count_chosen = True
                on_change()

        self.reset_view.on_click(lambda _: self.reset_camera())
        self.contacts.on_update(lambda _: on_change())
        self.layout.on_update(lambda _: layout_changed())
        self.env.on_update(lambda _: on_change())
        self.count.on_update(lambda _: count_changed())

    def _add_groups_folder(self) -> None:
        """The geom-group switches (MuJoCo's groups 0 to 5; 0 to 2 shown, as MuJoCo's viewer does)."""
        with self.server.gui.add_folder("Geom groups", expand_by_default=False):
            self.groups = [self.server.gui.add_checkbox(f"group {i}", i < 3) for i in range(6)]
        for cb in self.groups:
            cb.on_update(lambda _: self.apply_groups())

    # ------------------------------------------------------------ model and capture

    @property
    def model(self) -> Any:
        return self.envs.model if self.envs is not None else None

    @property
    def geoms(self) -> list[Any]:
        return self.envs.geoms if self.envs is not None else []

    @property
    def nodes(self) -> dict[int, Any]:
        return self.envs.nodes if self.envs is not None else {}

    @property
    def kin(self) -> Any:
        return self.envs.kin if self.envs is not None else None

    def set_model(self, model: Any) -> int:
        """Use this model; returns how many geoms cannot be drawn."""
        if self.envs is not None:
            self.envs.remove()
        self.envs = _scene.EnvScene(self.server, model)
        self._framed = None
        return self.envs.skipped

    at_rest = False
    """The model is drawn at rest (no capture shown yet)."""

    def show_rest(self) -> None:
        """Draw the model at rest (``qpos0``) and frame it, before the run has a capture: the
        page shows what is being trained from the first moment."""
        assert self.envs is not None
        model = self.envs.model
        self.envs.set_envs(1, None)
        self.apply_groups()
        qpos = np.asarray(model.qpos0, float)[None]
        ok = self.envs.place(qpos, None, None, np.zeros((1, 3)))
        box = self.envs.box(qpos, None, None, np.zeros((1, 3))) if ok.all() else None
        self._framed = None  # the first capture frames the camera again
        self.frame_box(box if box is not None else self.envs.model_box())
        self.at_rest = True

    def set_capture_size(self, num_envs: int) -> None:
        """Slider ranges for a capture of ``num_envs`` environments; grid and overlay show
        all of them (up to ``MAX_SHOWN``) until the user picks a number."""
        self.env.max = max(num_envs - 1, 1)
        self.env.disabled = num_envs == 1
        self._setting = True
        try:
            self.count.max = max(min(num_envs, _shown.MAX_DRAWN), 2)
            capped = num_envs > _shown.MAX_DRAWN
            self.count.label = f"envs shown (at most {_shown.MAX_DRAWN} of {num_envs})" if capped else "envs shown"
            if not self._count_chosen or int(self.count.value) > num_envs:
                self.count.value = min(num_envs, _shown.MAX_SHOWN)
        finally:
            self._setting = False

    def shown(self, num_envs: int) -> list[int]:
        return _shown.shown_envs(self.layout.value, int(self.env.value), int(self.count.value), num_envs)

    def selected(self, num_envs: int) -> int:
        return min(int(self.env.value), num_envs - 1)

    def spacing(self) -> float:
        """The grid's spacing: a quarter more than the widest environment's footprint."""
        if self.kin is None:
            return 1.5 * (float(self.model.stat.extent) or 1.0) if self.model is not None else 1.5
        return self._spacing

    def offsets(self, n: int) -> np.ndarray:
        """World offsets of the shown environments (a grid ``spacing`` apart in ``grid``)."""
        return _scene.grid_offsets(self.layout.value, n, self._spacing)

    def show(self, frames: _shown.Shown, t: int) -> None:
        """Prepare the scene for ``frames`` at step ``t``; meshes are sent again only when
        the shown environments, the layout or their colours change (live chunks change only
        poses); the camera is framed again when the shown environments or the layout do."""
        assert self.envs is not None
        n = len(frames.envs)
        self.at_rest = False
        if self.envs.set_envs(n, frames.model_fields, overlay=self.layout.value == "overlay"):
            self.apply_groups()
        if self._framed != (tuple(frames.envs), self.layout.value):  # not when only the capture changed
            self._framed = (tuple(frames.envs), self.layout.value)
            t = min(t, frames.num_steps - 1)
            self._spacing = self.envs.grid_spacing(*_pose_args(frames, t))
            self.frame_camera(frames, t)

    def frame_camera(self, frames: _shown.Shown, t: int) -> None:
        """Point the camera so that the shown environments at step ``t`` fill the canvas
        left of the control panel: the start view of new browsers, "reset view", and every
        connected browser. Bounded by the drawn geoms' spheres, planes left out."""
        assert self.envs is not None
        box = self.envs.box(*_pose_args(frames, t), self.offsets(len(frames.envs)))
        if box is None:  # nothing but planes, or no finite state: the model's own extent
            box = self.envs.model_box()
        self._content = box
        self.frame_box(box)

    def frame_box(self, box: tuple[np.ndarray, np.ndarray]) -> None:
        """Frame the camera of new browsers and of every connected one on ``box``."""
        self._box = box
        self._framed_clients = set()
        fov = float(self.server.initial_camera.fov)
        position, look_at = _scene.framing(*box, fov_y=fov, width_px=1280, height_px=800)
        self.server.initial_camera.position = position
        self.server.initial_camera.look_at = look_at
        self.frame_new_clients()

    def reset_camera(self) -> None:
        """ "reset view": every connected browser's camera back on the last framing."""
        if self._box is not None:
            self.frame_box(self._box)

    def content_box(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The world box of the shown environments' geoms (planes left out) when last framed."""
        return self._content

    def framed_box(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The world box the camera was last framed on."""
        return self._box

    def framed_clients(self) -> set[int]:
        """Ids of the browsers framed for the current layout."""
        return set(self._framed_clients)

    def frame_new_clients(self) -> None:
        """Frame each browser once it has reported its canvas (new ones, and every one after
        a layout change), for its own canvas size."""
        if self._box is None:
            return
        for cid, client in self.server.get_clients().items():
            cam = client.camera
            if cid in self._framed_clients or cam._state.update_timestamp == 0.0:
                continue  # framed already, or its camera has not reported yet
            w, h = int(cam.image_width), int(cam.image_height)
            if w <= 0 or h <= 0:
                continue
            # The panel is PANEL_PX CSS pixels wide; the canvas is reported in render pixels.
            page = self.viewer.browser.page_size(cid) if self.viewer is not None else None
            panel = _scene.PANEL_PX * w / page[0] if page else _scene.PANEL_PX
            position, look_at = _scene.framing(
                *self._box, fov_y=float(cam.fov), width_px=w, height_px=h, panel_px=round(panel)
            )
            with client.atomic():
                cam.position = position  # viser moves look_at with position: set it after
                cam.look_at = look_at
            self._framed_clients.add(cid)

    def apply_groups(self) -> None:
        if self.envs is not None:
            self.envs.show_groups({i for i, cb in enumerate(self.groups) if cb.value} if self.groups else {0, 1, 2})

    # ------------------------------------------------------------ one step

    def pose(self, frames: _shown.Shown, t: int, *, override: tuple[int, Any] | None = None) -> list[int]:
        """Pose every shown environment at step ``t``; returns the environments whose state
        is not finite there (they keep their last finite pose). ``override``: ``(slot,
        state)`` draws ``state`` (``qpos``, ``mocap_pos``, ``mocap_quat``: a played frame)
        in place of that shown environment's captured one."""
        assert self.envs is not None
        qpos, mp, mq = _pose_args(frames, t)
        if override is not None:
            slot, state = override
            qpos = qpos.copy()
            qpos[slot] = state.qpos
            if mp is not None and state.mocap_pos is not None:
                mp = mp.copy()
                mp[slot] = state.mocap_pos
            if mq is not None and state.mocap_quat is not None:
                mq = mq.copy()
                mq[slot] = state.mocap_quat
        captured = frames.contacts.at(t) if frames.contacts is not None and override is None else None
        ok = self.envs.place(
            qpos, mp, mq, self.offsets(len(frames.envs)), contacts=bool(self.contacts.value), captured=captured
        )
        if self.follow.value:
            self._follow(frames)
        return [frames.envs[i] for i in np.flatnonzero(~ok)]

    def follow_target(self, frames: _shown.Shown) -> np.ndarray:
        """Where "camera follows env" looks: the selected environment's first body, as drawn."""
        assert self.envs is not None
        body = 1 if self.model.nbody > 1 else 0
        slot = frames.selected_slot
        return self.envs.body_position(body, slot) + self.offsets(len(frames.envs))[slot]

    def _follow_step(self, frames: _shown.Shown, t: int) -> None:
        """ "camera follows env" at a step a tab settled on: pose the selected environment
        alone (one kinematics call) to find where it is."""
        assert self.envs is not None and self.envs.kin is not None
        qpos, mp, mq = _pose_args(frames, t)
        self.envs.kin.poses(qpos, mp, mq)
        self._follow(frames)

    def _follow(self, frames: _shown.Shown) -> None:
        """Keep the camera's offset, centred on the selected environment."""
        centre = self.follow_target(frames)
        for client in self.server.get_clients().values():
            cam = client.camera
            offset = np.asarray(cam.position) - np.asarray(cam.look_at)
            with client.atomic():
                cam.position = centre + offset  # viser moves look_at with position: set it after
                cam.look_at = centre


def _pose_args(frames: _shown.Shown, t: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """qpos, mocap positions and orientations of the shown environments at step ``t``."""
    mp = frames.mocap_pos[t] if frames.mocap_pos is not None else None
    mq = frames.mocap_quat[t] if frames.mocap_quat is not None else None
    return frames.qpos[t], mp, mq
