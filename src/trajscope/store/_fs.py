"""Paths and URLs: local folders and fsspec filesystems behind one small interface."""

from __future__ import annotations

import os
import posixpath
import stat
import sys
import threading
import uuid
from pathlib import Path

import fsspec
from fsspec.dircache import DirCache
from fsspec.implementations.local import LocalFileSystem

from ..format.errors import FormatError

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


# ---------------------------------------------------------------------------- untrusted reads


def _env_mb(name: str, default_mb: float) -> int:
    try:
        mb = float(os.environ.get(name, default_mb))
    except ValueError:
        mb = default_mb
    return int(max(mb, 0.0) * 2**20)


def max_json_bytes() -> int:
    """The largest JSON document of a run read (``$TRAJSCOPE_MAX_JSON_MB``, default 64)."""
    return _env_mb("TRAJSCOPE_MAX_JSON_MB", 64)


def max_model_bytes() -> int:
    """The largest model a run may hold, compressed or inflated
    (``$TRAJSCOPE_MAX_MODEL_MB``, default 1024)."""
    return _env_mb("TRAJSCOPE_MAX_MODEL_MB", 1024)


def max_texture_bytes() -> int:
    """The most bytes a run's model may hold in textures (``$TRAJSCOPE_MAX_TEXTURE_MB``,
    default 64: a 4096 x 4096 RGB texture is 48 MB; the viewer holds a model's textures
    once more as images)."""
    return _env_mb("TRAJSCOPE_MAX_TEXTURE_MB", 64)


def max_capture_bytes() -> int:
    """The most one read of a capture may allocate: one array, one environment's slice, or
    what the viewer loads of a capture at once (``$TRAJSCOPE_MAX_CAPTURE_MB``, default 8192)."""
    return _env_mb("TRAJSCOPE_MAX_CAPTURE_MB", 8192)


