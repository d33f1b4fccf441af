"""The viewer's model of what is on screen, numpy only: which environments are shown, and
the per-step arrays of the open capture that the panels draw from.

Every panel reads this shared state; none of it knows about viser.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import analyse, store

LAYOUTS = ("one", "grid", "overlay")
MAX_SHOWN = 16
"""Environments shown side by side at most, unless the user asks for more."""
MAX_DRAWN = 1024
"""Environments drawn at once at most, whatever is asked: the envs slider stops there and
says so (each drawn environment costs its poses on every frame, in Python and the page)."""


def shown_envs(layout: str, selected: int, count: int, num_envs: int) -> list[int]:
    """Environments drawn: the selected one alone (``one``), else ``count`` of them, the
    selected one always among them, then the lowest others, in index order."""
    sel = min(max(int(selected), 0), num_envs - 1)
    if layout == "one":
        return [sel]
    n = min(max(int(count), 1), num_envs, MAX_DRAWN)
    others = [e for e in range(num_envs) if e != sel][: n - 1]
    return sorted([sel, *others])


@dataclasses.dataclass(frozen=True)
class CapturedContacts:
    """Contacts as the simulator found them, stored by the recorder (``contacts=k``):
    ``pos`` and ``normal`` ``(T, N, k, 3)``, ``count`` ``(T, N)`` (slots beyond it unused)."""

    pos: np.ndarray
    normal: np.ndarray
    count: np.ndarray

    @staticmethod
    def load(per_env: Any) -> CapturedContacts | None:
        """From a capture's ``info/contact/`` arrays of the shown environments; None when it
        has none or they do not fit together (the viewer then recomputes contacts)."""
        pos, normal, count = (per_env(f"info/contact/{k}") for k in ("pos", "normal", "count"))
        if pos is None or normal is None or count is None:
            return None
        if pos.ndim != 4 or pos.shape[-1] != 3 or normal.shape != pos.shape or count.shape != pos.shape[:2]:
            return None
        return CapturedContacts(pos.astype(float), normal.astype(float), count.astype(int))

    def at(self, t: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per shown environment at frame ``t``: its contact points and normals, ``(n, 3)``."""
        k = self.pos.shape[2]
        out = []
        for slot in range(self.pos.shape[1]):
            n = min(max(int(self.count[t, slot]), 0), k)
            p, nrm = self.pos[t, slot, :n], self.normal[t, slot, :n]
            ok = np.isfinite(p).all(axis=1) & np.isfinite(nrm).all(axis=1)
            out.append((p[ok], nrm[ok]))
        return out


