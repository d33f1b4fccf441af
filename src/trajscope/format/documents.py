"""The run directory's JSON documents: one build/parse pair each.

Every JSON file trajscope writes is made here and read back here: ``run.json``
(:func:`build_run` / :func:`parse_run`), each capture's ``capture.json``
(:func:`build_manifest` / :func:`parse_manifest`), and the live stream's
``live/status.json`` (:class:`LiveStatus`) and ``live/control.json``
(:class:`LiveControl`). The writer, the reader and the live stream use nothing else, so
``docs/format.md`` describes one definition; ``tests/test_format_doc.py`` holds the two
together.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from . import codecs, schema
from .errors import FormatError, UnsupportedVersionError


def dumps(doc: Mapping[str, Any], *, indent: int | None = None) -> bytes:
    """Strict JSON bytes (NaN and infinity refused: :func:`to_json` makes them null)."""
    return json.dumps(doc, indent=indent, allow_nan=False).encode()


MAX_DEPTH = 32
"""How deeply the free-form parts of a document (``config``, ``attrs``, ``summary``, ...)
may nest; trajscope writes a few levels."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (trajscope writes null for non-finite numbers)")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


MAX_CONTAINERS = 1_000_000
"""The most objects and arrays one document may hold; counted in its bytes before it is
parsed (a 64 MiB file of ``{}`` would take gigabytes of memory and most of a minute)."""
MAX_MANIFEST_CONTAINERS = 200_000
"""The same for a capture's manifest (trajscope writes about three per array)."""
MAX_ITEMS = 100_000
"""The most values a free-form field (``config``, ``attrs``, ``summary``, ...) may hold."""


def count_containers(data: bytes | str) -> int:
    """An upper bound on the objects and arrays of a JSON text (brackets inside strings count too)."""
    if isinstance(data, str):
        return data.count("{") + data.count("[")
    return data.count(b"{") + data.count(b"[")


def check_containers(path: str, data: bytes | str, limit: int = MAX_CONTAINERS) -> None:
    if count_containers(data) > limit:
        raise FormatError(path, f"holds more than {limit:,} JSON objects and arrays; refused unread")


def load_json(path: str, data: bytes, *, max_containers: int = MAX_CONTAINERS) -> dict[str, Any]:
    """A JSON object from a file's bytes; a :class:`FormatError` naming the file otherwise
    (corrupt, truncated, ``NaN``/``Infinity`` literals, integers of thousands of digits,
    nesting deep enough to exhaust the parser's stack, more than ``max_containers``
    objects and arrays, too large for this process's memory)."""
    check_containers(path, data, max_containers)
    try:
        doc = _DECODER.decode(data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data)
    except RecursionError:
        raise FormatError(path, "JSON nested too deeply") from None
    except MemoryError:
        raise FormatError(path, "too large to parse in this process's memory; refused") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise FormatError(path, f"corrupt or truncated JSON ({str(e)[:200]})") from None
    if not isinstance(doc, dict):
        raise FormatError(path, "expected a JSON object")
    return doc


def check_depth(path: str, field: str, value: Any, limit: int = MAX_DEPTH, max_items: int = MAX_ITEMS) -> None:
    """Refuse a free-form field nested deeper than ``limit`` (readers walk them recursively)
    or holding more than ``max_items`` values in all."""
    stack = [(value, 0)]
    count = 0
    while stack:
        v, d = stack.pop()
        if d > limit:
            raise FormatError(path, f"field {field!r} nests deeper than {limit} levels")
        items = v.values() if type(v) is dict else v if type(v) is list else None
        count += len(items) if items is not None else 0
        if count > max_items:
            raise FormatError(path, f"field {field!r} holds more than {max_items:,} values")
        if items is None or set(map(type, items)) <= _SCALARS:
            continue  # a leaf, or a container of leaves (checked at C speed)
        stack.extend((x, d + 1) for x in items if type(x) in (dict, list))


