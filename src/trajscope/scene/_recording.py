"""Posed environments as the browser plays them: geom poses quantised to 16 bits,
coded as differences between steps, byte-planed and deflated, in blocks of steps.

A block of ``T`` steps of ``N`` environments and ``G`` drawn geoms is one byte string:

- a little-endian header of ``uint32``: magic ``0x54535242`` ("TSRB"), version, ``T``,
  ``N``, ``G``;
- ``float32 (G, 3)`` lowest position of each geom over the block, then ``float32 (G, 3)``
  the step of one quantum (``(highest - lowest) / 65535``);
- positions ``uint16 (T, G, N, 3)``: ``round((p - lowest) / quantum)``; orientations
  ``int16 (T, G, N, 4)``: ``round(q * 32767)`` with ``w >= 0``; each coded as its
  difference from the step before (the first step as is, wrapping modulo 2**16), the two
  arrays one after the other, all low bytes of that run then all high bytes;

all of it but the header through zlib (``deflate`` in a browser's ``DecompressionStream``).
Positions are each environment's own (before any grid offset): moving environments apart
never sends poses again. The error is half a quantum: a tenth of a millimetre for a body
that moves 10 m within a block, 1.5e-5 in a quaternion component.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

MAGIC = 0x54535242
VERSION = 1
HEADER = struct.Struct("<5I")
BLOCK_STEPS = 32
"""Steps per block: a browser draws the first frame once the first block has come."""


def _planes(a: np.ndarray) -> bytes:
    b = np.ascontiguousarray(a).view(np.uint8).reshape(-1, 2)
    return b[:, 0].tobytes() + b[:, 1].tobytes()


def _unplanes(raw: bytes, n: int, dtype: type) -> np.ndarray:
    b = np.frombuffer(raw, np.uint8, count=2 * n)
    out = np.empty((n, 2), np.uint8)
    out[:, 0], out[:, 1] = b[:n], b[n:]
    return out.reshape(-1).view(dtype)


def encode_block(pos: np.ndarray, wxyz: np.ndarray, *, level: int = 1) -> bytes:
    """One block from positions ``(T, N, G, 3)`` and orientations ``(T, N, G, 4)`` (finite;
    the caller holds a non-finite environment at its last finite pose)."""
    pos = np.asarray(pos, np.float64).transpose(0, 2, 1, 3)  # (T, G, N, 3)
    q = np.asarray(wxyz, np.float64).transpose(0, 2, 1, 3)
    T, G, N, _ = pos.shape
    lo = pos.min(axis=(0, 2)) if T and N else np.zeros((G, 3))
    hi = pos.max(axis=(0, 2)) if T and N else np.zeros((G, 3))
    quantum = np.maximum((hi - lo) / 65535.0, 1e-9).astype(np.float32)
    lo32 = lo.astype(np.float32)
    qp = np.rint((pos - lo32.astype(np.float64)[None, :, None]) / quantum.astype(np.float64)[None, :, None])
    qp = np.clip(qp, 0, 65535).astype(np.uint16)
    q = np.where(q[..., :1] < 0, -q, q)  # one sign for each rotation: smaller differences
    qq = np.clip(np.rint(q * 32767.0), -32767, 32767).astype(np.int16).view(np.uint16)
    dp, dq = qp.copy(), qq.copy()
    dp[1:] -= qp[:-1]  # uint16 arithmetic wraps: the decoder's running sum undoes it
    dq[1:] -= qq[:-1]
    body = lo32.tobytes() + quantum.tobytes() + _planes(dp) + _planes(dq)
    return HEADER.pack(MAGIC, VERSION, T, N, G) + zlib.compress(body, level)


def decode_block(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Positions ``(T, N, G, 3)`` and orientations ``(T, N, G, 4)`` float32 of a block
    (what the browser's player computes; used by tests and the export)."""
    magic, version, T, N, G = HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION:
        raise ValueError("not a trajscope pose block of a known version")
    body = zlib.decompress(data[HEADER.size :])
    lo = np.frombuffer(body, np.float32, G * 3, 0).reshape(G, 3)
    quantum = np.frombuffer(body, np.float32, G * 3, 12 * G).reshape(G, 3)
    off = 24 * G
    n_p, n_q = T * G * N * 3, T * G * N * 4
    dp = _unplanes(body[off : off + 2 * n_p], n_p, np.uint16).reshape(T, G, N, 3)
    dq = _unplanes(body[off + 2 * n_p : off + 2 * n_p + 2 * n_q], n_q, np.uint16).reshape(T, G, N, 4)
    qp = np.cumsum(dp, axis=0, dtype=np.uint16)
    qq = np.cumsum(dq, axis=0, dtype=np.uint16).view(np.int16)
    pos = lo[None, :, None] + qp.astype(np.float32) * quantum[None, :, None]
    wxyz = qq.astype(np.float32) / 32767.0
    return pos.transpose(0, 2, 1, 3), wxyz.transpose(0, 2, 1, 3)
