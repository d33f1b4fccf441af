"""A local cache of capture bytes read from remote filesystems.

A capture's array files never change once its manifest is written, so bytes read from an
object store or SSH server are kept on local disk and read from there the next time (the
viewer going back to a checkpoint, a second ``trajscope view`` of the same run, an
analysis after a viewing). Entries are keyed by the file's URL, the byte range and the
manifest's size and checksum of the file, so a rewritten run never reads stale bytes.

``$TRAJSCOPE_CACHE``: the folder (default ``~/.cache/trajscope``), or ``off``.
``$TRAJSCOPE_CACHE_MB``: its size bound (default 2048); the least recently used entries
go first. Local runs are never cached.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

ENV_DIR = "TRAJSCOPE_CACHE"
ENV_MB = "TRAJSCOPE_CACHE_MB"

_lock = threading.Lock()
_sizes: dict[str, int] = {}
"""Approximate bytes held, per cache folder (scanned once, then counted)."""


def folder() -> Path | None:
    """The cache folder, or None when caching is off."""
    where = os.environ.get(ENV_DIR, "")
    if where.lower() in ("off", "0", "none"):
        return None
    return Path(where).expanduser() if where else Path.home() / ".cache" / "trajscope"


def limit_bytes() -> int:
    try:
        return int(float(os.environ.get(ENV_MB, "2048")) * 2**20)
    except ValueError:
        return 2048 * 2**20


def cached(url: str, tag: str, start: int | None, end: int | None, read: Callable[[], bytes]) -> bytes:
    """``read()``'s bytes, from the cache when an earlier call stored them.

    ``tag`` identifies the file's content (the manifest's size and checksum). A cache that
    cannot be read or written (full disk, no home folder) falls back to ``read()``.
    """
    root = folder()
    if root is None:
        return read()
    key = hashlib.sha256(f"{url}\0{tag}\0{start}\0{end}".encode()).hexdigest()
    path = root / key[:2] / key
    try:
        data = path.read_bytes()
        os.utime(path)  # most recently used
        return data
    except OSError:
        pass
    data = read()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{key}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        _account(root, len(data))
    except OSError:
        pass
    return data


def _account(root: Path, added: int) -> None:
    key = str(root)
    with _lock:
        if key not in _sizes:
            _sizes[key] = sum(p.stat().st_size for p in root.glob("*/*") if p.is_file())
        else:
            _sizes[key] += added
        if _sizes[key] <= limit_bytes():
            return
        entries = sorted((p.stat().st_mtime, p.stat().st_size, p) for p in root.glob("*/*") if p.is_file())
        total = sum(s for _, s, _ in entries)
        for _, s, p in entries:
            if total <= limit_bytes() * 0.8:
                break
            try:
                p.unlink()
                total -= s
            except OSError:
                pass
        _sizes[key] = total
