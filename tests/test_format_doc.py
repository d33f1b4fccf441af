"""docs/format.md and the schema in code describe the same format."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import trajscope
from conftest import all_kinds
from trajscope.store import _schema

DOC = (Path(__file__).parents[1] / "docs" / "format.md").read_text()


def _documented(name: str) -> bool:
    return f"`{name}`" in DOC


def test_version_matches():
    assert re.search(r"^# The trajscope run format, version (\S+)$", DOC, re.M).group(1) == _schema.FORMAT_VERSION
    assert trajscope.FORMAT_VERSION == _schema.FORMAT_VERSION


def test_every_fixed_array_and_group_is_documented():
    for spec in _schema.FIXED_ARRAYS:
        row = re.search(rf"^\| `{spec.name}` \| `\(([^)]*)\)` \| (\w+) \|", DOC, re.M)
        assert row, spec.name
        assert row.group(1) == ", ".join(spec.dims), spec.name
        assert row.group(2) == spec.dtype, spec.name
    for group in _schema.GROUP_LAYOUT:
        assert group == "" or _documented(group), group
    for layout in ("time_env", "env", "free"):
        assert _documented(layout)


def test_every_field_written_is_documented(tmp_path, model):
    with trajscope.RunWriter(tmp_path, name="r", model=model, strict=True) as w:
        w.add_capture(step=0, **all_kinds(model))
    run_json = json.loads((tmp_path / "r" / "run.json").read_text())
    (cdir,) = (tmp_path / "r" / "captures").iterdir()
    manifest = json.loads((cdir / "capture.json").read_text())
    fields = set(run_json) | set(run_json["model"]) | set(manifest) | set(manifest["summary"])
    for entry in manifest["arrays"]:
        fields |= set(entry) | set(entry.get("encoding", {}))
    missing = sorted(f for f in fields if not _documented(f))
    assert not missing, f"docs/format.md does not describe {missing}"


def test_live_files_are_documented(tmp_path, model):
    from conftest import simulate
    from trajscope.store import _live

    with trajscope.RunWriter(tmp_path, name="r", model=model, strict=True) as w:
        w.add_capture(step=5, kind="live", **simulate(model, T=3, E=2))
        w.set_live_status(
            {
                "updated_unix_s": 1.0,
                "streaming": True,
                "env_steps": 5,
                "chunks_sent": 1,
                "num_envs": 2,
                "chunk_steps": 3,
                "last_chunk_id": "0",
                "last_chunk_env_steps": 5,
                "last_chunk_unix_s": 1.0,
                "failures": 0,
            }
        )
    _live.write_control(tmp_path / "r", on=True)
    live = tmp_path / "r" / "live"
    fields = set(json.loads((live / "status.json").read_text())) | set(json.loads((live / "control.json").read_text()))
    fields |= {f.name for f in dataclasses.fields(_live.LiveStatus)}
    missing = sorted(f for f in fields if not _documented(f))
    assert not missing, f"docs/format.md does not describe {missing}"
    assert "`live`" in DOC and "live/" in DOC
