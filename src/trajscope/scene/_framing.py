"""Where environments stand and where the camera looks: grid offsets, world boxes of posed
geoms, and a camera that frames a box in the part of the canvas left of viser's panel."""

from __future__ import annotations

import math

import numpy as np


def grid_offsets(layout: str, n: int, spacing: float) -> np.ndarray:
    """World offsets ``(n, 3)`` of shown environments: a square grid ``spacing`` apart in
    ``grid``, none otherwise."""
    if layout != "grid" or n == 1:
        return np.zeros((n, 3))
    cols = math.ceil(math.sqrt(n))
    idx = np.arange(n)
    return np.stack([(idx % cols) * spacing, -(idx // cols) * spacing, np.zeros(n)], axis=1)


PANEL_PX = 340
"""Width of viser's control panel over the right of the canvas, margins included."""
VIEW_DIRECTION = np.array([0.55, -0.75, 0.45])
"""From the framed point towards the camera: from the front right, about 25 degrees up."""


def quat_to_mat(wxyz: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` of unit quaternions ``(..., 4)`` (w, x, y, z)."""
    w, x, y, z = np.moveaxis(np.asarray(wxyz, float), -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def bounds(
    pos: np.ndarray,
    wxyz: np.ndarray,
    local_lo: np.ndarray,
    local_hi: np.ndarray,
    keep: np.ndarray,
    *,
    scales: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """World box ``(lo, hi)`` holding the geoms in ``keep (G,)``: each geom's own box
    ``local_lo..local_hi (G, 3)`` (in its frame), scaled per environment by ``scales
    (N, G, 3)``, placed at ``pos (N, G, 3)``, turned by ``wxyz (N, G, 4)``; environments
    with non-finite poses left out."""
    sign = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], float)
    lo, hi = np.asarray(local_lo, float)[keep], np.asarray(local_hi, float)[keep]
    corners = lo[:, None, :] + sign[None] * (hi - lo)[:, None, :]  # (G', 8, 3)
    n = np.shape(pos)[0]
    scale = np.ones((n, len(lo), 3)) if scales is None else np.asarray(scales, float)[:, keep]
    corners = corners[None] * scale[:, :, None, :]  # (N, G', 8, 3)
    rot = quat_to_mat(np.asarray(wxyz)[:, keep])  # (N, G', 3, 3)
    world = np.asarray(pos)[:, keep, None, :] + np.einsum("ngij,ngkj->ngki", rot, corners)
    world = world.reshape(-1, 3)
    world = world[np.isfinite(world).all(axis=1)]
    if not len(world):
        return None
    return world.min(axis=0), world.max(axis=0)


def framing(
    lo: np.ndarray,
    hi: np.ndarray,
    *,
    fov_y: float,
    width_px: int,
    height_px: int,
    panel_px: int = PANEL_PX,
    direction: np.ndarray = VIEW_DIRECTION,
    margin: float = 1.1,
) -> tuple[np.ndarray, np.ndarray]:
    """Camera ``(position, look_at)`` that shows the box ``lo..hi`` whole in the part of a
    ``width_px x height_px`` canvas left of the control panel, centred there, seen from
    ``direction``: the nearest distance at which every corner of the box is in view."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    centre = (lo + hi) / 2
    half = np.maximum((hi - lo) / 2, 0.02)
    panel = panel_px if width_px > 2.5 * panel_px else 0  # narrow pages put the panel below
    aspect = width_px / max(height_px, 1)
    tan_y = float(np.tan(fov_y / 2))
    tan_x = tan_y * aspect * (width_px - panel) / width_px  # half of the visible part
    d = np.asarray(direction, float) / np.linalg.norm(direction)
    right = np.cross(-d, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, -d)
    corners = centre + half * np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)])
    rel = corners - centre
    # A corner at lateral (x, y) and depth D - rel.d is in view when |x| <= tan_x (D - rel.d).
    need = np.maximum(np.abs(rel @ right) / tan_x, np.abs(rel @ up) / tan_y) + rel @ d
    distance = margin * float(need.max())
    # The visible part's centre is panel/2 pixels left of the canvas centre: look that much
    # to the right of the box's centre, so the box sits in the middle of what is visible.
    look_at = centre + right * (panel / width_px) * distance * tan_y * aspect
    return look_at + d * distance, look_at


def project(points: np.ndarray, *, position, look_at, fov_y: float, width_px: int, height_px: int) -> np.ndarray:
    """Pixel coordinates ``(..., 2)`` of world points ``(..., 3)`` for a camera with +z up
    (NaN behind the camera)."""
    f = np.asarray(look_at, float) - np.asarray(position, float)
    f /= np.linalg.norm(f)
    r = np.cross(f, [0.0, 0.0, 1.0])
    r /= np.linalg.norm(r)
    u = np.cross(r, f)
    rel = np.asarray(points, float) - np.asarray(position, float)
    z = rel @ f
    tan_y = np.tan(fov_y / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = (rel @ r) / (z * tan_y * width_px / height_px)
        y = (rel @ u) / (z * tan_y)
    px = np.stack([(x + 1) / 2 * width_px, (1 - y) / 2 * height_px], axis=-1)
    px[z <= 0] = np.nan
    return px
