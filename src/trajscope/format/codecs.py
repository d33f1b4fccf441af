"""Array files: the ``.npy`` format (never pickled), read whole or one environment."""

from __future__ import annotations

import ast
import io
import math
import zlib
from collections.abc import Callable

import numpy as np

from .errors import FormatError

_MAGIC = b"\x93NUMPY"


def encode(array: np.ndarray) -> bytes:
    """``.npy`` bytes of ``array`` (C order). Object arrays are refused."""
    if array.dtype.hasobject:
        raise TypeError("object arrays cannot be stored (they would need pickle)")
    buf = io.BytesIO()
    # Not np.ascontiguousarray: it turns 0-d arrays into 1-d ones.
    np.lib.format.write_array(buf, np.asarray(array, order="C"), allow_pickle=False)
    return buf.getvalue()


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def _parse_header(path: str, head: bytes) -> tuple[np.dtype, tuple[int, ...], int]:
    """dtype, shape and data offset from the first bytes of a ``.npy`` file."""
    if len(head) < 10 or head[:6] != _MAGIC:
        raise FormatError(path, "not a .npy array file (bad magic bytes)")
    major = head[6]
    if major == 1:
        hlen = int.from_bytes(head[8:10], "little")
        start = 10
    elif major in (2, 3):
        hlen = int.from_bytes(head[8:12], "little")
        start = 12
    else:
        raise FormatError(path, f"unknown .npy format version {major}")
    if len(head) < start + hlen:
        raise FormatError(path, "truncated .npy header")
    try:
        header = ast.literal_eval(head[start : start + hlen].decode("latin1"))
        dtype = np.dtype(header["descr"])
        shape = tuple(int(d) for d in header["shape"])
        fortran = bool(header["fortran_order"])
    except Exception as e:  # noqa: BLE001 - any parse failure is a format error
        raise FormatError(path, f"corrupt .npy header ({str(e)[:200]})") from None
    if any(d < 0 for d in shape) or math.prod(shape) * dtype.itemsize >= 2**62:
        raise FormatError(path, f"impossible .npy shape {str(shape)[:200]}")
    if dtype.hasobject:
        raise FormatError(path, "object arrays are refused (they would need pickle)")
    if fortran:
        raise FormatError(path, "Fortran-ordered arrays are not written by trajscope")
    return dtype, shape, start + hlen


def decode(path: str, data: bytes, *, expect_crc: int | None = None) -> np.ndarray:
    """The array in ``data`` (a whole ``.npy`` file), checked for truncation and crc."""
    dtype, shape, offset = _parse_header(path, data[:4096])
    expected = offset + math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise FormatError(path, f"truncated or padded: {len(data)} bytes, expected {expected}")
    if expect_crc is not None and crc32(data) != expect_crc:
        raise FormatError(path, "checksum mismatch: the file is corrupt")
    return np.frombuffer(data, dtype=dtype, offset=offset).reshape(shape)


def read_leading(path: str, read_range: Callable[[int, int], bytes], index: int, *, file_size: int) -> np.ndarray:
    """``array[index]`` along the first axis, reading only that byte range
    (``read_range(start, end)`` gives the file's bytes ``[start, end)``)."""
    head = read_range(0, min(4096, file_size))
    dtype, shape, offset = _parse_header(path, head)
    if not shape:
        raise FormatError(path, "scalar array has no leading axis")
    if not 0 <= index < shape[0]:
        raise IndexError(f"{path}: index {index} out of range for {shape[0]} entries")
    expected = offset + math.prod(shape) * dtype.itemsize
    if file_size != expected:
        raise FormatError(path, f"truncated or padded: {file_size} bytes, expected {expected}")
    row = math.prod(shape[1:]) * dtype.itemsize
    data = read_range(offset + index * row, offset + (index + 1) * row)
    if len(data) != row:
        raise FormatError(path, "truncated while reading")
    return np.frombuffer(data, dtype=dtype).reshape(shape[1:])


# ---------------------------------------------------------------------------- zlib-shuffle
# Per-step arrays compress well once the bytes of each float are grouped by significance
# (exponents together, mantissas together), and better still where environments sit still
# after their episode ended. Each leading index (environment) is its own zlib stream, so one
# environment is still one byte range.

CODEC_NPY = "npy"
CODEC_ZS = "zlib-shuffle"
CODEC_ZSD = "zlib-shuffle-delta"
"""zlib-shuffle of each chunk's differences along its first axis (time, for per-step arrays),
taken on the values' bits as unsigned integers: lossless, bit for bit (NaN, -0.0 included)."""
CODECS_ZS = (CODEC_ZS, CODEC_ZSD)

