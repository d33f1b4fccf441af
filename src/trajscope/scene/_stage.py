"""The stage: everything about where things stand and how they are seen, for one viser
server: the model's environments (an :class:`~._envs.EnvScene`) in a layout, the light and
the up direction, the grid's spacing and offsets, the camera's framing for each browser and
its follow of one environment, places "beside" the environments for other figures, and a
ghost (a second, tinted, see-through set of environments for comparisons).

It takes states and poses as arrays and knows nothing of viewers, panels or captures: the
viewer, its Compare panel and the single-file HTML export all draw through it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import _framing
from ._envs import FULL, EnvScene

LIGHT_POSITION = (2.0, -3.0, 5.0)
"""Where the directional light shines from (+z up) before a model is drawn."""
LIGHT_SCALE = 4.0
"""three.js light intensity per unit of MuJoCo light (ambient and diffuse), found by
rendering one model in both (tests/test_serve_browser.py's comparison with MuJoCo's renderer)."""
MAX_LIGHTS = 8


def model_lights(model: Any) -> tuple[float, list[tuple[np.ndarray, float]]]:
    """MuJoCo's lighting of ``model`` as viser can draw it: the ambient intensity and
    directional lights ``(direction it shines along, intensity)``: the headlight (it shines
    along the view; here along the starting camera's view) and the model's own lights at
    their rest pose (a spot light as a directional one along its axis or to its target),
    their colours averaged to a grey intensity, in MuJoCo's units (times :data:`LIGHT_SCALE`)."""
    head = model.vis.headlight
    ambient = float(np.mean(head.ambient)) if head.active else 0.0
    lights: list[tuple[np.ndarray, float]] = []
    if head.active and float(np.mean(head.diffuse)) > 0:
        view = -_framing.VIEW_DIRECTION / np.linalg.norm(_framing.VIEW_DIRECTION)
        lights.append((view, float(np.mean(head.diffuse))))
    for i in range(min(int(model.nlight), MAX_LIGHTS)):
        if not bool(model.light_active[i]):
            continue
        ambient += float(np.mean(model.light_ambient[i]))
        direction = np.asarray(model.light_dir0[i], float)
        target = int(model.light_targetbodyid[i])
        if target >= 0 and int(model.light_mode[i]) in (3, 4):  # targetbody, targetbodycom
            direction = np.asarray(model.body_pos[target], float) - np.asarray(model.light_pos0[i], float)
            if int(model.body_parentid[target]) != 0 or not np.isfinite(direction).all():
                direction = np.asarray(model.light_dir0[i], float)
        n = float(np.linalg.norm(direction))
        if n > 0 and float(np.mean(model.light_diffuse[i])) > 0:
            lights.append((direction / n, float(np.mean(model.light_diffuse[i]))))
    return LIGHT_SCALE * ambient, [(d, LIGHT_SCALE * v) for d, v in lights]


GHOST_TINT = np.array([255, 140, 0], np.uint8)
"""The ghost's colour (every geom but the ground)."""
GHOST_OPACITY = 0.45
"""The ghost's opacity when it stands over the environments."""

Box = tuple[np.ndarray, np.ndarray]
State = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]
"""``qpos (n, nq)``, ``mocap_pos (n, nmocap, 3)`` or None, ``mocap_quat`` or None."""


