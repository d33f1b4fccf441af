"""What a listing reads of a capture's manifest: its header fields and each array's group
key, shape and file name, decoded straight into small records (the array entries' other fields are skipped
by the decoder, never built), then checked by the format's own rules. The whole manifest
is read and checked when the capture is opened (:func:`documents.parse_manifest`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from ..format import documents
from ..format.errors import FormatError


class _Entry(msgspec.Struct):
    group: Any = None
    key: Any = None
    shape: Any = None
    file: Any = None


class _Header(msgspec.Struct):
    format_version: Any = None
    capture_id: Any = None
    step: Any = None
    kind: Any = None
    num_envs: Any = None
    num_steps: Any = None
    arrays: list[_Entry] | None = None
    wall_time_unix_s: Any = 0.0
    deterministic: Any = None
    reset_frame: Any = False
    summary: Any = None
    attrs: Any = None
    process_index: Any = None


_DECODER = msgspec.json.Decoder(_Header)
_FIELDS = _Header.__struct_fields__


def parse_listed(path: str, data: bytes, model: Mapping[str, Any] | None) -> dict[str, Any]:
    """A manifest's listed fields, as :func:`documents.parse_manifest` would give them (its
    ``arrays`` hold only ``group`` and ``key``); a :class:`FormatError` for what a listing
    could trip on."""
    documents.check_containers(path, data, documents.MAX_MANIFEST_CONTAINERS)
    try:
        h = _DECODER.decode(data)
    except msgspec.ValidationError as e:
        raise FormatError(path, f"malformed manifest ({str(e)[:200]})") from None
    except msgspec.DecodeError as e:
        raise FormatError(path, f"corrupt or truncated JSON ({str(e)[:200]})") from None
    except RecursionError:
        raise FormatError(path, "JSON nested too deeply") from None
    except MemoryError:
        raise FormatError(path, "too large to parse in this process's memory; refused") from None
    m = {k: getattr(h, k) for k in _FIELDS}
    entries = h.arrays
    m["arrays"] = (
        None if entries is None else [dict(group=e.group, key=e.key, shape=e.shape, file=e.file) for e in entries]
    )
    for k in ("summary", "attrs", "deterministic", "process_index"):
        if m[k] is None:
            del m[k]
    documents.check_manifest_header(path, m)
    documents.check_listed_arrays(path, m, model)
    return m
