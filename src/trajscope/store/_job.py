"""One capture on its way to disk: checked on the caller's thread, encoded on the writer's.

:func:`make_job` validates shapes against the format and the run's model and starts
device-to-host copies; it raises ``ValueError``/``TypeError`` for captures the writer must
refuse. :func:`encode` turns a job's arrays into array files and manifest entries.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..format import codecs, documents, images, schema, summary
from ..format.errors import warn


@dataclasses.dataclass
class Job:
    capture_id: str
    header: dict[str, Any]
    arrays: list[tuple[str, str, Any]]  # (group, key, array-like)
    done: threading.Event | None = None


_skipped: set[tuple[str, str]] = set()
_skipped_lock = threading.Lock()


def _skip_key(group: str, key: str) -> None:
    """A key the format cannot hold (empty, over 256 characters, control characters):
    left out of every capture, with one warning per key and process."""
    with _skipped_lock:
        if (group, key) in _skipped:
            return
        _skipped.add((group, key))
    shown = key[:60].encode("unicode_escape").decode("ascii")
    warn(
        f"{group} key {shown!r}{'...' if len(key) > 60 else ''} left out of the captures: a key must be 1 to "
        "256 printable characters (the rest of each capture is written)"
    )


def make_job(
    *,
    step: int,
    kind: str,
    fixed: Mapping[str, Any],
    keyed: Mapping[str, Mapping[str, Any] | None],
    obs_is_dict: bool,
    reset_frame: bool,
    model: Mapping[str, Any] | None,
    deterministic: bool | None,
    wall_time: float | None,
    attrs: Mapping[str, Any] | None,
    process_index: int | None = None,
) -> Job:
    """A checked job; ``fixed``: fixed arrays by name (None for absent ones), ``keyed``:
    group to ``{key: array}``."""
    if kind not in schema.CAPTURE_KINDS:
        raise ValueError(f"kind must be one of {schema.CAPTURE_KINDS}, not {kind!r}")
    step = int(step)
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    q_shape = tuple(np.shape(fixed["qpos"]))
    if len(q_shape) != 3:
        raise ValueError(f"qpos must be (T, E, nq), got shape {q_shape}")
    T, E = q_shape[:2]
    if T < 1 or E < 1:
        raise ValueError(f"qpos has no steps or no environments: shape {q_shape}")
    arrays: list[tuple[str, str, Any]] = [("", k, x) for k, x in fixed.items() if x is not None]
    for group, items in keyed.items():
        for key, x in (items or {}).items():
            key = str(key)
            if not schema.valid_key(key):
                _skip_key(group, key)  # that entry alone; the capture is kept
                continue
            arrays.append((group, key, x))
    problem = _buffer_problem({k: np.shape(x) for g, k, x in arrays if g == "buffer"}, model)
    if problem is not None:
        raise ValueError(problem)
    out: list[tuple[str, str, Any]] = []
    for group, key, x in arrays:
        problem = documents.shape_problem(key, group, tuple(np.shape(x)), T, E, model)
        if problem is not None:
            raise ValueError(problem)
        # Start device-to-host copies now (JAX arrays); copy host buffers the caller may reuse.
        if hasattr(x, "copy_to_host_async"):
            try:
                x.copy_to_host_async()
            except Exception:  # noqa: BLE001 - deleted or donated buffers fail later, on the writer thread
                pass
        elif isinstance(x, np.ndarray):
            x = x.copy()
        elif not isinstance(x, (int, float, bool, np.generic, list, tuple)) and not hasattr(x, "__array__"):
            raise TypeError(f"{schema.array_name(group, key)}: {type(x).__name__} is not an array")
        out.append((group, key, x))
    header = {
        "step": step,
        "kind": kind,
        "num_steps": T,
        "num_envs": E,
        "deterministic": deterministic,
        "wall_time_unix_s": float(wall_time) if wall_time is not None else time.time(),
        "obs_is_dict": obs_is_dict,
        "reset_frame": bool(reset_frame),
        "attrs": dict(attrs or {}),
    }
    if process_index is not None:
        header["process_index"] = int(process_index)
    return Job(schema.capture_id(step, kind, uuid.uuid4().hex[:8], process_index), header, out)


def encode(
    job: Job, *, compress: bool, lossless_images: bool, delta: bool = True, obs_float16: bool = False
) -> tuple[list[tuple[str, bytes]], dict[str, Any]]:
    """The array files ``(name, bytes)`` of a job and its manifest."""
    files: list[tuple[str, bytes]] = []
    entries: list[dict[str, Any]] = []
    per_step: dict[str, np.ndarray] = {}
    counters: dict[str, int] = {}
    for group, key, x in job.arrays:
        a = np.asarray(x)
        if a.dtype.hasobject:
            raise TypeError(f"{group}/{key}: object arrays cannot be stored")
        layout = schema.GROUP_LAYOUT[group]
        if layout == "time_env":
            per_step[schema.array_name(group, key)] = a
        stored = np.swapaxes(a, 0, 1) if layout == "time_env" else a
        encoding = None
        if group == "obs" and schema.is_image_key(key, a.shape):
            stored, encoding = images.encode_image(stored, lossless_only=lossless_images)
        elif group == "obs" and obs_float16:
            stored, encoding = images.encode_float16(stored)
        ext = "zs" if compress else "npy"
        if group:
            i = counters.get(group, 0)
            counters[group] = i + 1
            fname = f"{group}.{i:03d}.{ext}"
        else:
            fname = f"{key}.{ext}"
        chunks = None
        codec = codecs.CODEC_NPY
        if compress:
            data, chunks = codecs.encode_zs(stored, chunked=layout != "free")
            codec = codecs.CODEC_ZS
            if (
                delta
                and layout == "time_env"
                and codecs.can_delta(stored.dtype)
                and stored.ndim >= 2
                and stored.shape[1] > 1
            ):
                # Smooth trajectories compress far better as differences along time: keep
                # whichever of the two is smaller.
                d_data, d_chunks = codecs.encode_zs(stored, chunked=True, delta=True)
                if len(d_data) < len(data):
                    data, chunks, codec = d_data, d_chunks, codecs.CODEC_ZSD
        else:
            data = codecs.encode(stored)
        files.append((fname, data))
        entries.append(
            documents.build_entry(
                group=group,
                key=key,
                file=fname,
                shape=a.shape,
                dtype=str(a.dtype),
                stored_dtype=str(stored.dtype),
                stored_shape=stored.shape,
                data=data,
                chunks=chunks,
                codec=codec,
                encoding=encoding,
            )
        )
    manifest = documents.build_manifest(
        capture_id=job.capture_id,
        **job.header,
        arrays=entries,
        summary=summary.summarize(per_step, reset_frame=bool(job.header["reset_frame"])),
    )
    return files, manifest


def _buffer_problem(shapes: Mapping[str, tuple[int, ...]], model: Mapping[str, Any] | None) -> str | None:
    """A replay-buffer sample: named keys sharing their first axis ``N``, ``step`` among
    them, ``qpos``/``qvel`` as wide as the model's."""
    if not shapes:
        return None
    unknown = [k for k in shapes if k not in schema.BUFFER_KEYS and k != "obs" and not k.startswith("obs/")]
    if unknown:
        return f"buffer keys {unknown} are not among {(*schema.BUFFER_KEYS, 'obs', 'obs/<key>')}"
    if "step" not in shapes:
        return "a buffer sample needs 'step' (the env steps at which each transition was inserted)"
    sizes = {s[0] if s else None for s in shapes.values()}
    if len(sizes) != 1 or None in sizes:
        return f"buffer arrays must share their first axis N: {dict(shapes)}"
    for key, dim in (("qpos", "nq"), ("qvel", "nv")):
        want = (model or {}).get(dim)
        if key in shapes and want is not None and (len(shapes[key]) != 2 or shapes[key][1] != want):
            return f"buffer/{key} has shape {shapes[key]}, expected (N, {dim}={want})"
    return None