_SCALARS = {int, float, str, bool, type(None)}
_ENTRY_REQUIRED_SET = frozenset(("group", "key", "file", "shape", "dtype", "layout", "nbytes"))
_STRING_FIELDS = frozenset(("group", "key", "layout", "dtype", "stored_dtype", "codec", "encoding"))
_COUNT_FIELDS = frozenset(("nbytes", "crc32"))


@functools.lru_cache(maxsize=256)
def _numeric_itemsize(name: str) -> int | str:
    """The item size of a numeric dtype named ``name``, or why it is refused (cached: a run
    names a handful of dtypes thousands of times)."""
    try:
        dt = np.dtype(name)
    except Exception:  # noqa: BLE001 - numpy raises TypeError, ValueError, SyntaxError...
        return "unknown dtype"
    if dt.hasobject:
        return "object dtype refused (it would need pickle)"
    if dt.kind not in "biufc" or dt.itemsize > 16 or dt.shape:
        return "not a numeric dtype trajscope stores"
    return dt.itemsize


def are_counts(xs: Any, *, at_most: int = 2**62) -> bool:
    """A list of JSON integers in ``[0, at_most]`` (no bools), checked at C speed."""
    return type(xs) is list and (not xs or (set(map(type, xs)) == {int} and min(xs) >= 0 and max(xs) <= at_most))


def is_number(x: Any) -> bool:
    """A finite JSON number (not a bool)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return False
    try:
        return math.isfinite(float(x))
    except OverflowError:
        return False


def is_plain_name(name: Any) -> bool:
    """A file name that stays in its folder: no separator, no leading dot, no NUL, at
    most 255 characters."""
    return (
        isinstance(name, str)
        and 0 < len(name) <= 255
        and not name.startswith(".")
        and not any(c in name for c in "/\\\x00")
    )


def is_count(x: Any, *, at_most: int = 2**62) -> bool:
    """A JSON integer in ``[0, at_most]`` (not a bool)."""
    return isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= at_most


def check_version(path: str, doc: Mapping[str, Any]) -> str:
    """The document's ``format_version``; refuses malformed ones and other major versions."""
    version = doc.get("format_version")
    if not isinstance(version, str) or not version.split(".")[0].isdigit():
        raise FormatError(path, f"missing or malformed format_version {version!r}")
    if int(version.split(".")[0]) != schema.FORMAT_MAJOR:
        raise UnsupportedVersionError(
            path,
            f"format version {version} is not supported by this trajscope, which reads and writes "
            f"{schema.FORMAT_MAJOR}.x; install a trajscope that reads version {version}",
        )
    return version


def to_json(obj: Any) -> Any:
    """Plain JSON of configs and summaries: numpy scalars unwrapped, NaN/inf to None."""
    if isinstance(obj, Mapping):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json(v) for v in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_json(dataclasses.asdict(obj))
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, np.ndarray) and obj.size <= 64:
        return to_json(obj.tolist())
    return str(obj)


# ---------------------------------------------------------------------------- shapes


def shape_problem(
    name: str, group: str, shape: tuple[int, ...], T: int, E: int, model: Mapping[str, Any] | None
) -> str | None:
    """What is wrong with an array's logical shape, or None: leading ``(T, E)`` or ``E`` by
    its group's layout, and for fixed arrays the rank and the model-sized axes (``nq``,
    ``nv``, ... against the run's model summary). The writer refuses such captures; the
    reader reports them."""
    layout = schema.GROUP_LAYOUT[group]
    label = f"{group}/{name}" if group else name
    spec = schema.FIXED_BY_NAME.get(name) if not group else None
    if spec is not None and (len(shape) != len(spec.dims) or shape[:2] != (T, E)):
        return f"{label} has shape {shape}, expected ({', '.join(spec.dims)}) with T={T}, E={E}"
    if layout == "time_env" and shape[:2] != (T, E):
        return f"{label} has shape {shape}, expected to start with (T, E) = {(T, E)}"
    if layout == "env" and shape[:1] != (E,):
        return f"{label} has shape {shape}, expected to start with E = {E}"
    if spec is None:
        return None
    sizes = model or {}
    for d, n in zip(spec.dims[2:], shape[2:]):
        want = int(d) if d.isdigit() else sizes.get(d)
        if want is not None and n != want:
            return f"{label} has {n} entries on its {d} axis but the run's model has {d}={want}"
    return None