def run_root(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """Where reads of the run at ``path`` must stay (:func:`read`'s ``root``): its folder
    with symlinks resolved, or the path itself on filesystems without links."""
    return os.path.realpath(path) if is_local(fs) else path


def leaves_root(fs: fsspec.AbstractFileSystem, path: str, root: str) -> str | None:
    """Where ``path`` really is when that is outside ``root`` (a link out of the run);
    None when it stays inside, does not exist, or the filesystem has no links."""
    if not is_local(fs) or not os.path.lexists(path):
        return None
    real = os.path.realpath(path)
    return None if _inside(real, root) else real


def _inside(real: str, root: str) -> bool:
    return real == root or real.startswith(root.rstrip("/") + "/")


def _real_of_fd(fd: int, path: str) -> str:
    """Where an open file really is (one system call on Linux)."""
    if sys.platform.startswith("linux"):
        try:
            return os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass
    return os.path.realpath(path)


def read(
    fs: fsspec.AbstractFileSystem,
    path: str,
    *,
    root: str,
    limit: int,
    start: int | None = None,
    end: int | None = None,
    expect_size: int | None = None,
) -> bytes:
    """The bytes of a file of a run, read as untrusted input.

    Only a regular file inside ``root`` (the run's folder) is read: a symlink that leaves
    it, a folder, a FIFO, a device or a socket is refused with a :class:`FormatError`
    before anything is read (a FIFO would block, a device never end). The file's size is
    checked before reading: against ``expect_size`` when the manifest declares it, and
    against ``limit`` always; ``start``/``end`` read a byte range. On remote filesystems,
    which have no FIFOs or devices, at most ``limit + 1`` bytes are asked for.
    Raises ``FileNotFoundError`` when the file does not exist.
    """
    if "\x00" in path:
        raise FormatError(path, "a file name with a NUL character")
    if not is_local(fs):
        return _read_remote(fs, path, limit=limit, start=start, end=end, expect_size=expect_size)
    try:
        st = os.stat(path)
    except NotADirectoryError:
        raise FileNotFoundError(path) from None
    if stat.S_ISDIR(st.st_mode):
        raise FormatError(path, "is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise FormatError(path, "is not a regular file (a FIFO, device or socket); refused")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        real = _real_of_fd(fd, path)
        if not _inside(real, root):
            raise FormatError(path, f"leaves the run: it is a link to {real[:200]!r}; refused")
        st = os.fstat(fd)  # the file opened, not the one looked at (a swap in between)
        if not stat.S_ISREG(st.st_mode):
            raise FormatError(path, "is not a regular file (a FIFO, device or socket); refused")
        n = st.st_size
        _check_size(path, n, limit=limit, expect_size=expect_size)
        lo = start or 0
        hi = n if end is None else min(end, n)
        want = max(0, hi - lo)
        if want > limit:
            raise FormatError(path, f"a read of {want} bytes, more than the {limit} allowed")
        chunks = []
        got = 0
        while got < want:
            b = os.pread(fd, min(want - got, 1 << 24), lo + got)
            if not b:
                break
            chunks.append(b)
            got += len(b)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _check_size(path: str, n: int, *, limit: int, expect_size: int | None) -> None:
    if expect_size is not None and n != expect_size:
        raise FormatError(path, f"truncated or padded: {n} bytes, the manifest says {expect_size}")
    if n > limit:
        raise FormatError(path, f"is {n} bytes, more than the {limit} allowed for it; refused")


def _read_remote(
    fs: fsspec.AbstractFileSystem,
    path: str,
    *,
    limit: int,
    start: int | None,
    end: int | None,
    expect_size: int | None,
) -> bytes:
    if start is None and end is None:
        cap = limit if expect_size is None else min(limit, expect_size)
        data = cat(fs, path, 0, cap + 1) if is_object_store(fs) else _read_capped(fs, path, cap + 1)
        if expect_size is not None:
            if len(data) != expect_size:
                raise FormatError(path, f"truncated or padded: the manifest says {expect_size} bytes")
        elif len(data) > limit:
            raise FormatError(path, f"is more than the {limit} bytes allowed for it; refused")
        return data
    lo = start or 0
    if end is not None and end - lo > limit:
        raise FormatError(path, f"a read of {end - lo} bytes, more than the {limit} allowed")
    return cat(fs, path, start, end)


def _read_capped(fs: fsspec.AbstractFileSystem, path: str, n: int) -> bytes:
    """At most ``n`` bytes of a file through ``open`` (sshfs's ``cat_file`` reads it whole)."""
    try:
        with fs.open(path, "rb") as f:
            data = f.read(n)
    except IsADirectoryError:
        raise FormatError(path, "is a folder, not a file") from None
    assert isinstance(data, bytes)
    return data


def join(*parts: str) -> str:
    return posixpath.join(*parts)


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return isinstance(fs, LocalFileSystem)


def write_atomic(fs: fsspec.AbstractFileSystem, path: str, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` so that readers see the old file or the whole new one, never part.

    Locally: a temporary file in the same folder, fsync, then ``os.replace``. Object
    stores replace a whole object in one request already.
    """
    # A name of its own per call: two writers (threads or processes) of one file must
    # never share a temporary file.
    tag = f"{os.getpid()}-{threading.get_ident()}-{uuid.uuid4().hex[:8]}"
    if is_local(fs):
        tmp = f"{path}.tmp-{tag}"
        try:
            write_file(fs, tmp, data, durable=durable)
            os.replace(tmp, path)
            if durable:
                fsync_dir(os.path.dirname(path))  # the rename itself survives a power loss
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return
    tmp = f"{path}.tmp-{tag}"
    fs.pipe_file(tmp, data)
    fs.mv(tmp, path)


def write_file(fs: fsspec.AbstractFileSystem, path: str, data: bytes, *, durable: bool = True) -> None:
    """Write a whole file (no atomicity: the manifest written last commits it).

    ``durable``: fsync local files (captures); the live stream's short-lived chunks skip it.
    """
    if is_local(fs):
        # Never through a link: a file planted as a link would have this write land elsewhere.
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        with os.fdopen(os.open(path, flags, 0o644), "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        return
    fs.pipe_file(path, data)


def ls_names(fs: fsspec.AbstractFileSystem, path: str, *, root: str | None = None) -> list[str]:
    """The names of the entries of a folder, sorted; none if it does not exist, or (with
    ``root``, from :func:`run_root`) if it is a link that leaves ``root`` or not a folder."""
    if root is not None and is_local(fs):
        if leaves_root(fs, path, root) is not None or (os.path.exists(path) and not os.path.isdir(path)):
            return []
    try:
        if is_local(fs):
            return sorted(os.listdir(path))
        return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False))
    except (FileNotFoundError, NotADirectoryError):
        return []


def run_subdir(fs: fsspec.AbstractFileSystem, run_path: str, name: str) -> str:
    """The folder ``name`` of a run, made if missing, for a reader's process to write into
    (the viewer's ``live/control.json``, ``trajscope analyse``'s ``analysis/``): refused with
    a ``PermissionError`` when it is a link, or lies outside the run, so that a run cannot
    make its reader write elsewhere."""
    path = join(run_path, name)
    if not is_local(fs):
        makedirs(fs, path)
        return path
    if os.path.islink(path):
        raise PermissionError(
            f"{path} is a link (to {os.path.realpath(path)[:200]!r}); trajscope writes only inside the run"
        )
    makedirs(fs, path)
    if not _inside(os.path.realpath(path), os.path.realpath(run_path)) or os.path.islink(path):
        raise PermissionError(f"{path} leaves the run; trajscope writes only inside it")
    return path


def fsync_dir(path: str) -> None:
    """Make a local folder's entries (files created, renamed or removed in it) durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def makedirs(fs: fsspec.AbstractFileSystem, path: str, *, durable: bool = False) -> None:
    """Create a folder and its parents; nothing on object stores (see :data:`OBJECT_STORES`).
    ``durable``: locally, each folder made is fsynced into its parent."""
    if is_local(fs):
        if durable:
            missing = []
            p = path
            while p and not os.path.isdir(p):
                missing.append(p)
                p = os.path.dirname(p)
            for d in reversed(missing):
                try:
                    os.mkdir(d)
                except FileExistsError:
                    continue
                fsync_dir(os.path.dirname(d))
            return
        os.makedirs(path, exist_ok=True)
    elif not is_object_store(fs):
        fs.makedirs(path, exist_ok=True)
