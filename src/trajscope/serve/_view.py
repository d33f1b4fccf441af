"""The view: what the viewer shows, in one place that every panel reads.

The viewer (``_app.py``) owns it and names no panel; a panel changes what is shown by
setting a field and asking the viewer to load or show again (``viewer.reload()``,
``viewer.show_step(t)``), and learns of changes through the panel contract's hooks
(:mod:`._panel`). Numpy and the store only: nothing here knows viser.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .. import store
from . import _shown


@dataclasses.dataclass
class View:
    """What is shown: the run and model, the shown arrays and step, which environments,
    what is compared and laid over, and where it comes from (captures or the live stream)."""

    run: store.Run | None = None
    model: Any = None
    """The open run's ``mujoco.MjModel``."""
    shown: _shown.Shown | None = None
    """The open capture's (or live chunk's) arrays of the shown environments."""
    t: int = 0
    """The step shown."""
    layout: str = "one"
    """``one`` (the selected environment alone), ``grid`` (side by side) or ``overlay``."""
    env: int = 0
    """The selected environment: its plots, values and pixels are shown."""
    count: int | None = None
    """How many environments ``grid`` and ``overlay`` show (None: all, up to ``MAX_SHOWN``)."""
    source: str = "captures"
    """``captures`` (the run's stored captures) or ``live`` (the training stream's chunks)."""
    comparison: _shown.Shown | None = None
    """A second capture shown with this one (its series in the plots), or None."""
    comparison_label: str = ""
    overlays: dict[str, dict[str, np.ndarray]] = dataclasses.field(default_factory=dict)
    """Images laid over the pixel observations, by who lays them (``saliency``), then by
    observation key: ``(T, H, W, 3)`` like the observation strips they replace."""
    bad: list[int] = dataclasses.field(default_factory=list)
    """Shown environments whose state is not finite at the shown step."""
    playing: bool = False
    """The tab that reported last is playing."""
    stepped_in_browser: bool = False
    """True while panels are shown a step a browser tab settled on (its scene is posed
    there already); False when the server moved the step (every tab then follows)."""
    play_on_load: bool = False
    """The capture being loaded starts playing in every tab (a live chunk)."""

    def shown_envs(self, num_envs: int) -> list[int]:
        """The environments a capture of ``num_envs`` shows in this view."""
        count = self.count if self.count is not None else _shown.MAX_SHOWN
        return _shown.shown_envs(self.layout, self.env, count, num_envs)

    def selected(self, num_envs: int) -> int:
        return min(max(int(self.env), 0), num_envs - 1)

    def overlay_strips(self) -> dict[str, np.ndarray]:
        """Every overlay, by observation key (the last layer wins)."""
        out: dict[str, np.ndarray] = {}
        for layer in self.overlays.values():
            out.update(layer)
        return out

    @property
    def live(self) -> bool:
        return self.source == "live"
