"""The live stream's files on a filesystem: training's status, the viewers' switch, and
pruning old chunks. Their contents are defined in ``_documents`` (:class:`LiveStatus`,
:class:`LiveControl`).

Live chunks themselves are captures of kind ``live`` in ``live/`` (see ``_schema``). The
stream's state travels through the run directory, so a viewer in the training process
and a ``trajscope view`` in another process (or on another machine sharing the
filesystem) work the same way:

- ``live/control.json`` is written by viewers. Training streams only while it says
  ``on`` and a viewer has renewed it within ``LiveControl.LEASE_S`` seconds, so a crashed
  or closed viewer switches the stream off by itself.
- ``live/status.json`` is written by training (through :class:`RunWriter`): how far
  training is, whether it streams, and the newest chunk.
"""

from __future__ import annotations

import os
import time

import fsspec

from ..format import schema
from ..format.documents import LiveControl, LiveStatus, dumps
from ..format.errors import FormatError
from . import _fs


def read_live_control(run: str | os.PathLike[str]) -> LiveControl:
    """The viewers' switch for a run folder or URL; off when missing or unreadable."""
    fs, path = _fs.resolve(run)
    p = _fs.join(path, schema.LIVE_CONTROL)
    try:
        return LiveControl.parse(p, _read(fs, path, p))
    except (OSError, FormatError):
        return LiveControl()


def _read(fs: fsspec.AbstractFileSystem, run_path: str, p: str) -> bytes:
    root = _fs.run_root(fs, run_path)
    return _fs.read(fs, p, root=root, limit=_fs.max_json_bytes())


def write_live_control(run: str | os.PathLike[str], *, on: bool, rate: float = 1.0) -> LiveControl:
    """Switch the live stream of a run on or off (and renew the lease). Raises ``OSError``
    when the run directory cannot be written."""
    fs, path = _fs.resolve(run)
    ctl = LiveControl(on=on, rate=rate, updated_unix_s=time.time())
    _fs.run_subdir(fs, path, schema.LIVE_DIR)
    _fs.write_atomic(fs, _fs.join(path, schema.LIVE_CONTROL), dumps(ctl.to_json()), durable=False)
    return ctl


def read_status(fs: fsspec.AbstractFileSystem, run_path: str) -> LiveStatus | None:
    """Training's report, or None when the run has never streamed (or it is unreadable)."""
    p = _fs.join(run_path, schema.LIVE_STATUS)
    try:
        return LiveStatus.parse(p, _read(fs, run_path, p))
    except (OSError, FormatError):
        return None


def write_status(fs: fsspec.AbstractFileSystem, run_path: str, status: LiveStatus) -> None:
    _fs.makedirs(fs, _fs.join(run_path, schema.LIVE_DIR))
    _fs.write_atomic(fs, _fs.join(run_path, schema.LIVE_STATUS), dumps(status.to_json()), durable=False)


def chunk_names(fs: fsspec.AbstractFileSystem, run_path: str, *, root: str | None = None) -> list[str]:
    """The chunk folders now in ``live/``, oldest first (none if ``live/`` is a link that
    leaves ``root``)."""
    names = _fs.ls_names(fs, _fs.join(run_path, schema.LIVE_DIR), root=root)
    return [n for n in names if schema.is_live_chunk(n)]


def prune(fs: fsspec.AbstractFileSystem, run_path: str, keep: int, *, process_index: int | None = None) -> None:
    """Delete all but the newest ``keep`` chunks of this writer's process (manifest first,
    so readers stop listing a chunk before its arrays go). Processes of a multi-process
    training each prune their own chunks only."""
    names = [n for n in chunk_names(fs, run_path) if schema.process_of(n) == process_index]
    for n in names[: max(0, len(names) - keep)]:
        cdir = _fs.join(run_path, schema.LIVE_DIR, n)
        try:
            manifest = _fs.join(cdir, schema.MANIFEST_FILE)
            if fs.exists(manifest):
                fs.rm(manifest)
            fs.rm(cdir, recursive=True)
        except OSError:
            pass  # a reader on Windows, or already gone: try again next time
