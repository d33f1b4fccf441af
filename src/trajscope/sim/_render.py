"""Offscreen pictures of a model: MuJoCo's renderer and the camera that frames it.

Needs an offscreen OpenGL (``MUJOCO_GL=egl`` or ``osmesa``, set before Python imports
mujoco); :class:`RenderError` says how to get one when there is none.
"""

from __future__ import annotations

import os
from typing import Any


class RenderError(RuntimeError):
    """What cannot be rendered here, and why."""


def renderer(model: Any, height: int, width: int) -> Any:
    import mujoco

    model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), width)
    model.vis.global_.offheight = max(int(model.vis.global_.offheight), height)
    try:
        return mujoco.Renderer(model, height, width)
    except Exception as e:  # noqa: BLE001 - no GL, or a model the renderer refuses
        gl = os.environ.get("MUJOCO_GL", "(unset)")
        raise RenderError(
            f"MuJoCo cannot render offscreen here (MUJOCO_GL={gl}): {type(e).__name__}: {e}. "
            "Install an offscreen OpenGL (Debian: libegl1 libegl-mesa0, or libosmesa6) and set "
            "MUJOCO_GL=egl or osmesa before Python imports mujoco"
        ) from None


def floating_root(model: Any) -> int | None:
    """The first body hung from the world by a free joint (a robot that walks away), or None."""
    import mujoco

    for j in range(model.njnt):
        b = int(model.jnt_bodyid[j])
        if int(model.jnt_type[j]) == mujoco.mjtJoint.mjJNT_FREE and int(model.body_parentid[b]) == 0:
            return b
    return None


def camera(model: Any, camera: str | None = "auto") -> Any:
    """The camera to render with.

    ``"auto"`` (default): ``track`` for a model with a floating root (locomotion: a fixed
    camera loses the robot as it walks away), else ``fixed``. ``"fixed"`` or ``None``:
    MuJoCo's free camera framing the model at rest. ``"track"``: the same following the
    floating root, else the first body with degrees of freedom. A name: that camera of the
    model."""
    import mujoco

    if camera == "auto":
        camera = "track" if floating_root(model) is not None else "fixed"
    if camera is None or camera in ("fixed", "track"):
        cam = mujoco.MjvCamera()
        mujoco.mjv_defaultFreeCamera(model, cam)
        root = floating_root(model)
        moving = [b for b in range(1, model.nbody) if model.body_dofnum[b] > 0]
        if camera == "track" and (root is not None or moving):
            cam.type = mujoco.mjtCamera.mjCAMERA_TRACKING
            cam.trackbodyid = root if root is not None else moving[0]  # not a mocap or fixed body
        return cam
    if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera) < 0:
        names = [model.camera(i).name for i in range(model.ncam)]
        raise RenderError(f"the model has no camera {camera!r}; it has {names or 'none'} (or use 'track')")
    return camera