@dataclasses.dataclass
class Shown:
    """The open capture's arrays for the shown environments ``envs`` (``N`` of them) and the
    selected one, whose series the plots and values show."""

    capture: store.Capture
    envs: list[int]
    selected: int
    qpos: np.ndarray
    """``(T, N, nq)``"""
    mocap_pos: np.ndarray | None
    """``(T, N, nmocap, 3)``"""
    mocap_quat: np.ndarray | None
    model_fields: dict[str, np.ndarray]
    """randomised model fields of the shown environments, ``(N, ...)``"""
    series: dict[str, np.ndarray]
    """plot key to ``(T,)`` of the selected environment"""
    pixels: dict[str, np.ndarray]
    """image key to ``(T, H, W', 3)`` uint8 of the selected environment (stacks side by side)"""
    pixel_labels: dict[str, str]
    """image key to what its panel says: size, frames stacked, value range"""
    contacts: CapturedContacts | None = None
    """the contacts the simulator found, where the capture stored them (``info/contact/``)"""

    @property
    def num_steps(self) -> int:
        return int(self.qpos.shape[0])

    def state(self, t: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """``qpos``, mocap positions and orientations of the shown environments at step ``t``."""
        mp = self.mocap_pos[t] if self.mocap_pos is not None else None
        mq = self.mocap_quat[t] if self.mocap_quat is not None else None
        return self.qpos[t], mp, mq

    def finite_at(self, t: int) -> np.ndarray:
        """Which shown environments have a finite state at step ``t``, ``(N,)``."""
        return np.isfinite(self.qpos[t]).reshape(len(self.envs), -1).all(axis=1)

    @property
    def selected_slot(self) -> int:
        """The selected environment's position among the shown ones."""
        return self.envs.index(self.selected)

    @staticmethod
    def load(
        cap: store.Capture, envs: list[int], selected: int, *, gamma: float = 0.99, reward_scaling: float = 1.0
    ) -> Shown:
        """Read what the panels need, one environment at a time where not all are shown.

        With ``value`` and ``reward``, the series hold ``realised return``: the discounted
        return the selected environment actually obtained from each frame (``gamma``), in
        the value's units (times ``reward_scaling``), beside the value it predicted."""

        # What this load allocates at most, as the manifest declares it: refused beyond the
        # reader's ceiling ($TRAJSCOPE_MAX_CAPTURE_MB) before anything is read.
        # Poses and randomised fields are read for every shown environment, the rest for the
        # selected one; arrays that are not per environment are not read here.
        shown = {"qpos", "mocap_pos", "mocap_quat", *(f"model_fields/{k}" for k in cap.keys("model_fields"))}
        shown |= {f"info/contact/{k}" for k in ("pos", "normal", "count")}
        need = sum(
            cap.nbytes(n, env=0) * (len(envs) if n in shown else 1)
            for n in cap.names()
            if cap.entry(n)["layout"] != "free"
        )
        store.check_allocation(cap.dir, need)

        def per_env(name: str) -> np.ndarray | None:
            if name not in cap:
                return None
            if len(envs) == cap.info.num_envs:
                return cap.load(name)
            return np.stack([cap.load(name, env=e) for e in envs], axis=1)

        qpos = per_env("qpos")
        assert qpos is not None
        fields = {k: np.stack([cap.load(f"model_fields/{k}", env=e) for e in envs]) for k in cap.keys("model_fields")}
        series: dict[str, np.ndarray] = {}
        for name in ("reward", "value"):
            if name in cap:
                series[name] = cap.load(name, env=selected).astype(float)
        if "value" in series and "reward" in series:
            done = cap.load("done", env=selected) if "done" in cap else np.zeros(len(series["reward"]), bool)
            g = analyse.returns_to_go(
                series["reward"][:, None], np.asarray(done)[:, None], gamma, reset_frame=cap.info.reset_frame
            )[:, 0]
            series["realised return"] = g * reward_scaling
        for key in cap.keys("metrics"):
            series[f"metrics/{key}"] = cap.load(f"metrics/{key}", env=selected).astype(float)
        if "action" in cap:
            series.update(_columns("action", cap.load("action", env=selected)))
        images = set(cap.image_keys())
        for group in ("info", "obs"):
            for key in cap.keys(group):
                e = cap.entry(f"{group}/{key}")
                if key in images or len(e["shape"]) > 3 or not _numeric(e["dtype"]):
                    continue  # images are the pixel panel's; higher ranks are not plotted
                if len(e["shape"]) == 3 and e["shape"][2] > MAX_PLOTTED_DIMS:
                    continue
                series.update(_columns(f"{group}/{key}", cap.load(f"{group}/{key}", env=selected)))
        pixels, pixel_labels = {}, {}
        for key in cap.image_keys():
            e = cap.entry(f"obs/{key}")
            stored = cap.load(f"obs/{key}", env=selected, decode=False)
            pixels[key], pixel_labels[key] = image_strip(stored, e.get("encoding") or {})
        return Shown(
            cap,
            envs,
            selected,
            qpos,
            per_env("mocap_pos"),
            per_env("mocap_quat"),
            fields,
            series,
            pixels,
            pixel_labels,
            CapturedContacts.load(per_env),
        )


MAX_PLOTTED_DIMS = 256
"""Vector observations and info entries wider than this are not plotted."""
PER_PLOT = 8
"""Lines per plot of a vector (``action``, ``obs/state``, ...): wider ones take several plots."""
KINDS = ("rewards & metrics", "actions", "observations", "info")


def _numeric(dtype: str) -> bool:
    return np.issubdtype(np.dtype(dtype), np.number) or np.dtype(dtype) == np.bool_


def _columns(name: str, a: np.ndarray) -> dict[str, np.ndarray]:
    """``(T,)`` series of a per-step array of one environment, ``(T,)`` or ``(T, k)``."""
    a = np.asarray(a, float)
    if a.ndim == 1:
        return {name: a}
    return {f"{name}[{j}]": a[:, j] for j in range(a.shape[1])}


def series_kind(key: str) -> str:
    """Which of :data:`KINDS` a plot key belongs to."""
    if key.startswith("action"):
        return "actions"
    if key.startswith("obs/"):
        return "observations"
    if key.startswith("info/"):
        return "info"
    return "rewards & metrics"


NAN_RGB = (255, 0, 255)
"""Non-finite pixels of float images are drawn in magenta."""


def frame_channels(C: int) -> list[slice]:
    """The channels of each frame of an image with ``C`` channels, as ``image_strip`` lays
    the frames side by side: RGB(A) is one frame, stacked RGB frames (``C`` a multiple of 3)
    three channels each, anything else one frame per channel."""
    if C in (3, 4):
        return [slice(0, 3)]
    if C % 3 == 0:
        return [slice(i, i + 3) for i in range(0, C, 3)]
    return [slice(i, i + 1) for i in range(C)]


def image_strip(stored: np.ndarray, encoding: Mapping[str, Any]) -> tuple[np.ndarray, str]:
    """One environment's stored images ``(T, H, W)`` or ``(T, H, W, C)`` as RGB uint8
    ``(T, H, W', 3)`` and a label.

    Greyscale (no channel axis, or ``C == 1``) is repeated into RGB; stacked frames (``C`` a
    multiple of 3 other than 3, e.g. 9 or 12, or any other ``C`` but 4) are laid side by
    side, oldest first; float images (stored as given: lossless mode, or holding NaN) are
    mapped from their finite range to 0..255 with non-finite pixels in magenta. The label
    gives the size, the frames stacked and the recorded value range."""
    a = np.asarray(stored)
    if a.ndim == 3:
        a = a[..., None]
    _, H, W, C = a.shape
    rng = encoding.get("value_range")
    if a.dtype == np.uint8:
        lo, hi = rng if rng else (0, 255)
        bad = None
        u8 = a
    else:
        f = a.astype(np.float64)
        finite = np.isfinite(f)
        bad = ~finite
        lo, hi = (float(f[finite].min()), float(f[finite].max())) if finite.any() else (0.0, 1.0)
        span = hi - lo if hi > lo else 1.0
        u8 = np.clip(np.rint((np.where(finite, f, lo) - lo) / span * 255), 0, 255).astype(np.uint8)
    groups = frame_channels(C)
    frames = [np.repeat(u8[..., g], 3 // (g.stop - g.start), axis=-1) for g in groups]  # greyscale to RGB
    out = np.concatenate(frames, axis=2)
    if bad is not None and bad.any():
        out[np.concatenate([bad[..., g].any(axis=-1) for g in groups], axis=2)] = NAN_RGB
    stack = f" · {len(frames)} frames stacked" if len(frames) > 1 else ""
    nan = f" · {int(bad.sum())} non-finite (magenta)" if bad is not None and bad.any() else ""
    label = f"{H}x{W}{stack} · values {lo:.3g} to {hi:.3g}{nan}"
    return out, label


def _column_of(key: str) -> tuple[str, int | None]:
    """``("obs/state", 3)`` for ``obs/state[3]`` (a column made by :func:`_columns`); the key
    and None otherwise (keys come from runs and may hold brackets of their own)."""
    base, bracket, rest = key.rpartition("[")
    if bracket and rest.endswith("]") and rest[:-1].isdigit() and rest[:-1].isascii():
        return base, int(rest[:-1])
    return key, None


def plot_groups(series: Mapping[str, Any], kinds: tuple[str, ...] = KINDS) -> dict[str, list[str]]:
    """Plot keys by plot, for the kinds asked for: ``reward`` (the step's reward with its
    ``reward/<term>`` metrics), ``value & realised return`` (return units, an axis of their
    own); one plot per other metric prefix, the rest under ``metrics``; ``action``; each
    observation and info entry; vectors in plots of :data:`PER_PLOT` dimensions."""
    groups: dict[str, list[str]] = {}
    width: dict[str, int] = {}
    for key in series:
        base, index = _column_of(key)
        if index is not None:
            width[base] = max(width.get(base, 0), index + 1)
    for key in series:
        kind = series_kind(key)
        if kind not in kinds:
            continue
        if key.startswith("metrics/"):
            name = key[len("metrics/") :]
            group = name.split("/")[0] if "/" in name else "metrics"
        elif key == "reward":
            group = "reward"  # the step's reward beside its terms (metrics/reward/*): one scale
        elif kind == "rewards & metrics":
            group = "value & realised return"  # return units: tens to hundreds, an axis of their own
        else:
            base, j = _column_of(key)
            group = base
            if j is not None and width[base] > PER_PLOT:
                lo = j - j % PER_PLOT
                group = f"{base} [{lo}-{lo + PER_PLOT - 1}]"
        groups.setdefault(group, []).append(key)
    return groups