# ---------------------------------------------------------------------------- run.json

RUN_FIELDS = (
    "format_version",
    "name",
    "created_unix_s",
    "created_iso",
    "env_name",
    "algorithm",
    "config",
    "tags",
    "versions",
    "model",
    "control_dt_s",
    "writer",
    "network",
)


def build_run(
    *,
    name: str,
    created_unix_s: float,
    created_iso: str,
    env_name: str | None,
    algorithm: str | None,
    config: Any,
    tags: list[str],
    versions: Mapping[str, str],
    model: Mapping[str, Any] | None,
    control_dt_s: float | None,
    writer: Mapping[str, Any],
    network: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``run.json``'s contents."""
    return {
        "format_version": schema.FORMAT_VERSION,
        "name": name,
        "created_unix_s": float(created_unix_s),
        "created_iso": created_iso,
        "env_name": env_name,
        "algorithm": algorithm,
        "config": to_json(config) if config is not None else {},
        "tags": [str(t) for t in tags],
        "versions": dict(versions),
        "model": dict(model) if model is not None else None,
        "control_dt_s": control_dt_s,
        "writer": dict(writer),
        "network": to_json(dict(network)) if network is not None else None,
    }


def parse_run(path: str, data: bytes) -> dict[str, Any]:
    """``run.json`` checked: a JSON object of a readable major version, every field a
    reader uses of its documented type, every number a reader computes with finite and in
    range (``control_dt_s`` > 0, ``config.discounting`` in (0, 1], ``config.reward_scaling``
    non-zero), free-form fields nested at most :data:`MAX_DEPTH` deep."""
    doc = load_json(path, data)
    check_version(path, doc)
    for field in ("model", "network", "config", "versions", "writer"):
        if doc.get(field) is not None and not isinstance(doc[field], dict):
            raise FormatError(path, f"malformed field '{field}' (expected an object or null)")
        check_depth(path, field, doc.get(field))
    for field in ("name", "env_name", "algorithm", "created_iso"):
        if doc.get(field) is not None and not isinstance(doc[field], str):
            raise FormatError(path, f"malformed field '{field}' (expected a string or null)")
    tags = doc.get("tags")
    if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
        raise FormatError(path, "malformed field 'tags' (expected a list of strings)")
    if doc.get("created_unix_s") is not None and not is_number(doc["created_unix_s"]):
        raise FormatError(path, "malformed field 'created_unix_s' (expected a finite number)")
    dt = doc.get("control_dt_s")
    if dt is not None and not (is_number(dt) and 0 < dt < 1e6):
        raise FormatError(path, f"malformed field 'control_dt_s' {str(dt)[:40]!r} (expected seconds > 0, or null)")
    conf = doc.get("config") or {}
    gamma = conf.get("discounting")
    if gamma is not None and not (is_number(gamma) and 0 < gamma <= 1):
        raise FormatError(path, f"malformed config 'discounting' {str(gamma)[:40]!r} (expected a number in (0, 1])")
    scale = conf.get("reward_scaling")
    if scale is not None and not (is_number(scale) and scale != 0):
        raise FormatError(path, f"malformed config 'reward_scaling' {str(scale)[:40]!r} (expected a non-zero number)")
    model = doc.get("model")
    if isinstance(model, dict):
        for k in ("nq", "nv", "nu", "na", "nbody", "ngeom", "nmocap"):
            if k in model and not is_count(model[k], at_most=2**31):
                raise FormatError(path, f"malformed model field {k!r} (expected a count)")
    return doc


# ---------------------------------------------------------------------------- capture.json

MANIFEST_FIELDS = (
    "format_version",
    "capture_id",
    "step",
    "kind",
    "num_steps",
    "num_envs",
    "deterministic",
    "wall_time_unix_s",
    "obs_is_dict",
    "reset_frame",
    "attrs",
    "process_index",
    "arrays",
    "summary",
)
ENTRY_FIELDS = (
    "group",
    "key",
    "file",
    "shape",
    "dtype",
    "stored_dtype",
    "layout",
    "stored_shape",
    "codec",
    "nbytes",
    "crc32",
    "chunks",
    "encoding",
)


def build_entry(
    *,
    group: str,
    key: str,
    file: str,
    shape: tuple[int, ...],
    dtype: str,
    stored_dtype: str,
    stored_shape: tuple[int, ...],
    data: bytes,
    chunks: list[int] | None,
    encoding: Mapping[str, Any] | None,
    codec: str | None = None,
) -> dict[str, Any]:
    """One entry of a manifest's ``arrays``: an array file and how to read it."""
    entry: dict[str, Any] = {
        "group": group,
        "key": key,
        "file": file,
        "shape": list(shape),
        "dtype": dtype,
        "stored_dtype": stored_dtype,
        "layout": schema.GROUP_LAYOUT[group],
        "stored_shape": list(stored_shape),
        "codec": codec or (codecs.CODEC_ZS if chunks is not None else codecs.CODEC_NPY),
        "nbytes": len(data),
        "crc32": codecs.crc32(data),
    }
    if chunks is not None:
        entry["chunks"] = chunks
    if encoding is not None:
        entry["encoding"] = dict(encoding)
    return entry


def build_manifest(
    *,
    capture_id: str,
    step: int,
    kind: str,
    num_steps: int,
    num_envs: int,
    deterministic: bool | None,
    wall_time_unix_s: float,
    obs_is_dict: bool,
    reset_frame: bool,
    attrs: Mapping[str, Any],
    arrays: list[dict[str, Any]],
    summary: Mapping[str, Any],
    process_index: int | None = None,
) -> dict[str, Any]:
    """``capture.json``'s contents."""
    extra = {} if process_index is None else {"process_index": int(process_index)}
    return {
        "format_version": schema.FORMAT_VERSION,
        "capture_id": capture_id,
        "step": int(step),
        "kind": kind,
        "num_steps": int(num_steps),
        "num_envs": int(num_envs),
        "deterministic": deterministic,
        "wall_time_unix_s": float(wall_time_unix_s),
        "obs_is_dict": bool(obs_is_dict),
        "reset_frame": bool(reset_frame),
        "attrs": to_json(dict(attrs)),
        **extra,
        "arrays": arrays,
        "summary": to_json(dict(summary)),
    }


def _clean_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary's figures that have their documented types. The summary is derived from
    the arrays (for listings): a damaged figure is left out rather than costing the capture."""
    out = dict(summary)
    if not isinstance(out.get("mean_return"), (int, float)) or isinstance(out.get("mean_return"), bool):
        out.pop("mean_return", None)
    hits = out.get("first_nonfinite")
    out["first_nonfinite"] = (
        {
            str(k): {"t": v["t"], "env": v["env"]}
            for k, v in hits.items()
            if isinstance(v, dict)
            and all(isinstance(v.get(f), int) and not isinstance(v.get(f), bool) and v[f] >= 0 for f in ("t", "env"))
        }
        if isinstance(hits, dict)
        else {}
    )
    return out


_COUNT_LISTS = ("shape", "stored_shape", "chunks")


def _check_count_lists(path: str, arrays: list[Any]) -> None:
    """Every array entry an object with the required fields, and its ``shape``,
    ``stored_shape`` and ``chunks`` lists of counts: all of a manifest's lists checked at
    once at C speed (a run lists thousands of them), the offending one named otherwise."""
    for e in arrays:
        if type(e) is not dict or not _ENTRY_REQUIRED_SET <= e.keys():
            raise FormatError(path, f"malformed array entry {str(e)[:80]}")
    lists = [e[k] for e in arrays for k in _COUNT_LISTS if k in e]
    if all(type(x) is list for x in lists) and are_counts(list(itertools.chain.from_iterable(lists))):
        return
    for e in arrays:
        for k in _COUNT_LISTS:
            if k in e and not are_counts(e[k]):
                what = "chunk offsets" if k == "chunks" else k
                raise FormatError(path, f"{str(e['file'])[:80]}: malformed {what} {str(e[k])[:80]}")


def check_manifest_header(path: str, m: dict[str, Any]) -> dict[str, Any]:
    """The fields of a manifest that a listing shows (all but the array entries), checked;
    ``summary`` cleaned in place. A listing checks these alone, and the arrays when the
    capture is opened (:func:`parse_manifest`)."""
    check_version(path, m)
    for k, t in (
        ("capture_id", str),
        ("step", int),
        ("kind", str),
        ("num_envs", int),
        ("num_steps", int),
        ("arrays", list),
    ):
        if not isinstance(m.get(k), t) or isinstance(m.get(k), bool):
            raise FormatError(path, f"missing or malformed field {k!r}")
    if m["num_envs"] < 1 or m["num_steps"] < 1:
        raise FormatError(path, f"no steps or no environments: num_steps={m['num_steps']}, num_envs={m['num_envs']}")
    if not isinstance(m.get("wall_time_unix_s", 0.0), (int, float)):
        raise FormatError(path, "malformed field 'wall_time_unix_s'")
    m.setdefault("wall_time_unix_s", 0.0)
    if not isinstance(m.get("reset_frame", False), bool):
        raise FormatError(path, "malformed field 'reset_frame'")
    m.setdefault("reset_frame", False)  # format 1.0: frame 0 is the state after the first step
    if not is_number(m["wall_time_unix_s"]):
        raise FormatError(path, "malformed field 'wall_time_unix_s'")
    if not is_count(m["step"]) or not is_count(m["num_envs"]) or not is_count(m["num_steps"]):
        raise FormatError(path, "step, num_envs or num_steps out of range")
    if m["kind"] not in schema.CAPTURE_KINDS:
        raise FormatError(path, f"unknown capture kind {m['kind'][:40]!r}")
    pi = m.get("process_index")
    if pi is not None and not is_count(pi, at_most=2**31):
        raise FormatError(path, "malformed field 'process_index'")
    if not isinstance(m.get("summary") or {}, dict):
        raise FormatError(path, "malformed field 'summary'")
    if m.get("attrs") is not None and not isinstance(m["attrs"], dict):
        raise FormatError(path, "malformed field 'attrs'")
    for field in ("summary", "attrs"):
        check_depth(path, field, m.get(field))
    m["summary"] = _clean_summary(m.get("summary") or {})
    return m


def check_listed_arrays(path: str, m: Mapping[str, Any], model: Mapping[str, Any] | None) -> None:
    """What a listing uses of the array entries (``group``, ``key``, ``shape``, ``file``): a
    known group, string keys, shapes that fit the capture and the run's model, file names
    inside the capture's folder, and the required arrays present (the rest is checked by
    :func:`parse_manifest`)."""
    names = set()
    for e in m["arrays"]:
        if type(e) is not dict:
            raise FormatError(path, f"malformed array entry {str(e)[:80]}")
        for k in ("group", "key", "file"):
            if type(e.get(k)) is not str:
                raise FormatError(path, f"malformed field {k!r} of array entry {str(e.get('key'))[:80]!r}")
        if not is_plain_name(e["file"]):
            raise FormatError(path, f"array file name {str(e['file'])[:80]!r} leaves the capture folder")
        if e["group"] not in schema.GROUP_LAYOUT:
            raise FormatError(path, f"unknown group {e['group'][:40]!r}")
        shape = e.get("shape")
        if type(shape) is not list or len(shape) > 32 or not are_counts(shape):
            raise FormatError(path, f"{e['key'][:80]}: malformed shape {str(shape)[:80]}")
        problem = shape_problem(e["key"], e["group"], tuple(shape), m["num_steps"], m["num_envs"], model)
        if problem is not None:
            raise FormatError(path, problem)
        names.add(schema.array_name(e["group"], e["key"]))
    for spec in schema.FIXED_ARRAYS:
        if spec.required and spec.name not in names:
            raise FormatError(path, f"required array {spec.name!r} is missing")


def parse_manifest(path: str, data: bytes, model: Mapping[str, Any] | None) -> dict[str, Any]:
    """``capture.json`` checked against the format and the run's model summary; a
    :class:`FormatError` naming the file for anything a reader could trip on."""
    m = load_json(path, data, max_containers=MAX_MANIFEST_CONTAINERS)
    check_manifest_header(path, m)
    _check_count_lists(path, m["arrays"])
    for e in m["arrays"]:
        for k in _STRING_FIELDS & e.keys():
            if type(e[k]) is not str and not (k == "encoding" and type(e[k]) is dict):
                raise FormatError(path, f"malformed field {k!r} of array entry {str(e.get('file'))[:80]!r}")
        for k in _COUNT_FIELDS & e.keys():
            if not is_count(e[k]):
                raise FormatError(path, f"malformed field {k!r} of array entry {str(e.get('file'))[:80]!r}")
        if e["group"] not in schema.GROUP_LAYOUT or e["layout"] != schema.GROUP_LAYOUT[e["group"]]:
            raise FormatError(path, f"{e['file']}: unknown group {e['group'][:40]!r} or layout {e['layout'][:40]!r}")
        itemsize = 1
        for k in ("dtype", "stored_dtype"):
            if k in e:
                size = _numeric_itemsize(e[k])
                if isinstance(size, str):
                    raise FormatError(path, f"{e['file']}: {k} {e[k][:40]!r}: {size}")
                itemsize = max(itemsize, size)
        for k in ("shape", "stored_shape"):
            if k in e and math.prod(e[k]) * itemsize >= 2**62:
                raise FormatError(path, f"{e['file']}: {k} declares an impossible size")
        codec = e.get("codec", codecs.CODEC_NPY)
        if codec in codecs.CODECS_ZS:
            c = e.get("chunks")
            if c is None or len(c) < 2 or c[0] != 0 or c != sorted(c) or c[-1] != e["nbytes"]:
                raise FormatError(path, f"{e['file']}: malformed chunk offsets")
        elif codec != codecs.CODEC_NPY:
            raise FormatError(path, f"{e['file']}: unknown codec {codec[:40]!r}")
        enc = e.get("encoding")
        if enc is not None:
            check_depth(path, "encoding", enc, 2)
            for k in ("scale", "offset"):
                if k in enc and not is_number(enc[k]):
                    raise FormatError(path, f"{e['file']}: malformed encoding {k!r}")
            if "source_dtype" in enc:
                try:
                    sd = np.dtype(enc["source_dtype"]) if isinstance(enc["source_dtype"], str) else None
                except Exception:  # noqa: BLE001 - as for dtype above
                    sd = None
                if sd is None or sd.kind not in "biuf" or sd.itemsize > 16:
                    raise FormatError(path, f"{e['file']}: malformed encoding source_dtype")
    check_listed_arrays(path, m, model)  # file names, shapes against the model, required arrays
    return m


# ---------------------------------------------------------------------------- live/*.json

LEASE_S = 15.0
"""How long a viewer's ``on`` lasts unless renewed."""

