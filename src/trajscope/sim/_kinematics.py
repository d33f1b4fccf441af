"""From stored states to where each geom is drawn: MuJoCo's kinematics on the CPU."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._fields import apply_model_fields


def mat_to_wxyz(mat: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(..., 9)`` or ``(..., 3, 3)`` to unit quaternions ``(..., 4)`` (w, x, y, z)."""
    m = np.asarray(mat, np.float64).reshape(*np.shape(mat)[: -1 if np.shape(mat)[-1] == 9 else -2], 3, 3)
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    tr = m00 + m11 + m22
    q = np.empty((*m.shape[:-2], 4))
    # Shepperd's method, each branch where it is numerically best.
    c0 = tr > 0
    c1 = ~c0 & (m00 >= m11) & (m00 >= m22)
    c2 = ~c0 & ~c1 & (m11 >= m22)
    c3 = ~c0 & ~c1 & ~c2
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.sqrt(np.maximum(tr + 1.0, 1e-12)) * 2
        q0 = np.stack([0.25 * s, (m[..., 2, 1] - m[..., 1, 2]) / s, (m[..., 0, 2] - m[..., 2, 0]) / s,
                       (m[..., 1, 0] - m[..., 0, 1]) / s], -1)  # fmt: skip
        s = np.sqrt(np.maximum(1.0 + m00 - m11 - m22, 1e-12)) * 2
        q1 = np.stack([(m[..., 2, 1] - m[..., 1, 2]) / s, 0.25 * s, (m[..., 0, 1] + m[..., 1, 0]) / s,
                       (m[..., 0, 2] + m[..., 2, 0]) / s], -1)  # fmt: skip
        s = np.sqrt(np.maximum(1.0 + m11 - m00 - m22, 1e-12)) * 2
        q2 = np.stack([(m[..., 0, 2] - m[..., 2, 0]) / s, (m[..., 0, 1] + m[..., 1, 0]) / s, 0.25 * s,
                       (m[..., 1, 2] + m[..., 2, 1]) / s], -1)  # fmt: skip
        s = np.sqrt(np.maximum(1.0 + m22 - m00 - m11, 1e-12)) * 2
        q3 = np.stack([(m[..., 1, 0] - m[..., 0, 1]) / s, (m[..., 0, 2] + m[..., 2, 0]) / s,
                       (m[..., 1, 2] + m[..., 2, 1]) / s, 0.25 * s], -1)  # fmt: skip
    for c, qq in ((c0, q0), (c1, q1), (c2, q2), (c3, q3)):
        q[c] = qq[c]
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    return q


class Kinematics:
    """Geom poses of ``E`` environments, each with its own (possibly randomised) model."""

    def __init__(self, model: Any, num_envs: int, model_fields: Mapping[str, np.ndarray] | None = None) -> None:
        import mujoco

        self._mujoco = mujoco
        self.models = []
        for e in range(num_envs):
            m = model
            if model_fields:
                m = copy.copy(model)  # MjModel's copy owns its arrays
                apply_model_fields(m, model_fields, e)
            self.models.append(m)
        self.datas = [mujoco.MjData(m) for m in self.models]
        for m, d in zip(self.models, self.datas):
            # An environment whose state is never finite is drawn at the model's initial pose.
            mujoco.mj_kinematics(m, d)

    def poses(
        self,
        qpos: np.ndarray,
        mocap_pos: np.ndarray | None = None,
        mocap_quat: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Geom positions ``(E, ngeom, 3)``, orientations ``(E, ngeom, 4)`` and a mask
        ``(E,)`` of environments whose state was finite (others keep their last pose)."""
        E = len(self.datas)
        ngeom = self.models[0].ngeom
        pos = np.zeros((E, ngeom, 3))
        mat = np.zeros((E, ngeom, 9))
        ok = np.asarray(np.isfinite(qpos).reshape(E, -1).all(axis=1))
        for e, (m, d) in enumerate(zip(self.models, self.datas)):
            if ok[e]:
                d.qpos[:] = qpos[e]
                if mocap_pos is not None and m.nmocap and np.isfinite(mocap_pos[e]).all():
                    d.mocap_pos[:] = mocap_pos[e]
                if mocap_quat is not None and m.nmocap and np.isfinite(mocap_quat[e]).all():
                    d.mocap_quat[:] = mocap_quat[e]
                self._mujoco.mj_kinematics(m, d)
            pos[e] = d.geom_xpos
            mat[e] = d.geom_xmat
        return pos, mat_to_wxyz(mat), ok

    def body_pos(self, body: int) -> np.ndarray:
        """World positions of one body in each environment (after :meth:`poses`)."""
        return np.array([d.xpos[body] for d in self.datas])

    def contacts(self, env: int) -> tuple[np.ndarray, np.ndarray]:
        """Contact points ``(n, 3)`` and contact forces in the world frame ``(n, 3)`` of
        environment ``env``'s last posed state: MuJoCo's collision detection and constraint
        solver (``mj_forward``) on the stored positions, at rest (the viewer holds no
        velocities or controls), as MuJoCo's viewer computes them."""
        m, d = self.models[env], self.datas[env]
        if not np.isfinite(d.qpos).all():
            return np.zeros((0, 3)), np.zeros((0, 3))
        d.qvel[:] = 0
        d.ctrl[:] = 0
        self._mujoco.mj_forward(m, d)
        n = int(d.ncon)
        pos = np.array([d.contact[i].pos for i in range(n)]).reshape(n, 3)
        force = np.zeros((n, 3))
        f6 = np.zeros(6)
        for i in range(n):
            self._mujoco.mj_contactForce(m, d, i, f6)
            frame = np.asarray(d.contact[i].frame).reshape(3, 3)  # rows: normal, tangents
            force[i] = frame.T @ f6[:3]
        return pos, force
