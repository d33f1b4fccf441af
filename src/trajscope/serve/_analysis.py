"""The Analysis panel: the run's stored analysis (or one computed on demand), its curves
over training, and the state map drawn beside the replay, where a click on a point loads
that capture, environment and step.

The map stands upright beside the environments, facing the default view: one clickable
instance per placed state, coloured by training time (capture), by the episode's return or
by behaviour cluster, and a larger marker on the state on screen.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import analyse, store
from .._escape import md
from ._panel import Panel
from ._plots import PALETTE

COLOURINGS = ("training time", "episode return", "behaviour cluster", "TD error", "advantage")
MAP_NAME = "/analysis/map"


def ramp(x: np.ndarray) -> np.ndarray:
    """Colours ``(N, 3)`` uint8 from values in 0..1: dark blue through teal to yellow."""
    stops = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], float)
    x = np.clip(np.nan_to_num(np.asarray(x, float), nan=0.0), 0, 1) * (len(stops) - 1)
    i = np.minimum(x.astype(int), len(stops) - 2)
    f = (x - i)[:, None]
    return (stops[i] * (1 - f) + stops[i + 1] * f).astype(np.uint8)


class AnalysisPanel(Panel):
    tab = "Analysis"

    @classmethod
    def create(cls, viewer: Any) -> AnalysisPanel:
        panel = cls(
            viewer.server,
            on_pick=lambda c, e, t: viewer.act(viewer.show_state, c, e, t),
            on_error=viewer.show_error,
        )
        panel.part_button.on_click(lambda _: panel.show_parting())
        panel.td_button.on_click(lambda _: panel.show_largest_td())
        panel.term_button.on_click(lambda _: panel.show_worst_term())
        panel.term.on_update(lambda _: viewer.act(panel.on_term))
        panel.show_map.on_update(lambda _: viewer.act(panel.on_show_map))
        return panel

    def on_run(self, run: store.Run) -> None:
        self._placed_for = None
        self.set_run(run)

    def on_capture(self, frames: Any) -> None:
        if self.viewer is not None and self._placed_for is not self.run:
            # The map stands to the right of the environments as first framed for this run,
            # about as large as they are.
            self._placed_for = self.run
            where = self.viewer.stage.beside(+1)
            if where is not None:
                start, size, right = where
                self.place(start + np.array([*(0.3 * size * right[:2]), 0.0]), size, right=right)
                self.draw_map()

    def on_step(self, frames: Any, t: int) -> None:
        if self.viewer is not None and not self.viewer.view.live:
            self.show_frame(frames.capture.info.index, frames.selected, t)

    def on_poll(self) -> None:
        if self.viewer is not None and any(c.kind == "eval" for c in self.viewer.new_captures):
            self.new_captures()

    def parting(self) -> tuple[int, int, int] | None:
        """``(capture, env, step)`` where the newest same-start checkpoint first leaves the
        previous one's trajectory (the earliest-parting environment), or None."""
        caps = (self.doc or {}).get("captures", [])
        paired = next((c for c in reversed(caps) if c.get("paired_prev")), None)
        if paired is None:
            return None
        parts = [(t, e) for e, t in enumerate(paired["paired_prev"]["parts_at"]) if t is not None]
        if not parts:
            return None
        t, e = min(parts)
        return int(paired["index"]), e, t

    def on_term(self) -> None:
        self._describe_term()
        self._draw_curves()

    def worst_term(self) -> tuple[int, int, int] | None:
        """``(capture, env, step)``: the newest capture's worst environment and step for the
        chosen term."""
        caps = [c for c in (self.doc or {}).get("captures", []) if self.term.value in (c.get("terms") or {})]
        if not caps:
            return None
        t = caps[-1]["terms"][self.term.value]
        return int(caps[-1]["index"]), int(t["worst_env"]), int(t["worst_step"])

    def show_worst_term(self) -> None:
        where = self.worst_term()
        if where is not None:
            self._on_pick(*where)

    def _describe_term(self) -> None:
        caps = [c for c in (self.doc or {}).get("captures", []) if self.term.value in (c.get("terms") or {})]
        self.term_button.disabled = not caps
        if not caps:
            self.term_text.content = ""
            return
        c = caps[-1]
        t = c["terms"][self.term.value]
        self.term_text.content = (
            f"**{md(self.term.value)}** at checkpoint #{int(c['index'])}: per-env mean {t['median']:.4g} "
            f"(10% to 90% of envs: {t['p10']:.4g} to {t['p90']:.4g}); worst env {int(t['worst_env'])} "
            f"(mean {t['worst_env_mean']:.4g}), its worst step {int(t['worst_step'])} ({t['worst_value']:.4g})"
        )

    def largest_td(self) -> tuple[int, int, int] | None:
        """``(capture, env, step)`` of the placed state with the largest absolute TD error."""
        if self.td is None or self.meta is None or not np.isfinite(self.td).any():
            return None
        i = int(np.nanargmax(np.abs(self.td)))
        return int(self.meta[i, 0]), int(self.meta[i, 1]), int(self.meta[i, 2])

    def show_largest_td(self) -> None:
        where = self.largest_td()
        if where is not None:
            self._on_pick(*where)

    def show_parting(self) -> None:
        where = self.parting()
        if where is not None:
            self._on_pick(*where)

    def _describe_parting(self) -> None:
        caps = (self.doc or {}).get("captures", [])
        c = next((c for c in reversed(caps) if c.get("paired_prev")), None)
        self.part_button.disabled = self.parting() is None
        if c is None:
            self.parted.content = ""
            return
        p = c["paired_prev"]
        parted = [t for t in p["parts_at"] if t is not None]
        lines = [
            f"**checkpoint #{int(c['index'])} against #{int(p['compared_with'])}** (same starts): "
            f"{len(parted)} of {len(p['parts_at'])} envs part" + (f", first at step {min(parted)}" if parted else "")
        ]
        if p.get("return_diff_mean") is not None:
            pv = p.get("return_diff_p")
            sig = (
                ""
                if pv is None
                else (f" (p = {pv:.3f}: beyond noise)" if pv < 0.05 else f" (p = {pv:.3f}: within noise)")
            )
            lines.append(f"return per env {p['return_diff_mean']:+.2f}{sig}")
        for term in p.get("terms", [])[:5]:
            lines.append(
                f"{md(term['name'])}: {term['mean_change']:+.3f} (most in env {int(term['worst_env'])}: "
                f"{term['worst_change']:+.3f})"
            )
        self.parted.content = "  \n".join(lines)

    def on_show_map(self) -> None:
        """The map switched on: computed first when the run has no analysis yet, then
        brought into view beside the environments."""
        if self.show_map.value and self.points is None and self.run is not None:
            self.compute()
            self.status.content = "analysing... the map is shown when it is done"
            return
        self.frame_with_envs()

    def frame_with_envs(self) -> None:
        """Frame the environments and the map together when the map is switched on."""
        stage = self.viewer.stage
        box = stage.content_box()
        if not self.show_map.value or box is None or self.map is None:
            return
        mlo, mhi = self.map_box()
        stage.frame_box((np.minimum(box[0], mlo), np.maximum(box[1], mhi)))

    _placed_for: Any = None

    def __init__(
        self,
        server: Any,
        *,
        on_pick: Callable[[int, int, int], None],
        on_error: Callable[[str], None],
    ) -> None:
        self.server = server
        self._on_pick = on_pick
        self._on_error = on_error
        self.run: store.Run | None = None
        self.doc: dict[str, Any] | None = None
        self.points: np.ndarray | None = None
        self.meta: np.ndarray | None = None
        """``(N, 3)`` capture index, env, step of each placed state"""
        self.map: Any = None
        self.marker: Any = None
        self.buffer_map: Any = None
        self.buffer_points: np.ndarray | None = None
        self.td: np.ndarray | None = None
        """Per placed state: the TD error its captured value implies (None without value)."""
        self.advantage: np.ndarray | None = None
        """``(N, 2)`` the replay-buffer sample's states on the map, when the run has one."""
        self.buffer_step: np.ndarray | None = None
        self.buffer_priority: np.ndarray | None = None
        self.picked: tuple[int, int, int] | None = None
        """The (capture, env, step) last clicked on the map."""
        self.plots: dict[str, Any] = {}
        self._map_origin = np.zeros(3)
        self._map_size = 1.0
        self._right = np.array([1.0, 0.0, 0.0])
        self._busy = threading.Event()
        gui = server.gui
        self.folder = gui.add_folder("Analysis")
        with self.folder:
            self.status = gui.add_markdown("no run")
            self.run_button = gui.add_button(
                "analyse run", hint="State map, visitation shift, value against return, behaviour clusters"
            )
            self.show_map = gui.add_checkbox(
                "state map", False, hint="Every captured state on one map beside the replay: click one to replay it"
            )
            self.colour = gui.add_dropdown("colour map by", COLOURINGS, initial_value="training time")
            self.show_buffer = gui.add_checkbox(
                "replay buffer",
                True,
                hint="The off-policy replay buffer's sampled states on the map (squares), coloured by age "
                "(or priority): click one to replay the nearest captured state",
            )
            self.follow = gui.add_checkbox(
                "update as captures arrive", True, hint="Analyse again when training writes new captures"
            )
            self.td_button = gui.add_button(
                "show the largest TD error",
                disabled=True,
                hint="Replay the captured state whose value was most wrong about the next step "
                "(|r + gamma V(next) - V|, in return units)",
            )
            self.term = gui.add_dropdown(
                "reward term", ("(analyse first)",), hint="Every reward term and metric, none left out"
            )
            self.term_text = gui.add_markdown("")
            self.term_button = gui.add_button(
                "show its worst env and step",
                disabled=True,
                hint="Replay the newest capture's environment with the lowest mean of this term, at its lowest step",
            )
            self.parted = gui.add_markdown("")
            self.part_button = gui.add_button(
                "show where the last two checkpoints part",
                disabled=True,
                hint="Same-start checkpoints: replay the newest one where its first environment leaves the "
                "previous checkpoint's trajectory",
            )
        self.run_button.on_click(lambda _: self.compute())
        self.show_map.on_update(lambda _: self._safe(self.draw_map))
        self.colour.on_update(lambda _: self._safe(self.draw_map))
        self.show_buffer.on_update(lambda _: self._safe(self.draw_map))

    def _safe(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - shown on the page
            self._on_error(f"analysis: {type(e).__name__}: {e}")
            traceback.print_exc()

    # ------------------------------------------------------------ data

    def set_run(self, run: store.Run) -> None:
        self.run = run
        self.doc = self.points = self.meta = self.td = self.advantage = None
        self.buffer_points = self.buffer_step = self.buffer_priority = None
        self.show_buffer.visible = False
        try:
            stored = run.analysis()
        except store.FormatError as e:
            self._on_error(f"stored analysis unreadable ({e}); press 'analyse run' to compute it again")
            stored = None
        if stored is not None:
            self._use(stored.result, stored.arrays, stored.captures_analysed)
        else:
            self.status.content = "not analysed yet: press **analyse run**"
            self._clear()

    def compute(self, *, refit: bool = True) -> None:
        """Analyse the open run on a thread of its own, store the result, show it;
        ``refit=False`` places new captures into the map shown (the live map)."""
        if self.run is None or self._busy.is_set():
            return
        self._busy.set()
        run = self.run
        self.status.content = "analysing..."

        def work() -> None:
            try:
                t0 = time.perf_counter()
                doc, arrays = analyse.analyse_run(run, progress=self._progress, refit=refit)
                if run is self.run:
                    self._use(doc, arrays, [c.id for c in run.captures if c.kind == "eval"])
                    self.status.content += f"  \ncomputed in {time.perf_counter() - t0:.1f} s"
                    if self.show_map.value and self.viewer is not None:
                        self.viewer.act(self.frame_with_envs)  # the map asked for: into view
            except Exception as e:  # noqa: BLE001 - shown on the page
                self.status.content = f"analysis failed: {type(e).__name__}: {md(e)}"
                traceback.print_exc()
            finally:
                self._busy.clear()

        threading.Thread(target=work, name="trajscope-analyse", daemon=True).start()

    def new_captures(self) -> None:
        """Training wrote captures: analyse again if asked to and an analysis is shown."""
        if self.follow.value and self.doc is not None and not self._busy.is_set():
            self.compute(refit=False)  # into the map shown; "analyse run" fits it again

    def wait(self, timeout_s: float = 300.0) -> bool:
        """Until no analysis is being computed (tests, scripts); True if none is."""
        deadline = time.monotonic() + timeout_s
        while self._busy.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self._busy.is_set()

    def _progress(self, text: str) -> None:
        self.status.content = f"analysing: {md(text)}"

    def _use(self, doc: dict[str, Any], arrays: dict[str, np.ndarray], analysed: list[str]) -> None:
        self.doc = doc
        self.points = arrays.get("points")
        self.buffer_points = arrays.get("buffer_points")
        self.show_buffer.visible = self.buffer_points is not None
        self.buffer_step = arrays.get("buffer_step")
        self.buffer_priority = arrays.get("buffer_priority")
        self.meta = arrays.get("point_capture_env_t")
        self.td = arrays.get("point_td_error")
        self.advantage = arrays.get("point_advantage")
        self.td_button.disabled = self.td is None or not np.isfinite(self.td).any()
        emb = doc.get("embedding", {})
        n_new = 0
        if self.run is not None:
            n_new = len([c for c in self.run.captures if c.kind == "eval" and c.id not in set(analysed)])
        lines = [
            md(
                f"{len(doc.get('captures', []))} captures, {emb.get('points', 0)} states on a "
                f"{emb.get('method', '?')} map ({emb.get('skipped_nonfinite', 0)} non-finite skipped)"
            )
        ]
        if n_new:
            lines.append(f"{n_new} newer capture(s) not analysed: press **analyse run** again")
        fit = doc.get("map") or {}
        if fit.get("placed_since"):
            lines.append(
                f"map fitted on {len(fit.get('fitted_on', []))} captures; {len(fit['placed_since'])} newer placed into "
                "it without refitting (**analyse run** fits it again)"
            )
        lines += [f"note: {md(p)}" for p in doc.get("problems", [])[:5]]
        caps = doc.get("captures", [])
        tested = [c for c in caps if c.get("shift_prev_p") is not None]
        if tested:
            moved = [c for c in tested if c["shift_prev_p"] < 0.05]
            steps = ", ".join(f"{int(c.get('step', 0)):,}" for c in moved[:6]) + (", ..." if len(moved) > 6 else "")
            lines.append(
                f"visitation changed beyond noise at {len(moved)} of {len(tested)} checkpoints"
                + (f" (steps {steps})" if moved else "")
                + ": p < 0.05, environments resampled (docs/analysis.md)"
            )
        elif len(caps) > 1:
            lines.append("too few environments per capture (fewer than 4) to test shifts against noise")
        flat = [c.get("step") for c in doc.get("captures", []) if c.get("value_note")]
        if flat:
            lines.append(
                f"value correlation left out at {len(flat)} checkpoint(s) whose returns have almost no "
                "variance (a solved task?): it would be noise, not a broken critic"
            )
        if isinstance(doc.get("assumed"), str):
            lines.append(f"**assumed:** {md(doc['assumed'])}")
        self.status.content = "  \n".join(lines)
        self._describe_parting()
        names = sorted(
            {n for c in doc.get("captures", []) for n in (c.get("terms") or {})}, key=lambda n: (n != "reward", n)
        )
        if names:
            keep = self.term.value if self.term.value in names else names[0]
            self.term.options = tuple(names)
            self.term.value = keep
        self._describe_term()
        self._draw_curves()
        self.draw_map()

    def _clear(self) -> None:
        for h in self.plots.values():
            h.remove()
        self.plots = {}
        for h in (self.map, self.marker, self.buffer_map):
            if h is not None:
                h.remove()
        self.map = self.marker = self.buffer_map = None

    # ------------------------------------------------------------ curves

    def _draw_curves(self) -> None:
        from viser import uplot

        for h in self.plots.values():
            h.remove()
        self.plots = {}
        caps = (self.doc or {}).get("captures", [])
        if not caps:
            return
        x = np.array([c["step"] for c in caps], np.float64)

        def col(k: str) -> np.ndarray:
            return np.array([np.nan if c.get(k) is None else c[k] for c in caps], np.float64)

        def add(title: str, keys: list[tuple[str, str]]) -> None:
            ys = [col(k) for k, _ in keys]
            finite = np.concatenate([y[np.isfinite(y)] for y in ys])
            if not finite.size:
                return
            lo, hi = float(finite.min()), float(finite.max())
            pad = 0.05 * (hi - lo) if hi > lo else 0.5
            with self.folder:
                self.plots[title] = self.server.gui.add_uplot(
                    (x, *ys),
                    (
                        uplot.Series(label="env step"),
                        *(
                            uplot.Series(label=label, stroke=PALETTE[i], width=2, points={"show": True})
                            for i, (_, label) in enumerate(keys)
                        ),
                    ),
                    title=title,
                    aspect=1.6,
                    scales={"x": uplot.Scale(time=False), "y": uplot.Scale(range=(lo - pad, hi + pad))},
                )

        add(
            "visitation shift (JS divergence)",
            [("shift_first", "from first"), ("shift_prev", "from previous"), ("shift_prev_floor", "noise (95%)")],
        )
        # Correlation (-1..1) and bias (in return units) on axes of their own.
        add("value against realised return: correlation", [("value_corr", "correlation")])
        add("value against realised return: bias (value - return)", [("value_bias", "bias")])
        term = self.term.value
        for c in caps:
            t = (c.get("terms") or {}).get(term) or {}
            c["term_p10"], c["term_median"], c["term_p90"] = t.get("p10"), t.get("median"), t.get("p90")
        if any(c["term_median"] is not None for c in caps):
            add(
                f"{term}: per-env mean over training",
                [("term_p10", "10% of envs"), ("term_median", "median"), ("term_p90", "90% of envs")],
            )
        shares = [c.get("cluster_share") for c in caps]
        k = max((len(sh) for sh in shares if sh), default=0)
        if k:
            for j in range(k):
                for c in caps:
                    sh = c.get("cluster_share")
                    c[f"cluster_{j}"] = sh[j] if sh and j < len(sh) else None
            add("behaviour cluster share", [(f"cluster_{j}", f"cluster {j}") for j in range(min(k, len(PALETTE)))])

    # ------------------------------------------------------------ the map

    def place(self, origin: np.ndarray, size: float, *, right: np.ndarray) -> None:
        """Where the map stands: its lower left corner at ``origin``, ``size`` metres wide
        along the horizontal unit vector ``right`` and as high, upright."""
        self._map_origin, self._map_size = np.asarray(origin, float), float(size)
        self._right = np.asarray(right, float) / np.linalg.norm(right)

    def world(self, points: np.ndarray) -> np.ndarray:
        """Map coordinates to world positions on the map's square."""
        assert self.points is not None
        # The central 99% of the states fill the square; the rare outliers sit on its edge.
        lo, hi = np.percentile(self.points, 0.5, axis=0), np.percentile(self.points, 99.5, axis=0)
        span = np.where(hi > lo, hi - lo, 1.0)
        uv = np.clip((np.asarray(points, float) - lo) / span, 0.0, 1.0)
        up = np.array([0.0, 0.0, 1.0])
        return self._map_origin + self._map_size * (uv[:, :1] * self._right + uv[:, 1:2] * up)

    def _facing(self) -> np.ndarray:
        """The rotation (w, x, y, z) turning a disc lying on the ground to face the viewer:
        its normal from +z to the horizontal direction towards the default camera."""
        toward = np.cross([0.0, 0.0, 1.0], self._right)  # horizontal, towards the viewer
        axis = np.cross([0.0, 0.0, 1.0], toward)
        axis /= np.linalg.norm(axis)
        return np.array([np.cos(np.pi / 4), *(np.sin(np.pi / 4) * axis)])

    def colours(self) -> np.ndarray:
        assert self.meta is not None and self.run is not None
        how = self.colour.value
        if how == "episode return":
            by_index = {c.index: c for c in self.run.captures}
            ret = np.array([_env_return(by_index.get(int(ci)), int(e)) for ci, e in self.meta[:, :2]], np.float64)
            finite = ret[np.isfinite(ret)]
            lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
            return ramp((ret - lo) / (hi - lo if hi > lo else 1.0))
        if how == "behaviour cluster":
            return _cluster_colours(self.doc or {}, self.meta)
        if how in ("TD error", "advantage"):
            v = self.td if how == "TD error" else self.advantage
            if v is None:
                return np.full((len(self.meta), 3), 160, np.uint8)  # grey: no value captured
            v = np.abs(v) if how == "TD error" else v
            finite = v[np.isfinite(v)]
            lo, hi = (np.percentile(finite, 1), np.percentile(finite, 99)) if finite.size else (0.0, 1.0)
            return ramp((v - lo) / (hi - lo if hi > lo else 1.0))
        order = np.unique(self.meta[:, 0])
        rank = np.searchsorted(order, self.meta[:, 0])
        return ramp(rank / max(1, len(order) - 1))

    def buffer_colours(self) -> np.ndarray:
        """The buffer's states by priority when it has them, else by age (old dark, new bright)."""
        assert self.buffer_step is not None
        v = self.buffer_priority if self.buffer_priority is not None else self.buffer_step.astype(float)
        lo, hi = float(np.min(v)), float(np.max(v))
        return ramp((v - lo) / (hi - lo if hi > lo else 1.0))

    def _draw_buffer(self, r: float) -> None:
        if self.buffer_map is not None:
            self.buffer_map.remove()
            self.buffer_map = None
        pts = self.buffer_points
        if not self.show_map.value or not self.show_buffer.value or pts is None or not len(pts):
            return
        v, f = _disc(r, segments=4)  # squares, beside the captures' discs
        self.buffer_map = self.server.scene.add_batched_meshes_simple(
            "/analysis/buffer",
            v,
            f,
            batched_wxyzs=np.tile(self._facing(), (len(pts), 1)),
            batched_positions=(self.world(pts) + 0.5 * r * np.cross(self._right, [0.0, 0.0, 1.0])).astype(np.float32),
            batched_colors=self.buffer_colours(),
            lod="off",
            cast_shadow=False,
            receive_shadow=False,
        )
        self.buffer_map.on_click(lambda event: self.on_buffer_pick(event))

    def on_buffer_pick(self, event: Any) -> None:
        """What viser calls on a click of a replay-buffer point: replay the captured state
        nearest to it on the map."""
        i = getattr(event, "instance_index", None)
        if i is None or self.buffer_points is None or self.points is None or self.meta is None:
            return
        j = int(np.argmin(((self.points - self.buffer_points[int(i)]) ** 2).sum(axis=1)))
        capture, env, t = (int(v) for v in self.meta[j])
        self.picked = (capture, env, t)
        self._on_pick(capture, env, t)

    def draw_map(self) -> None:
        if self.map is not None:
            self.map.remove()
            self.map = None
        if self.marker is not None:
            self.marker.remove()
            self.marker = None
        if not self.show_map.value or self.points is None or self.meta is None or not len(self.points):
            self._draw_buffer(0.0)
            return
        pos = self.world(self.points)
        r = self._map_size / 150
        self._draw_buffer(r)
        v, f = _disc(r)
        self.map = self.server.scene.add_batched_meshes_simple(
            MAP_NAME,
            v,
            f,
            batched_wxyzs=np.tile(self._facing(), (len(pos), 1)),
            batched_positions=pos.astype(np.float32),
            batched_colors=self.colours(),
            lod="off",
            cast_shadow=False,
            receive_shadow=False,
        )
        self.map.on_click(lambda event: self.on_pick(event))
        mv, mf = _disc(3 * r, height=2 * r)
        self.marker = self.server.scene.add_batched_meshes_simple(
            "/analysis/now",
            mv,
            mf,
            batched_wxyzs=self._facing()[None],
            batched_positions=np.array([[0.0, 0.0, -100.0]]),
            batched_colors=np.array([[230, 20, 20]], np.uint8),
            lod="off",
            cast_shadow=False,
            receive_shadow=False,
        )

    def on_pick(self, event: Any) -> None:
        """What viser calls on a click of a map point (its instance): that state is replayed."""
        i = getattr(event, "instance_index", None)
        if i is None or self.meta is None:
            return
        capture, env, t = (int(v) for v in self.meta[int(i)])
        self.picked = (capture, env, t)
        self._on_pick(capture, env, t)

    def show_frame(self, capture: int, env: int, t: int) -> None:
        """Put the marker on the state on screen (the nearest placed step of that capture
        and environment)."""
        if self.marker is None or self.meta is None or self.points is None:
            return
        mine = np.flatnonzero((self.meta[:, 0] == capture) & (self.meta[:, 1] == env))
        if not len(mine):
            self.marker.batched_positions = np.array([[0.0, 0.0, -100.0]], np.float32)
            return
        j = mine[np.abs(self.meta[mine, 2] - t).argmin()]
        self.marker.batched_positions = self.world(self.points[j : j + 1]).astype(np.float32)

    def map_right(self) -> np.ndarray:
        """The map's horizontal axis in the world (it stands upright along it)."""
        return self._right.copy()

    def map_box(self) -> tuple[np.ndarray, np.ndarray]:
        """The world box around the map's square."""
        corners = self._map_origin + self._map_size * np.array(
            [[0, 0, 0], self._right, [0, 0, 1], self._right + np.array([0.0, 0.0, 1.0])], float
        )
        return corners.min(axis=0), corners.max(axis=0)


def _env_return(info: Any, env: int) -> float:
    if info is None:
        return float("nan")
    returns = info.summary.get("returns") or []
    return float(returns[env]) if env < len(returns) and returns[env] is not None else float("nan")


def _cluster_colours(doc: dict[str, Any], meta: np.ndarray) -> np.ndarray:
    """Points of a capture coloured by the cluster holding most of its windows."""
    palette = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in PALETTE], np.uint8)
    top = {}
    for c in doc.get("captures", []):
        share = c.get("cluster_share")
        top[c["index"]] = int(np.argmax(share)) if share else 0
    return palette[np.array([top.get(int(ci), 0) for ci in meta[:, 0]]) % len(palette)]


def _disc(radius: float, *, height: float | None = None, segments: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """A flat octagonal disc (or a short prism) lying on the ground."""
    h = height if height is not None else radius / 4
    ang = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    ring = np.column_stack([radius * np.cos(ang), radius * np.sin(ang)])
    v = np.vstack([np.column_stack([ring, np.zeros(segments)]), np.column_stack([ring, np.full(segments, h)])])
    v = np.vstack([v, [[0, 0, 0], [0, 0, h]]]).astype(np.float32)
    faces = []
    cb, ct = 2 * segments, 2 * segments + 1
    for i in range(segments):
        j = (i + 1) % segments
        faces += [(i, j, segments + j), (i, segments + j, segments + i), (cb, j, i), (ct, segments + i, segments + j)]
    return v, np.array(faces, np.uint32)
