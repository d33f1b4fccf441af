"""RunWriter: the one door into a run directory.

Training code calls :meth:`RunWriter.add_capture`, which checks shapes, starts device to
host copies and returns at once. A background thread turns arrays into files. A failure
there (disk full, read-only, vanished folder) drops that capture, counts it and warns
once; it never raises into training unless ``strict=True``.
"""

from __future__ import annotations

import atexit
import dataclasses
import datetime
import importlib.metadata
import os
import queue
import socket
import threading
import time
import uuid
import weakref
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from ..format import documents, images, schema
from ..format.documents import LiveControl, LiveStatus
from ..format.errors import FormatError, warn
from . import _fs, _job, _live, _model


@dataclasses.dataclass
class WriterStats:
    """Counters of a :class:`RunWriter`; read them at any time."""

    queued: int = 0
    written: int = 0
    """Captures and live chunks written."""
    live_written: int = 0
    """Of :attr:`written`, the live stream's chunks."""
    dropped_queue_full: int = 0
    dropped_invalid: int = 0
    dropped_write_error: int = 0
    dropped_at_close: int = 0
    """Still queued when :meth:`RunWriter.close` stopped waiting (a storage that hangs)."""
    bytes_written: int = 0
    recreated: int = 0
    """Times the run folder vanished while training wrote it and was made again."""
    last_error: str | None = None

    @property
    def dropped(self) -> int:
        return self.dropped_queue_full + self.dropped_invalid + self.dropped_write_error + self.dropped_at_close


_VERSIONED_PACKAGES = ("trajscope", "numpy", "mujoco", "mujoco-mjx", "jax", "jaxlib", "brax", "playground", "flax")


