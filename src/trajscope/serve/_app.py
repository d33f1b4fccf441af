"""The web viewer: a viser server over runs read through the store's reader.

One shared state for every connected browser (what one does, all see). Arrays load one
capture at a time; the scene is one batched mesh per geom with one instance per shown
environment, posed by MuJoCo's kinematics on the server.
"""

from __future__ import annotations

import dataclasses
import math
import os
import secrets
import socket
import threading
import time
import traceback
from typing import Any

import numpy as np

from .. import store
from . import _geometry, _kinematics

MODES = ("one", "grid", "overlay")
SPEEDS = ("0.1", "0.25", "0.5", "1", "2", "4")


@dataclasses.dataclass
class _Loaded:
    """The capture on screen and the arrays the scene and plots need."""

    capture: store.Capture
    envs: list[int]
    qpos: np.ndarray  # (T, N, nq)
    mocap_pos: np.ndarray | None
    mocap_quat: np.ndarray | None
    kin: _kinematics.Kinematics
    colors: np.ndarray  # (ngeom, N, 3) uint8
    series: dict[str, np.ndarray]  # plot key -> (T,) of the selected environment
    pixels: dict[str, np.ndarray]  # key -> (T, H, W, C) uint8 of the selected environment


def find_runs(path: str) -> dict[str, str]:
    """A run folder gives itself; a root gives the runs under it, by name."""
    try:
        run = store.open_run(path)
        return {run.name: run.url}
    except store.FormatError:
        pass
    return {r.name: r.path for r in store.list_runs(path)}


