"""From caller arrays to stored arrays: pytrees flattened to named arrays, images to uint8."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from . import schema


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings, lists and dataclass-like objects to ``'a/b/0/c' -> leaf``."""
    out: dict[str, Any] = {}
    fields = getattr(tree, "_fields", None)  # NamedTuple
    if isinstance(tree, Mapping):
        items = [(str(k), v) for k, v in tree.items()]
    elif fields is not None:
        items = [(f, getattr(tree, f)) for f in fields]
    elif isinstance(tree, (list, tuple)):
        items = [(str(i), v) for i, v in enumerate(tree)]
    elif dataclasses.is_dataclass(tree) and not isinstance(tree, type):
        items = [(f.name, getattr(tree, f.name)) for f in dataclasses.fields(tree)]
    else:
        return {prefix: tree} if prefix else {"value": tree}
    for k, v in items:
        key = f"{prefix}/{k}" if prefix else k
        if v is None:
            continue
        if isinstance(v, (Mapping, list, tuple)) or (dataclasses.is_dataclass(v) and not isinstance(v, type)):
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


@dataclasses.dataclass
class ImageEncoding:
    """A float image stored as uint8: ``value = stored * scale + offset``."""

    value_range: tuple[float, float]
    source_dtype: str
    lossless: bool

    @property
    def scale(self) -> float:
        lo, hi = self.value_range
        return (hi - lo) / 255.0

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "affine_uint8",
            "value_range": list(self.value_range),
            "scale": self.scale,
            "offset": self.value_range[0],
            "source_dtype": self.source_dtype,
            "lossless": self.lossless,
        }


def encode_image(x: np.ndarray, *, lossless_only: bool) -> tuple[np.ndarray, dict[str, Any]]:
    """uint8 pixels and how to read them back as the values the policy saw.

    uint8 input is stored as is. Float input is mapped from its value range (the first of
    ``IMAGE_RANGES`` holding every finite value, else the data's min and max) to 0..255.
    ``lossless`` records whether decoding gives back exactly the input; with
    ``lossless_only`` a lossy image is stored unchanged instead.
    """
    if x.dtype == np.uint8:
        return x, {"kind": "raw", "value_range": [0, 255], "source_dtype": "uint8", "lossless": True}
    if not np.issubdtype(x.dtype, np.floating) and not np.issubdtype(x.dtype, np.integer):
        return x, {"kind": "raw", "source_dtype": str(x.dtype), "lossless": True}
    finite = np.isfinite(x)
    if not finite.all():
        # Non-finite pixels cannot be put into uint8; keep them as given.
        return x, {"kind": "raw", "source_dtype": str(x.dtype), "lossless": True}
    lo_d, hi_d = (float(x.min()), float(x.max())) if x.size else (0.0, 1.0)
    rng = next(((lo, hi) for lo, hi in schema.IMAGE_RANGES if lo <= lo_d and hi_d <= hi), None)
    if rng is None:
        rng = (lo_d, hi_d if hi_d > lo_d else lo_d + 1.0)
    enc = ImageEncoding(rng, str(x.dtype), lossless=False)
    q = np.clip(np.rint((x.astype(np.float64) - rng[0]) / enc.scale), 0, 255).astype(np.uint8)
    back = (q.astype(np.float64) * enc.scale + rng[0]).astype(x.dtype)
    # Renderers compute k / 255 in float32, often as a multiplication by the reciprocal, so
    # "lossless" allows a few units in the last place of the source dtype.
    tol = 4 * float(np.finfo(x.dtype).eps) * max(abs(rng[0]), abs(rng[1]), 1.0)
    enc.lossless = bool(np.max(np.abs(back.astype(np.float64) - x), initial=0.0) <= tol)
    if lossless_only and not enc.lossless:
        return x, {"kind": "raw", "source_dtype": str(x.dtype), "lossless": True}
    return q, enc.to_json()


FLOAT16_MAX = float(np.finfo(np.float16).max)


def encode_float16(x: np.ndarray) -> tuple[np.ndarray, dict[str, Any] | None]:
    """Float observations as float16 (the opt-in lossy store: half the bytes, about three
    significant digits), or ``x`` unchanged with no encoding when float16 cannot hold them
    (a finite value beyond +-65504 would become infinite) or they are not wider floats."""
    if not np.issubdtype(x.dtype, np.floating) or x.dtype.itemsize <= 2:
        return x, None
    finite = np.isfinite(x)
    if np.any(np.abs(x[finite]) > FLOAT16_MAX):
        return x, None
    return x.astype(np.float16), {"kind": "float16", "source_dtype": str(x.dtype), "lossless": False}


def decode_image(q: np.ndarray, encoding: Mapping[str, Any]) -> np.ndarray:
    """The values the policy saw, from stored values (uint8 pixels, float16 observations)."""
    if encoding.get("kind") == "float16":
        return q.astype(np.dtype(encoding["source_dtype"]))
    if encoding.get("kind") != "affine_uint8":
        return q
    dtype = np.dtype(encoding["source_dtype"])
    return (q.astype(np.float64) * float(encoding["scale"]) + float(encoding["offset"])).astype(dtype)