RENEW_S = 5.0
"""How often a viewer that keeps the stream on renews its lease."""

RATE_RANGE = (0.05, 1000.0)


def clip_rate(rate: Any) -> float:
    """A rate within :data:`RATE_RANGE` (NaN and garbage: 1.0)."""
    try:
        r = float(rate)
    except (TypeError, ValueError):
        return 1.0
    if r != r:  # NaN
        return 1.0
    return min(max(r, RATE_RANGE[0]), RATE_RANGE[1])


@dataclasses.dataclass(frozen=True)
class LiveControl:
    """``live/control.json``: what viewers ask of the live stream."""

    on: bool = False
    rate: float = 1.0
    """Fraction of real time streamed: 1.0 sends chunks as fast as they play back at the
    environment's control rate; 0.25 sends a quarter of that (gaps between chunks); a
    large value sends every chunk. When training runs slower than real time every chunk
    is sent."""
    updated_unix_s: float = 0.0

    LEASE_S = LEASE_S
    RENEW_S = RENEW_S

    def __post_init__(self) -> None:
        object.__setattr__(self, "on", bool(self.on))
        object.__setattr__(self, "rate", clip_rate(self.rate))

    def active(self, now_unix_s: float | None = None, *, lease_s: float = LEASE_S) -> bool:
        """On, and renewed within ``lease_s`` seconds."""
        now = time.time() if now_unix_s is None else now_unix_s
        return self.on and now - self.updated_unix_s <= lease_s

    def to_json(self) -> dict[str, Any]:
        return {"on": self.on, "rate": self.rate, "updated_unix_s": self.updated_unix_s}

    @staticmethod
    def parse(path: str, data: bytes) -> LiveControl:
        doc = load_json(path, data)
        try:
            updated = doc.get("updated_unix_s", 0.0)
            if not is_number(updated):
                raise ValueError("updated_unix_s")
            return LiveControl(on=doc.get("on") is True, rate=clip_rate(doc.get("rate", 1.0)), updated_unix_s=updated)
        except (TypeError, ValueError, OverflowError):
            raise FormatError(path, "malformed live control") from None


