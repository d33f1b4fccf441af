"""The ``analysis/`` part of a run: written whole, arrays first and the document last
(atomically), so a reader sees the old analysis or the new one. The store only reads and
writes it; :func:`trajscope.analyse.analyse_run` computes it."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from ..format import codecs, documents, schema
from ..format.errors import FormatError
from . import _fs


class StoredAnalysis(NamedTuple):
    """A run's stored analysis: ``doc`` (``analysis/analysis.json`` whole) and its arrays;
    unpacks as ``doc, arrays``."""

    doc: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def result(self) -> dict[str, Any]:
        """What :func:`trajscope.analyse.analyse_run` computed (see docs/analysis.md)."""
        return self.doc["analysis"]

    @property
    def captures_analysed(self) -> list[str]:
        """Ids of the captures it covers."""
        return [str(c) for c in self.doc.get("captures_analysed", [])]

    @property
    def created_unix_s(self) -> float | None:
        t = self.doc.get("created_unix_s")
        return float(t) if isinstance(t, (int, float)) else None


def write_analysis(
    run: str | os.PathLike[str],
    analysis: Mapping[str, Any],
    arrays: Mapping[str, np.ndarray],
    *,
    captures_analysed: Sequence[str] = (),
) -> None:
    """Store an analysis of a run (a JSON-able document and named arrays) in its
    ``analysis/`` folder, replacing any earlier one. Raises ``OSError`` when the run
    directory cannot be written."""
    fs, path = _fs.resolve(run)
    adir = _fs.run_subdir(fs, path, schema.ANALYSIS_DIR)
    entries = []
    for i, (key, a) in enumerate(arrays.items()):
        a = np.asarray(a)
        data = codecs.encode(a)
        fname = f"array.{i:03d}.npy"
        _fs.write_file(fs, _fs.join(adir, fname), data)
        entries.append(
            {"key": key, "file": fname, "shape": list(a.shape), "dtype": str(a.dtype), "nbytes": len(data),
             "crc32": codecs.crc32(data)}
        )  # fmt: skip
    doc = documents.build_analysis(analysis=analysis, arrays=entries, captures_analysed=list(captures_analysed))
    _fs.write_atomic(fs, _fs.join(path, schema.ANALYSIS_FILE), documents.dumps(doc, indent=1))


def read_analysis(fs: Any, run_path: str) -> StoredAnalysis | None:
    """The stored analysis (its document and arrays), or None when the run has none."""
    p = _fs.join(run_path, schema.ANALYSIS_FILE)
    root = _fs.run_root(fs, run_path)
    try:
        data = _fs.read(fs, p, root=root, limit=_fs.max_json_bytes())
    except FileNotFoundError:
        return None
    except OSError as e:
        raise FormatError(p, f"cannot be read ({e.strerror or e})") from None
    doc = documents.parse_analysis(p, data)
    arrays = {}
    total = 0
    for e in doc["arrays"]:
        ap = _fs.join(run_path, schema.ANALYSIS_DIR, e["file"])
        total += e["nbytes"]
        if total > _fs.max_capture_bytes():
            raise FormatError(ap, "the analysis is larger than this reader's ceiling ($TRAJSCOPE_MAX_CAPTURE_MB)")
        try:
            blob = _fs.read(fs, ap, root=root, limit=e["nbytes"], expect_size=e["nbytes"])
        except FileNotFoundError:
            raise FormatError(ap, "analysis array file is missing") from None
        except OSError as err:
            raise FormatError(ap, f"cannot be read ({err.strerror or err})") from None
        arrays[str(e["key"])] = codecs.decode(ap, blob, expect_crc=e.get("crc32"))
    return StoredAnalysis(doc, arrays)
