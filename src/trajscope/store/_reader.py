"""Reading runs: list captures from their manifests, load arrays lazily.

A capture exists once its ``capture.json`` exists; the writer writes it last and
atomically. Folders without one are being written, or were cut off by a crash: they are
reported as incomplete, never read.
"""

from __future__ import annotations

import collections
import dataclasses
import gc
import math
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from ..format import codecs, documents, images, schema
from ..format.documents import LiveControl, LiveStatus
from ..format.errors import FormatError
from . import _analysis, _cache, _fs, _listing, _live, _model


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
        self.dir = _fs.join(run.path, schema.capture_dir(info.kind), info.id)
        self._entries = {schema.array_name(e["group"], e["key"]): e for e in manifest["arrays"]}

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
            if e["group"] == "obs" and schema.is_image_key(e["key"], tuple(e["shape"]))
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
        the policy saw (False: the stored uint8 pixels). A read that would allocate more
        than ``$TRAJSCOPE_MAX_CAPTURE_MB`` is refused with a :class:`FormatError`.
        """
        e = self.entry(name)
        path = _fs.join(self.dir, e["file"])
        layout = e["layout"]
        codec = e.get("codec", codecs.CODEC_NPY)
        zs, delta = codec in codecs.CODECS_ZS, codec == codecs.CODEC_ZSD
        if env is not None:
            if layout == "free":
                raise ValueError(f"{name} is not per environment")
            if not 0 <= env < self.info.num_envs:
                raise IndexError(f"env {env} out of range: capture has {self.info.num_envs} environments")
        check_allocation(path, self.nbytes(name, env=env))
        try:
            if env is None:
                data = self._cat(path, e)
                if zs:
                    a = codecs.decode_zs(
                        path, data, e["chunks"], *self._stored(e), expect_crc=e.get("crc32"), delta=delta
                    )
                else:
                    a = codecs.decode(path, data, expect_crc=e.get("crc32"))
                if layout == "time_env":
                    a = np.swapaxes(a, 0, 1)
            elif zs:
                start, end = e["chunks"][env], e["chunks"][env + 1]
                dtype, shape = self._stored(e)
                a = codecs.decode_zs_chunk(path, self._cat(path, e, start, end), dtype, shape[1:], delta=delta)
            else:
                a = codecs.read_leading(
                    path, lambda lo, hi: self._cat(path, e, lo, hi), env, file_size=int(e["nbytes"])
                )
        except FileNotFoundError:
            raise FormatError(path, "array file is missing") from None
        except OSError as err:
            raise FormatError(path, f"array file cannot be read ({err.strerror or err})") from None
        self._check_shape(path, e, a, env)
        if decode and "encoding" in e:
            a = images.decode_image(a, e["encoding"])
        return a

    def nbytes(self, name: str, *, env: int | None = None) -> int:
        """Bytes a load of array ``name`` (one environment's slice with ``env``) allocates,
        as its manifest declares them (decoded images count as their decoded dtype)."""
        e = self.entry(name)
        shape = list(e["shape"])
        if env is not None and shape:
            shape = [shape[0], *shape[2:]] if e["layout"] == "time_env" else shape[1:]
        itemsize = max(np.dtype(e["dtype"]).itemsize, np.dtype(e.get("stored_dtype", e["dtype"])).itemsize)
        return math.prod(shape) * itemsize

    def _cat(self, path: str, e: Mapping[str, Any], start: int | None = None, end: int | None = None) -> bytes:
        """Bytes of an array file, whole or a range, checked against the manifest's size
        before reading; from the local cache (:mod:`._cache`) for remote captures other
        than live chunks."""
        fs = self.run.fs
        nbytes = int(e["nbytes"])
        if start is not None and end is not None and not 0 <= start <= end <= nbytes:
            raise FormatError(path, f"byte range [{start}, {end}) outside the file's {nbytes} bytes")

        def read() -> bytes:
            if start is not None and not _fs.is_local(fs) and _fs.size(fs, path) != nbytes:
                raise FormatError(path, f"truncated: {_fs.size(fs, path)} of {nbytes} bytes")
            return _fs.read(fs, path, root=self.run.root, limit=nbytes, start=start, end=end, expect_size=nbytes)

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
        return {k: self.load(schema.array_name(group, k), env=env) for k in self.keys(group)}

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
        self.root = _fs.run_root(self.fs, self.path)
        """Where reads of this run must stay: its folder, symlinks resolved."""
        run_file = _fs.join(self.path, schema.RUN_FILE)
        try:
            data = self._read(run_file, _fs.max_json_bytes())
        except FileNotFoundError:
            raise FormatError(run_file, "no run here (run.json is missing)") from None
        except NotADirectoryError:
            raise FormatError(self.path, "not a folder") from None
        except OSError as e:
            raise FormatError(run_file, f"cannot be read ({e.strerror or e})") from None
        self.metadata = documents.parse_run(run_file, data)
        self.format_version = str(self.metadata["format_version"])
        self._lock = threading.Lock()
        self._infos: dict[str, CaptureInfo] = {}
        """Every listed capture, by id (the manifests themselves are read again on demand)."""
        self._manifests: collections.OrderedDict[str, tuple[dict[str, Any], int]] = collections.OrderedDict()
        """The manifests read last, with their sizes: at most :data:`MANIFEST_CACHE_BYTES` held."""
        self._manifest_bytes = 0
        self._problems: dict[str, CaptureProblem] = {}
        self._seen: dict[str, _Seen] = {}
        """When each problem folder was last looked at, and what it looked like then."""
        self._names: set[str] = set()
        self._candidates: set[str] = set()
        """Folders listed that are not (yet) captures: never read, or problems."""
        self._cdir_stamp: tuple[int, ...] | None = None
        self._rotor = 0
        self._captures: list[CaptureInfo] = []
        self._live: dict[str, tuple[CaptureInfo, dict[str, Any]]] = {}
        self.refresh()

    def __repr__(self) -> str:
        return f"Run({self.url!r}, captures={len(self._captures)})"

    def _read(self, path: str, limit: int) -> bytes:
        """A file of this run, read as untrusted input (see :func:`._fs.read`)."""
        return _fs.read(self.fs, path, root=self.root, limit=limit)

    def _read_docs(self, paths: list[str]) -> Iterator[tuple[str, bytes | BaseException]]:
        """Several JSON documents, one after another: bytes, or the exception that reading
        one raised. At most one whole document is held at a time; on object stores the
        first :data:`FIRST_BYTES` of every document come in one request, and only the
        documents longer than that are asked for again, one by one."""
        limit = _fs.max_json_bytes()
        if _fs.is_object_store(self.fs) and len(paths) > 1:
            first = min(limit, FIRST_BYTES)
            blobs = self.fs.cat_ranges(paths, [0] * len(paths), [first + 1] * len(paths), on_error="return")
            for p, b in zip(paths, blobs):
                if isinstance(b, bytes) and len(b) > first:
                    b = self._read_one(p, limit)
                yield p, b if isinstance(b, (bytes, BaseException)) else FormatError(p, "unreadable")
            return
        for p in paths:
            yield p, self._read_one(p, limit)

    def _read_one(self, p: str, limit: int) -> bytes | BaseException:
        try:
            return self._read(p, limit)
        except (OSError, FormatError) as e:
            return e
        except MemoryError:
            return FormatError(p, "too large to read in this process's memory; refused")

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
        """Pick up captures completed since the last call; return the new ones.

        Its cost does not grow with the captures already listed: locally a captures folder
        unchanged since the last look is not listed again, and a folder that could not be
        read (incomplete, damaged) is read again only once it changed, as seen by a
        ``stat``; folders untouched for :data:`RECHECK_AFTER_S` are looked at a slice of
        :data:`RECHECK_SLICE` per call."""
        cdir = _fs.join(self.path, schema.CAPTURES_DIR)
        local = _fs.is_local(self.fs)
        now = time.time()
        with self._lock:
            stamp = _stamp(cdir) if local and _fs.leaves_root(self.fs, cdir, self.root) is None else None
            if stamp is None or stamp != self._cdir_stamp or now - stamp[0] / 1e9 < SETTLE_S:
                self._names = names = set(_fs.ls_names(self.fs, cdir, root=self.root))
                self._cdir_stamp = stamp
                self._candidates = {n for n in names - self._infos.keys() if not n.startswith(".")}
                gone = [n for n in self._problems if n not in names and n not in self._infos]
                for n in gone:
                    if n != schema.CAPTURES_DIR:
                        del self._problems[n]
                        self._seen.pop(n, None)
            todo = self._todo(cdir, now, local)
            new = self._read_new(cdir, todo, now, local)
            escape = _fs.leaves_root(self.fs, cdir, self.root)
            if escape is not None:
                self._problems[schema.CAPTURES_DIR] = CaptureProblem(
                    schema.CAPTURES_DIR, cdir, f"a link that leaves the run (to {escape[:200]!r}); not read", False
                )
            if not new:
                return []
            new.sort(key=_order)
            start = len(self._captures)
            for i, c in enumerate(new):  # fresh records, seen by nobody yet: numbered in place
                object.__setattr__(c, "index", start + i)
            if not self._captures or _order(new[0]) >= _order(self._captures[-1]):
                self._captures += new  # the usual case: newer than all listed
                self._infos.update((c.id, c) for c in new)
                return list(new)
            merged = sorted([*self._captures, *new], key=_order)
            self._captures = [c if c.index == i else dataclasses.replace(c, index=i) for i, c in enumerate(merged)]
            self._infos = {c.id: c for c in self._captures}
            ids = {c.id for c in new}
            return [c for c in self._captures if c.id in ids]

    def _todo(self, cdir: str, now: float, local: bool) -> list[str]:
        """The folders to read now: never seen, or a problem folder that may have changed."""
        todo, old, recent = [], [], []
        for n in self._candidates:
            seen = self._seen.get(n)
            if seen is None:
                todo.append(n)
            elif now - seen.changed > RECHECK_AFTER_S:
                old.append(n)  # untouched for long: a slice of these per call
            else:
                recent.append(n)
        if len(recent) > RECHECK_SLICE:  # a run of many fresh problem folders: all in turn
            old += recent
            recent = []
        for n in recent:
            seen = self._seen[n]
            if not local or _folder_stamp(cdir, n) != seen.stamp or seen.checked - seen.changed < SETTLE_S:
                todo.append(n)
        if old:
            k = self._rotor % len(old)
            step = RECHECK_SLICE if local else RECHECK_SLICE_REMOTE  # a stat, or a request
            for n in (old[k:] + old[:k])[:step]:
                if not local or _folder_stamp(cdir, n) != self._seen[n].stamp:
                    todo.append(n)
            self._rotor = k + step
        return todo

    def _read_new(self, cdir: str, todo: list[str], now: float, local: bool) -> list[CaptureInfo]:
        """The new captures, listed (their manifests dropped once read); problems noted,
        with their folders' stamps (taken after the read: a change in between is caught by
        the settle rule, as ``now`` is older than the change). The cyclic garbage collector
        waits meanwhile: a listing makes many objects and frees none of them in cycles."""
        paused = gc.isenabled()
        gc.disable()
        try:
            return self._read_new_now(cdir, todo, now, local)
        finally:
            if paused:
                gc.enable()

    def _read_new_now(self, cdir: str, todo: list[str], now: float, local: bool) -> list[CaptureInfo]:
        new: list[CaptureInfo] = []
        for batch in _batches(todo, MANIFEST_BATCH):
            folder_of = {_fs.join(cdir, n, schema.MANIFEST_FILE): n for n in batch}
            for p, blob in self._read_docs(list(folder_of)):
                n = folder_of[p]
                problem = self._parse_listed(n, p, blob)
                del blob
                if not isinstance(problem, CaptureProblem):
                    new.append(self._info(-1, problem))
                    self._candidates.discard(n)
                    self._problems.pop(n, None)
                    self._seen.pop(n, None)
                    continue
                self._problems[n] = problem
                stamp = _folder_stamp(cdir, n) if local else None
                prev = self._seen.get(n)
                changed = stamp[0] / 1e9 if stamp else (prev.changed if prev else now)
                self._seen[n] = _Seen(stamp, now, changed)
        return new

    def _parse_listed(self, n: str, p: str, blob: bytes | BaseException | None) -> dict[str, Any] | CaptureProblem:
        if blob is None or isinstance(blob, (FileNotFoundError, NotADirectoryError)):
            return CaptureProblem(
                n, p, "incomplete: no capture.json (still being written, or the writer was interrupted)", True
            )
        if isinstance(blob, FormatError):
            return CaptureProblem(n, blob.path, blob.problem, False)
        if isinstance(blob, BaseException):
            return CaptureProblem(n, p, f"unreadable: {str(blob)[:300]}", False)
        try:
            m = _placed(p, n, False, _listing.parse_listed(p, blob, self.model_info))
        except FormatError as e:
            return CaptureProblem(n, e.path, e.problem, False)
        except MemoryError:
            return CaptureProblem(n, p, "too large to read in this process's memory; refused", False)
        except Exception as e:  # noqa: BLE001 - one bad capture never stops the listing
            return CaptureProblem(n, p, f"unreadable: {type(e).__name__}", False)
        return m

    def _keep_manifest(self, n: str, m: dict[str, Any], nbytes: int) -> None:
        """Hold a parsed manifest for :meth:`capture`, the oldest dropped past the budget."""
        old = self._manifests.pop(n, None)
        if old is not None:
            self._manifest_bytes -= old[1]
        self._manifests[n] = (m, nbytes)
        self._manifest_bytes += nbytes
        while len(self._manifests) > 1 and self._manifest_bytes > MANIFEST_CACHE_BYTES:
            _, (_, b) = self._manifests.popitem(last=False)
            self._manifest_bytes -= b

    def _damaged(self, info: CaptureInfo, e: FormatError) -> FormatError:
        """A listed capture whose whole manifest failed its checks when opened: named in
        :attr:`problems` from now on (it stays listed, so indices do not shift)."""
        with self._lock:
            self._problems[info.id] = CaptureProblem(info.id, e.path, e.problem, False)
        return e

    def _manifest(self, info: CaptureInfo) -> dict[str, Any]:
        """A listed capture's manifest: held, or read and checked again."""
        with self._lock:
            held = self._manifests.get(info.id)
            if held is not None:
                self._manifests.move_to_end(info.id)
                return held[0]
        p = _fs.join(self.path, schema.capture_dir(info.kind), info.id, schema.MANIFEST_FILE)
        try:
            blob = self._read(p, _fs.max_json_bytes())
        except FileNotFoundError:
            raise FormatError(p, "the capture's manifest is gone") from None
        except OSError as e:
            raise FormatError(p, f"cannot be read ({e.strerror or e})") from None
        try:
            m = _placed(p, info.id, False, documents.parse_manifest(p, blob, self.model_info))
            if (m["step"], m["num_envs"], m["num_steps"]) != (info.step, info.num_envs, info.num_steps):
                raise FormatError(p, "the manifest changed since the run was listed")
        except MemoryError:
            raise self._damaged(info, FormatError(p, "too large to read in this process's memory; refused")) from None
        except FormatError as e:
            raise self._damaged(info, e) from None
        with self._lock:
            self._keep_manifest(info.id, m, len(blob))
        return m

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

    def analysis(self) -> _analysis.StoredAnalysis | None:
        """The stored analysis (``analysis/``): a :class:`StoredAnalysis` (the document
        written by ``trajscope analyse``, its ``result``, and its arrays; it unpacks as
        ``doc, arrays``); None when the run has not been analysed."""
        return _analysis.read_analysis(self.fs, self.path)

    def live_chunks(self) -> list[CaptureInfo]:
        """The live stream's chunks now on disk, oldest first (training keeps a few and
        deletes older ones). Each is a capture of ``E`` training environments over ``T``
        consecutive steps; load it with :meth:`capture`. Unreadable chunks are skipped:
        the writer may be deleting them."""
        ldir = _fs.join(self.path, schema.LIVE_DIR)
        names = _live.chunk_names(self.fs, self.path, root=self.root)
        with self._lock:
            for n in list(self._live):
                if n not in names:
                    del self._live[n]
            for n in names:
                if n in self._live:
                    continue
                p = _fs.join(ldir, n, schema.MANIFEST_FILE)
                try:
                    blob = self._read(p, _fs.max_json_bytes())
                    m = _placed(p, n, True, documents.parse_manifest(p, blob, self.model_info))
                except Exception:  # noqa: BLE001 - damaged or being deleted: skipped
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
            # Interned: thousands of captures of one run share their names' strings.
            metric_keys=tuple(sys.intern(e["key"]) for e in m["arrays"] if e["group"] == "metrics"),
            array_names=tuple(sys.intern(schema.array_name(e["group"], e["key"])) for e in m["arrays"]),
            summary=summary,
            attrs=dict(m["attrs"]) if isinstance(m.get("attrs"), dict) else {},
            process_index=m.get("process_index"),
        )

    def capture(self, which: int | str | CaptureInfo) -> Capture:
        """A capture by index in :attr:`captures`, by id, or by its :class:`CaptureInfo`.

        Its whole manifest is read and checked here (a listing checks only what it shows):
        a :class:`FormatError` when it is damaged, and the capture is named in
        :attr:`problems` from then on."""
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
        return Capture(self, info, self._manifest(info))

    def check(self, *, checksums: bool = False) -> list[CaptureProblem]:
        """Problems of listed captures: missing or truncated array files; with
        ``checksums``, every file read whole and its checksum checked. Adds to
        :attr:`problems`."""
        found = []
        for info in self._captures:
            try:
                cap = self.capture(info)
                if checksums:
                    cap.verify()
                else:
                    try:
                        listing = self.fs.ls(cap.dir, detail=True)
                    except (FileNotFoundError, NotADirectoryError):
                        raise FormatError(cap.dir, "capture folder is gone") from None
                    sizes = {d["name"].rstrip("/").rsplit("/", 1)[-1]: d.get("size") for d in listing}
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
        folder = _fs.join(self.path, schema.VIDEOS_DIR)
        try:
            names = [p.rsplit("/", 1)[-1] for p in self.fs.ls(folder, detail=False)]
        except (FileNotFoundError, OSError):
            return {}
        return {n[: -len(".mp4")]: _fs.url(self.fs, _fs.join(folder, n)) for n in sorted(names) if n.endswith(".mp4")}

    def load_model(self) -> Any:
        """The ``mujoco.MjModel`` as trained (from ``model.mjb``; MJCF as fallback).

        A run's model is untrusted input: it is loaded and simulated once in a child
        process first (:func:`._model.load_untrusted`), so a damaged file that would crash MuJoCo
        gives a :class:`FormatError` here instead of ending this process."""
        mjb = _fs.join(self.path, schema.MODEL_MJB)
        xml = _fs.join(self.path, schema.MODEL_XML)
        errors = []
        limit = _fs.max_model_bytes()
        for path, kind in ((mjb, "mjb"), (xml, "xml")):
            try:
                data = self._read(path, limit)
            except FileNotFoundError:
                continue
            except (OSError, FormatError) as e:
                errors.append(f"{path.rsplit('/', 1)[-1]}: {getattr(e, 'problem', None) or e}")
                continue
            try:
                if kind == "mjb":
                    return _model.load_untrusted(path, _model.inflate(path, data, limit))
                return _model.load_untrusted(path, data, xml=True, assets=self._assets())
            except FormatError as e:
                errors.append(f"{path.rsplit('/', 1)[-1]}: {e.problem}")
        if not errors:
            raise FormatError(_fs.join(self.path, schema.MODEL_DIR), "the run holds no model")
        raise FormatError(
            _fs.join(self.path, schema.MODEL_DIR), "model cannot be loaded: " + "; ".join(errors) + self._version_hint()
        )

    def _version_hint(self) -> str:
        """Why an ``mjb`` may not load: MuJoCo reads only the binary models of its own
        version; say so when the run was written by another one."""
        versions = self.metadata.get("versions")
        wrote = versions.get("mujoco") if isinstance(versions, Mapping) else None
        try:
            import mujoco

            here = str(mujoco.__version__)
        except ImportError:  # pragma: no cover - mujoco is a dependency
            return ""
        if not isinstance(wrote, str) or wrote == here:
            return ""
        return (
            f" (the run was written with MuJoCo {wrote[:40]!r} and this is MuJoCo {here}: MuJoCo loads only "
            "binary models of its own version; open it with that version, or write the run with an MJCF file as its "
            "model, RunWriter(model=path), which any version reads)"
        )

    def _assets(self) -> dict[str, bytes]:
        """The files the run's MJCF names (meshes, textures, included XML), read from
        ``model/assets`` only: never a file outside the run."""
        adir = _fs.join(self.path, schema.MODEL_ASSETS_DIR)
        out: dict[str, bytes] = {}
        total, limit = 0, _fs.max_model_bytes()
        try:
            found = self.fs.find(adir)
        except (FileNotFoundError, NotADirectoryError):
            return {}
        for p in found:
            data = self._read(p, limit - total)
            total += len(data)
            out[p[len(adir) + 1 :]] = data
        return out


