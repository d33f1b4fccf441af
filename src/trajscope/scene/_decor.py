"""What MuJoCo's viewer draws besides geoms, as meshes posed like geoms: sites, body frames,
centres of mass, cameras (their frustums) and lights, each a toggle. Sizes and colours are
the model's own (``vis.scale`` times ``stat.meansize``, ``vis.rgba``), as MuJoCo draws them.

A decoration is one mesh drawn at several *items*: a frame of the kinematics (a site, a
body, a body's centre of mass, a camera, a light) whose pose it takes, one instance per
item and environment.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .. import sim
from . import _geometry

KINDS = ("sites", "frames", "com", "cameras", "lights")
"""The decorations, as the scene panel names its toggles."""

Item = tuple[str, int]
"""A frame posed by the kinematics: ``("site" | "body" | "com" | "camera" | "light", index)``."""


@dataclasses.dataclass(frozen=True)
class Decoration:
    name: str
    vertices: np.ndarray
    faces: np.ndarray
    rgb: tuple[int, int, int]
    items: tuple[Item, ...]
    opacity: float = 1.0
    wireframe: bool = False


def _rgb(rgba: Any) -> tuple[int, int, int]:
    c = _geometry.linear_bytes(np.asarray(rgba, float)[:3]).astype(int)
    return int(c[0]), int(c[1]), int(c[2])


def _site_mesh(model: Any, i: int) -> tuple[np.ndarray, np.ndarray]:
    t, s = int(model.site_type[i]), np.asarray(model.site_size[i], float)
    if t == _geometry.SPHERE:
        v, f = _geometry.icosphere(1)
        return v * s[0], f
    if t == _geometry.ELLIPSOID:
        v, f = _geometry.icosphere(1)
        return v * s[:3], f
    if t == _geometry.CAPSULE:
        return _geometry.capsule(s[0], s[1], 1)
    if t == _geometry.CYLINDER:
        return _geometry.cylinder(s[0], s[1], 12)
    return _geometry.box(s[:3])


def _bar(axis: int, length: float, width: float) -> tuple[np.ndarray, np.ndarray]:
    """A square bar from the origin along ``axis`` (0 x, 1 y, 2 z)."""
    half = np.full(3, width / 2)
    half[axis] = length / 2
    v, f = _geometry.box(half)
    v = v.copy()
    v[:, axis] += length / 2
    return v, f


def _frustum(fovy_deg: float, length: float) -> tuple[np.ndarray, np.ndarray]:
    """A camera's view pyramid, its apex at the camera, opening along -z (MuJoCo's cameras
    look along their frame's -z, +y up), drawn for a 4:3 image."""
    h = np.tan(np.radians(fovy_deg) / 2) * length
    w = h * 4 / 3
    v = np.array([[0, 0, 0], [-w, -h, -length], [w, -h, -length], [w, h, -length], [-w, h, -length]], np.float32)
    f = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 1], [1, 3, 2], [1, 4, 3]], np.uint32)
    return v, f


def _cone(radius: float, length: float) -> tuple[np.ndarray, np.ndarray]:
    """A cone from a base at the origin to a tip ``length`` along +z (a light's direction)."""
    n = 12
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ring = np.stack([radius * np.cos(a), radius * np.sin(a), np.zeros(n)], axis=1)
    v = np.vstack([ring, [[0, 0, length]], [[0, 0, 0]]]).astype(np.float32)
    f = [(i, (i + 1) % n, n) for i in range(n)] + [((i + 1) % n, i, n + 1) for i in range(n)]
    return v, np.array(f, np.uint32)


def decorations(model: Any, kinds: set[str]) -> list[Decoration]:
    """The meshes of the decorations ``kinds`` (of :data:`KINDS`) of ``model``."""
    size = float(model.stat.meansize) or 0.1
    scale, rgba = model.vis.scale, model.vis.rgba
    out: list[Decoration] = []
    bodies = tuple(("body", b) for b in range(1, model.nbody))
    if "sites" in kinds:
        for i in range(model.nsite):
            v, f = _site_mesh(model, i)
            alpha = float(model.site_rgba[i][3])
            out.append(Decoration(f"site{i}", v, f, _rgb(model.site_rgba[i]), (("site", i),), opacity=alpha))
    if "frames" in kinds and bodies:
        length, width = float(scale.framelength) * size, float(scale.framewidth) * size
        for axis, rgb in enumerate(((230, 40, 40), (40, 200, 40), (40, 80, 230))):
            v, f = _bar(axis, length, width)
            out.append(Decoration(f"frame{'xyz'[axis]}", v, f, rgb, bodies))
    if "com" in kinds and bodies:
        v, f = _geometry.icosphere(1)
        com = tuple(("com", b) for b in range(1, model.nbody))
        out.append(Decoration("com", v * float(scale.com) * size, f, _rgb(rgba.com), com))
    if "cameras" in kinds:
        for i in range(model.ncam):
            v, f = _frustum(float(model.cam_fovy[i]), 3 * float(scale.camera) * size)
            out.append(Decoration(f"camera{i}", v, f, _rgb(rgba.camera), (("camera", i),), opacity=0.5, wireframe=True))
    if "lights" in kinds and model.nlight:
        v, f = _cone(float(scale.light) * size / 2, float(scale.light) * size)
        lights = tuple(("light", i) for i in range(model.nlight))
        out.append(Decoration("lights", v, f, _rgb(rgba.light), lights))
    return out


def _z_to(d: np.ndarray) -> np.ndarray:
    """Quaternions ``(..., 4)`` turning +z onto the unit directions ``d (..., 3)``."""
    d = d / np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-12)
    z = np.array([0.0, 0.0, 1.0])
    axis = np.cross(z, d)
    w = 1.0 + d @ z
    q = np.concatenate([w[..., None], axis], axis=-1)
    flip = w < 1e-9  # pointing straight down: half a turn about x
    q[flip] = [0.0, 1.0, 0.0, 0.0]
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def item_poses(kin: Any, items: list[Item]) -> tuple[np.ndarray, np.ndarray]:
    """Positions ``(E, len(items), 3)`` and orientations ``(E, len(items), 4)`` of
    ``items`` in the kinematics' last posed states."""
    E = kin.num_envs
    pos = np.zeros((E, len(items), 3))
    wxyz = np.tile([1.0, 0.0, 0.0, 0.0], (E, len(items), 1))
    if not items:
        return pos, wxyz
    need = {k for k, _ in items}
    src = {
        "site": ("site_xpos", "site_xmat"),
        "body": ("xpos", "xmat"),
        "com": ("xipos", None),
        "camera": ("cam_xpos", "cam_xmat"),
        "light": ("light_xpos", None),
    }
    got: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    for k in need:
        p, m = src[k]
        got[k] = (kin.frames(p), sim.mat_to_wxyz(kin.frames(m)) if m else None)
    light_q = _z_to(kin.frames("light_xdir")) if "light" in need else None
    for j, (k, i) in enumerate(items):
        p, q = got[k]
        pos[:, j] = p[:, i]
        if q is not None:
            wxyz[:, j] = q[:, i]
        elif k == "light" and light_q is not None:
            wxyz[:, j] = light_q[:, i]
    return pos, wxyz
