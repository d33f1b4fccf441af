"""The 3D scene panel: environments shown (layout, selection), geoms drawn as batched
meshes posed by MuJoCo's kinematics, camera framing and following, geom groups."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import sim
from . import _frames, _geometry


class ScenePanel:
    """Draws the shown environments of the open capture."""

    def __init__(self, server: Any, *, on_change: Callable[[], None]) -> None:
        self.server = server
        self.model: Any = None
        self.geoms: list[_geometry.GeomMesh] = []
        self.nodes: dict[int, Any] = {}
        self.kin: sim.Kinematics | None = None
        self._key: tuple[Any, ...] | None = None
        self._framed: tuple[tuple[int, ...], str] | None = None
        self._local_lo = self._local_hi = np.zeros((0, 3))
        self._box: tuple[np.ndarray, np.ndarray] | None = None
        self._content: tuple[np.ndarray, np.ndarray] | None = None
        self._framed_clients: set[int] = set()
        self._spacing = 1.0
        self._scales = np.ones((0, 0, 3))
        self._framed_geoms = np.zeros(0, bool)
        gui = server.gui
        self._count_chosen = False
        self._setting = False
        with gui.add_folder("Environments"):
            self.layout = gui.add_dropdown(
                "layout",
                _frames.LAYOUTS,
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
                hint=f"How many envs grid and overlay draw (default: all, up to {_frames.MAX_SHOWN})",
            )
            self.follow = gui.add_checkbox("camera follows env", False, hint="Keep the selected env in view")
            self.contacts = gui.add_checkbox(
                "contacts",
                False,
                hint="Contact points and force arrows of the shown envs, recomputed by MuJoCo from stored positions",
            )
        self._contact_nodes: list[Any] = []
        self.groups: list[Any] = []

        def layout_changed() -> None:
            self.count.disabled = self.layout.value == "one"
            on_change()

        def count_changed() -> None:
            if not self._setting:
                self._count_chosen = True
                on_change()

        self.contacts.on_update(lambda _: on_change())
        self.layout.on_update(lambda _: layout_changed())
        self.env.on_update(lambda _: on_change())
        self.count.on_update(lambda _: count_changed())

    def add_groups_folder(self) -> None:
        """The geom-group switches (MuJoCo's groups 0 to 5; 0 to 2 shown, as MuJoCo's viewer does)."""
        with self.server.gui.add_folder("Geom groups", expand_by_default=False):
            self.groups = [self.server.gui.add_checkbox(f"group {i}", i < 3) for i in range(6)]
        for cb in self.groups:
            cb.on_update(lambda _: self.apply_groups())

    # ------------------------------------------------------------ model and capture

    def set_model(self, model: Any) -> int:
        """Use this model; returns how many geoms cannot be drawn."""
        self.model = model
        self.geoms = [g for g in (_geometry.geom_mesh(model, i) for i in range(model.ngeom)) if g]
        self._key = None
        self._framed = None
        # Each drawn geom's box in its own frame; planes are ground, not content, and never framed.
        self._local_lo = np.zeros((model.ngeom, 3))
        self._local_hi = np.zeros((model.ngeom, 3))
        self._framed_geoms = np.zeros(model.ngeom, bool)
        for g in self.geoms:
            if len(g.vertices):
                self._local_lo[g.geom_id], self._local_hi[g.geom_id] = g.vertices.min(0), g.vertices.max(0)
            self._framed_geoms[g.geom_id] = int(model.geom_type[g.geom_id]) != _geometry.PLANE
        return model.ngeom - len(self.geoms)

    def set_capture_size(self, num_envs: int) -> None:
        """Slider ranges for a capture of ``num_envs`` environments; grid and overlay show
        all of them (up to ``MAX_SHOWN``) until the user picks a number."""
        self.env.max = max(num_envs - 1, 1)
        self.env.disabled = num_envs == 1
        self._setting = True
        try:
            self.count.max = max(num_envs, 2)
            if not self._count_chosen or int(self.count.value) > num_envs:
                self.count.value = min(num_envs, _frames.MAX_SHOWN)
        finally:
            self._setting = False

    def shown(self, num_envs: int) -> list[int]:
        return _frames.shown_envs(self.layout.value, int(self.env.value), int(self.count.value), num_envs)

    def selected(self, num_envs: int) -> int:
        return min(int(self.env.value), num_envs - 1)

    def spacing(self) -> float:
        """The grid's spacing: a quarter more than the widest environment's footprint."""
        if self.kin is None:
            return 1.5 * (float(self.model.stat.extent) or 1.0) if self.model is not None else 1.5
        return self._spacing

    def offsets(self, n: int) -> np.ndarray:
        """World offsets of the shown environments (a grid ``spacing`` apart in ``grid``)."""
        return _frames.grid_offsets(self.layout.value, n, self._spacing)

    def _grid_spacing(self, frames: _frames.Frames, t: int) -> float:
        """A quarter more than the widest environment's footprint at step ``t`` (its geoms
        but the planes): neighbours never touch, and a large floor does not spread them."""
        assert self.kin is not None
        pos, wxyz, _ = self.kin.poses(*_pose_args(frames, t))
        widths = []
        for e in range(len(frames.envs)):
            box = _frames.bounds(
                pos[e : e + 1],
                wxyz[e : e + 1],
                self._local_lo,
                self._local_hi,
                self._framed_geoms,
                scales=self._scales[:, e : e + 1].transpose(1, 0, 2),
            )
            if box is not None:
                widths.append(float(np.max((box[1] - box[0])[:2])))
        if not widths:
            return 1.5 * (float(self.model.stat.extent) or 1.0)
        return max(1.25 * max(widths), 0.2)

    def show(self, frames: _frames.Frames, t: int) -> None:
        """Prepare the scene for ``frames`` at step ``t``; meshes are sent again only when
        the shown environments, the layout or their colours change (live chunks change only
        poses); the camera is framed again when the shown environments or the layout do."""
        n = len(frames.envs)
        self.kin = sim.Kinematics(self.model, n, frames.model_fields or None)
        rgba = frames.model_fields.get("geom_rgba")
        colors = np.zeros((self.model.ngeom, n, 3), np.uint8)
        for g in self.geoms:
            c = rgba[:, g.geom_id, :3] if rgba is not None else np.broadcast_to(g.rgba[:3], (n, 3))
            colors[g.geom_id] = np.clip(np.asarray(c) * 255, 0, 255).astype(np.uint8)
        sizes = frames.model_fields.get("geom_size")
        self._scales = (
            _geometry.size_scales(self.model, sizes)
            if sizes is not None and np.shape(sizes)[1:] == np.shape(self.model.geom_size)
            else np.ones((self.model.ngeom, n, 3))
        )
        key = (tuple(frames.envs), self.layout.value, colors.tobytes(), self._scales.tobytes())
        if key != self._key or not self.nodes:
            self._key = key
            self._build(n, colors)
        if self._framed != (tuple(frames.envs), self.layout.value):  # not when only the capture changed
            self._framed = (tuple(frames.envs), self.layout.value)
            t = min(t, frames.num_steps - 1)
            self._spacing = self._grid_spacing(frames, t)
            self.frame_camera(frames, t)

    def _build(self, n: int, colors: np.ndarray) -> None:
        for node in self.nodes.values():
            node.remove()
        self.nodes = {}
        prefix = "/geoms"
        overlay = self.layout.value == "overlay" and n > 1
        ident = np.tile([1.0, 0, 0, 0], (n, 1))
        for g in self.geoms:
            # Overlaid bodies are see-through; the ground stays opaque (N copies of a
            # see-through plane would stack, and hide what lies below it).
            ground = int(self.model.geom_type[g.geom_id]) == _geometry.PLANE
            opacity = float(g.rgba[3]) * (0.35 if overlay and not ground else 1.0)
            if g.texture is not None and not overlay:
                self.nodes[g.geom_id] = self.server.scene.add_batched_meshes_trimesh(
                    f"{prefix}/g{g.geom_id}",
                    _textured(g.texture),
                    batched_wxyzs=ident,
                    batched_positions=np.zeros((n, 3)),
                    batched_scales=self._scales[g.geom_id],
                    lod="off",
                    cast_shadow=False,
                    receive_shadow=False,
                )
                continue
            self.nodes[g.geom_id] = self.server.scene.add_batched_meshes_simple(
                f"{prefix}/g{g.geom_id}",
                g.vertices,
                g.faces,
                batched_wxyzs=ident,
                batched_positions=np.zeros((n, 3)),
                batched_scales=self._scales[g.geom_id],
                batched_colors=colors[g.geom_id],
                opacity=opacity if opacity < 1 else None,
                lod="off",
                cast_shadow=False,
                receive_shadow=False,
            )
        self.apply_groups()

    def frame_camera(self, frames: _frames.Frames, t: int) -> None:
        """Point the camera so that the shown environments at step ``t`` fill the canvas
        left of the control panel: the start view of new browsers, "reset view", and every
        connected browser. Bounded by the drawn geoms' spheres, planes left out."""
        assert self.kin is not None
        pos, wxyz, _ = self.kin.poses(*_pose_args(frames, t))
        pos = pos + self.offsets(len(frames.envs))[:, None, :]
        box = _frames.bounds(
            pos, wxyz, self._local_lo, self._local_hi, self._framed_geoms, scales=self._scales.transpose(1, 0, 2)
        )
        if box is None:  # nothing but planes, or no finite state: the model's own extent
            extent = float(self.model.stat.extent) or 1.0
            centre = np.asarray(self.model.stat.center, float)
            box = (centre - extent / 2, centre + extent / 2)
        self._content = box
        self.frame_box(box)

    def frame_box(self, box: tuple[np.ndarray, np.ndarray]) -> None:
        """Frame the camera of new browsers and of every connected one on ``box``."""
        self._box = box
        self._framed_clients = set()
        fov = float(self.server.initial_camera.fov)
        position, look_at = _frames.framing(*box, fov_y=fov, width_px=1280, height_px=800)
        self.server.initial_camera.position = position
        self.server.initial_camera.look_at = look_at
        self.frame_new_clients()

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
            position, look_at = _frames.framing(*self._box, fov_y=float(cam.fov), width_px=w, height_px=h)
            with client.atomic():
                cam.position = position  # viser moves look_at with position: set it after
                cam.look_at = look_at
            self._framed_clients.add(cid)

    def apply_groups(self) -> None:
        shown = {i for i, cb in enumerate(self.groups) if cb.value} if self.groups else {0, 1, 2}
        for g in self.geoms:
            node = self.nodes.get(g.geom_id)
            if node is not None:
                node.visible = g.group in shown or g.group >= 6

    # ------------------------------------------------------------ one step

    def pose(self, frames: _frames.Frames, t: int, *, override: tuple[int, Any] | None = None) -> list[int]:
        """Pose every shown environment at step ``t``; returns the environments whose state
        is not finite there (they keep their last finite pose). ``override``: ``(slot,
        state)`` draws ``state`` (``qpos``, ``mocap_pos``, ``mocap_quat``: a played frame)
        in place of that shown environment's captured one."""
        assert self.kin is not None
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
        pos, wxyz, ok = self.kin.poses(qpos, mp, mq)
        pos = pos + self.offsets(len(frames.envs))[:, None, :]
        with self.server.atomic():
            for g in self.geoms:
                node = self.nodes.get(g.geom_id)
                if node is not None:
                    node.batched_positions = pos[:, g.geom_id].astype(np.float32)
                    node.batched_wxyzs = wxyz[:, g.geom_id].astype(np.float32)
            self._draw_contacts(len(frames.envs))
        if self.follow.value:
            self._follow(frames)
        return [frames.envs[i] for i in np.flatnonzero(~ok)]

    def _draw_contacts(self, n: int) -> None:
        """Contact points (orange) and contact force arrows (red, MuJoCo's scale: the
        model's ``vis.map.force`` metres per newton per unit of mean body mass)."""
        for node in self._contact_nodes:
            node.remove()
        self._contact_nodes = []
        if not self.contacts.value or self.kin is None:
            return
        offsets = self.offsets(n)
        pts, arrows = [], []
        scale = float(self.model.vis.map.force) / max(float(self.model.stat.meanmass), 1e-9)
        for slot in range(n):
            pos, force = self.kin.contacts(slot)
            if len(pos):
                pts.append(pos + offsets[slot])
                arrows.append(np.stack([pos + offsets[slot], pos + offsets[slot] + scale * force], axis=1))
        if not pts:
            return
        p = np.concatenate(pts).astype(np.float32)
        size = 0.02 * float(self.model.stat.extent or 1.0)
        self._contact_nodes.append(
            self.server.scene.add_point_cloud(
                "/trajscope/contacts/points", p, (255, 140, 0), point_size=size, point_shape="circle"
            )
        )
        segs = np.concatenate(arrows).astype(np.float32)
        self._contact_nodes.append(
            self.server.scene.add_line_segments("/trajscope/contacts/forces", segs, (220, 30, 30), thickness=size / 3)
        )

    def follow_target(self, frames: _frames.Frames) -> np.ndarray:
        """Where "camera follows env" looks: the selected environment's first body, as drawn."""
        assert self.kin is not None
        body = 1 if self.model.nbody > 1 else 0
        slot = frames.selected_slot
        return self.kin.body_pos(body)[slot] + self.offsets(len(frames.envs))[slot]

    def _follow(self, frames: _frames.Frames) -> None:
        """Keep the camera's offset, centred on the selected environment."""
        centre = self.follow_target(frames)
        for client in self.server.get_clients().values():
            cam = client.camera
            offset = np.asarray(cam.position) - np.asarray(cam.look_at)
            with client.atomic():
                cam.position = centre + offset  # viser moves look_at with position: set it after
                cam.look_at = centre


def _pose_args(frames: _frames.Frames, t: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """qpos, mocap positions and orientations of the shown environments at step ``t``."""
    mp = frames.mocap_pos[t] if frames.mocap_pos is not None else None
    mq = frames.mocap_quat[t] if frames.mocap_quat is not None else None
    return frames.qpos[t], mp, mq


def _textured(tex: _geometry.Texture) -> Any:
    """A trimesh mesh carrying the texture (viser sends it as a GLB)."""
    import trimesh
    from PIL import Image

    visual = trimesh.visual.TextureVisuals(uv=tex.uv, image=Image.fromarray(tex.image))
    return trimesh.Trimesh(tex.vertices, tex.faces, visual=visual, process=False)
