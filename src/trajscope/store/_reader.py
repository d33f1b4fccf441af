"""Reading runs: list captures from their manifests, load arrays lazily.

A capture exists once its ``capture.json`` exists; the writer writes it last and
atomically. Folders without one are being written, or were cut off by a crash: they are
reported as incomplete, never read.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import zlib
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from . import _analysis, _cache, _documents, _encode, _fs, _live, _model, _npy, _schema
from ._documents import LiveControl, LiveStatus
from ._errors import FormatError


@dataclasses.dataclass(frozen=True)
class CaptureInfo:
    """One capture as listed, without its arrays."""

    index: int
    id: str
    step: int
    kind: str
    num_envs: int
    num_steps: int
    wall_time_unix_s: float
    deterministic: bool | None
    reset_frame: bool
    """Frame 0 is the reset state (format 1.1 captures of trajscope's recorders)."""
    mean_return: float | None
    metric_keys: tuple[str, ...]
    array_names: tuple[str, ...]
    summary: Mapping[str, Any]
    attrs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """The writer's extra facts (``attrs`` of the manifest): e.g. ``metrics``, a trainer's
    scalar metrics at this checkpoint."""
    process_index: int | None = None
    """Which process of a multi-process training wrote it (None: a single process)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "id": self.id,
            "step": self.step,
            "kind": self.kind,
            "num_envs": self.num_envs,
            "num_steps": self.num_steps,
            "wall_time_unix_s": self.wall_time_unix_s,
            "deterministic": self.deterministic,
            "reset_frame": self.reset_frame,
            "mean_return": self.mean_return,
            "metric_keys": list(self.metric_keys),
            "first_nonfinite": dict(self.summary.get("first_nonfinite", {})),
            "process_index": self.process_index,
        }


@dataclasses.dataclass(frozen=True)
class CaptureProblem:
    """A capture folder that cannot be read, and why."""

    id: str
    path: str
    problem: str
    incomplete: bool
    """True when the manifest is missing: still being written, or its writer was cut off."""

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "path": self.path, "problem": self.problem, "incomplete": self.incomplete}


class Capture:
    """One rollout: ``E`` environments over ``T`` steps. Arrays load on demand.

    Names: ``qpos``, ``reward``, ... and ``<group>/<key>`` for keyed groups, e.g.
    ``metrics/reward/upright``, ``obs/pixels/view_0``, ``params/policy/hidden_0/kernel``.
    """

    def __init__(self, run: Run, info: CaptureInfo, manifest: Mapping[str, Any]) -> None:
        self.run = run
        self.info = info
        self.manifest = manifest
        self.dir = _fs.join(run.path, _schema.capture_dir(info.kind), info.id)
        self._entries = {_schema.array_name(e["group"], e["key"]): e for e in manifest["arrays"]}

    def __repr__(self) -> str:
        i = self.info
        return f"Capture(#{i.index} step={i.step} kind={i.kind} E={i.num_envs} T={i.num_steps})"

    def names(self, group: str | None = None) -> list[str]:
        """Array names, all or of one group (``""`` for the fixed arrays)."""
        return [n for n, e in self._entries.items() if group is None or e["group"] == group]

    def keys(self, group: str) -> list[str]:
        """Keys of a keyed group, e.g. ``keys("metrics")`` gives ``["reward/upright", ...]``."""
        return [e["key"] for e in self._entries.values() if e["group"] == group]

    def image_keys(self) -> list[str]:
        """Keys of the observations that are images (``pixels/*``, or ``(T, E, H, W, C)``)."""
        return [
            e["key"]
            for e in self._entries.values()
            if e["group"] == "obs" and _schema.is_image_key(e["key"], tuple(e["shape"]))
        ]

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def entry(self, name: str) -> Mapping[str, Any]:
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(f"capture {self.info.id} has no array {name!r}; it has {sorted(self._entries)}") from None

    def load(self, name: str, *, env: int | None = None, decode: bool = True) -> np.ndarray:
        """An array by name, in its logical layout.

        ``env=None``: the whole array, ``(T, E, ...)`` for per-step arrays. ``env=i``: one
        environment's slice ``(T, ...)`` (or ``(...)`` for per-environment arrays), read
        from disk without reading the other environments. ``decode``: images as the values
        the policy saw (False: the stored uint8 pixels).
        """
        e = self.entry(name)
        path = _fs.join(self.dir, e["file"])
        fs = self.run.fs
        layout = e["layout"]
        codec = e.get("codec", _npy.CODEC_NPY)
        zs, delta = codec in _npy.CODECS_ZS, codec == _npy.CODEC_ZSD
        if env is None:
            try:
                data = self._cat(path, e)
            except FileNotFoundError:
                raise FormatError(path, "array file is missing") from None
            except OSError as err:
                raise FormatError(path, f"array file cannot be read ({err.strerror or err})") from None
            if zs:
                a = _npy.decode_zs(path, data, e["chunks"], *self._stored(e), expect_crc=e.get("crc32"), delta=delta)
            else:
                a = _npy.decode(path, data, expect_crc=e.get("crc32"))
            if layout == "time_env":
                a = np.swapaxes(a, 0, 1)
        else:
            if layout == "free":
                raise ValueError(f"{name} is not per environment")
            if not 0 <= env < self.info.num_envs:
                raise IndexError(f"env {env} out of range: capture has {self.info.num_envs} environments")
            try:
                if zs:
                    start, end = e["chunks"][env], e["chunks"][env + 1]
                    dtype, shape = self._stored(e)
                    a = _npy.decode_zs_chunk(path, self._cat(path, e, start, end), dtype, shape[1:], delta=delta)
                else:
                    size = _fs.size(fs, path)
                    with fs.open(path, "rb") as f:
                        a = _npy.read_leading(path, f, env, file_size=size)  # pyright: ignore[reportArgumentType]
            except FileNotFoundError:
                raise FormatError(path, "array file is missing") from None
            except OSError as err:
                raise FormatError(path, f"array file cannot be read ({err.strerror or err})") from None
        self._check_shape(path, e, a, env)
        if decode and "encoding" in e:
            a = _encode.decode_image(a, e["encoding"])
        return a

    def _cat(self, path: str, e: Mapping[str, Any], start: int | None = None, end: int | None = None) -> bytes:
        """Bytes of an array file, whole or a range, checked against the manifest's size;
        from the local cache (:mod:`._cache`) for remote captures other than live chunks."""
        fs = self.run.fs

        def read() -> bytes:
            size = _fs.size(fs, path) if start is not None else None
            data = _fs.cat(fs, path, start, end)
            if (size if size is not None else len(data)) != e["nbytes"]:
                raise FormatError(path, f"truncated: {size if size is not None else len(data)} of {e['nbytes']} bytes")
            return data

        if _fs.is_local(fs) or self.info.kind == "live":
            return read()
        tag = f"{e['nbytes']}:{e.get('crc32')}"
        return _cache.cached(_fs.url(fs, path), tag, start, end, read)

    @staticmethod
    def _stored(e: Mapping[str, Any]) -> tuple[np.dtype, tuple[int, ...]]:
        """dtype and shape of the values in an array file."""
        shape = tuple(e.get("stored_shape") or e["shape"])
        return np.dtype(e.get("stored_dtype", e["dtype"])), shape

    def _check_shape(self, path: str, e: Mapping[str, Any], a: np.ndarray, env: int | None) -> None:
        want = tuple(e["shape"])
        if env is not None:
            want = (want[0], *want[2:]) if e["layout"] == "time_env" else want[1:]
        if a.shape != want or str(a.dtype) != e.get("stored_dtype", e["dtype"]):
            raise FormatError(path, f"array is {a.dtype}{a.shape}, manifest says {e.get('stored_dtype')}{want}")

    def group(self, group: str, *, env: int | None = None) -> dict[str, np.ndarray]:
        """All arrays of a keyed group, by key."""
        return {k: self.load(_schema.array_name(group, k), env=env) for k in self.keys(group)}

    def obs(self, *, env: int | None = None) -> np.ndarray | dict[str, np.ndarray] | None:
        """Observations as given to the writer: one array or a flat dict."""
        obs = self.group("obs", env=env)
        if not obs:
            return None
        return obs if self.manifest.get("obs_is_dict") else obs["obs"]

    def trajectory(self, env: int) -> dict[str, Any]:
        """Every per-step array of one environment, ``(T, ...)``, by name."""
        return {n: self.load(n, env=env) for n, e in self._entries.items() if e["layout"] == "time_env"}

    def verify(self) -> None:
        """Read every array file whole and check its size, header and checksum."""
        for name in self._entries:
            self.load(name, decode=False)


class Run:
    """A run directory: metadata, model and captures. Use :func:`open_run`."""

    def __init__(self, path_or_url: str | os.PathLike[str]) -> None:
        self.url = os.fspath(path_or_url)
        self.fs, self.path = _fs.resolve(self.url)
        run_file = _fs.join(self.path, _schema.RUN_FILE)
        try:
            data = _fs.cat(self.fs, run_file)
        except FileNotFoundError:
            raise FormatError(run_file, "no run here (run.json is missing)") from None
        except IsADirectoryError:
            raise FormatError(run_file, "run.json is a folder") from None
        self.metadata = _documents.parse_run(run_file, data)
        self.format_version = str(self.metadata["format_version"])
        self._lock = threading.Lock()
        self._manifests: dict[str, dict[str, Any]] = {}
        self._problems: dict[str, CaptureProblem] = {}
        self._captures: list[CaptureInfo] = []
        self._live: dict[str, tuple[CaptureInfo, dict[str, Any]]] = {}
        self.refresh()

    def __repr__(self) -> str:
        return f"Run({self.url!r}, captures={len(self._captures)})"

    @property
    def name(self) -> str:
        return str(self.metadata.get("name") or self.path.rsplit("/", 1)[-1])

    @property
    def model_info(self) -> dict[str, Any] | None:
        """Model sizes and geom types recorded at write time (no MuJoCo needed)."""
        m = self.metadata.get("model")
        return dict(m) if isinstance(m, dict) else None

    @property
    def captures(self) -> list[CaptureInfo]:
        """Captures as of the last :meth:`refresh`, ordered by step, then wall time."""
        return list(self._captures)

    @property
    def problems(self) -> list[CaptureProblem]:
        """Capture folders that could not be listed, as of the last :meth:`refresh`."""
        return list(self._problems.values())

    def __len__(self) -> int:
        return len(self._captures)

    def __iter__(self) -> Iterator[CaptureInfo]:
        return iter(self.captures)

    def refresh(self) -> list[CaptureInfo]:
        """Pick up captures completed since the last call; return the new ones."""
        cdir = _fs.join(self.path, _schema.CAPTURES_DIR)
        names = _fs.ls_names(self.fs, cdir)
        with self._lock:
            todo = [n for n in names if n not in self._manifests and not n.startswith(".")]
            paths = {n: _fs.join(cdir, n, _schema.MANIFEST_FILE) for n in todo}
            blobs: Any = self.fs.cat(list(paths.values()), on_error="return") if paths else {}
            new: list[str] = []
            for n in todo:
                p = paths[n]
                blob = blobs.get(p, blobs.get(self.fs._strip_protocol(p)))
                if blob is None or isinstance(blob, FileNotFoundError):
                    self._problems[n] = CaptureProblem(
                        n, p, "incomplete: no capture.json (still being written, or the writer was interrupted)", True
                    )
                    continue
                if isinstance(blob, BaseException):
                    self._problems[n] = CaptureProblem(n, p, f"unreadable: {blob}", False)
                    continue
                try:
                    self._manifests[n] = _placed(p, n, False, _documents.parse_manifest(p, blob, self.model_info))
                    self._problems.pop(n, None)
                    new.append(n)
                except FormatError as e:
                    self._problems[n] = CaptureProblem(n, e.path, e.problem, False)
            for n in list(self._problems):
                if n not in names:
                    del self._problems[n]
            if new:
                order = sorted(
                    self._manifests.values(), key=lambda m: (m["step"], m["wall_time_unix_s"], m["capture_id"])
                )
                self._captures = [self._info(i, m) for i, m in enumerate(order)]
            return [c for c in self._captures if c.id in new]

    # ----------------------------------------------------------------- live stream

    def live_status(self) -> LiveStatus | None:
        """Training's report on the live stream, or None if the run never streamed."""
        return _live.read_status(self.fs, self.path)

    def live_control(self) -> LiveControl:
        """What viewers last asked of the live stream."""
        return _live.read_live_control(self.url)

    def switch_live(self, on: bool, *, rate: float = 1.0) -> LiveControl:
        """Ask training to stream (or stop): writes ``live/control.json`` with a fresh
        lease, which a viewer renews every ``LiveControl.RENEW_S`` seconds. Raises
        ``OSError`` when the run directory cannot be written."""
        return _live.write_live_control(self.url, on=on, rate=rate)

    def analysis(self) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
        """The stored analysis (``analysis/``): the document written by ``trajscope analyse``
        (``doc["analysis"]``) and its arrays; None when the run has not been analysed."""
        return _analysis.read_analysis(self.fs, self.path)

    def live_chunks(self) -> list[CaptureInfo]:
        """The live stream's chunks now on disk, oldest first (training keeps a few and
        deletes older ones). Each is a capture of ``E`` training environments over ``T``
        consecutive steps; load it with :meth:`capture`. Unreadable chunks are skipped:
        the writer may be deleting them."""
        ldir = _fs.join(self.path, _schema.LIVE_DIR)
        names = _live.chunk_names(self.fs, self.path)
        with self._lock:
            for n in list(self._live):
                if n not in names:
                    del self._live[n]
            for n in names:
                if n in self._live:
                    continue
                p = _fs.join(ldir, n, _schema.MANIFEST_FILE)
                try:
                    m = _placed(p, n, True, _documents.parse_manifest(p, _fs.cat(self.fs, p), self.model_info))
                except (OSError, FormatError):
                    continue
                self._live[n] = (self._info(-1, m), m)
            return [self._live[n][0] for n in names if n in self._live]

    @staticmethod
    def _info(index: int, m: Mapping[str, Any]) -> CaptureInfo:
        summary = m.get("summary") or {}
        mean = summary.get("mean_return")
        return CaptureInfo(
            index=index,
            id=m["capture_id"],
            step=m["step"],
            kind=m["kind"],
            num_envs=m["num_envs"],
            num_steps=m["num_steps"],
            wall_time_unix_s=float(m["wall_time_unix_s"]),
            deterministic=m.get("deterministic"),
            reset_frame=bool(m.get("reset_frame", False)),
            mean_return=float(mean) if isinstance(mean, (int, float)) else None,
            metric_keys=tuple(e["key"] for e in m["arrays"] if e["group"] == "metrics"),
            array_names=tuple(_schema.array_name(e["group"], e["key"]) for e in m["arrays"]),
            summary=summary,
            attrs=dict(m["attrs"]) if isinstance(m.get("attrs"), dict) else {},
            process_index=m.get("process_index"),
        )

    def capture(self, which: int | str | CaptureInfo) -> Capture:
        """A capture by index in :attr:`captures`, by id, or by its :class:`CaptureInfo`."""
        if isinstance(which, CaptureInfo):
            info = which
            if info.kind == "live" and info.id in self._live:
                return Capture(self, info, self._live[info.id][1])
        elif isinstance(which, str):
            matches = [c for c in self._captures if c.id == which]
            if not matches:
                raise KeyError(f"no capture {which!r} in {self.url}")
            info = matches[0]
        else:
            info = self._captures[which]
        return Capture(self, info, self._manifests[info.id])

    def check(self, *, checksums: bool = False) -> list[CaptureProblem]:
        """Problems of listed captures: missing or truncated array files; with
        ``checksums``, every file read whole and its checksum checked. Adds to
        :attr:`problems`."""
        found = []
        for info in self._captures:
            cap = self.capture(info)
            try:
                if checksums:
                    cap.verify()
                else:
                    sizes = {
                        d["name"].rstrip("/").rsplit("/", 1)[-1]: d.get("size")
                        for d in self.fs.ls(cap.dir, detail=True)
                    }
                    for e in cap.manifest["arrays"]:
                        p = _fs.join(cap.dir, e["file"])
                        if e["file"] not in sizes:
                            raise FormatError(p, "array file is missing")
                        if sizes[e["file"]] != e["nbytes"]:
                            raise FormatError(p, f"truncated or altered: {sizes[e['file']]} of {e['nbytes']} bytes")
            except FormatError as err:
                problem = CaptureProblem(info.id, err.path, err.problem, False)
                found.append(problem)
                with self._lock:
                    self._problems[info.id] = problem
        return found

    def videos(self) -> dict[str, str]:
        """Training videos stored in the run (``videos/<capture id>.mp4``), capture id to URL."""
        folder = _fs.join(self.path, _schema.VIDEOS_DIR)
        try:
            names = [p.rsplit("/", 1)[-1] for p in self.fs.ls(folder, detail=False)]
        except (FileNotFoundError, OSError):
            return {}
        return {n[: -len(".mp4")]: _fs.url(self.fs, _fs.join(folder, n)) for n in sorted(names) if n.endswith(".mp4")}

    def load_model(self) -> Any:
        """The ``mujoco.MjModel`` as trained (from ``model.mjb``; MJCF as fallback)."""
        mjb = _fs.join(self.path, _schema.MODEL_MJB)
        xml = _fs.join(self.path, _schema.MODEL_XML)
        errors = []
        if self.fs.exists(mjb):
            try:
                return _model.from_bytes(zlib.decompress(_fs.cat(self.fs, mjb)))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(f"model.mjb.z: {e}")
        if self.fs.exists(xml):
            import mujoco

            try:
                return mujoco.MjModel.from_xml_string(_fs.cat(self.fs, xml).decode(), self._assets())
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(f"model.xml: {e}")
        if not errors:
            raise FormatError(_fs.join(self.path, _schema.MODEL_DIR), "the run holds no model")
        raise FormatError(_fs.join(self.path, _schema.MODEL_DIR), "model cannot be loaded: " + "; ".join(errors))

    def _assets(self) -> dict[str, bytes]:
        adir = _fs.join(self.path, _schema.MODEL_ASSETS_DIR)
        if not self.fs.exists(adir):
            return {}
        out = {}
        for p in self.fs.find(adir):
            out[p[len(adir) + 1 :]] = _fs.cat(self.fs, p)
        return out


def _placed(path: str, folder: str, live: bool, m: dict[str, Any]) -> dict[str, Any]:
    """A manifest that belongs where it was found: its id is its folder's name, and its kind
    is ``live`` exactly in ``live/`` (readers find the arrays by that id and kind)."""
    if m["capture_id"] != folder:
        raise FormatError(path, f"capture_id {m['capture_id']!r} is not its folder's name {folder!r}")
    if (m["kind"] == "live") != live:
        raise FormatError(path, f"a capture of kind {m['kind']!r} in {'live/' if live else 'captures/'}")
    return m


def open_run(path_or_url: str | os.PathLike[str]) -> Run:
    """Open a run folder or URL for reading; it may still be being written."""
    return Run(path_or_url)


@dataclasses.dataclass(frozen=True)
class RunListing:
    name: str
    path: str
    env_name: str | None
    algorithm: str | None
    created_iso: str | None
    num_captures: int
    last_capture: CaptureInfo | None
    problem: str | None = None


def list_runs(root: str | os.PathLike[str] | None = None) -> list[RunListing]:
    """The runs directly under ``root`` (default ``$TRAJSCOPE_DIR`` or ``./trajscope_runs``)."""
    fs, path = _fs.resolve_root(root)
    out = []
    for name in _fs.ls_names(fs, path):
        sub = _fs.join(path, name)
        if name.startswith(".") or not fs.exists(_fs.join(sub, _schema.RUN_FILE)):
            continue
        url = _fs.url(fs, sub)
        try:
            run = Run(url)
        except FormatError as e:
            out.append(RunListing(name, url, None, None, None, 0, None, str(e)))
            continue
        caps = run.captures
        out.append(
            RunListing(
                run.name,
                url,
                run.metadata.get("env_name"),
                run.metadata.get("algorithm"),
                run.metadata.get("created_iso"),
                len(caps),
                max(caps, key=lambda c: c.wall_time_unix_s) if caps else None,
            )
        )
    return out
