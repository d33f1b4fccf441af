"""From stored states to where each geom is drawn: MuJoCo's kinematics on the CPU."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, ClassVar

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
    """Geom poses of ``E`` environments, each with its own (possibly randomised) model.

    One copy of the model and one ``MjData`` serve them all (a model's meshes and
    textures can be large, and a state is per model): each environment's randomised
    fields are set on the model before its kinematics, and what is kept per environment
    is its last state and poses."""

    def __init__(self, model: Any, num_envs: int, model_fields: Mapping[str, np.ndarray] | None = None) -> None:
        import mujoco

        self._mujoco = mujoco
        self._fields = dict(model_fields or {})
        self.model = copy.copy(model) if self._fields else model  # MjModel's copy owns its arrays
        self.data = mujoco.MjData(self.model)
        E = num_envs
        self.num_envs = E
        self.qpos = np.tile(self.model.qpos0, (E, 1))
        """Each environment's last finite state (the model's initial pose until it has one)."""
        self._mocap = (np.tile(self.data.mocap_pos, (E, 1, 1)), np.tile(self.data.mocap_quat, (E, 1, 1)))
        self._geom_pos = np.zeros((E, self.model.ngeom, 3))
        self._geom_mat = np.zeros((E, self.model.ngeom, 9))
        self._xpos = np.zeros((E, self.model.nbody, 3))
        self._frames: dict[str, np.ndarray] = {}
        """Per environment, the last poses of what :meth:`frames` names (kept once asked for)."""
        for e in range(E):
            self._pose(e)

    def _model_of(self, env: int) -> Any:
        """The shared model with environment ``env``'s randomised fields set."""
        if self._fields:
            apply_model_fields(self.model, self._fields, env)
        return self.model

    def _pose(self, e: int) -> None:
        m, d = self._model_of(e), self.data
        d.qpos[:] = self.qpos[e]
        if m.nmocap:
            d.mocap_pos[:], d.mocap_quat[:] = self._mocap[0][e], self._mocap[1][e]
        self._mujoco.mj_kinematics(m, d)
        self._geom_pos[e], self._geom_mat[e], self._xpos[e] = d.geom_xpos, d.geom_xmat, d.xpos
        if self._frames:
            self._mujoco.mj_comPos(m, d)
            self._mujoco.mj_camlight(m, d)
            for name, store in self._frames.items():
                store[e] = getattr(d, name).reshape(store.shape[1:])

    def poses(
        self,
        qpos: np.ndarray,
        mocap_pos: np.ndarray | None = None,
        mocap_quat: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Geom positions ``(E, ngeom, 3)``, orientations ``(E, ngeom, 4)`` and a mask
        ``(E,)`` of environments whose state was finite (others keep their last pose)."""
        E = self.num_envs
        ok = np.asarray(np.isfinite(qpos).reshape(E, -1).all(axis=1))
        nmocap = self.model.nmocap
        for e in np.flatnonzero(ok):
            self.qpos[e] = qpos[e]
            if mocap_pos is not None and nmocap and np.isfinite(mocap_pos[e]).all():
                self._mocap[0][e] = mocap_pos[e]
            if mocap_quat is not None and nmocap and np.isfinite(mocap_quat[e]).all():
                self._mocap[1][e] = mocap_quat[e]
            self._pose(int(e))
        return self._geom_pos.copy(), mat_to_wxyz(self._geom_mat), ok

    FRAMES: ClassVar[dict[str, int]] = {
        "site_xpos": 3, "site_xmat": 9, "xpos": 3, "xmat": 9, "xipos": 3,
        "cam_xpos": 3, "cam_xmat": 9, "light_xpos": 3, "light_xdir": 3,
    }  # fmt: skip
    """What :meth:`frames` gives, and its size per element (``MjData`` names)."""

    def frames(self, name: str) -> np.ndarray:
        """``MjData.<name>`` (one of :data:`FRAMES`: sites, bodies, centres of mass,
        cameras, lights) of each environment's last posed state, ``(E, n, 3|9)``; kept from
        the first ask on (every later pose computes it too)."""
        if name not in self._frames:
            n = getattr(self.data, name).reshape(-1, self.FRAMES[name]).shape[0]
            self._frames[name] = np.zeros((self.num_envs, n, self.FRAMES[name]))
            for e in range(self.num_envs):
                self._pose(e)
        return self._frames[name].copy()

    def body_pos(self, body: int) -> np.ndarray:
        """World positions of one body in each environment (after :meth:`poses`)."""
        return self._xpos[:, body].copy()

    def contacts(self, env: int) -> tuple[np.ndarray, np.ndarray]:
        """Contact points ``(n, 3)`` and contact forces in the world frame ``(n, 3)`` of
        environment ``env``'s last posed state: MuJoCo's collision detection and constraint
        solver (``mj_forward``) on the stored positions, at rest (the viewer holds no
        velocities or controls), as MuJoCo's viewer computes them."""
        m, d = self._model_of(env), self.data
        if not np.isfinite(self.qpos[env]).all():
            return np.zeros((0, 3)), np.zeros((0, 3))
        self._mujoco.mj_resetData(m, d)
        d.qpos[:] = self.qpos[env]
        if m.nmocap:
            d.mocap_pos[:], d.mocap_quat[:] = self._mocap[0][env], self._mocap[1][env]
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