@dataclasses.dataclass(frozen=True)
class LiveStatus:
    """``live/status.json``: what training reports about the live stream."""

    updated_unix_s: float
    """When training last stepped (a tick of the stream)."""
    streaming: bool
    """Whether the stream is switched on (a viewer's lease is valid, or training switched it on)."""
    env_steps: int
    """Training environment steps taken so far, counted by the stream."""
    chunks_sent: int
    num_envs: int
    chunk_steps: int
    last_chunk_id: str | None = None
    last_chunk_env_steps: int | None = None
    last_chunk_unix_s: float | None = None
    failures: int = 0
    finished: bool = False
    """Training has ended (the recorder closed); absent in runs written before: not known."""
    alive_unix_s: float | None = None
    """The recorder's heartbeat: when its process last wrote the status, every few seconds
    between training steps too (evaluation, checkpoints, compiling); absent in runs written before."""

    def to_json(self) -> dict[str, Any]:
        return to_json(dataclasses.asdict(self))

    @staticmethod
    def parse(path: str, data: bytes) -> LiveStatus:
        doc = load_json(path, data)
        names = {f.name for f in dataclasses.fields(LiveStatus)}
        fields = {k: v for k, v in doc.items() if k in names}
        for k, v in fields.items():
            ok = {
                "updated_unix_s": is_number(v),
                "streaming": isinstance(v, bool),
                "finished": isinstance(v, bool),
                "last_chunk_id": v is None or isinstance(v, str),
                "last_chunk_unix_s": v is None or is_number(v),
                "alive_unix_s": v is None or is_number(v),
                "last_chunk_env_steps": v is None or is_count(v),
            }.get(k, is_count(v))
            if not ok:
                raise FormatError(path, f"malformed live status field {k!r}")
        try:
            return LiveStatus(**fields)
        except TypeError as e:
            raise FormatError(path, f"malformed live status ({e})") from None


