"""The plots panel: every reward term and metric of the selected environment, and the
values at the current step."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .._escape import md
from . import _shown
from ._panel import Panel

MARKER_INTERVAL_S = 0.25
"""Plot markers move at most this often while playing (each move resends the plot data)."""
WHERE = ("in this tab", "beside the scene")
"""Where the plots stand: in the side panel's Plots tab, or in a column of their own docked
at the left of the page (viser's standalone panel; one choice for every tab)."""
WIDE_PAGE = (1400, 850)
"""A first browser page at least this large (CSS pixels) puts the plots beside the scene."""
COLUMN_PX = 520
"""The width of the plots' column beside the scene."""
COLUMN_PLOT_PX = 170
"""The height of one plot in that column (five fit in a 1,000-pixel page)."""
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")


class PlotsPanel(Panel):
    tab = "Plots"

    @classmethod
    def create(cls, viewer: Any) -> PlotsPanel:
        panel = cls(viewer.server)
        panel.on_kinds(lambda: viewer.act(panel.redraw))
        panel.where.on_update(lambda _: viewer.act(panel.place))
        return panel

    def on_capture(self, frames: _shown.Shown) -> None:
        self.redraw()

    def on_step(self, frames: _shown.Shown, t: int) -> None:
        self.show_values(frames, t)
        self.move_marker(t)

    def on_poll(self) -> None:
        if self.viewer is not None:
            if self._auto and self.where.value == WHERE[0]:
                self._place_for_first_page()
            self.catch_up(self.viewer.view.t)

    def _place_for_first_page(self) -> None:
        """Until the user chooses: beside the scene when the first page that reported its
        size is wide and tall enough for the column."""
        stage = self.viewer.stage
        pages = [stage.page_size(c) for c in self.server.get_clients()] if stage.page_size is not None else []
        first = next((pg for pg in pages if pg is not None), None)
        if first is None:
            return
        self._auto = False
        if first[0] >= WIDE_PAGE[0] and first[1] >= WIDE_PAGE[1]:
            self.where.value = WHERE[1]
            self.place()

    def place(self) -> None:
        """Draw the plots where :attr:`where` says, and leave the scene's framing the room."""
        beside = self.where.value == WHERE[1]
        self._auto = False
        if beside == self._beside:
            return  # placed already (the dropdown's own update, after a placement from here)
        self._beside = beside
        self.column.visible = beside
        if beside:
            self.column.dock_left()
            self.column.set_width(COLUMN_PX)
        if self.viewer is not None:
            self.viewer.stage.set_left_px(COLUMN_PX if beside else 0)
            self.redraw()

    def redraw(self) -> None:
        """Draw the shown capture's series (and the compared one's, when the view has one)."""
        view = self.viewer.view if self.viewer is not None else None
        if view is not None and view.shown is not None:
            self.draw(view.shown, view.t, compare=view.comparison, label=view.comparison_label)
            self.show_values(view.shown, view.t)

    def __init__(self, server: Any) -> None:
        self.server = server
        self.plots: dict[str, Any] = {}
        self._data: dict[str, tuple[np.ndarray, ...]] = {}
        self._series: dict[str, list[Any]] = {}
        self._ranges: dict[str, tuple[float, float]] = {}
        self._marker_t = -1
        self._marker_sent = 0.0
        self.folder = server.gui.add_folder("Plots")
        self._redraw: Any = None
        self._auto = True
        self._beside = False
        self.column = server.gui.add_panel(visible=False)
        """The plots' column beside the scene (shown when :attr:`where` says so)."""
        self.column_tab = self.column.add_tab("Plots")
        with self.folder:
            self.where = server.gui.add_dropdown(
                "plots",
                WHERE,
                initial_value=WHERE[0],
                hint="In this tab, or in a column of their own beside the scene (for every tab of the viewer)",
            )
            self.kinds = {
                kind: server.gui.add_checkbox(kind, kind != "observations", hint=f"Plot the {kind} of the selected env")
                for kind in _shown.KINDS
            }
            self.values = server.gui.add_markdown("")

    def draw(self, frames: _shown.Shown, t: int, *, compare: _shown.Shown | None = None, label: str = "") -> None:
        """One plot per group of keys over the capture's steps, each with a marker at ``t``.

        Each plot's y range is fixed from its finite values: uPlot's automatic range went
        blank whenever a series began with a gap (a marker series, or a metric that starts
        as NaN), so the marker series is a point at ``t`` and, elsewhere, values below the
        fixed range, which uPlot clips."""
        from viser import uplot

        for h in self.plots.values():
            h.remove()
        self.plots = {}
        self._data = {}
        T = frames.num_steps
        x = np.arange(T, dtype=np.float64)
        beside = self.where.value == WHERE[1]
        with self.column_tab if beside else self.folder:
            kinds = tuple(k for k, cb in self.kinds.items() if cb.value)
            for group, keys in _shown.plot_groups(frames.series, kinds).items():
                ys = [np.where(np.isfinite(frames.series[k]), frames.series[k], np.nan) for k in keys]
                other = [k for k in keys if compare is not None and k in compare.series]
                if compare is not None:
                    # On the shown capture's steps: cut, or padded with gaps past its end.
                    for k in other:
                        v = np.full(T, np.nan)
                        c = np.asarray(compare.series[k], np.float64)[:T]
                        v[: len(c)] = np.where(np.isfinite(c), c, np.nan)
                        ys.append(v)
                lo, hi = _range(ys)
                self._data[group] = (x, *ys)
                self._ranges[group] = (lo, hi)
                series = [uplot.Series(label="step")]
                series += [
                    uplot.Series(label=_label(k), stroke=PALETTE[i % len(PALETTE)], width=1.5)
                    for i, k in enumerate(keys)
                ]
                series += [
                    uplot.Series(
                        label=f"{_label(k)} ({label or 'compared'})",
                        stroke=PALETTE[keys.index(k) % len(PALETTE)],
                        width=1.5,
                        dash=(6.0, 4.0),
                    )
                    for k in other
                ]
                series.append(uplot.Series(label="now", stroke="#000", width=0, points={"show": True, "size": 8}))
                self._series[group] = series
                self.plots[group] = self.server.gui.add_uplot(
                    (x, *ys, self._cursor(group, t)),
                    self._labelled(group, t),
                    title=group,
                    aspect=2.0,
                    height=COLUMN_PLOT_PX if beside else None,
                    scales={"x": uplot.Scale(time=False), "y": uplot.Scale(range=(lo, hi))},
                    # The legend states each series' value at the shown step (in its label),
                    # not uPlot's "--" of a plot the pointer is not over.
                    legend=uplot.Legend(live=False),
                )
        self._marker_t = t
        self._marker_sent = time.monotonic()

    def _labelled(self, group: str, t: int) -> tuple[Any, ...]:
        """The group's series with each value at step ``t`` in its label (``reward = 0.93``)."""
        series, data = self._series[group], self._data[group]
        out = [series[0]]
        for i, sr in enumerate(series[1:-1]):
            y = data[i + 1]
            v = float(y[t]) if 0 <= t < len(y) else float("nan")
            out.append({**sr, "label": f"{sr['label']} = {v:.4g}" if np.isfinite(v) else f"{sr['label']} = -"})
        out.append(series[-1])
        return tuple(out)

    def _cursor(self, group: str, t: int) -> np.ndarray:
        """The marker series: the first series' value at ``t``, below the range elsewhere."""
        x, first = self._data[group][:2]
        lo, hi = self._ranges[group]
        out = np.full(len(x), lo - 10 * (hi - lo) - 1.0)
        t = min(max(int(t), 0), len(x) - 1)
        if np.isfinite(first[t]):
            out[t] = first[t]
        return out

    def move_marker(self, t: int, *, min_interval_s: float = MARKER_INTERVAL_S) -> None:
        """Put every plot's marker on step ``t``, at most every ``min_interval_s`` (each move
        sends the plots' data again); :meth:`catch_up` moves a marker left behind."""
        if t == self._marker_t or time.monotonic() - self._marker_sent < min_interval_s:
            return
        for group, h in self.plots.items():
            h.data = (*self._data[group], self._cursor(group, t))
            h.series = self._labelled(group, t)
        self._marker_t = t
        self._marker_sent = time.monotonic()

    def catch_up(self, t: int) -> None:
        """Move a marker that throttling left behind (called when playback rests)."""
        self.move_marker(t, min_interval_s=0.0)

    def on_kinds(self, redraw: Any) -> None:
        """Call ``redraw()`` when the user picks which kinds of series to plot."""
        for cb in self.kinds.values():
            cb.on_update(lambda _: redraw())

    def show_values(self, frames: _shown.Shown, t: int) -> None:
        """Every plotted key's value at step ``t``: the plots' cursor, in numbers."""
        kinds = {k for k, cb in self.kinds.items() if cb.value}
        rows = [
            f"| {md(_label(k))} | {float(v[t]):.4g} |"
            for k, v in frames.series.items()
            if _shown.series_kind(k) in kinds
        ]
        self.values.content = (
            f"**step {t}**, env {frames.selected}\n\n| key | value |\n|---|---|\n" + "\n".join(rows) if rows else ""
        )


def _label(key: str) -> str:
    return key.removeprefix("metrics/")


def _range(ys: list[np.ndarray]) -> tuple[float, float]:
    """A y range holding every finite value, padded 5%; (-1, 1) when there is none."""
    finite = np.concatenate([y[np.isfinite(y)] for y in ys]) if ys else np.zeros(0)
    if not finite.size:
        return -1.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    pad = 0.05 * (hi - lo) if hi > lo else max(abs(lo), 1.0) * 0.5
    return lo - pad, hi + pad
