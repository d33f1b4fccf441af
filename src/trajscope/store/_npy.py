"""Array files: the ``.npy`` format (never pickled), read whole or one environment."""

from __future__ import annotations

import ast
import io
import zlib
from typing import IO

import numpy as np

from ._errors import FormatError

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
        raise FormatError(path, f"corrupt .npy header ({e})") from None
    if dtype.hasobject:
        raise FormatError(path, "object arrays are refused (they would need pickle)")
    if fortran:
        raise FormatError(path, "Fortran-ordered arrays are not written by trajscope")
    return dtype, shape, start + hlen


def decode(path: str, data: bytes, *, expect_crc: int | None = None) -> np.ndarray:
    """The array in ``data`` (a whole ``.npy`` file), checked for truncation and crc."""
    dtype, shape, offset = _parse_header(path, data[:4096])
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise FormatError(path, f"truncated or padded: {len(data)} bytes, expected {expected}")
    if expect_crc is not None and crc32(data) != expect_crc:
        raise FormatError(path, "checksum mismatch: the file is corrupt")
    return np.frombuffer(data, dtype=dtype, offset=offset).reshape(shape)


def read_leading(path: str, f: IO[bytes], index: int, *, file_size: int) -> np.ndarray:
    """``array[index]`` along the first axis, reading only that byte range."""
    head = f.read(4096)
    dtype, shape, offset = _parse_header(path, head)
    if not shape:
        raise FormatError(path, "scalar array has no leading axis")
    if not 0 <= index < shape[0]:
        raise IndexError(f"{path}: index {index} out of range for {shape[0]} entries")
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if file_size != expected:
        raise FormatError(path, f"truncated or padded: {file_size} bytes, expected {expected}")
    row = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    f.seek(offset + index * row)
    data = f.read(row)
    if len(data) != row:
        raise FormatError(path, "truncated while reading")
    return np.frombuffer(data, dtype=dtype).reshape(shape[1:])
