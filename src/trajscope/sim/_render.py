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


def camera(model: Any, camera: str | None) -> Any:
    """``None``: MuJoCo's free camera framing the model; ``track``: the same following the
    first body with degrees of freedom; a name: that camera of the model."""
    import mujoco

    if camera is None or camera == "track":
        cam = mujoco.MjvCamera()
        mujoco.mjv_defaultFreeCamera(model, cam)
        moving = [b for b in range(1, model.nbody) if model.body_dofnum[b] > 0]
        if camera == "track" and moving:
            cam.type = mujoco.mjtCamera.mjCAMERA_TRACKING
            cam.trackbodyid = moving[0]  # the first body that moves (not a mocap or fixed one)
        return cam
    if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera) < 0:
        names = [model.camera(i).name for i in range(model.ncam)]
        raise RenderError(f"the model has no camera {camera!r}; it has {names or 'none'} (or use 'track')")
    return camera