def library_versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for name in _VERSIONED_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def new_run_name(env_name: str | None = None) -> str:
    """A fresh run name, ``<env_name>-<YYYYmmdd-HHMMSS>-<6 hex>`` (what ``RunWriter``
    names a run it is given no name for)."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = "".join(c if c.isalnum() or c in "-_." else "-" for c in (env_name or "run"))
    return f"{base}-{stamp}-{uuid.uuid4().hex[:6]}"


class RunConflict(ValueError):
    """A writer was asked to append to a run that holds another model."""


class RunWriter:
    """Writes one run: its metadata, model and captures.

    Args:
        root: folder or fsspec URL holding runs; default ``$TRAJSCOPE_DIR`` or
            ``./trajscope_runs``.
        name: the run's folder name; default ``<env_name>-<date>-<time>-<random>``. An
            existing run of that name is appended to when it holds the same model (or
            none); one holding another model is refused with :class:`RunConflict`
            (raised here on local disk; on remote filesystems, checked off the training
            thread, every capture is dropped with that warning).
        model: ``mujoco.MjModel``, or the path of an MJCF file.
        env_name, algorithm: shown by the viewer and ``trajscope info``.
        config: the training configuration, stored as plain JSON.
        tags: free-form labels.
        control_dt_s: seconds between captured steps (the environment's control step);
            replay speed uses it. Default: the model's timestep.
        strict: raise errors instead of warning and counting (for tests).
        max_queue: captures waiting to be written before new ones are dropped.
        lossless_images: keep float images whose uint8 encoding would lose precision as
            floats instead.
        compress: store arrays as per-environment zlib streams of byte-shuffled values
            (``zlib-shuffle``, typically 2 to 5 times smaller) rather than plain ``.npy``.
        delta: with ``compress``, store a per-step array as its differences along time
            (``zlib-shuffle-delta``, lossless) where that is smaller.
        obs_float16: store float observations that are not images as float16 (opt-in,
            lossy: half their bytes, about three significant digits; read back as their
            original dtype). Observations float16 cannot hold (beyond +-65504) stay exact.
        keep_live: live-stream chunks (captures of kind ``live``, in ``live/``) kept; older
            ones are deleted as new ones arrive.
        process_index: this process's index in a multi-process training
            (``jax.process_index()``), or None for a single process. Every process of a
            training writes into the same run under the same ``name``: capture ids carry
            ``p<index>``, so no two processes write the same folder; only process 0 (or a
            single process) writes ``run.json``, the model and the live status, and each
            process prunes only its own live chunks. See docs/remote.md.
        close_timeout_s: how long :meth:`close` waits for queued captures to be written
            (a remote store that hangs must not hold the end of training forever); what is
            still queued then is counted in ``stats.dropped_at_close`` and warned about.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        name: str | None = None,
        model: Any = None,
        env_name: str | None = None,
        algorithm: str | None = None,
        config: Mapping[str, Any] | Any = None,
        tags: Sequence[str] = (),
        control_dt_s: float | None = None,
        strict: bool = False,
        max_queue: int = 16,
        lossless_images: bool = False,
        compress: bool = True,
        delta: bool = True,
        obs_float16: bool = False,
        keep_live: int = 8,
        process_index: int | None = None,
        close_timeout_s: float = 300.0,
    ) -> None:
        self.name = name or new_run_name(env_name)
        if "/" in self.name or self.name in ("", ".", ".."):
            raise ValueError(f"run name {self.name!r} must be a plain folder name")
        self._fs, root_path = _fs.resolve_root(root)
        self.path = _fs.join(root_path, self.name)
        self.url = _fs.url(self._fs, self.path)
        self.strict = strict
        self.lossless_images = lossless_images
        self.compress = compress
        self.delta = delta
        self.obs_float16 = obs_float16
        self.keep_live = max(2, int(keep_live))
        self.close_timeout_s = close_timeout_s
        if process_index is not None and (not isinstance(process_index, int) or process_index < 0):
            raise ValueError(f"process_index must be a non-negative int or None, not {process_index!r}")
        self.process_index = process_index
        self._leader = not process_index  # None or 0: the process that writes run.json
        self._live_status: LiveStatus | None = None
        self.stats = WriterStats()
        self._warned: set[str] = set()
        self._error: BaseException | None = None
        self._lock = threading.Lock()

        xml: str | None = None
        assets: dict[str, bytes] = {}
        if isinstance(model, (str, os.PathLike)):
            model, xml, assets = _model.load_xml_path(model)
        self._model_summary = _model.describe(model) if model is not None else None
        self._model_bytes = _model.to_bytes(model) if model is not None else None
        self._model_xml = xml
        self._model_assets = assets
        self._metadata = documents.build_run(
            name=self.name,
            created_unix_s=time.time(),
            created_iso=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            env_name=env_name,
            algorithm=algorithm,
            config=config,
            tags=list(tags),
            versions=library_versions(),
            model=self._model_summary,
            control_dt_s=control_dt_s if control_dt_s is not None else (self._model_summary or {}).get("timestep_s"),
            writer={"host": socket.gethostname(), "pid": os.getpid()},
        )
        self._ready = False
        self._same_model = False
        if _fs.is_local(self._fs) and self._leader and model is not None:
            try:
                if self._fs.exists(_fs.join(self.path, schema.RUN_FILE)):
                    self._check_same_model()
            except FormatError:
                pass  # a damaged run.json: the writer thread reports it
        self._queue: queue.Queue[_job.Job | None] = queue.Queue(maxsize=max_queue)
        self._closed = False
        self._abandoned = False
        if strict:
            self._setup()
        self._thread = threading.Thread(target=self._run, name=f"trajscope-writer-{self.name}", daemon=True)
        self._thread.start()
        ref = weakref.ref(self)
        self._atexit = lambda: (w := ref()) is not None and w.close(timeout=30.0)
        atexit.register(self._atexit)

    # ----------------------------------------------------------------- public API

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_capture(
        self,
        *,
        step: int,
        qpos: Any,
        kind: str = "eval",
        qvel: Any = None,
        act: Any = None,
        mocap_pos: Any = None,
        mocap_quat: Any = None,
        action: Any = None,
        reward: Any = None,
        done: Any = None,
        value: Any = None,
        metrics: Mapping[str, Any] | None = None,
        obs: Any = None,
        info: Mapping[str, Any] | None = None,
        model_fields: Mapping[str, Any] | None = None,
        params: Any = None,
        buffer: Mapping[str, Any] | None = None,
        deterministic: bool | None = None,
        reset_frame: bool = False,
        wall_time: float | None = None,
        attrs: Mapping[str, Any] | None = None,
    ) -> bool:
        """Queue one rollout of ``E`` environments over ``T`` steps; return at once.

        Arrays may be numpy or JAX arrays; JAX arrays start copying to the host here and
        are converted on the writer thread. numpy arrays are copied, so the caller may
        reuse its buffers.

        Args:
            step: environment steps of training at this checkpoint.
            qpos: ``(T, E, nq)``; the only required array.
            kind: ``"eval"`` (a rollout of the checkpoint's policy) or ``"live"`` (the
                training environments themselves).
            qvel: ``(T, E, nv)``. act: ``(T, E, na)``.
            mocap_pos: ``(T, E, nmocap, 3)``. mocap_quat: ``(T, E, nmocap, 4)``.
            action: ``(T, E, nu)``. reward, done, value: ``(T, E)``.
            metrics: name to ``(T, E)``, e.g. ``{"reward/upright": ...}``.
            obs: ``(T, E, ...)`` or a dict of them; ``pixels/*`` keys are images.
            info: selected ``state.info`` entries, name to ``(T, E, ...)``.
            model_fields: randomised MjModel fields per environment, name to ``(E, ...)``.
            params: the checkpoint's parameters, any pytree of arrays.
            buffer: a sample of an off-policy trainer's replay buffer, name to ``(N, ...)``:
                ``step`` (env steps when each transition was inserted; required), ``qpos``,
                ``qvel``, ``obs`` (or a dict of them), ``action``, ``reward``, ``priority``.
            deterministic: whether the policy acted deterministically.
            reset_frame: frame 0 is the state the environments were reset to (no action
                led to it: ``action`` 0, ``reward`` 0, ``done`` False there). Then at every
                frame ``t``, ``obs`` and ``value`` are those of state ``t``, and ``action``
                and ``reward`` those of the step that led to it.
            wall_time: seconds since the epoch; default now.
            attrs: extra JSON-able facts about this capture.

        Returns:
            True if queued; False if dropped (invalid, queue full, writer closed).
        """
        obs_is_dict = isinstance(obs, Mapping)
        try:
            job = _job.make_job(
                step=step,
                kind=kind,
                fixed={
                    "qpos": qpos,
                    "qvel": qvel,
                    "act": act,
                    "mocap_pos": mocap_pos,
                    "mocap_quat": mocap_quat,
                    "action": action,
                    "reward": reward,
                    "done": done,
                    "value": value,
                },
                keyed={
                    "metrics": metrics,
                    "obs": images.flatten(obs) if obs_is_dict else ({"obs": obs} if obs is not None else None),
                    "info": images.flatten(info) if info is not None else None,
                    "model_fields": model_fields,
                    "params": images.flatten(params) if params is not None else None,
                    "buffer": images.flatten(buffer) if buffer is not None else None,
                },
                obs_is_dict=obs_is_dict,
                reset_frame=reset_frame,
                model=self._model_summary,
                deterministic=deterministic,
                wall_time=wall_time,
                attrs=documents.to_json(dict(attrs or {})),
                process_index=self.process_index,
            )
        except (ValueError, TypeError) as e:
            if self.strict:
                raise
            with self._lock:
                self.stats.dropped_invalid += 1
            self._warn("invalid", f"trajscope: capture dropped: {e}")
            return False
        if self.strict and self._error is not None:
            raise self._error
        if self._closed:
            self._warn("closed", "trajscope: capture dropped: the writer is closed")
            return False
        if kind == "live" and self._queue.qsize() >= max(1, self._queue.maxsize // 2):
            # Live chunks may use half the queue; evaluation captures keep the rest.
            with self._lock:
                self.stats.dropped_queue_full += 1
            return False
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            with self._lock:
                self.stats.dropped_queue_full += 1
            self._warn("full", "trajscope: capture dropped: the write queue is full (writing is slower than capturing)")
            return False
        with self._lock:
            self.stats.queued += 1
        return True

    @property
    def control_dt_s(self) -> float | None:
        """Seconds between captured steps, as stored in ``run.json``."""
        dt = self._metadata.get("control_dt_s")
        return float(dt) if dt else None

    def live_control(self) -> LiveControl:
        """The viewers' switch of this run's live stream (off when none was written)."""
        return _live.read_live_control(self.url)

    def set_live_status(self, status: LiveStatus) -> None:
        """Replace ``live/status.json``; written in order with the chunks, and only the
        newest of several pending statuses. Only process 0 of a multi-process training
        reports the stream's status (see ``process_index``)."""
        if not self._leader:
            return
        with self._lock:
            pending = self._live_status is not None
            self._live_status = status
        if not pending:
            try:
                self._queue.put_nowait(_job.Job("", {"live_status": True}, []))
            except queue.Full:
                with self._lock:
                    self._live_status = None

    def set_metadata(self, **fields: Any) -> None:
        """Update run metadata (``config``, ``tags``, ``env_name``, ...); written in order
        (by process 0 only, in a multi-process training)."""
        self._metadata.update(documents.to_json(fields))
        if not self._leader:
            return
        try:
            self._queue.put_nowait(_job.Job("", {"metadata": True}, []))
        except queue.Full:
            pass  # the next capture's write also rewrites run.json

    def write_file(self, relpath: str, data: bytes) -> str:
        """Write a derived file into the run (``videos/<capture id>.mp4``, ...), whole and
        renamed into place; returns its URL. Synchronous: call it off the training loop.
        ``relpath`` must stay inside the run: no ``..``, no absolute path."""
        parts = relpath.split("/")
        if relpath.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"{relpath!r} is not a path inside the run")
        path = _fs.join(self.path, *parts)
        _fs.makedirs(self._fs, _fs.join(self.path, *parts[:-1]))
        _fs.write_atomic(self._fs, path, data)
        return _fs.url(self._fs, path)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is written or dropped. True if it was."""
        ev = threading.Event()
        deadline = None if timeout is None else time.monotonic() + timeout

        def expired() -> bool:
            return not self._thread.is_alive() or (deadline is not None and time.monotonic() > deadline)

        while True:
            try:
                self._queue.put(_job.Job("", {}, [], done=ev), timeout=0.1)
                break
            except queue.Full:
                if expired():
                    return False
        ok = False
        while not ok and not expired():
            ok = ev.wait(0.1)
        if self.strict and self._error is not None:
            raise self._error
        return ok

    def close(self, timeout: float | None = None) -> None:
        """Write what is queued (waiting at most ``timeout``, default ``close_timeout_s``
        seconds), then stop the writer thread."""
        if self._closed:
            return
        timeout = self.close_timeout_s if timeout is None else timeout
        if not self.flush(timeout):
            left = self._queue.qsize()
            with self._lock:
                self.stats.dropped_at_close += left
                self._abandoned = True  # the thread drops what is left instead of writing it late
            self._warn("close", f"trajscope: {left} capture(s) not written to {self.url} within {timeout:.0f} s")
        self._closed = True
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            pass
        self._thread.join(timeout)
        atexit.unregister(self._atexit)
        if self.strict and self._error is not None:
            raise self._error

    def _warn(self, what: str, message: str) -> None:
        with self._lock:
            self.stats.last_error = message
            if what in self._warned:
                return
            self._warned.add(what)
        warn(message + " (further such warnings are counted in RunWriter.stats)", strict=self.strict)

    # ------------------------------------------------------------ writer thread

    def _run(self) -> None:
        if not self._ready:
            try:
                self._setup()
            except Exception as e:  # noqa: BLE001 - retried at the next capture
                self._warn(
                    f"setup:{type(e).__name__}", f"trajscope: cannot create run {self.url}: {type(e).__name__}: {e}"
                )
        while True:
            job = self._queue.get()
            if job is None:
                return
            if job.done is not None:
                job.done.set()
                continue
            if self._abandoned:
                continue
            try:
                self._process(job)
            except Exception:  # noqa: BLE001 - the thread lives until closed (strict errors are in _error)
                pass

    def _process(self, job: _job.Job) -> None:
        try:
            if not self._ready or (self._leader and not self._fs.exists(_fs.join(self.path, schema.RUN_FILE))):
                self._setup()  # first use, an earlier failure, or the run folder vanished
            if job.header.get("metadata"):
                self._write_metadata()
                return
            if job.header.get("live_status"):
                with self._lock:
                    status, self._live_status = self._live_status, None
                if status is not None:
                    _live.write_status(self._fs, self.path, status)
                return
            nbytes = self._write_capture(job)
            if job.header["kind"] == "live":
                _live.prune(self._fs, self.path, self.keep_live, process_index=self.process_index)
            with self._lock:
                self.stats.written += 1
                self.stats.live_written += job.header["kind"] == "live"
                self.stats.bytes_written += nbytes
        except Exception as e:  # noqa: BLE001 - nothing may escape into training
            if job.capture_id:
                with self._lock:
                    self.stats.dropped_write_error += 1
                self._cleanup(job)
            if self._error is None:
                self._error = e
            self._warn(
                f"write:{type(e).__name__}",
                f"trajscope: capture not written to {self.url}: {type(e).__name__}: {e}",
            )

    def _setup(self) -> None:
        fs = self._fs
        _fs.makedirs(fs, _fs.join(self.path, schema.CAPTURES_DIR), durable=True)
        if not self._leader:
            self._ready = True  # process 0 writes the run's metadata and model
            return
        run_file = _fs.join(self.path, schema.RUN_FILE)
        # Deleted while training writes it: made again (metadata and model) below, so the
        # captures still to come are kept; those written before are gone. Said, not silent.
        vanished = self._ready and not fs.exists(run_file)
        if fs.exists(run_file):
            existing = self._check_same_model()
            # Appending to a run: keep its identity, update what this writer knows.
            keep = {k: existing[k] for k in ("created_unix_s", "created_iso") if k in existing}
            for k, v in existing.items():
                if self._metadata.get(k) in (None, {}, []):
                    self._metadata[k] = v
            self._metadata.update(keep)
        if self._model_bytes is not None:
            _fs.makedirs(fs, _fs.join(self.path, schema.MODEL_DIR))
            mjb = _fs.join(self.path, schema.MODEL_MJB)
            if not fs.exists(mjb):
                _fs.write_atomic(fs, mjb, zlib.compress(self._model_bytes, 6))
            if self._model_xml is not None:
                _fs.write_atomic(fs, _fs.join(self.path, schema.MODEL_XML), self._model_xml.encode())
            for rel, data in self._model_assets.items():
                p = _fs.join(self.path, schema.MODEL_ASSETS_DIR, rel)
                _fs.makedirs(fs, p.rsplit("/", 1)[0])
                _fs.write_atomic(fs, p, data)
        self._write_metadata()
        if vanished:
            with self._lock:
                self.stats.recreated += 1
            self._warn("recreated", f"trajscope: run folder {self.url} vanished; recreated for the captures to come")
        self._ready = True

    def _check_same_model(self) -> dict[str, Any]:
        """The existing ``run.json`` of the run being appended to; a :class:`RunConflict`
        when the run holds another model than this writer's (their captures would be
        drawn with the wrong model). The model is compared once per writer."""
        fs, root = self._fs, _fs.run_root(self._fs, self.path)
        run_file = _fs.join(self.path, schema.RUN_FILE)
        existing = documents.parse_run(run_file, _fs.read(fs, run_file, root=root, limit=_fs.max_json_bytes()))
        if self._model_bytes is None or self._same_model:
            return existing
        theirs = existing.get("model")
        differs = theirs is not None and any(theirs.get(k) != v for k, v in (self._model_summary or {}).items())
        mjb = _fs.join(self.path, schema.MODEL_MJB)
        if not differs and fs.exists(mjb):
            try:
                data = _fs.read(fs, mjb, root=root, limit=_fs.max_model_bytes())
                differs = _model.inflate(mjb, data, _fs.max_model_bytes()) != self._model_bytes
            except (OSError, FormatError):
                differs = True
        if differs:
            raise RunConflict(
                f"run {self.url} already holds another model than this writer's; a writer appends to an "
                "existing run only with the same model: name the run differently (or give no name for a fresh one)"
            )
        self._same_model = True
        return existing

    def _write_metadata(self) -> None:
        if not self._leader:
            return
        data = documents.dumps(self._metadata, indent=2)
        _fs.write_atomic(self._fs, _fs.join(self.path, schema.RUN_FILE), data)

    def _write_capture(self, job: _job.Job) -> int:
        fs = self._fs
        folder = _fs.join(self.path, schema.capture_dir(job.header["kind"]))
        durable = job.header["kind"] != "live"
        cdir = _fs.join(folder, job.capture_id)
        files, manifest = _job.encode(
            job,
            compress=self.compress,
            lossless_images=self.lossless_images,
            delta=self.delta,
            obs_float16=self.obs_float16,
        )
        _fs.makedirs(fs, cdir, durable=durable)
        total = 0
        for fname, data in files:
            _fs.write_file(fs, _fs.join(cdir, fname), data, durable=durable)
            total += len(data)
        data = documents.dumps(manifest, indent=1)
        _fs.write_atomic(fs, _fs.join(cdir, schema.MANIFEST_FILE), data, durable=durable)
        return total + len(data)

    def _cleanup(self, job: _job.Job) -> None:
        try:
            cdir = _fs.join(self.path, schema.capture_dir(job.header["kind"]), job.capture_id)
            if self._fs.exists(cdir) and not self._fs.exists(_fs.join(cdir, schema.MANIFEST_FILE)):
                self._fs.rm(cdir, recursive=True)
        except Exception:  # noqa: BLE001 - best effort; readers ignore manifest-less folders
            pass
