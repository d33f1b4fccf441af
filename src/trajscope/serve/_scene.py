"""The 3D scene panel: environments shown (layout, selection), geoms drawn as batched
meshes posed by MuJoCo's kinematics, camera framing and following, geom groups."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import _frames, _geometry, _kinematics


class ScenePanel:
    """Draws the shown environments of the open capture."""

    def __init__(self, server: Any, *, on_change: Callable[[], None]) -> None:
        self.server = server
        self.model: Any = None
        self.geoms: list[_geometry.GeomMesh] = []
        self.nodes: dict[int, Any] = {}
        self.kin: _kinematics.Kinematics | None = None
        self._key: tuple[Any, ...] | None = None
        self._framed: tuple[int, str] | None = None
        gui = server.gui
        with gui.add_folder("Environments"):
            self.layout = gui.add_dropdown(
                "layout", _frames.LAYOUTS, initial_value="one", hint="one env, a grid of envs, or envs overlaid"
            )
            self.env = gui.add_slider("env", 0, 1, 1, 0, hint="The environment whose plots and pixels are shown")
            self.count = gui.add_slider("shown", 1, 1, 1, 1, hint="Environments in grid and overlay layouts")
            self.follow = gui.add_checkbox("camera follows env", False, hint="Keep the selected env in view")
        with gui.add_folder("Geom groups", expand_by_default=False):
            self.groups = [gui.add_checkbox(f"group {i}", i < 3) for i in range(6)]
        for h in (self.layout, self.env, self.count):
            h.on_update(lambda _: on_change())
        for cb in self.groups:
            cb.on_update(lambda _: self.apply_groups())

    # ------------------------------------------------------------ model and capture

    def set_model(self, model: Any) -> int:
        """Use this model; returns how many geoms cannot be drawn."""
        self.model = model
        self.geoms = [g for g in (_geometry.geom_mesh(model, i) for i in range(model.ngeom)) if g]
        self._key = None
        return model.ngeom - len(self.geoms)

    def set_capture_size(self, num_envs: int) -> None:
        """Slider ranges for a capture of ``num_envs`` environments."""
        self.env.max = max(num_envs - 1, 1)
        self.env.disabled = num_envs == 1
        self.count.max = max(num_envs, 1)

    def shown(self, num_envs: int) -> list[int]:
        return _frames.shown_envs(self.layout.value, int(self.env.value), int(self.count.value), num_envs)

    def selected(self, num_envs: int) -> int:
        return min(int(self.env.value), num_envs - 1)

    def offsets(self, n: int) -> np.ndarray:
        extent = float(self.model.stat.extent) or 1.0
        return _frames.grid_offsets(self.layout.value, n, 1.5 * extent)

    def show(self, frames: _frames.Frames) -> None:
        """Prepare the scene for ``frames``; meshes are sent again only when the shown
        environments, the layout or their colours change (live chunks change only poses)."""
        n = len(frames.envs)
        self.kin = _kinematics.Kinematics(self.model, n, frames.model_fields or None)
        rgba = frames.model_fields.get("geom_rgba")
        colors = np.zeros((self.model.ngeom, n, 3), np.uint8)
        for g in self.geoms:
            c = rgba[:, g.geom_id, :3] if rgba is not None else np.broadcast_to(g.rgba[:3], (n, 3))
            colors[g.geom_id] = np.clip(np.asarray(c) * 255, 0, 255).astype(np.uint8)
        key = (tuple(frames.envs), self.layout.value, colors.tobytes())
        if key != self._key or not self.nodes:
            self._key = key
            self._build(n, colors)

    def _build(self, n: int, colors: np.ndarray) -> None:
        for node in self.nodes.values():
            node.remove()
        self.nodes = {}
        overlay = self.layout.value == "overlay" and n > 1
        ident = np.tile([1.0, 0, 0, 0], (n, 1))
        for g in self.geoms:
            opacity = float(g.rgba[3]) * (0.35 if overlay else 1.0)
            if g.texture is not None and not overlay:
                self.nodes[g.geom_id] = self.server.scene.add_batched_meshes_trimesh(
                    f"/geoms/g{g.geom_id}",
                    _textured(g.texture),
                    batched_wxyzs=ident,
                    batched_positions=np.zeros((n, 3)),
                    lod="off",
                    cast_shadow=False,
                    receive_shadow=False,
                )
                continue
            self.nodes[g.geom_id] = self.server.scene.add_batched_meshes_simple(
                f"/geoms/g{g.geom_id}",
                g.vertices,
                g.faces,
                batched_wxyzs=ident,
                batched_positions=np.zeros((n, 3)),
                batched_colors=colors[g.geom_id],
                opacity=opacity if opacity < 1 else None,
                lod="off",
                cast_shadow=False,
                receive_shadow=False,
            )
        self.apply_groups()
        if self._framed != (n, self.layout.value):  # not when only the capture changed
            self._framed = (n, self.layout.value)
            self.frame_camera(n)

    def frame_camera(self, n: int) -> None:
        """Point the camera at the shown environments: the start view of new browsers,
        "reset view", and connected browsers when the layout changes."""
        extent = float(self.model.stat.extent) or 1.0
        offsets = self.offsets(n)
        centre = np.asarray(self.model.stat.center, float) + offsets.mean(axis=0)
        span = float(np.ptp(offsets[:, :2], axis=0).max()) if n > 1 else 0.0
        distance = 1.6 * extent + 1.1 * span
        direction = np.array([0.55, -0.75, 0.45])
        position = centre + distance * direction / np.linalg.norm(direction)
        self.server.initial_camera.look_at = centre
        self.server.initial_camera.position = position
        for client in self.server.get_clients().values():
            with client.atomic():
                client.camera.look_at = centre
                client.camera.position = position

    def apply_groups(self) -> None:
        shown = {i for i, cb in enumerate(self.groups) if cb.value}
        for g in self.geoms:
            node = self.nodes.get(g.geom_id)
            if node is not None:
                node.visible = g.group in shown or g.group >= len(self.groups)

    # ------------------------------------------------------------ one step

    def pose(self, frames: _frames.Frames, t: int) -> list[int]:
        """Pose every shown environment at step ``t``; returns the environments whose state
        is not finite there (they keep their last finite pose)."""
        assert self.kin is not None
        mp = frames.mocap_pos[t] if frames.mocap_pos is not None else None
        mq = frames.mocap_quat[t] if frames.mocap_quat is not None else None
        pos, wxyz, ok = self.kin.poses(frames.qpos[t], mp, mq)
        pos = pos + self.offsets(len(frames.envs))[:, None, :]
        with self.server.atomic():
            for g in self.geoms:
                node = self.nodes.get(g.geom_id)
                if node is not None:
                    node.batched_positions = pos[:, g.geom_id].astype(np.float32)
                    node.batched_wxyzs = wxyz[:, g.geom_id].astype(np.float32)
        if self.follow.value:
            self._follow(frames)
        return [frames.envs[i] for i in np.flatnonzero(~ok)]

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
                cam.look_at = centre
                cam.position = centre + offset


def _textured(tex: _geometry.Texture) -> Any:
    """A trimesh mesh carrying the texture (viser sends it as a GLB)."""
    import trimesh
    from PIL import Image

    visual = trimesh.visual.TextureVisuals(uv=tex.uv, image=Image.fromarray(tex.image))
    return trimesh.Trimesh(tex.vertices, tex.faces, visual=visual, process=False)
