"""Triangle meshes of MuJoCo geoms, in each geom's own frame, from the model's arrays."""

from __future__ import annotations

import dataclasses
from typing import Any

import mujoco
import numpy as np

_G = mujoco.mjtGeom
PLANE, HFIELD, SPHERE, CAPSULE = (int(_G.mjGEOM_PLANE), int(_G.mjGEOM_HFIELD), int(_G.mjGEOM_SPHERE),
                                  int(_G.mjGEOM_CAPSULE))  # fmt: skip
ELLIPSOID, CYLINDER, BOX, MESH = (int(_G.mjGEOM_ELLIPSOID), int(_G.mjGEOM_CYLINDER), int(_G.mjGEOM_BOX),
                                  int(_G.mjGEOM_MESH))  # fmt: skip


@dataclasses.dataclass(frozen=True)
class GeomMesh:
    """One geom's triangles: ``vertices (V, 3)`` float32 and ``faces (F, 3)`` uint32."""

    geom_id: int
    vertices: np.ndarray
    faces: np.ndarray
    rgba: np.ndarray
    group: int
    texture: Texture | None = None


@dataclasses.dataclass(frozen=True)
class Texture:
    """A 2D texture mapped onto a geom's mesh: ``vertices (V, 3)``, ``faces (F, 3)`` (the
    mesh, split where texture coordinates differ), ``uv (V, 2)`` and ``image (H, W, C)`` uint8."""

    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray
    image: np.ndarray


TEX_2D = int(mujoco.mjtTexture.mjTEXTURE_2D)
ROLE_RGB = int(mujoco.mjtTextureRole.mjTEXROLE_RGB)


def texture(model: Any, g: int, vertices: np.ndarray, faces: np.ndarray) -> Texture | None:
    """The 2D colour texture of geom ``g``'s material, for planes and meshes with texture
    coordinates; None otherwise (cube and skybox textures are drawn as the material colour)."""
    matid = int(model.geom_matid[g])
    if matid < 0:
        return None
    texids = np.atleast_1d(np.asarray(model.mat_texid[matid]))
    texid = int(texids[ROLE_RGB] if texids.size > ROLE_RGB else texids[0])
    if texid < 0 or int(model.tex_type[texid]) != TEX_2D:
        return None
    h, w = int(model.tex_height[texid]), int(model.tex_width[texid])
    nc = int(model.tex_nchannel[texid]) if hasattr(model, "tex_nchannel") else 3
    adr = int(model.tex_adr[texid])
    image = np.asarray(model.tex_data[adr : adr + h * w * nc], np.uint8).reshape(h, w, nc)
    if nc == 1:
        image = np.repeat(image, 3, axis=2)
    t = int(model.geom_type[g])
    repeat = np.asarray(model.mat_texrepeat[matid], float)
    if t == PLANE:
        hx, hy = float(vertices[:, 0].max()), float(vertices[:, 1].max())
        if bool(model.mat_texuniform[matid]):
            # texrepeat is repetitions per metre
            uv = np.stack([vertices[:, 0] * repeat[0], vertices[:, 1] * repeat[1]], axis=1)
        else:
            u = (vertices[:, 0] / (2 * hx) + 0.5) * repeat[0]
            uv = np.stack([u, (vertices[:, 1] / (2 * hy) + 0.5) * repeat[1]], axis=1)
        return Texture(vertices, faces, uv.astype(np.float32), image)
    if t == MESH:
        mid = int(model.geom_dataid[g])
        tadr, tnum = int(model.mesh_texcoordadr[mid]), int(model.mesh_texcoordnum[mid])
        if tadr < 0 or tnum == 0:
            return None
        fa, fn = int(model.mesh_faceadr[mid]), int(model.mesh_facenum[mid])
        tc = np.asarray(model.mesh_texcoord[tadr : tadr + tnum], np.float32)
        ftc = np.asarray(model.mesh_facetexcoord[fa : fa + fn], np.int64)
        # One vertex per face corner: positions and texture coordinates are indexed apart.
        v = vertices[faces.reshape(-1)]
        uv = tc[ftc.reshape(-1)]
        uv = np.stack([uv[:, 0], 1.0 - uv[:, 1]], axis=1)  # MuJoCo's v runs up, glTF's down
        return Texture(v.astype(np.float32), np.arange(len(v), dtype=np.uint32).reshape(-1, 3), uv, image)
    return None