class Viewer:
    """Serves runs under ``path`` (a run folder, a root of runs, or an fsspec URL)."""

    def __init__(
        self, path: str, *, host: str = "127.0.0.1", port: int = 8080, poll_s: float = 1.0, live: bool = False
    ) -> None:
        import viser

        self.path = path
        self.server = viser.ViserServer(host=host, port=port, verbose=False)
        self.host, self.port = host, self.server.get_port()
        self.gate: Any = None
        self._lock = threading.RLock()
        self._run: store.Run | None = None
        self._model: Any = None
        self._geoms: list[_geometry.GeomMesh] = []
        self._nodes: dict[int, Any] = {}
        self._loaded: _Loaded | None = None
        self._t = 0
        self._playing = False
        self._stop = threading.Event()
        self._poll_s = poll_s
        self.errors: list[str] = []
        self._plots: dict[str, Any] = {}
        self._images: dict[str, Any] = {}
        self._live_info: store.CaptureInfo | None = None
        self._live_renewed = 0.0
        self._scene_key: tuple[Any, ...] | None = None
        self._framed: tuple[int, str] | None = None
        self._build_gui()
        self._runs = find_runs(path)
        self._gui_run.options = list(self._runs) or ["(no runs)"]
        if self._runs:
            self._gui_run.value = list(self._runs)[-1]
            self._safe(self.open_run, self._gui_run.value)
        else:
            self._show_error(f"no runs under {path}")
        if live:
            self._gui_mode.value = "grid"  # every streamed environment side by side
            self._gui_count.value = 16
            self._gui_live_on.value = True
            self._gui_live_watch.value = True
        threading.Thread(target=self._play_loop, name="trajscope-play", daemon=True).start()
        threading.Thread(target=self._poll_loop, name="trajscope-poll", daemon=True).start()

    @property
    def url(self) -> str:
        """Where to point a browser (with the token, when a token gate is in front)."""
        if self.gate is not None:
            host = socket.gethostname() if self.gate.host in ("0.0.0.0", "::", "") else self.gate.host
            return f"http://{host}:{self.gate.port}/?token={self.gate.token}"
        return f"http://{'localhost' if self.host in ('127.0.0.1', '0.0.0.0') else self.host}:{self.port}"

    # ------------------------------------------------------------------ GUI

    def _build_gui(self) -> None:
        gui = self.server.gui
        self.server.scene.set_up_direction("+z")
        self.server.scene.add_light_directional("/light", position=(2.0, -3.0, 5.0), intensity=2.0)
        self._status = gui.add_markdown("trajscope")
        self._error = gui.add_markdown("", visible=False)
        with gui.add_folder("Run"):
            self._gui_run = gui.add_dropdown("run", ["(loading)"])
            self._gui_capture = gui.add_dropdown("capture", ["(none)"])
            self._gui_latest = gui.add_checkbox("follow latest", False, hint="Show each new capture as it is written")
        with gui.add_folder("Live training"):
            self._gui_live_on = gui.add_checkbox(
                "stream training envs", False, hint="Ask the training process to stream its first environments"
            )
            self._gui_live_rate = gui.add_slider(
                "rate", 0.05, 1.0, 0.05, 1.0, hint="Fraction of real time streamed: lower costs training less"
            )
            self._gui_live_watch = gui.add_checkbox("watch live", False, hint="Play the stream in the scene")
            self._gui_live_status = gui.add_markdown("live stream: off")
        with gui.add_folder("Environments"):
            self._gui_mode = gui.add_dropdown("layout", MODES, initial_value="one")
            self._gui_env = gui.add_slider("env", 0, 1, 1, 0)
            self._gui_count = gui.add_slider("shown", 1, 1, 1, 1, hint="Environments in grid and overlay layouts")
            self._gui_follow = gui.add_checkbox("camera follows env", False)
        with gui.add_folder("Replay"):
            self._gui_t = gui.add_slider("step", 0, 1, 1, 0)
            with gui.add_folder("controls", expand_by_default=True):
                self._gui_play = gui.add_button("play", icon=None)
                self._gui_back = gui.add_button("step back")
                self._gui_fwd = gui.add_button("step forward")
            self._gui_speed = gui.add_dropdown("speed", SPEEDS, initial_value="1")
            self._gui_loop = gui.add_checkbox("loop", True)
        with gui.add_folder("NaN finder", expand_by_default=False):
            self._gui_nan = gui.add_markdown("no capture")
            self._gui_nan_jump = gui.add_button("jump to first NaN", disabled=True)
        with gui.add_folder("Geom groups", expand_by_default=False):
            self._gui_groups = [gui.add_checkbox(f"group {i}", i < 3) for i in range(6)]
        self._plot_folder = gui.add_folder("Plots")
        with self._plot_folder:
            self._gui_values = gui.add_markdown("")
        self._pixel_folder = gui.add_folder("Pixels")
        with self._pixel_folder:
            self._gui_pixels_on = gui.add_checkbox("show pixels", True)
        self._curve_folder = gui.add_folder("Training curve")
        with self._curve_folder:
            self._curve = None

        self._gui_run.on_update(lambda _: self._safe(self.open_run, self._gui_run.value))
        self._gui_capture.on_update(lambda _: self._safe(self._on_capture_choice))
        self._gui_mode.on_update(lambda _: self._safe(self._reload))
        self._gui_env.on_update(lambda _: self._safe(self._reload))
        self._gui_count.on_update(lambda _: self._safe(self._reload))
        self._gui_t.on_update(lambda _: self._safe(self.show_step, int(self._gui_t.value)))
        self._gui_play.on_click(lambda _: self._toggle_play())
        self._gui_back.on_click(lambda _: self._step_by(-1))
        self._gui_fwd.on_click(lambda _: self._step_by(1))
        self._gui_nan_jump.on_click(lambda _: self._safe(self._jump_nan))
        for cb in self._gui_groups:
            cb.on_update(lambda _: self._safe(self._apply_groups))
        self._gui_pixels_on.on_update(lambda _: self._safe(self._draw_pixels))
        self._gui_live_on.on_update(lambda _: self._safe(self._write_live_control))
        self._gui_live_rate.on_update(lambda _: self._safe(self._write_live_control))
        self._gui_live_watch.on_update(lambda _: self._safe(self._on_live_watch))

    def _safe(self, fn: Any, *args: Any) -> None:
        """Run a GUI action; show what went wrong instead of dying."""
        try:
            with self._lock:
                fn(*args)
        except Exception as e:  # noqa: BLE001 - the page shows it, the server lives on
            self._show_error(f"{type(e).__name__}: {e}")
            traceback.print_exc()

    def _show_error(self, text: str) -> None:
        self.errors.append(text)
        self._error.content = f"**Error:** {text}"
        self._error.visible = True

    def _clear_error(self) -> None:
        self._error.visible = False

    # ------------------------------------------------------------------ runs and captures

    def open_run(self, name: str) -> None:
        if name not in self._runs:
            return
        run = store.open_run(self._runs[name])
        self._run = run
        self._model = run.load_model()
        self._geoms = [g for g in (_geometry.geom_mesh(self._model, i) for i in range(self._model.ngeom)) if g]
        skipped = self._model.ngeom - len(self._geoms)
        self._update_capture_list(select_last=True)
        meta = run.metadata
        self._status.content = (
            f"**{run.name}**  \n{meta.get('env_name') or 'env ?'} · {meta.get('algorithm') or 'algorithm ?'} · "
            f"{len(run.captures)} captures" + (f"  \n{skipped} geom(s) cannot be drawn" if skipped else "")
        )
        self._draw_curve()

    def _labels(self) -> list[str]:
        assert self._run is not None
        out = []
        for c in self._run.captures:
            ret = "-" if c.mean_return is None else f"{c.mean_return:.1f}"
            out.append(f"#{c.index} step {c.step} · return {ret} · {c.kind}")
        return out

    def _update_capture_list(self, *, select_last: bool = False) -> None:
        assert self._run is not None
        labels = self._labels()
        problems = [f"{p.path}: {p.problem}" for p in self._run.problems if not p.incomplete]
        if problems:
            self._show_error("damaged captures skipped:  \n" + "  \n".join(problems[:10]))
        if not labels:
            self._gui_capture.options = ["(no captures yet)"]
            return
        current = self._gui_capture.value
        self._gui_capture.options = labels
        self._gui_capture.value = labels[-1] if select_last or current not in labels else current
        if select_last:
            self.load_capture(len(labels) - 1)

    def _on_capture_choice(self) -> None:
        value = self._gui_capture.value
        if self._run is None or not value.startswith("#"):
            return
        index = int(value[1:].split()[0])
        if self._loaded is None or self._loaded.capture.info.index != index or self._live_info is not None:
            if self._live_info is not None:
                self._gui_live_watch.value = False
            self.load_capture(index)

    def load_capture(self, index: int) -> None:
        assert self._run is not None
        self._live_info = None
        cap = self._run.capture(index)
        label = self._labels()[index]
        if self._gui_capture.value != label:
            self._gui_capture.value = label
        self._open(cap)

    def _open(self, cap: store.Capture) -> None:
        E, T = cap.info.num_envs, cap.info.num_steps
        self._gui_env.max = max(E - 1, 1)
        self._gui_env.disabled = E == 1
        self._gui_count.max = max(E, 1)
        self._gui_t.max = max(T - 1, 1)
        self._load(cap)

    def _reload(self) -> None:
        if self._loaded is not None:
            self._load(self._loaded.capture)

    def _shown_envs(self, E: int) -> list[int]:
        env = min(int(self._gui_env.value), E - 1)
        if self._gui_mode.value == "one":
            return [env]
        n = min(int(self._gui_count.value), E)
        return sorted({env, *range(n)})[:n] if n > 1 else [env]

    def _load(self, cap: store.Capture) -> None:
        assert self._run is not None
        E = cap.info.num_envs
        envs = self._shown_envs(E)
        if len(envs) == E:
            qpos = cap.load("qpos")
        else:
            qpos = np.stack([cap.load("qpos", env=e) for e in envs], axis=1)

        def per_env(name: str) -> np.ndarray | None:
            if name not in cap:
                return None
            return np.stack([cap.load(name, env=e) for e in envs], axis=1)

        fields = {k: np.stack([cap.load(f"model_fields/{k}", env=e) for e in envs]) for k in cap.keys("model_fields")}
        kin = _kinematics.Kinematics(self._model, len(envs), fields or None)
        rgba = fields.get("geom_rgba")
        colors = np.zeros((self._model.ngeom, len(envs), 3), np.uint8)
        for g in self._geoms:
            c = rgba[:, g.geom_id, :3] if rgba is not None else np.broadcast_to(g.rgba[:3], (len(envs), 3))
            colors[g.geom_id] = np.clip(np.asarray(c) * 255, 0, 255).astype(np.uint8)
        sel = min(int(self._gui_env.value), E - 1)
        series: dict[str, np.ndarray] = {}
        for name in ("reward", "value"):
            if name in cap:
                series[name] = cap.load(name, env=sel).astype(float)
        for key in cap.keys("metrics"):
            series[f"metrics/{key}"] = cap.load(f"metrics/{key}", env=sel).astype(float)
        pixels = {}
        for key in cap.keys("obs"):
            e = cap.entry(f"obs/{key}")
            if e["stored_dtype"] == "uint8" and len(e["shape"]) == 5:
                pixels[key] = cap.load(f"obs/{key}", env=sel, decode=False)
        self._loaded = _Loaded(
            cap, envs, qpos, per_env("mocap_pos"), per_env("mocap_quat"), kin, colors, series, pixels
        )
        # Live chunks follow each other every second or so: keep the scene when only the
        # poses change, so the meshes are not sent again.
        key = (tuple(envs), self._gui_mode.value, colors.tobytes())
        if key != self._scene_key or not self._nodes:
            self._scene_key = key
            self._build_scene()
        self._draw_plots()
        self._draw_nan()
        self._clear_error()
        self.show_step(min(self._t, cap.info.num_steps - 1))

    # ------------------------------------------------------------------ scene

    def _offsets(self, n: int) -> np.ndarray:
        if self._gui_mode.value != "grid" or n == 1:
            return np.zeros((n, 3))
        assert self._model is not None
        extent = float(self._model.stat.extent) or 1.0
        cols = math.ceil(math.sqrt(n))
        idx = np.arange(n)
        return np.stack([(idx % cols) * 1.5 * extent, -(idx // cols) * 1.5 * extent, np.zeros(n)], axis=1)

    def _build_scene(self) -> None:
        assert self._loaded is not None
        for node in self._nodes.values():
            node.remove()
        self._nodes = {}
        n = len(self._loaded.envs)
        overlay = self._gui_mode.value == "overlay" and n > 1
        ident = np.tile([1.0, 0, 0, 0], (n, 1))
        for g in self._geoms:
            opacity = float(g.rgba[3]) * (0.35 if overlay else 1.0)
            if g.texture is not None and not overlay:
                self._nodes[g.geom_id] = self.server.scene.add_batched_meshes_trimesh(
                    f"/geoms/g{g.geom_id}",
                    _textured(g.texture),
                    batched_wxyzs=ident,
                    batched_positions=np.zeros((n, 3)),
                    lod="off",
                    cast_shadow=False,
                    receive_shadow=False,
                )
                continue
            self._nodes[g.geom_id] = self.server.scene.add_batched_meshes_simple(
                f"/geoms/g{g.geom_id}",
                g.vertices,
                g.faces,
                batched_wxyzs=ident,
                batched_positions=np.zeros((n, 3)),
                batched_colors=self._loaded.colors[g.geom_id],
                opacity=opacity if opacity < 1 else None,
                lod="off",
                cast_shadow=False,
                receive_shadow=False,
            )
        self._apply_groups()
        if self._framed != (n, self._gui_mode.value):  # not when only the capture changed
            self._framed = (n, self._gui_mode.value)
            self._frame_camera(n)

    def _frame_camera(self, n: int) -> None:
        """Point the camera at the shown environments: the start view of new browsers,
        "reset view", and connected browsers when the layout changes."""
        assert self._model is not None
        extent = float(self._model.stat.extent) or 1.0
        offsets = self._offsets(n)
        centre = np.asarray(self._model.stat.center, float) + offsets.mean(axis=0)
        span = float(np.ptp(offsets[:, :2], axis=0).max()) if n > 1 else 0.0
        distance = 1.6 * extent + 1.1 * span
        direction = np.array([0.55, -0.75, 0.45])
        position = centre + distance * direction / np.linalg.norm(direction)
        self.server.initial_camera.look_at = centre
        self.server.initial_camera.position = position
        for client in self.server.get_clients().values():
            with client.atomic():
                client.camera.look_at = centre
                client.camera.position = position

    def _apply_groups(self) -> None:
        shown = {i for i, cb in enumerate(self._gui_groups) if cb.value}
        for g in self._geoms:
            node = self._nodes.get(g.geom_id)
            if node is not None:
                node.visible = g.group in shown or g.group >= len(self._gui_groups)

    def show_step(self, t: int) -> None:
        """Pose the scene, the plot cursors and the pixel panels at step ``t``."""
        loaded = self._loaded
        if loaded is None:
            return
        T = loaded.qpos.shape[0]
        t = int(min(max(t, 0), T - 1))
        self._t = t
        mp = loaded.mocap_pos[t] if loaded.mocap_pos is not None else None
        mq = loaded.mocap_quat[t] if loaded.mocap_quat is not None else None
        pos, wxyz, ok = loaded.kin.poses(loaded.qpos[t], mp, mq)
        pos = pos + self._offsets(len(loaded.envs))[:, None, :]
        with self.server.atomic():
            for g in self._geoms:
                node = self._nodes.get(g.geom_id)
                if node is not None:
                    node.batched_positions = pos[:, g.geom_id].astype(np.float32)
                    node.batched_wxyzs = wxyz[:, g.geom_id].astype(np.float32)
        if int(self._gui_t.value) != t:
            self._gui_t.value = t
        if not ok.all():
            bad = [loaded.envs[i] for i in np.flatnonzero(~ok)]
            self._gui_nan.content = f"step {t}: non-finite state in env {bad}; last finite pose shown"
        if self._gui_follow.value:
            self._follow(loaded)
        self._draw_values(t)
        self._draw_pixels()

    def _draw_values(self, t: int) -> None:
        """Every plotted key's value at step ``t``: the plots' cursor, in numbers."""
        loaded = self._loaded
        if loaded is None:
            return
        env = min(int(self._gui_env.value), loaded.capture.info.num_envs - 1)  # the plots' environment
        rows = [f"| `{k.removeprefix('metrics/')}` | {float(v[t]):.4g} |" for k, v in loaded.series.items()]
        self._gui_values.content = (
            f"**step {t}**, env {env}\n\n| key | value |\n|---|---|\n" + "\n".join(rows) if rows else ""
        )

    def _follow(self, loaded: _Loaded) -> None:
        body = 1 if self._model is not None and self._model.nbody > 1 else 0
        centre = loaded.kin.body_pos(body)[0] + self._offsets(len(loaded.envs))[0]
        for client in self.server.get_clients().values():
            cam = client.camera
            offset = np.asarray(cam.position) - np.asarray(cam.look_at)
            with client.atomic():
                cam.look_at = centre
                cam.position = centre + offset

    # ------------------------------------------------------------------ plots, pixels, NaNs

    def _groups(self) -> dict[str, list[str]]:
        assert self._loaded is not None
        groups: dict[str, list[str]] = {}
        for key in self._loaded.series:
            if key.startswith("metrics/"):
                name = key[len("metrics/") :]
                group = name.split("/")[0] if "/" in name else "metrics"
            else:
                group = "reward & value"
            groups.setdefault(group, []).append(key)
        return groups

    def _draw_plots(self) -> None:
        from viser import uplot

        for h in self._plots.values():
            h.remove()
        self._plots = {}
        assert self._loaded is not None
        T = self._loaded.qpos.shape[0]
        x = np.arange(T, dtype=float)
        with self._plot_folder:
            for group, keys in self._groups().items():
                ys = [np.nan_to_num(self._loaded.series[k], nan=np.nan, posinf=np.nan, neginf=np.nan) for k in keys]
                # The marker shows the step the capture was opened at. Moving it with the
                # timeline needs uPlot data updates, which blanked the plots in Chromium here.
                cursor = np.full(T, np.nan)
                cursor[min(self._t, T - 1)] = float(np.nan_to_num(ys[0][min(self._t, T - 1)]))
                series = [uplot.Series(label="step")]
                series += [
                    uplot.Series(label=k.removeprefix("metrics/"), stroke=_color(i), width=1.5)
                    for i, k in enumerate(keys)
                ]
                series.append(uplot.Series(label="now", stroke="#000", width=0, points={"show": True, "size": 8}))
                self._plots[group] = self.server.gui.add_uplot(
                    (x, *ys, cursor), tuple(series), title=group, aspect=2.0, scales={"x": uplot.Scale(time=False)}
                )

    def _draw_pixels(self) -> None:
        loaded = self._loaded
        keep = set(loaded.pixels) if loaded is not None and self._gui_pixels_on.value else set()
        for key in list(self._images):
            if key not in keep:
                self._images.pop(key).remove()
        if loaded is None or not keep:
            return
        for key, frames in loaded.pixels.items():
            img = frames[self._t]
            if img.shape[-1] == 1:
                img = np.repeat(img, 3, axis=-1)
            if key in self._images:
                self._images[key].image = img
            else:
                with self._pixel_folder:
                    self._images[key] = self.server.gui.add_image(img, label=key, format="png")

    def _draw_nan(self) -> None:
        assert self._loaded is not None
        hits = dict(self._loaded.capture.info.summary.get("first_nonfinite", {}))
        if not hits:
            self._gui_nan.content = "every value is finite"
            self._gui_nan_jump.disabled = True
            return
        first = min(hits.items(), key=lambda kv: (kv[1]["t"], kv[1]["env"]))
        lines = [f"- `{k}`: step {v['t']}, env {v['env']}" for k, v in sorted(hits.items(), key=lambda kv: kv[1]["t"])]
        self._gui_nan.content = (
            f"first non-finite: **{first[0]}** at step {first[1]['t']}, env {first[1]['env']}\n" + "\n".join(lines)
        )
        self._gui_nan_jump.disabled = False

    def _jump_nan(self) -> None:
        assert self._loaded is not None
        hits = self._loaded.capture.info.summary.get("first_nonfinite", {})
        if not hits:
            return
        _, v = min(hits.items(), key=lambda kv: (kv[1]["t"], kv[1]["env"]))
        self._gui_mode.value = "one"
        self._gui_env.value = int(v["env"])
        self._load(self._loaded.capture)
        self.show_step(int(v["t"]))

    def _draw_curve(self) -> None:
        from viser import uplot

        assert self._run is not None
        caps = [c for c in self._run.captures if c.mean_return is not None]
        if self._curve is not None:
            self._curve.remove()
            self._curve = None
        if not caps:
            return
        x = np.array([c.step for c in caps], float)
        y = np.array([c.mean_return for c in caps], float)
        with self._curve_folder:
            self._curve = self.server.gui.add_uplot(
                (x, y),
                (
                    uplot.Series(label="env step"),
                    uplot.Series(label="mean return", stroke="#1f77b4", width=2, points={"show": True}),
                ),
                title="mean return by checkpoint",
                aspect=2.0,
                scales={"x": uplot.Scale(time=False)},
            )

    # ------------------------------------------------------------------ playback and live follow

    def _toggle_play(self) -> None:
        self._playing = not self._playing
        self._gui_play.label = "pause" if self._playing else "play"

    def _step_by(self, k: int) -> None:
        self._playing = False
        self._gui_play.label = "play"
        self._safe(self.show_step, self._t + k)

    def _play_loop(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            if not self._playing or self._loaded is None:
                time.sleep(0.05)
                next_t = time.monotonic()
                continue
            dt = float((self._run.metadata.get("control_dt_s") if self._run else None) or 0.02)
            speed = float(self._gui_speed.value)
            # Skip steps rather than fall behind real time when the browser frame rate limits.
            frame_s = max(dt / speed, 1 / 30)
            steps = max(1, round(frame_s * speed / dt))
            T = self._loaded.qpos.shape[0]
            t = self._t + steps
            if t >= T and self._live_info is not None:
                self._safe(self._next_live_chunk)
                next_t = time.monotonic() + frame_s
                time.sleep(frame_s)
                continue
            if t >= T:
                if not self._gui_loop.value:
                    self._toggle_play()
                    continue
                t = 0
            self._safe(self.show_step, t)
            next_t += frame_s
            time.sleep(max(0.0, next_t - time.monotonic()))

    def _poll_loop(self) -> None:
        while not self._stop.wait(self._poll_s):
            self._safe(self.poll)

    # ------------------------------------------------------------------ live stream

    def _write_live_control(self) -> None:
        if self._run is None:
            return
        try:
            store.write_live_control(self._run.url, on=self._gui_live_on.value, rate=float(self._gui_live_rate.value))
        except OSError as e:
            self._show_error(f"cannot switch the live stream (the run directory is not writable): {e}")
            return
        self._live_renewed = time.monotonic()
        self._draw_live_status()

    def _on_live_watch(self) -> None:
        if not self._gui_live_watch.value:
            self._live_info = None
            if self._run is not None and self._run.captures:
                self.load_capture(len(self._run.captures) - 1)
            return
        self._next_live_chunk(newest=True)

    def _next_live_chunk(self, *, newest: bool = False) -> None:
        """Play the chunk after the one shown; skip ahead if playback fell two behind;
        hold the last frame while training has not sent the next one."""
        if self._run is None or not self._gui_live_watch.value:
            return
        chunks = self._run.live_chunks()
        if not chunks:
            self._draw_live_status()
            return
        current = self._live_info.id if self._live_info is not None else ""
        later = [c for c in chunks if c.id > current]
        if not later:
            return
        info = later[-1] if newest or len(later) > 2 else later[0]
        try:
            cap = self._run.capture(info)
            self._live_info = info
            self._t = 0
            self._open(cap)
        except (store.FormatError, OSError):
            return  # deleted by the writer while being read: the next one will do
        self._playing = True
        self._gui_play.label = "pause"
        self._draw_live_status()

    def _draw_live_status(self) -> None:
        if self._run is None:
            return
        status = self._run.live_status()
        on = self._gui_live_on.value
        if status is None:
            self._gui_live_status.content = (
                "live stream: waiting for training (is it run with `BraxRecorder(live=K)` and `wrap_env_fn`?)"
                if on
                else "live stream: off (this run has never streamed)"
            )
            return
        age = time.time() - status.updated_unix_s
        state = "**on**" if status.streaming else "off"
        lines = [f"live stream: {state} · training at {status.env_steps:,} env steps"]
        if age > 10:
            lines.append(f"no word from training for {age:.0f} s (finished or stopped?)")
        shown = self._live_info
        if shown is not None:
            behind = max(0, status.env_steps - shown.step)
            lines.append(
                f"showing {shown.num_envs} envs at {shown.step:,} steps: {behind:,} steps behind training, "
                f"recorded {max(0.0, time.time() - shown.wall_time_unix_s):.1f} s ago"
            )
        self._gui_live_status.content = "  \n".join(lines)

    def poll(self) -> None:
        """Pick up new captures (and new runs under a root); follow the latest if asked."""
        if self._run is not None:
            if self._gui_live_on.value and time.monotonic() - self._live_renewed > store.LiveControl.RENEW_S:
                self._write_live_control()  # renew the lease
            self._draw_live_status()
            if self._gui_live_watch.value and self._live_info is None:
                self._next_live_chunk(newest=True)
        if self._run is None:
            self._runs = find_runs(self.path)
            if self._runs:
                self._gui_run.options = list(self._runs)
                self.open_run(list(self._runs)[-1])
            return
        new = self._run.refresh()
        if new:
            self._update_capture_list(select_last=False)
            self._draw_curve()
            if self._gui_latest.value and self._live_info is None:
                self.load_capture(len(self._run.captures) - 1)

    def close(self) -> None:
        self._stop.set()
        if self.gate is not None:
            self.gate.close()
        if self._gui_live_on.value and self._run is not None:
            try:
                store.write_live_control(self._run.url, on=False)
            except OSError:
                pass
        self.server.stop()


def _textured(tex: _geometry.Texture) -> Any:
    """A trimesh mesh carrying the texture (viser sends it as a GLB)."""
    import trimesh
    from PIL import Image

    visual = trimesh.visual.TextureVisuals(uv=tex.uv, image=Image.fromarray(tex.image))
    return trimesh.Trimesh(tex.vertices, tex.faces, visual=visual, process=False)


def _color(i: int) -> str:
    palette = (
        "#1f77b4",
        "#ff7f0e",
        "#2ca02c",
        "#d62728",
        "#9467bd",
        "#8c564b",
        "#e377c2",
        "#7f7f7f",
        "#bcbd22",
        "#17becf",
    )
    return palette[i % len(palette)]


def serve(
    path: str, *, host: str = "127.0.0.1", port: int = 8080, live: bool = False, token: str | None = None
) -> Viewer:
    """Start the viewer; returns once it listens (it serves from background threads, so a
    training script can call it and go on training). ``live``: switch the live stream on
    and watch it.

    On a loopback ``host`` (the default; reach it through ``ssh -L``) nothing else is
    needed. Any other ``host`` puts a token gate in front (``token``, else
    ``$TRAJSCOPE_TOKEN``, else a random one): ``viewer.url`` carries it."""
    if host in LOOPBACK:
        return Viewer(path, host=host, port=port, live=live)
    # Beyond loopback: the viewer stays on 127.0.0.1 and a token gate faces the network.
    from ._auth import TokenGate

    token = token or os.environ.get("TRAJSCOPE_TOKEN") or secrets.token_urlsafe(18)
    viewer = Viewer(path, host="127.0.0.1", port=0, live=live)
    try:
        viewer.gate = TokenGate(host, port, viewer.port, token)
    except BaseException:
        viewer.close()
        raise
    return viewer


LOOPBACK = ("127.0.0.1", "localhost", "::1")