class Stage:
    """The scene of one viser ``server``: environments of one model, their ghost, light and camera.

    ``page_size(client_id)``: the page's CSS size as the browser reports it (None when
    unknown), so that a canvas that renders at a lower resolution is framed for the page.
    """

    def __init__(
        self,
        server: Any,
        *,
        page_size: Callable[[int], tuple[int, int] | None] | None = None,
        panel_px: int = _framing.PANEL_PX,
    ) -> None:
        self.server = server
        self.page_size = page_size
        self.panel_px = panel_px
        self.left_px = 0
        """CSS pixels of the page docked at its left (a column of plots): not the canvas."""
        server.scene.set_up_direction("+z")
        self._lights: list[Any] = [server.scene.add_light_directional("/light", position=LIGHT_POSITION, intensity=2.0)]
        self.envs: EnvScene | None = None
        """The model's environments, as drawn (None before a model)."""
        self.ghost: EnvScene | None = None
        """The ghost's environments (None while there is none)."""
        self.layout = "one"
        """How the environments stand: ``one`` (alone), ``grid`` (side by side), ``overlay``."""
        self.spacing = 1.0
        """The grid's spacing: a quarter more than the widest environment's footprint."""
        self.at_rest = False
        """The model is drawn at rest (no states given yet)."""
        self.groups: set[int] = {0, 1, 2}
        """MuJoCo's geom groups drawn (0 to 2, as MuJoCo's viewer starts; past 5 always)."""
        self.wireframe = False
        """Geoms drawn as their triangles' edges (MuJoCo's viewer: W)."""
        self.transparent = False
        """Bodies drawn see-through (MuJoCo's viewer: T)."""
        self.decorations: set[str] = set()
        """What is drawn besides geoms (:data:`._decor.KINDS`), for the environments drawn in full."""
        self.ghost_offset = np.zeros(3)
        self._n = 0
        self._arranged: tuple[Any, ...] | None = None
        self._box: Box | None = None
        self._content: Box | None = None
        self._framed_clients: set[int] = set()

    # ------------------------------------------------------------ model and environments

    @property
    def model(self) -> Any:
        return self.envs.model if self.envs is not None else None

    @property
    def skipped(self) -> int:
        """Geoms of the model that cannot be drawn."""
        return self.envs.skipped if self.envs is not None else 0

    @property
    def nodes(self) -> dict[int, Any]:
        """The environments' scene nodes, by geom id."""
        return self.envs.nodes if self.envs is not None else {}

    def set_model(self, model: Any) -> int:
        """Draw environments of ``model`` from now on; returns how many geoms cannot be drawn."""
        if self.envs is not None:
            self.envs.remove()
        self.clear_ghost()
        self._light(model)
        self.envs = EnvScene(self.server, model)
        self.envs.set_decorations(self.decorations)
        self._arranged = None
        return self.envs.skipped

    def _light(self, model: Any) -> None:
        """Light the scene as MuJoCo lights ``model`` (:func:`model_lights`): no environment
        map or viser's default lights, which wash MuJoCo's colours out."""
        for h in self._lights:
            h.remove()
        scene = self.server.scene
        scene.configure_environment_map(None)
        scene.configure_default_lights(False)
        ambient, lights = model_lights(model)
        self._lights = [scene.add_light_ambient("/lights/ambient", intensity=ambient)]
        for i, (direction, intensity) in enumerate(lights):
            # viser's directional light shines from its position towards the origin.
            position = tuple(-10.0 * direction)
            self._lights.append(scene.add_light_directional(f"/lights/{i}", position=position, intensity=intensity))

    def show_rest(self) -> None:
        """The model alone at rest (``qpos0``), framed: what is being trained, before any state."""
        assert self.envs is not None
        model = self.envs.model
        self.layout, self._n = "one", 1
        self.envs.set_envs(1, None)
        self.envs.show_groups(self.groups)
        qpos = np.asarray(model.qpos0, float)[None]
        ok = self.envs.place(qpos, None, None, np.zeros((1, 3)))
        box = self.envs.box(qpos, None, None, np.zeros((1, 3))) if ok.all() else None
        self._arranged = None  # the first states frame the camera again
        self.frame_box(box if box is not None else self.envs.model_box())
        self.at_rest = True

    def arrange(
        self,
        n: int,
        fields: dict[str, np.ndarray] | None,
        layout: str,
        state: State,
        *,
        key: tuple[Any, ...] = (),
        selected: int = 0,
    ) -> bool:
        """Stand ``n`` environments (randomised ``fields``, ``(n, ...)`` each) in ``layout``;
        past :data:`~._envs.FULL` of them, environment ``selected`` (a slot) and its nearest
        neighbours are drawn in full, the others coarse. Meshes are sent again only when the
        count, layout, colours or those drawn in full change; the spacing and the camera are
        worked out again from ``state`` when ``key`` (which environments) or the layout
        changes. Returns True when the camera was framed again."""
        assert self.envs is not None
        self.at_rest = False
        self.layout, self._n = layout, n
        full = self.nearest(selected, n)
        rebuilt = self.envs.set_envs(n, fields, overlay=layout == "overlay", full=full)
        if rebuilt:
            self.envs.show_groups(self.groups)
            if self.wireframe or self.transparent:  # new meshes start without the flags
                self.envs.style(wireframe=self.wireframe, transparent=self.transparent)
        if self._arranged == (key, layout, n):
            if rebuilt and self._content is not None:
                self.envs.cover(*self._content, self.offsets())
            return False
        self._arranged = (key, layout, n)
        self.spacing = self.envs.grid_spacing(*state)
        box = self.envs.box(*state, self.offsets())
        self._content = box if box is not None else self.envs.model_box()
        self.envs.cover(*self._content, self.offsets())
        self.frame_box(self._content)
        return True

    def nearest(self, slot: int, n: int, k: int = FULL) -> np.ndarray:
        """The ``k`` environments (slots, ascending) nearest environment ``slot`` on the
        grid (itself included; in index order in other layouts)."""
        slot = min(max(int(slot), 0), n - 1)
        if n <= k:
            return np.arange(n)
        if self.layout != "grid":
            start = min(max(slot - k // 2, 0), n - k)
            return np.arange(start, start + k)
        cells = _framing.grid_offsets("grid", n, 1.0)[:, :2]
        d = np.linalg.norm(cells - cells[slot], axis=1) + 1e-6 * np.arange(n)  # ties: lower index first
        return np.sort(np.argsort(d, kind="stable")[:k])

    def drawn_in_full(self) -> tuple[int, int]:
        """How many environments are drawn in full, and how many coarse."""
        if self.envs is None:
            return 0, 0
        return len(self.envs.full), len(self.envs.coarse)

    def offsets(self, n: int | None = None) -> np.ndarray:
        """World offsets ``(n, 3)`` of the environments (a grid ``spacing`` apart in ``grid``)."""
        return _framing.grid_offsets(self.layout, self._n if n is None else n, self.spacing)

    def set_style(self, *, wireframe: bool | None = None, transparent: bool | None = None) -> None:
        """MuJoCo viewer's rendering flags, kept across rebuilds (see :meth:`EnvScene.style`)."""
        if wireframe is not None:
            self.wireframe = bool(wireframe)
        if transparent is not None:
            self.transparent = bool(transparent)
        if self.envs is not None:
            self.envs.style(wireframe=self.wireframe, transparent=self.transparent)

    def set_decorations(self, kinds: set[str]) -> bool:
        """Draw sites, body frames, centres of mass, cameras, lights (``kinds``) from now on;
        True if that changed what is drawn (the tabs then need the capture's poses again)."""
        self.decorations = set(kinds)
        return self.envs.set_decorations(self.decorations) if self.envs is not None else False

    def look_through(self, camera: int, slot: int) -> None:
        """Every browser's camera at MuJoCo camera ``camera`` of environment ``slot`` as
        last posed: its position, its view along the frame's -z with +y up, its field of view."""
        assert self.envs is not None and self.envs.kin is not None
        kin = self.envs.kin
        pos = kin.frames("cam_xpos")[slot, camera] + self.offsets()[slot]
        mat = kin.frames("cam_xmat")[slot, camera].reshape(3, 3)
        forward, up = -mat[:, 2], mat[:, 1]
        fovy = float(np.radians(self.envs.model.cam_fovy[camera]))
        for client in self.server.get_clients().values():
            cam = client.camera
            with client.atomic():
                cam.position = pos  # viser moves look_at with position: set it after
                cam.look_at = pos + forward
                cam.up_direction = up
                cam.fov = fovy

    def show_groups(self, groups: set[int]) -> None:
        """Show the geoms of MuJoCo's geom groups ``groups`` (groups past 5 always)."""
        self.groups = set(groups)
        for envs in (self.envs, self.ghost):
            if envs is not None:
                envs.show_groups(groups)

    def pose(
        self,
        state: State,
        *,
        contacts: bool = False,
        captured: list[tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> np.ndarray:
        """Pose the environments at ``state``; with ``contacts`` their contact points and
        forces too (``captured``: as the simulator stored them). Returns which environments
        are finite (the others keep their last finite pose)."""
        assert self.envs is not None
        return self.envs.place(*state, self.offsets(), contacts=contacts, captured=captured)

    def body_position(self, body: int, slot: int) -> np.ndarray:
        """Where body ``body`` of environment ``slot`` stands in the world, as last posed."""
        assert self.envs is not None
        return self.envs.body_position(body, slot) + self.offsets()[slot]

    # ------------------------------------------------------------ the ghost

    def set_ghost(self, fields: dict[str, np.ndarray] | None, *, over: bool, offset: np.ndarray) -> None:
        """A ghost of one environment of the model (randomised ``fields`` ``(1, ...)``):
        tinted, see-through ``over`` the environments, else solid at ``offset``."""
        assert self.envs is not None
        if self.ghost is None:
            self.ghost = EnvScene(self.server, self.envs.model, prefix="/ghost")
        if self.ghost.set_envs(1, fields, tint=GHOST_TINT, opacity=GHOST_OPACITY if over else None, planes=False):
            self.ghost.show_groups(self.groups)
        self.ghost_offset = np.zeros(3) if over else np.asarray(offset, float)

    def pose_ghost(self, state: State) -> None:
        if self.ghost is not None:
            self.ghost.place(*state, self.ghost_offset[None])

    def clear_ghost(self) -> None:
        if self.ghost is not None:
            self.ghost.remove()
        self.ghost = None

    def beside_offset(self) -> np.ndarray:
        """Where a ghost "beside" stands: one grid spacing right of the last column."""
        cols = int(np.ceil(np.sqrt(self._n))) if self.layout == "grid" else 1
        return np.array([cols * self.spacing, 0.0, 0.0])

    # ------------------------------------------------------------ framing and camera

    def frame_box(
        self, box: Box, *, direction: np.ndarray = _framing.VIEW_DIRECTION, panel_px: int | None = None
    ) -> None:
        """Frame the camera of new browsers and of every connected one on ``box``."""
        self._box = box
        self._framed_clients = set()
        fov = float(self.server.initial_camera.fov)
        panel = self.panel_px if panel_px is None else panel_px
        position, look_at = _framing.framing(
            *box, fov_y=fov, width_px=1280, height_px=800, panel_px=panel, direction=direction
        )
        self.server.initial_camera.position = position
        self.server.initial_camera.look_at = look_at
        self.frame_new_clients()

    def reset_camera(self) -> None:
        """Every connected browser's camera back on the last framing."""
        if self._box is not None:
            self.frame_box(self._box)

    def content_box(self) -> Box | None:
        """The world box of the environments' geoms (planes left out) when last arranged."""
        return self._content

    def framed_box(self) -> Box | None:
        """The world box the camera was last framed on."""
        return self._box

    def framed_clients(self) -> set[int]:
        """Ids of the browsers framed since the last framing."""
        return set(self._framed_clients)

    def set_left_px(self, px: int) -> None:
        """A column ``px`` CSS pixels wide now stands at the page's left (0: none): every
        browser is framed again, for its narrower canvas, once that canvas has reported."""
        if int(px) != self.left_px:
            self.left_px = int(px)
            self._framed_clients.clear()
            self.frame_new_clients()

    def frame_new_clients(self) -> None:
        """Frame each browser once it has reported its canvas (new ones, and every one after
        a new framing), for its own canvas size."""
        if self._box is None:
            return
        for cid, client in self.server.get_clients().items():
            cam = client.camera
            if cid in self._framed_clients or cam._state.update_timestamp == 0.0:
                continue  # framed already, or its camera has not reported yet
            w, h = int(cam.image_width), int(cam.image_height)
            if w <= 0 or h <= 0:
                continue
            # The panel is panel_px CSS pixels wide; the canvas is reported in render pixels,
            # and is the page less the column docked at its left.
            page = self.page_size(cid) if self.page_size is not None else None
            canvas = (page[0] - self.left_px, page[1]) if page else None
            if self.left_px and canvas is not None and abs(w / h - canvas[0] / max(canvas[1], 1)) > 0.03 * w / h:
                continue  # its canvas has not reported its new size yet
            panel = self.panel_px * w / canvas[0] if canvas else self.panel_px
            position, look_at = _framing.framing(
                *self._box, fov_y=float(cam.fov), width_px=w, height_px=h, panel_px=round(panel)
            )
            with client.atomic():
                cam.position = position  # viser moves look_at with position: set it after
                cam.look_at = look_at
            self._framed_clients.add(cid)

    def follow(self, slot: int) -> None:
        """Every browser's camera keeps its offset, centred on environment ``slot``'s first
        body as last posed."""
        centre = self.follow_target(slot)
        for client in self.server.get_clients().values():
            cam = client.camera
            offset = np.asarray(cam.position) - np.asarray(cam.look_at)
            with client.atomic():
                cam.position = centre + offset  # viser moves look_at with position: set it after
                cam.look_at = centre

    def follow_target(self, slot: int) -> np.ndarray:
        """Where following environment ``slot`` looks: its first body, as last posed."""
        assert self.envs is not None
        return self.body_position(1 if self.envs.model.nbody > 1 else 0, slot)

    def beside(self, side: int) -> tuple[np.ndarray, float, np.ndarray] | None:
        """Where a square about as large as the environments stands upright beside them as
        the camera starts out (facing it): the corner of their box furthest to that side
        (``+1`` right, ``-1`` left), the square's size, and the horizontal right vector."""
        box = self._content
        if box is None:
            return None
        lo, hi = box
        d = _framing.VIEW_DIRECTION / np.linalg.norm(_framing.VIEW_DIRECTION)
        right = np.cross(-d, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        size = max(1.0, 1.2 * float(np.max(hi - lo)))
        corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
        start = corners[np.argmax(side * (corners @ right))]
        return np.array([start[0], start[1], lo[2]]), size, right