def check_allocation(path: str, nbytes: int) -> None:
    """Refuse a read that would allocate more than ``$TRAJSCOPE_MAX_CAPTURE_MB``."""
    limit = _fs.max_capture_bytes()
    if nbytes > limit:
        raise FormatError(
            path,
            f"a read of {nbytes / 2**20:,.0f} MB is beyond this reader's ceiling of {limit / 2**20:,.0f} MB "
            "per capture (raise $TRAJSCOPE_MAX_CAPTURE_MB to read it)",
        )


SETTLE_S = 2.0
"""A folder changed less than this long ago is read again whatever its ``stat`` says
(file times are coarse: a change within the same tick leaves them alike)."""
RECHECK_AFTER_S = 60.0
"""A problem folder untouched this long is looked at in slices (:data:`RECHECK_SLICE`)."""
RECHECK_SLICE = 256
RECHECK_SLICE_REMOTE = 16
MANIFEST_BATCH = 64
"""Manifests read at once (one request for them all on object stores)."""
FIRST_BYTES = 2**20
"""What is asked for of each manifest in the first, batched request to an object store."""
MANIFEST_CACHE_BYTES = 64 * 2**20
"""The most bytes of manifests a :class:`Run` holds; the others are read again when opened."""


@dataclasses.dataclass
class _Seen:
    stamp: tuple[int, ...] | None
    checked: float
    """When it was last read (``time.time()``)."""
    changed: float
    """When it last changed: its ``mtime`` locally, when it was first seen elsewhere."""


