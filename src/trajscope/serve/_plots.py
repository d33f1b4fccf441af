"""The plots panel: every reward term and metric of the selected environment, the values
at the current step, and the training curve of the run."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import store
from . import _frames

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")


class PlotsPanel:
    def __init__(self, server: Any) -> None:
        self.server = server
        self.plots: dict[str, Any] = {}
        self.curve: Any = None
        self.folder = server.gui.add_folder("Plots")
        with self.folder:
            self.values = server.gui.add_markdown("")
        self.curve_folder: Any = None

    def add_curve_folder(self) -> None:
        self.curve_folder = self.server.gui.add_folder("Training curve")

    def draw(self, frames: _frames.Frames, t: int) -> None:
        """One plot per group of keys over the capture's steps."""
        from viser import uplot

        for h in self.plots.values():
            h.remove()
        self.plots = {}
        T = frames.num_steps
        x = np.arange(T, dtype=float)
        with self.folder:
            for group, keys in _frames.plot_groups(frames.series).items():
                ys = [np.nan_to_num(frames.series[k], nan=np.nan, posinf=np.nan, neginf=np.nan) for k in keys]
                # The marker shows the step the capture was opened at. Moving it with the
                # timeline needs uPlot data updates, which blanked the plots in Chromium here.
                cursor = np.full(T, np.nan)
                cursor[min(t, T - 1)] = float(np.nan_to_num(ys[0][min(t, T - 1)]))
                series = [uplot.Series(label="step")]
                series += [
                    uplot.Series(label=k.removeprefix("metrics/"), stroke=PALETTE[i % len(PALETTE)], width=1.5)
                    for i, k in enumerate(keys)
                ]
                series.append(uplot.Series(label="now", stroke="#000", width=0, points={"show": True, "size": 8}))
                self.plots[group] = self.server.gui.add_uplot(
                    (x, *ys, cursor), tuple(series), title=group, aspect=2.0, scales={"x": uplot.Scale(time=False)}
                )

    def show_values(self, frames: _frames.Frames, t: int) -> None:
        """Every plotted key's value at step ``t``: the plots' cursor, in numbers."""
        rows = [f"| `{k.removeprefix('metrics/')}` | {float(v[t]):.4g} |" for k, v in frames.series.items()]
        self.values.content = (
            f"**step {t}**, env {frames.selected}\n\n| key | value |\n|---|---|\n" + "\n".join(rows) if rows else ""
        )

    def draw_curve(self, run: store.Run) -> None:
        """Mean captured return by checkpoint."""
        from viser import uplot

        caps = [c for c in run.captures if c.mean_return is not None]
        if self.curve is not None:
            self.curve.remove()
            self.curve = None
        if not caps or self.curve_folder is None:
            return
        x = np.array([c.step for c in caps], float)
        y = np.array([c.mean_return for c in caps], float)
        with self.curve_folder:
            self.curve = self.server.gui.add_uplot(
                (x, y),
                (
                    uplot.Series(label="env step"),
                    uplot.Series(label="mean return", stroke=PALETTE[0], width=2, points={"show": True}),
                ),
                title="mean return by checkpoint",
                aspect=2.0,
                scales={"x": uplot.Scale(time=False)},
            )