# ---------------------------------------------------------------------------- analysis/analysis.json

ANALYSIS_FIELDS = ("format_version", "created_unix_s", "captures_analysed", "arrays", "analysis")


def build_analysis(
    *, analysis: Mapping[str, Any], arrays: list[dict[str, Any]], captures_analysed: list[str]
) -> dict[str, Any]:
    """``analysis/analysis.json``: the analysis document (see docs/analysis.md), the array
    files it comes with (``npy`` entries as in a manifest, ``layout`` ``free``) and the ids
    of the captures it covers."""
    return {
        "format_version": schema.FORMAT_VERSION,
        "created_unix_s": time.time(),
        "captures_analysed": list(captures_analysed),
        "arrays": arrays,
        "analysis": to_json(dict(analysis)),
    }


def parse_analysis(path: str, data: bytes) -> dict[str, Any]:
    doc = load_json(path, data)
    check_version(path, doc)
    if not isinstance(doc.get("analysis"), dict) or not isinstance(doc.get("arrays"), list):
        raise FormatError(path, "missing or malformed field 'analysis' or 'arrays'")
    check_depth(path, "analysis", doc["analysis"])
    for e in doc["arrays"]:
        if not isinstance(e, dict) or not {"key", "file", "nbytes"} <= set(e):
            raise FormatError(path, f"malformed array entry {str(e)[:80]}")
        if not is_plain_name(e["file"]):
            raise FormatError(path, f"array file name {str(e['file'])[:80]!r} leaves the analysis folder")
        if not is_count(e["nbytes"]) or not isinstance(e["key"], str):
            raise FormatError(path, f"malformed array entry {str(e)[:80]}")
    check_analysis_result(path, doc["analysis"])
    if not isinstance(doc.get("captures_analysed", []), list):
        raise FormatError(path, "malformed field 'captures_analysed'")
    return doc