_UINT = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def can_delta(dtype: np.dtype) -> bool:
    return dtype.kind in "biuf" and dtype.itemsize in _UINT


def _delta(a: np.ndarray) -> np.ndarray:
    """Differences along the first axis of the values' bits (wrapping unsigned integers)."""
    u = np.ascontiguousarray(a).view(_UINT[a.dtype.itemsize])
    if u.ndim == 0 or u.shape[0] < 2:
        return u
    d = u.copy()
    d[1:] = u[1:] - u[:-1]
    return d


def _undelta(u: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if u.ndim == 0 or u.shape[0] < 2:
        return u.view(dtype)
    return np.cumsum(u, axis=0, dtype=u.dtype).view(dtype)


def _shuffle(a: np.ndarray) -> bytes:
    it = a.dtype.itemsize
    raw = np.ascontiguousarray(a).reshape(-1).view(np.uint8)
    return raw.reshape(-1, it).T.tobytes() if it > 1 else raw.tobytes()


def _unshuffle(data: bytes, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    it = dtype.itemsize
    b = np.frombuffer(data, dtype=np.uint8)
    if it > 1:
        b = b.reshape(it, -1).T
    return np.ascontiguousarray(b).view(dtype).reshape(shape)


def encode_zs(stored: np.ndarray, *, chunked: bool, level: int = 1, delta: bool = False) -> tuple[bytes, list[int]]:
    """Concatenated zlib streams, one per leading index if ``chunked`` (else one), and
    their byte offsets (streams + 1). ``delta``: each chunk delta-coded along its first
    axis first (``CODEC_ZSD``)."""
    if delta and not can_delta(stored.dtype):
        raise TypeError(f"{stored.dtype} cannot be delta-coded")
    if stored.dtype.hasobject:
        raise TypeError("object arrays cannot be stored (they would need pickle)")
    if chunked and stored.ndim >= 1 and stored.shape[0] > 0:
        parts = [stored[i] for i in range(stored.shape[0])]
    else:
        parts = [stored]
    blobs = [zlib.compress(_shuffle(_delta(np.asarray(p)) if delta else np.asarray(p)), level) for p in parts]
    offsets = [0]
    for b in blobs:
        offsets.append(offsets[-1] + len(b))
    return b"".join(blobs), offsets


def decode_zs_chunk(
    path: str, blob: bytes, dtype: np.dtype, shape: tuple[int, ...], *, delta: bool = False
) -> np.ndarray:
    """One leading index (``shape`` is its shape) from its zlib stream."""
    want = math.prod(shape) * dtype.itemsize
    try:
        # Never more than the manifest declares (plus one byte, to tell "too long"): a
        # corrupt stream or a declared shape of 10^12 values cannot make it allocate more
        # than the file's real content.
        d = zlib.decompressobj()
        data = d.decompress(blob, want + 1)
    except zlib.error as e:
        raise FormatError(path, f"corrupt compressed data ({e})") from None
    if len(data) == want and (not d.eof or d.unused_data):
        raise FormatError(path, "corrupt compressed data (the stream does not end where the manifest says)")
    if len(data) != want:
        raise FormatError(path, f"decompressed to {len(data)} bytes, expected {want}")
    if delta:
        if not can_delta(dtype):
            raise FormatError(path, f"{dtype} cannot be delta-coded")
        return _undelta(_unshuffle(data, np.dtype(_UINT[dtype.itemsize]), shape), dtype)
    return _unshuffle(data, dtype, shape)


def decode_zs(
    path: str,
    data: bytes,
    offsets: list[int],
    dtype: np.dtype,
    shape: tuple[int, ...],
    *,
    expect_crc: int | None,
    delta: bool = False,
) -> np.ndarray:
    """The whole array from a zlib-shuffle file."""
    if len(data) != offsets[-1]:
        raise FormatError(path, f"truncated or padded: {len(data)} bytes, expected {offsets[-1]}")
    if expect_crc is not None and crc32(data) != expect_crc:
        raise FormatError(path, "checksum mismatch: the file is corrupt")
    n = len(offsets) - 1
    if len(shape) >= 1 and shape[0] == n and n > 0:
        rows = [
            decode_zs_chunk(path, data[offsets[i] : offsets[i + 1]], dtype, shape[1:], delta=delta) for i in range(n)
        ]
        return np.stack(rows).reshape(shape)
    return decode_zs_chunk(path, data, dtype, shape, delta=delta)