def icosphere(subdivisions: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """A unit sphere."""
    t = (1.0 + 5**0.5) / 2.0
    v = [(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t), (0, -1, -t), (0, 1, -t)]
    v += [(t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)]
    verts = [np.array(p, float) / np.linalg.norm(p) for p in v]
    faces = [
        (0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4), (11, 10, 2),
        (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9), (4, 9, 5),
        (2, 4, 11), (6, 2, 10), (8, 6, 7), (9, 8, 1),
    ]  # fmt: skip
    for _ in range(subdivisions):
        cache: dict[tuple[int, int], int] = {}

        def mid(a: int, b: int, cache: dict[tuple[int, int], int] = cache) -> int:
            key = (min(a, b), max(a, b))
            if key not in cache:
                m = verts[a] + verts[b]
                verts.append(m / np.linalg.norm(m))
                cache[key] = len(verts) - 1
            return cache[key]

        new = []
        for a, b, c in faces:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            new += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        faces = new
    return np.array(verts, np.float32), np.array(faces, np.uint32)


def cylinder(radius: float, half_length: float, segments: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """A closed cylinder along z."""
    ang = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    ring = np.stack([radius * np.cos(ang), radius * np.sin(ang)], axis=1)
    bottom = np.column_stack([ring, np.full(segments, -half_length)])
    top = np.column_stack([ring, np.full(segments, half_length)])
    verts = np.vstack([bottom, top, [[0, 0, -half_length], [0, 0, half_length]]])
    faces = []
    cb, ct = 2 * segments, 2 * segments + 1
    for i in range(segments):
        j = (i + 1) % segments
        faces += [(i, j, segments + j), (i, segments + j, segments + i), (cb, j, i), (ct, segments + i, segments + j)]
    return verts.astype(np.float32), np.array(faces, np.uint32)


def capsule(radius: float, half_length: float, subdivisions: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """A cylinder along z with hemispherical caps."""
    v, f = icosphere(subdivisions)
    v = v * radius
    v[:, 2] += np.where(v[:, 2] >= 0, half_length, -half_length)
    return v.astype(np.float32), f


def box(half: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], np.float32) * half
    faces = np.array(
        [(0, 1, 3), (0, 3, 2), (4, 6, 7), (4, 7, 5), (0, 4, 5), (0, 5, 1),
         (2, 3, 7), (2, 7, 6), (0, 2, 6), (0, 6, 4), (1, 5, 7), (1, 7, 3)],
        np.uint32,
    )  # fmt: skip
    return corners.astype(np.float32), faces


def plane(half_x: float, half_y: float) -> tuple[np.ndarray, np.ndarray]:
    """A quad; MuJoCo draws size 0 (infinite) planes, here they get 20 m."""
    hx, hy = half_x or 10.0, half_y or 10.0
    v = np.array([[-hx, -hy, 0], [hx, -hy, 0], [hx, hy, 0], [-hx, hy, 0]], np.float32)
    return v, np.array([(0, 1, 2), (0, 2, 3)], np.uint32)


def heightfield(model: Any, hid: int) -> tuple[np.ndarray, np.ndarray]:
    nrow, ncol = int(model.hfield_nrow[hid]), int(model.hfield_ncol[hid])
    sx, sy, sz, _base = (float(s) for s in model.hfield_size[hid])
    adr = int(model.hfield_adr[hid])
    h = np.asarray(model.hfield_data[adr : adr + nrow * ncol]).reshape(nrow, ncol)
    ys, xs = np.meshgrid(np.linspace(-sy, sy, nrow), np.linspace(-sx, sx, ncol), indexing="ij")
    verts = np.column_stack([xs.ravel(), ys.ravel(), (h * sz).ravel()]).astype(np.float32)
    idx = np.arange(nrow * ncol).reshape(nrow, ncol)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, 1:].ravel(), idx[1:, :-1].ravel()
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)]).astype(np.uint32)
    return verts, faces


def mesh(model: Any, mid: int) -> tuple[np.ndarray, np.ndarray]:
    va, vn = int(model.mesh_vertadr[mid]), int(model.mesh_vertnum[mid])
    fa, fn = int(model.mesh_faceadr[mid]), int(model.mesh_facenum[mid])
    verts = np.asarray(model.mesh_vert[va : va + vn], np.float32)
    faces = np.asarray(model.mesh_face[fa : fa + fn], np.uint32)
    return verts, faces


COARSE_MESH_FACES = 48
"""A mesh geom drawn coarse with more faces than this is drawn as its bounding box."""


