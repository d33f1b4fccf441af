"""Environments of one MuJoCo model drawn in a viser scene: one batched mesh per geom, one
instance per environment, each with its own randomised colours and sizes, posed by MuJoCo's
kinematics (:class:`trajscope.sim.Kinematics`). Usable without the viewer: the viewer's
scene panel and the single-file HTML export both draw through it."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .. import sim
from . import _decor, _framing, _geometry, _recording

FULL = 64
"""Environments drawn with every triangle, at most: past this many, those named ``full``
(the selected one and its neighbours) are, and the others coarse (:func:`._geometry.geom_mesh`
with ``coarse``: a tenth to a quarter of the triangles, untextured)."""


class EnvScene:
    """``n`` environments of ``model`` under the scene node ``prefix`` of a
    ``viser.ViserServer``'s scene."""

    def __init__(self, server: Any, model: Any, *, prefix: str = "/geoms") -> None:
        self.server = server
        self.scene = server.scene
        self.model = model
        self.prefix = prefix
        self.geoms = [g for g in (_geometry.geom_mesh(model, i) for i in range(model.ngeom)) if g]
        self.skipped = model.ngeom - len(self.geoms)
        """Geoms that cannot be drawn (their type has no mesh here)."""
        self.nodes: dict[int, Any] = {}
        """The scene node of each drawn geom, by geom id: one instance per environment drawn in full."""
        self.coarse_nodes: dict[int, Any] = {}
        """The same geoms, coarse: one instance per environment of :attr:`coarse` (empty when none)."""
        self.full = np.zeros(0, int)
        """The environments (slots) drawn in full, ascending."""
        self.coarse = np.zeros(0, int)
        """The environments drawn coarse, ascending (none up to :data:`FULL` environments)."""
        self._coarse_geoms = {
            g.geom_id: c for g in self.geoms if (c := _geometry.geom_mesh(model, g.geom_id, coarse=True))
        }
        self.kin: sim.Kinematics | None = None
        self.scales = np.ones((model.ngeom, 0, 3))
        # Each drawn geom's box in its own frame; planes are ground, not content, and never framed.
        self.local_lo = np.zeros((model.ngeom, 3))
        self.local_hi = np.zeros((model.ngeom, 3))
        self.framed_geoms = np.zeros(model.ngeom, bool)
        for g in self.geoms:
            if len(g.vertices):
                self.local_lo[g.geom_id], self.local_hi[g.geom_id] = g.vertices.min(0), g.vertices.max(0)
            self.framed_geoms[g.geom_id] = int(model.geom_type[g.geom_id]) != _geometry.PLANE
        self.ground = {
            g.geom_id
            for g in self.geoms
            if int(model.geom_type[g.geom_id]) == _geometry.PLANE and int(model.geom_bodyid[g.geom_id]) == 0
        }
        """The world's planes: with several environments, one ground under them all."""
        self.ground_slots = np.zeros(1, int)
        """The environment (slot) the ground is drawn at: one, near the grid's centre."""
        self._key: tuple[Any, ...] | None = None
        self._fields: dict[str, np.ndarray] = {}
        self._contact_nodes: list[Any] = []
        self._opacity: dict[int, float | None] = {}
        self.kinds: set[str] = set()
        """The decorations drawn (:data:`._decor.KINDS`: sites, body frames, ...)."""
        self.decorations: list[_decor.Decoration] = []
        self.items: list[_decor.Item] = []
        """The frames the decorations are posed at, each once, in block order after the geoms."""
        self.deco_nodes: dict[str, Any] = {}
        """The decorations' scene nodes, by name: an instance per item and environment drawn in full."""

    def set_envs(
        self,
        n: int,
        model_fields: Mapping[str, np.ndarray] | None = None,
        *,
        overlay: bool = False,
        tint: np.ndarray | None = None,
        opacity: float | None = None,
        planes: bool = True,
        full: Sequence[int] | np.ndarray | None = None,
    ) -> bool:
        """Draw ``n`` environments with their randomised fields ``(n, ...)`` each (colours
        from ``geom_rgba``, sizes from ``geom_size``); ``overlay``: see-through bodies.
        ``tint`` (RGB, 0-255): every geom in that colour, untextured (a ghost); ``opacity``:
        every geom's but the ground's; ``planes=False`` leaves the ground out. Past
        :data:`FULL` environments only ``full`` (slots; default the first ``FULL``) are
        drawn with every triangle, the others coarse.
        Meshes are sent again only when the colours, sizes, count or full ones change; True if they were."""
        if n <= FULL:
            self.full, self.coarse = np.arange(n), np.zeros(0, int)
        else:
            chosen = np.arange(FULL) if full is None else np.asarray(full, int)
            chosen = np.unique(chosen[(chosen >= 0) & (chosen < n)])[:FULL]
            self.full, self.coarse = chosen, np.setdiff1d(np.arange(n), chosen)
        cols = math.ceil(math.sqrt(n))
        self.ground_slots = np.array([min(n - 1, (cols // 2) * cols + cols // 2 if n > 1 else 0)])
        fields = dict(model_fields or {})
        self._fields = fields
        self.kin = sim.Kinematics(self.model, n, fields or None)
        rgba = fields.get("geom_rgba")
        colors = np.zeros((self.model.ngeom, n, 3), np.uint8)
        for g in self.geoms:
            c = rgba[:, g.geom_id, :3] if rgba is not None else np.broadcast_to(g.rgba[:3], (n, 3))
            colors[g.geom_id] = _geometry.linear_bytes(c)
        if tint is not None:
            colors[:] = _geometry.linear_bytes(np.asarray(tint, float) / 255)
        sizes = fields.get("geom_size")
        self.scales = (
            _geometry.size_scales(self.model, sizes)
            if sizes is not None and np.shape(sizes)[1:] == np.shape(self.model.geom_size)
            else np.ones((self.model.ngeom, n, 3))
        )
        key = (
            n,
            overlay,
            colors.tobytes(),
            self.scales.tobytes(),
            tint is not None,
            opacity,
            planes,
            self.full.tobytes(),
        )
        if key == self._key and self.nodes:
            return False
        self._key = key
        see_through = opacity if opacity is not None else (0.35 if overlay and n > 1 else None)
        self._build(n, colors, see_through=see_through, textures=tint is None, planes=planes)
        self._build_decorations()
        return True

    def _build(self, n: int, colors: np.ndarray, *, see_through: float | None, textures: bool, planes: bool) -> None:
        for node in [*self.nodes.values(), *self.coarse_nodes.values()]:
            node.remove()
        self.nodes, self.coarse_nodes = {}, {}
        self._opacity = {}
        full, coarse = self.full, self.coarse
        ident = np.tile([1.0, 0, 0, 0], (len(full), 1))
        for g in self.geoms:
            # See-through bodies (overlaid, a ghost); the ground stays opaque (N copies of a
            # see-through plane would stack, and hide what lies below it).
            ground = int(self.model.geom_type[g.geom_id]) == _geometry.PLANE
            if ground and not planes:
                continue
            opacity = float(g.rgba[3]) * (see_through if see_through is not None and not ground else 1.0)
            self._opacity[g.geom_id] = opacity if opacity < 1 else None
            slots = self.slots_of(g.geom_id)
            if g.texture is not None and see_through is None and textures:
                self.nodes[g.geom_id] = self.scene.add_batched_meshes_trimesh(
                    f"{self.prefix}/g{g.geom_id}",
                    _textured(g.texture),
                    batched_wxyzs=ident[: len(slots)],
                    batched_positions=np.zeros((len(slots), 3)),
                    batched_scales=self.scales[g.geom_id][slots],
                    lod="off",
                    cast_shadow=False,
                    receive_shadow=False,
                )
            else:
                self.nodes[g.geom_id] = self._batched(f"g{g.geom_id}", g, slots, colors[g.geom_id], opacity)
            c = self._coarse_geoms.get(g.geom_id)
            if len(coarse) and c is not None and g.geom_id not in self.ground:
                self.coarse_nodes[g.geom_id] = self._batched(
                    f"coarse/g{g.geom_id}", c, coarse, colors[g.geom_id], opacity
                )

    def slots_of(self, geom: int) -> np.ndarray:
        """The environments (slots) geom ``geom``'s full node has an instance for: those drawn
        in full, or for the ground under several environments, the one it is drawn at."""
        if geom in self.ground and len(self.full) + len(self.coarse) > 1:
            return self.ground_slots
        return self.full

    def cover(self, lo: np.ndarray, hi: np.ndarray, offsets: np.ndarray) -> None:
        """Size the ground (drawn once) to reach past the world box ``lo..hi`` of the
        environments as they stand (``offsets (n, 3)`` included) on every side: its plane,
        scaled (a texture on it scales with it)."""
        if len(self.full) + len(self.coarse) <= 1:
            return
        slot = int(self.ground_slots[0])
        for gid in self.ground:
            node = self.nodes.get(gid)
            if node is None:
                continue
            half = np.maximum(np.abs(self.local_hi[gid, :2]), 1e-6)  # the plane's own half sizes
            centre = np.asarray(self.model.geom_pos[gid], float)[:2] + np.asarray(offsets, float)[slot, :2]
            reach = np.maximum(np.abs(np.asarray(hi[:2]) - centre), np.abs(centre - np.asarray(lo[:2])))
            base = self.scales[gid][slot]
            k = np.maximum(1.0, (reach + 0.25 * float(np.max(reach))) / (half * base[:2]))
            node.batched_scales = (base * np.array([k[0], k[1], 1.0]))[None].astype(np.float32)

    def _batched(
        self, name: str, mesh: _geometry.GeomMesh, slots: np.ndarray, colors: np.ndarray, opacity: float
    ) -> Any:
        """One batched mesh of ``mesh`` under the prefix, an instance per environment of ``slots``."""
        return self.scene.add_batched_meshes_simple(
            f"{self.prefix}/{name}",
            mesh.vertices,
            mesh.faces,
            batched_wxyzs=np.tile([1.0, 0, 0, 0], (len(slots), 1)),
            batched_positions=np.zeros((len(slots), 3)),
            batched_scales=self.scales[mesh.geom_id][slots],
            batched_colors=colors[slots],
            opacity=opacity if opacity < 1 else None,
            lod="off",
            cast_shadow=False,
            receive_shadow=False,
        )

    def set_decorations(self, kinds: set[str]) -> bool:
        """Draw what MuJoCo's viewer draws besides geoms (``kinds`` of
        :data:`._decor.KINDS`) for the environments drawn in full; True if that changed."""
        kinds = set(kinds) & set(_decor.KINDS)
        if kinds == self.kinds:
            return False
        self.kinds = kinds
        self.decorations = _decor.decorations(self.model, kinds)
        self.items = list(dict.fromkeys(item for d in self.decorations for item in d.items))
        self._build_decorations()
        return True

    def _build_decorations(self) -> None:
        for node in self.deco_nodes.values():
            node.remove()
        self.deco_nodes = {}
        n = len(self.full)
        if not n or self.kin is None:
            return
        for d in self.decorations:
            k = len(d.items) * n
            self.deco_nodes[d.name] = self.scene.add_batched_meshes_simple(
                f"{self.prefix}/decor/{d.name}",
                d.vertices,
                d.faces,
                batched_wxyzs=np.tile([1.0, 0, 0, 0], (k, 1)),
                batched_positions=np.zeros((k, 3)),
                batched_colors=np.asarray(d.rgb, np.uint8),
                opacity=d.opacity if d.opacity < 1 else None,
                wireframe=d.wireframe,
                lod="off",
                cast_shadow=False,
                receive_shadow=False,
            )

    def _deco_instances(self, d: _decor.Decoration) -> tuple[np.ndarray, np.ndarray]:
        """Instance by instance of decoration ``d``: the index of its item (in
        :attr:`items`) and its environment (slot), items outermost."""
        index = {item: i for i, item in enumerate(self.items)}
        items = np.repeat([index[it] for it in d.items], len(self.full))
        slots = np.tile(self.full, len(d.items))
        return items, slots

    def style(self, *, wireframe: bool = False, transparent: bool = False) -> None:
        """MuJoCo viewer's rendering flags on the drawn geoms: every triangle's edges only
        (``wireframe``), and see-through bodies (``transparent``: 0.3 of each geom's alpha;
        the ground stays as it is). Textured geoms keep their faces in wireframe."""
        for nodes in (self.nodes, self.coarse_nodes):
            for g in self.geoms:
                node = nodes.get(g.geom_id)
                if node is None or not hasattr(node, "wireframe"):
                    continue
                ground = int(self.model.geom_type[g.geom_id]) == _geometry.PLANE
                node.wireframe = bool(wireframe)
                if not ground:
                    base = self._opacity.get(g.geom_id)
                    alpha = float(g.rgba[3]) * 0.3 if transparent else base
                    node.opacity = alpha if alpha is not None and alpha < 1 else base

    def _pose_decorations(self, offsets: np.ndarray) -> None:
        if not self.deco_nodes or self.kin is None:
            return
        pos, wxyz = _decor.item_poses(self.kin, self.items)
        for d in self.decorations:
            node = self.deco_nodes.get(d.name)
            if node is None:
                continue
            items, slots = self._deco_instances(d)
            node.batched_positions = (pos[slots, items] + offsets[slots]).astype(np.float32)
            node.batched_wxyzs = wxyz[slots, items].astype(np.float32)

    def show_groups(self, shown: set[int]) -> None:
        """Show the geoms of MuJoCo's geom groups ``shown`` (groups past 5 always)."""
        for g in self.geoms:
            for nodes in (self.nodes, self.coarse_nodes):
                node = nodes.get(g.geom_id)
                if node is not None:
                    node.visible = g.group in shown or g.group >= 6

    def poses(
        self, qpos: np.ndarray, mocap_pos: np.ndarray | None = None, mocap_quat: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Geom positions ``(n, ngeom, 3)``, orientations ``(n, ngeom, 4)`` and which
        environments are finite, of states ``qpos (n, nq)`` (before offsets)."""
        assert self.kin is not None, "set_envs first"
        return self.kin.poses(qpos, mocap_pos, mocap_quat)

    def place(
        self,
        qpos: np.ndarray,
        mocap_pos: np.ndarray | None,
        mocap_quat: np.ndarray | None,
        offsets: np.ndarray,
        *,
        contacts: bool = False,
        captured: list[tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> np.ndarray:
        """Pose the drawn environments at these states, each moved by its ``offsets (n, 3)``;
        with ``contacts``, their contact points and forces too: ``captured`` (per
        environment, the points and normals the simulator found, as stored) when given, else
        recomputed by MuJoCo from the states. Returns which environments are finite (the
        others keep their last finite pose)."""
        pos, wxyz, ok = self.poses(qpos, mocap_pos, mocap_quat)
        pos = pos + offsets[:, None, :]
        with self.server.atomic():
            for nodes, coarse in ((self.nodes, False), (self.coarse_nodes, True)):
                for g in self.geoms:
                    node = nodes.get(g.geom_id)
                    if node is not None:
                        slots = self.coarse if coarse else self.slots_of(g.geom_id)
                        node.batched_positions = pos[slots, g.geom_id].astype(np.float32)
                        node.batched_wxyzs = wxyz[slots, g.geom_id].astype(np.float32)
            self._pose_decorations(offsets)
            self.draw_contacts(offsets if contacts else None, captured)
        return ok

    def box(
        self,
        qpos: np.ndarray,
        mocap_pos: np.ndarray | None,
        mocap_quat: np.ndarray | None,
        offsets: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The world box of the environments' geoms at these states (planes left out)."""
        pos, wxyz, _ = self.poses(qpos, mocap_pos, mocap_quat)
        pos = pos + offsets[:, None, :]
        return _framing.bounds(
            pos, wxyz, self.local_lo, self.local_hi, self.framed_geoms, scales=self.scales.transpose(1, 0, 2)
        )

    def grid_spacing(self, qpos: np.ndarray, mocap_pos: np.ndarray | None, mocap_quat: np.ndarray | None) -> float:
        """A quarter more than the widest environment's footprint at these states (its
        geoms but the planes): neighbours never touch, and a large floor does not spread them."""
        pos, wxyz, _ = self.poses(qpos, mocap_pos, mocap_quat)
        widths = []
        for e in range(len(pos)):
            b = _framing.bounds(
                pos[e : e + 1],
                wxyz[e : e + 1],
                self.local_lo,
                self.local_hi,
                self.framed_geoms,
                scales=self.scales[:, e : e + 1].transpose(1, 0, 2),
            )
            if b is not None:
                widths.append(float(np.max((b[1] - b[0])[:2])))
        if not widths:
            return 1.5 * (float(self.model.stat.extent) or 1.0)
        return max(1.25 * max(widths), 0.2)

    def model_box(self) -> tuple[np.ndarray, np.ndarray]:
        """The model's own extent around its centre (when no state is finite)."""
        extent = float(self.model.stat.extent) or 1.0
        centre = np.asarray(self.model.stat.center, float)
        return centre - extent / 2, centre + extent / 2

    def draw_contacts(
        self, offsets: np.ndarray | None, captured: list[tuple[np.ndarray, np.ndarray]] | None = None
    ) -> None:
        """Contact points (orange) and contact force arrows (red, MuJoCo's scale: the
        model's ``vis.map.force`` metres per newton per unit of mean body mass) of the last
        posed states; ``None`` removes them. ``captured``: the points and normals the
        simulator found (drawn as normals of a tenth of the model's extent: the capture holds
        no forces)."""
        for node in self._contact_nodes:
            node.remove()
        self._contact_nodes = []
        if offsets is None or (self.kin is None and captured is None):
            return
        pts, arrows = [], []
        scale = float(self.model.vis.map.force) / max(float(self.model.stat.meanmass), 1e-9)
        for slot in range(len(offsets)):
            if captured is not None:
                pos, normal = captured[slot] if slot < len(captured) else (np.zeros((0, 3)), np.zeros((0, 3)))
                force = normal * 0.1 * float(self.model.stat.extent or 1.0) / scale
            else:
                assert self.kin is not None
                pos, force = self.kin.contacts(slot)
            if len(pos):
                pts.append(pos + offsets[slot])
                arrows.append(np.stack([pos + offsets[slot], pos + offsets[slot] + scale * force], axis=1))
        if not pts:
            return
        p = np.concatenate(pts).astype(np.float32)
        size = 0.02 * float(self.model.stat.extent or 1.0)
        self._contact_nodes.append(
            self.scene.add_point_cloud(
                "/trajscope/contacts/points", p, (255, 140, 0), point_size=size, point_shape="circle"
            )
        )
        segs = np.concatenate(arrows).astype(np.float32)
        self._contact_nodes.append(
            self.scene.add_line_segments("/trajscope/contacts/forces", segs, (220, 30, 30), thickness=size / 3)
        )

    @property
    def contact_nodes(self) -> list[Any]:
        """The scene nodes of the drawn contacts: points, then force arrows (empty: none)."""
        return list(self._contact_nodes)

    def node_names(self) -> list[str]:
        """The scene nodes of the drawn geoms (in full), in the order :meth:`pose_blocks` codes them."""
        return [self.nodes[g.geom_id].name for g in self.geoms if g.geom_id in self.nodes]

    def drawn(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """Every node posed from :meth:`pose_blocks`' blocks: its name, then instance by
        instance the index of its geom or decoration item in a block and its environment (slot)."""
        coded = [g.geom_id for g in self.geoms if g.geom_id in self.nodes]
        out = [
            (self.nodes[gid].name, np.full(len(self.slots_of(gid)), i), self.slots_of(gid))
            for i, gid in enumerate(coded)
        ]
        out += [
            (self.coarse_nodes[gid].name, np.full(len(self.coarse), i), self.coarse)
            for i, gid in enumerate(coded)
            if gid in self.coarse_nodes
        ]
        for d in self.decorations:
            if d.name in self.deco_nodes:
                items, slots = self._deco_instances(d)
                out.append((self.deco_nodes[d.name].name, items + len(coded), slots))
        return out

    def pose_blocks(
        self,
        qpos: np.ndarray,
        mocap_pos: np.ndarray | None = None,
        mocap_quat: np.ndarray | None = None,
        *,
        block_steps: int = _recording.BLOCK_STEPS,
        first: int = 0,
        stop: threading.Event | None = None,
    ) -> Iterator[tuple[int, bytes]]:
        """The drawn environments' poses over every step of ``qpos (T, n, nq)`` (mocap
        ``(T, n, nmocap, 3|4)``), before offsets, as blocks for the browser's player
        (:mod:`._recording`): ``(index, bytes)``, block ``first`` first, then the others in
        order; a non-finite state holds its environment's last finite pose. Posed by a
        kinematics of its own (another thread may pose the scene meanwhile); ends early once
        ``stop`` is set."""
        T, n = int(qpos.shape[0]), int(qpos.shape[1])
        kin = sim.Kinematics(self.model, n, self._fields or None)
        ids = np.array([g.geom_id for g in self.geoms if g.geom_id in self.nodes], int)
        count = -(-T // block_steps)
        first = min(max(first, 0), max(count - 1, 0))
        items = list(self.items)
        K = len(ids) + len(items)
        for b in [first, *(i for i in range(count) if i != first)]:
            steps = range(b * block_steps, min(T, (b + 1) * block_steps))
            P = np.empty((len(steps), n, K, 3), np.float32)
            Q = np.empty((len(steps), n, K, 4), np.float32)
            if b > 0:  # the pose before the block: where non-finite states are held
                t0 = steps[0] - 1
                kin.poses(qpos[t0], _at(mocap_pos, t0), _at(mocap_quat, t0))
            for k, t in enumerate(steps):
                if stop is not None and stop.is_set():
                    return
                pos, wxyz, _ = kin.poses(qpos[t], _at(mocap_pos, t), _at(mocap_quat, t))
                P[k, :, : len(ids)], Q[k, :, : len(ids)] = pos[:, ids], wxyz[:, ids]
                if items:
                    P[k, :, len(ids) :], Q[k, :, len(ids) :] = _decor.item_poses(kin, items)
            yield b, _recording.encode_block(P, Q)

    def body_position(self, body: int, slot: int) -> np.ndarray:
        """Where body ``body`` of environment ``slot`` was last posed (before offsets)."""
        assert self.kin is not None
        return self.kin.body_pos(body)[slot]

    def remove(self) -> None:
        for node in [
            *self.nodes.values(),
            *self.coarse_nodes.values(),
            *self.deco_nodes.values(),
            *self._contact_nodes,
        ]:
            node.remove()
        self.nodes, self.coarse_nodes, self.deco_nodes, self._contact_nodes, self._key = {}, {}, {}, [], None


def _at(a: np.ndarray | None, t: int) -> np.ndarray | None:
    return None if a is None else a[t]


def _textured(tex: _geometry.Texture) -> Any:
    """A trimesh mesh carrying the texture (viser sends it as a GLB)."""
    import trimesh
    from PIL import Image

    # Not metallic (glTF's default is a metal, which reflects only the environment map and
    # looks black under plain lights): MuJoCo's materials are diffuse with a highlight.
    material = trimesh.visual.material.PBRMaterial(
        baseColorTexture=Image.fromarray(tex.image), metallicFactor=0.0, roughnessFactor=0.7
    )
    visual = trimesh.visual.TextureVisuals(uv=tex.uv, material=material)
    return trimesh.Trimesh(tex.vertices, tex.faces, visual=visual, process=False)