_ANALYSIS_NUMBERS = ("shift_prev_p", "return_diff_mean", "return_diff_p")
_TERM_NUMBERS = ("p10", "p90", "median", "mean", "worst_env_mean", "worst_value", "mean_change")
_TERM_COUNTS = ("worst_env", "worst_step")


def check_analysis_result(path: str, result: Mapping[str, Any]) -> None:
    """What the viewer and the CLI read of a stored analysis, of the types they read it
    as: captures a list of objects, each figure a number (or null), indices counts, names
    strings. A :class:`FormatError` naming the field otherwise."""

    def fail(field: str) -> FormatError:
        return FormatError(path, f"malformed field {field!r} of the analysis")

    def number(v: Any) -> bool:
        return v is None or is_number(v)

    def term_ok(t: Any) -> bool:
        return (
            type(t) is dict
            and all(number(t.get(k)) for k in _TERM_NUMBERS)
            and all(t.get(k) is None or is_count(t[k]) for k in _TERM_COUNTS)
            and (t.get("name") is None or type(t["name"]) is str)
        )

    for k, t in (("embedding", dict), ("map", dict), ("problems", list), ("assumed", str), ("captures", list)):
        if result.get(k) is not None and type(result[k]) is not t:
            raise fail(k)
    if any(type(p) is not str for p in result.get("problems") or []):
        raise fail("problems")
    for c in result.get("captures") or []:
        if type(c) is not dict:
            raise fail("captures")
        for k in ("index", "step"):
            if c.get(k) is not None and not is_count(c[k]):
                raise fail(f"captures.{k}")
        for k in _ANALYSIS_NUMBERS:
            if not number(c.get(k)):
                raise fail(f"captures.{k}")
        share = c.get("cluster_share")
        if share is not None and (type(share) is not list or not all(is_number(x) for x in share)):
            raise fail("captures.cluster_share")
        terms = c.get("terms")
        if terms is not None and (type(terms) is not dict or not all(term_ok(t) for t in terms.values())):
            raise fail("captures.terms")
        p = c.get("paired_prev")
        if p is None:
            continue
        if type(p) is not dict or not all(number(p.get(k)) for k in _ANALYSIS_NUMBERS):
            raise fail("captures.paired_prev")
        parts = p.get("parts_at")
        if parts is not None and (type(parts) is not list or not all(t is None or is_count(t) for t in parts)):
            raise fail("captures.paired_prev.parts_at")
        pterms = p.get("terms")
        if pterms is not None and (type(pterms) is not list or not all(term_ok(t) for t in pterms)):
            raise fail("captures.paired_prev.terms")