def geom_mesh(model: Any, g: int, *, coarse: bool = False) -> GeomMesh | None:
    """Triangles of geom ``g``, or None for types that cannot be drawn (sdf). ``coarse``:
    far fewer triangles, untextured (environments drawn cheaply among many): spheres and
    capsules of 80 faces instead of 320, cylinders of 8 sides, meshes as their bounding box."""
    t = int(model.geom_type[g])
    s = np.asarray(model.geom_size[g], float)
    detail = 1 if coarse else 2
    if t == SPHERE:
        v, f = icosphere(detail)
        v = v * s[0]
    elif t == ELLIPSOID:
        v, f = icosphere(detail)
        v = v * s[:3]
    elif t == CAPSULE:
        v, f = capsule(s[0], s[1], detail)
    elif t == CYLINDER:
        v, f = cylinder(s[0], s[1], 8 if coarse else 24)
    elif t == BOX:
        v, f = box(s[:3])
    elif t == PLANE:
        v, f = plane(s[0], s[1])
    elif t == MESH and int(model.geom_dataid[g]) >= 0:
        v, f = mesh(model, int(model.geom_dataid[g]))
    elif t == HFIELD and int(model.geom_dataid[g]) >= 0:
        v, f = heightfield(model, int(model.geom_dataid[g]))
    else:
        return None
    rgba = np.asarray(model.geom_rgba[g], np.float32)
    matid = int(model.geom_matid[g])
    if matid >= 0 and np.allclose(rgba, [0.5, 0.5, 0.5, 1.0]):
        rgba = np.asarray(model.mat_rgba[matid], np.float32)
    v, f = v.astype(np.float32), f.astype(np.uint32)
    if coarse and t == MESH and len(f) > COARSE_MESH_FACES and len(v):
        lo, hi = v.min(0), v.max(0)
        v, f = box((hi - lo) / 2)
        v = v + (lo + hi) / 2
    if coarse:
        return GeomMesh(g, v.astype(np.float32), f, rgba, int(model.geom_group[g]), None)
    try:
        tex = texture(model, g, v, f)
    except (IndexError, ValueError):  # a texture this code cannot map: draw the colour
        tex = None
    return GeomMesh(g, v, f, rgba, int(model.geom_group[g]), tex)


def size_scales(model: Any, sizes: np.ndarray) -> np.ndarray:
    """Per-axis scales ``(ngeom, N, 3)`` that turn each geom's nominal mesh into the one of
    ``sizes (N, ngeom, 3)`` (randomised ``geom_size`` per environment).

    Exact for spheres, ellipsoids, boxes, cylinders and planes; a capsule's radius and its
    total half-height scale apart, so a capsule whose radius and length change by different
    factors gets slightly elliptic caps. Meshes and height fields are not sized by
    ``geom_size`` and keep scale 1; non-finite or non-positive sizes too."""
    sizes = np.asarray(sizes, float)
    nominal = np.asarray(model.geom_size, float)
    out = np.ones((model.ngeom, sizes.shape[0], 3))

    def ratio(a: np.ndarray, b: float | np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(np.asarray(b) > 0, a / b, 1.0)
        return np.where(np.isfinite(r) & (r > 0), r, 1.0)

    for g in range(model.ngeom):
        t, s, s0 = int(model.geom_type[g]), sizes[:, g], nominal[g]
        if t == SPHERE:
            out[g] = ratio(s[:, 0], s0[0])[:, None]
        elif t in (ELLIPSOID, BOX):
            out[g] = ratio(s[:, :3], s0[:3])
        elif t == CYLINDER:
            r = ratio(s[:, 0], s0[0])
            out[g] = np.stack([r, r, ratio(s[:, 1], s0[1])], axis=1)
        elif t == CAPSULE:
            r = ratio(s[:, 0], s0[0])
            out[g] = np.stack([r, r, ratio(s[:, 1] + s[:, 0], s0[1] + s0[0])], axis=1)
        elif t == PLANE:
            out[g] = np.stack([ratio(s[:, 0], s0[0]), ratio(s[:, 1], s0[1]), np.ones(len(s))], axis=1)
    return out


def linear_bytes(rgb: Any) -> np.ndarray:
    """Colours as MuJoCo draws them (display values, 0..1) as the bytes viser's batched meshes
    take: viser (three.js) reads instance colours as linear light and encodes what it draws
    as sRGB, so display values are decoded from sRGB first, or every colour comes out pale
    (MuJoCo's ``rgba 0.2`` grey of a Unitree Go1 drew as a light grey)."""
    c = np.clip(np.asarray(rgb, float), 0.0, 1.0)
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return np.round(lin * 255).astype(np.uint8)
