"""The viewer's model of what is on screen, numpy only: which environments are shown, and
the per-step arrays of the open capture that the panels draw from.

Every panel reads this shared state; none of it knows about viser.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import store

LAYOUTS = ("one", "grid", "overlay")
MAX_SHOWN = 16
"""Environments shown side by side at most, unless the user asks for more."""


def shown_envs(layout: str, selected: int, count: int, num_envs: int) -> list[int]:
    """Environments drawn: the selected one alone (``one``), else ``count`` of them, the
    selected one always among them, then the lowest others, in index order."""
    sel = min(max(int(selected), 0), num_envs - 1)
    if layout == "one":
        return [sel]
    n = min(max(int(count), 1), num_envs)
    others = [e for e in range(num_envs) if e != sel][: n - 1]
    return sorted([sel, *others])


def grid_offsets(layout: str, n: int, spacing: float) -> np.ndarray:
    """World offsets ``(n, 3)`` of shown environments: a square grid ``spacing`` apart in
    ``grid``, none otherwise."""
    if layout != "grid" or n == 1:
        return np.zeros((n, 3))
    cols = math.ceil(math.sqrt(n))
    idx = np.arange(n)
    return np.stack([(idx % cols) * spacing, -(idx // cols) * spacing, np.zeros(n)], axis=1)


@dataclasses.dataclass
class Frames:
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
    """image key to ``(T, H, W, C)`` uint8 of the selected environment"""

    @property
    def num_steps(self) -> int:
        return int(self.qpos.shape[0])

    @property
    def selected_slot(self) -> int:
        """The selected environment's position among the shown ones."""
        return self.envs.index(self.selected)

    @staticmethod
    def load(cap: store.Capture, envs: list[int], selected: int) -> Frames:
        """Read what the panels need, one environment at a time where not all are shown."""

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
        for key in cap.keys("metrics"):
            series[f"metrics/{key}"] = cap.load(f"metrics/{key}", env=selected).astype(float)
        pixels = {}
        for key in cap.image_keys():
            e = cap.entry(f"obs/{key}")
            if e["stored_dtype"] == "uint8" and len(e["shape"]) == 5:
                pixels[key] = cap.load(f"obs/{key}", env=selected, decode=False)
        return Frames(cap, envs, selected, qpos, per_env("mocap_pos"), per_env("mocap_quat"), fields, series, pixels)


def plot_groups(series: Mapping[str, Any]) -> dict[str, list[str]]:
    """Plot keys by plot: ``reward & value``, then one plot per metric prefix
    (``reward/<term>`` share a plot), the rest under ``metrics``."""
    groups: dict[str, list[str]] = {}
    for key in series:
        if key.startswith("metrics/"):
            name = key[len("metrics/") :]
            group = name.split("/")[0] if "/" in name else "metrics"
        else:
            group = "reward & value"
        groups.setdefault(group, []).append(key)
    return groups


def first_nonfinite(summary: Mapping[str, Any]) -> tuple[str, int, int] | None:
    """``(array, t, env)`` of a capture's earliest non-finite value, from its summary."""
    hits = dict(summary.get("first_nonfinite", {}))
    if not hits:
        return None
    name, v = min(hits.items(), key=lambda kv: (kv[1]["t"], kv[1]["env"]))
    return name, int(v["t"]), int(v["env"])
