"""Paths and URLs: local folders and fsspec filesystems behind one small interface."""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

import fsspec
from fsspec.dircache import DirCache
from fsspec.implementations.local import LocalFileSystem

ENV_ROOT = "TRAJSCOPE_DIR"
DEFAULT_ROOT = "./trajscope_runs"


def default_root() -> str:
    """``$TRAJSCOPE_DIR`` if set, else ``./trajscope_runs``."""
    return os.environ.get(ENV_ROOT) or DEFAULT_ROOT


OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss", "r2"})
"""Protocols whose folders are key prefixes: nothing to create, and a missing bucket is an
error to report, never one to mend by creating a bucket."""


def resolve(path_or_url: str | os.PathLike[str]) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem and the path inside it; local paths become absolute.

    Remote filesystems list afresh every time: fsspec's listings cache would hide the
    captures another process (the training) adds while a viewer follows the run.
    """
    text = os.fspath(path_or_url)
    if "://" not in text:
        return LocalFileSystem(), Path(text).expanduser().resolve().as_posix()
    fs, path = fsspec.core.url_to_fs(text)
    if isinstance(getattr(fs, "dircache", None), DirCache) and fs.dircache.use_listings_cache:
        fs.dircache = DirCache(use_listings_cache=False)
    return fs, path.rstrip("/") or path


def is_object_store(fs: fsspec.AbstractFileSystem) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    return any(p in OBJECT_STORES for p in protocols)


def resolve_root(root: str | os.PathLike[str] | None) -> tuple[fsspec.AbstractFileSystem, str]:
    """:func:`resolve` of a root of runs, :func:`default_root` when None."""
    return resolve(os.fspath(root) if root is not None else default_root())


def url(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """What a user names: the local path, or the URL with its protocol."""
    return path if is_local(fs) else fs.unstrip_protocol(path)


def cat(fs: fsspec.AbstractFileSystem, path: str, start: int | None = None, end: int | None = None) -> bytes:
    """A file's bytes, whole or ``[start, end)``.

    Ranges on object stores are HTTP range requests; elsewhere a seek and a read (sshfs's
    ``cat_file`` ignores ``start`` and ``end`` and returns the whole file).
    """
    if start is not None and not is_local(fs) and not is_object_store(fs):
        with fs.open(path, "rb") as f:
            f.seek(start)
            data = f.read() if end is None else f.read(end - start)
        assert isinstance(data, bytes)
        return data
    data = fs.cat_file(path, start=start, end=end)
    assert isinstance(data, bytes)
    return data


def size(fs: fsspec.AbstractFileSystem, path: str) -> int:
    return int(fs.size(path) or 0)


def join(*parts: str) -> str:
    return posixpath.join(*parts)


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return isinstance(fs, LocalFileSystem)


def write_atomic(fs: fsspec.AbstractFileSystem, path: str, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` so that readers see the old file or the whole new one, never part.

    Locally: a temporary file in the same folder, fsync, then ``os.replace``. Object
    stores replace a whole object in one request already.
    """
    if is_local(fs):
        tmp = f"{path}.tmp-{os.getpid()}"
        write_file(fs, tmp, data, durable=durable)
        os.replace(tmp, path)
        return
    tmp = f"{path}.tmp"
    fs.pipe_file(tmp, data)
    fs.mv(tmp, path)


def write_file(fs: fsspec.AbstractFileSystem, path: str, data: bytes, *, durable: bool = True) -> None:
    """Write a whole file (no atomicity: the manifest written last commits it).

    ``durable``: fsync local files (captures); the live stream's short-lived chunks skip it.
    """
    if is_local(fs):
        with open(path, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        return
    fs.pipe_file(path, data)


def ls_names(fs: fsspec.AbstractFileSystem, path: str) -> list[str]:
    """The names of the entries of a folder, sorted; none if it does not exist."""
    try:
        return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False))
    except FileNotFoundError:
        return []


def makedirs(fs: fsspec.AbstractFileSystem, path: str) -> None:
    """Create a folder and its parents; nothing on object stores (see :data:`OBJECT_STORES`)."""
    if is_local(fs):
        os.makedirs(path, exist_ok=True)
    elif not is_object_store(fs):
        fs.makedirs(path, exist_ok=True)