def _stamp(path: str) -> tuple[int, ...] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_size, st.st_nlink)


def _folder_stamp(cdir: str, name: str) -> tuple[int, ...] | None:
    """A capture folder and its manifest as ``stat`` sees them (local runs)."""
    folder = _stamp(os.path.join(cdir, name))
    if folder is None:
        return None
    return folder + (_stamp(os.path.join(cdir, name, schema.MANIFEST_FILE)) or ())


def _order(c: CaptureInfo) -> tuple[int, float, str]:
    return (c.step, c.wall_time_unix_s, c.id)


def _batches(items: list[str], n: int) -> Iterator[list[str]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


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
    claimed_name: str | None = None
    """The name the run's ``run.json`` gives itself, when it is not its folder's (``name``)."""


def run_folders(root: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """The runs directly under ``root`` by folder name (a run's ``run.json`` may claim
    another's name), without opening them: one listing and a look for each ``run.json``."""
    fs, path = _fs.resolve_root(root)
    out = {}
    for name in _fs.ls_names(fs, path):
        sub = _fs.join(path, name)
        try:
            if name.startswith(".") or not fs.exists(_fs.join(sub, schema.RUN_FILE)):
                continue
        except (OSError, ValueError):
            continue  # a name the filesystem cannot look at (a NUL in it, too long)
        out[name] = _fs.url(fs, sub)
    return out


def list_runs(root: str | os.PathLike[str] | None = None) -> list[RunListing]:
    """The runs directly under ``root`` (default ``$TRAJSCOPE_DIR`` or ``./trajscope_runs``),
    opened: each named by its folder (:attr:`RunListing.claimed_name` holds the name its
    ``run.json`` gives when that differs)."""
    out = []
    for name, url in run_folders(root).items():
        try:
            run = Run(url)
        except FormatError as e:
            out.append(RunListing(name, url, None, None, None, 0, None, str(e)))
            continue
        except Exception as e:  # noqa: BLE001 - one bad run never stops the listing
            out.append(RunListing(name, url, None, None, None, 0, None, f"{url}: unreadable ({type(e).__name__})"))
            continue
        caps = run.captures
        claimed = run.metadata.get("name")
        out.append(
            RunListing(
                name,
                url,
                run.metadata.get("env_name"),
                run.metadata.get("algorithm"),
                run.metadata.get("created_iso"),
                len(caps),
                max(caps, key=lambda c: c.wall_time_unix_s) if caps else None,
                claimed_name=str(claimed) if claimed is not None and str(claimed) != name else None,
            )
        )
    return out
