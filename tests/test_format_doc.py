"""docs/format.md and the schema in code describe the same format."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

import trajscope
from conftest import all_kinds
from trajscope.format import documents as _documents
from trajscope.format import schema as _schema
from trajscope.store import LiveControl, LiveStatus

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
    # process_index=0: the first process of a multi-process training writes every field.
    with trajscope.RunWriter(tmp_path, name="r", model=model, strict=True, process_index=0) as w:
        w.add_capture(step=0, **all_kinds(model))
    run_json = json.loads((tmp_path / "r" / "run.json").read_text())
    (cdir,) = (tmp_path / "r" / "captures").iterdir()
    manifest = json.loads((cdir / "capture.json").read_text())
    fields = set(run_json) | set(run_json["model"]) | set(manifest) | set(manifest["summary"])
    for entry in manifest["arrays"]:
        fields |= set(entry) | set(entry.get("encoding", {}))
    missing = sorted(f for f in fields if not _documented(f))
    assert not missing, f"docs/format.md does not describe {missing}"


def _table_fields(heading: str, which: int = 0) -> set[str]:
    """The backticked names in the first column of the ``which``-th table under ``heading``."""
    section = DOC.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]
    tables = re.findall(r"((?:^\|.*\|$\n?)+)", section, re.M)
    rows = tables[which].strip().splitlines()[2:]
    return {re.match(r"^\| `([^`]+)` \|", r).group(1) for r in rows}


def _live_docs(tmp_path, model):
    from conftest import simulate

    status = LiveStatus(
        updated_unix_s=1.0,
        streaming=True,
        env_steps=5,
        chunks_sent=1,
        num_envs=2,
        chunk_steps=3,
        last_chunk_id="0",
        last_chunk_env_steps=5,
        last_chunk_unix_s=1.0,
    )
    with trajscope.RunWriter(tmp_path, name="r", model=model, strict=True) as w:
        w.add_capture(step=5, kind="live", **simulate(model, T=3, E=2))
        w.set_live_status(status)
    trajscope.store.write_live_control(tmp_path / "r", on=True, rate=0.5)
    live = tmp_path / "r" / "live"
    return status, json.loads((live / "status.json").read_text()), json.loads((live / "control.json").read_text())


def test_each_document_has_the_fields_its_table_lists(tmp_path, model):
    """One definition: the fields each build function writes are exactly those its table
    in docs/format.md lists, and those the code declares."""
    # process_index=0: the first process of a multi-process training writes every field.
    with trajscope.RunWriter(tmp_path, name="r", model=model, strict=True, process_index=0) as w:
        w.add_capture(step=0, **all_kinds(model))
    run_json = json.loads((tmp_path / "r" / "run.json").read_text())
    (cdir,) = (tmp_path / "r" / "captures").iterdir()
    manifest = json.loads((cdir / "capture.json").read_text())
    assert set(run_json) == set(_documents.RUN_FIELDS) == _table_fields("## run.json")
    assert set(manifest) == set(_documents.MANIFEST_FIELDS) == _table_fields("## capture.json, the manifest")
    entry_fields = set().union(*(set(e) for e in manifest["arrays"]))
    assert entry_fields == set(_documents.ENTRY_FIELDS) == _table_fields("## capture.json, the manifest", 1)
    encodings = [e["encoding"] for e in manifest["arrays"] if "encoding" in e]
    assert set().union(*map(set, encodings)) == _table_fields("## Images")
    _, status, control = _live_docs(tmp_path / "live", model)
    assert (
        set(status) == {f.name for f in dataclasses.fields(LiveStatus)} == _table_fields("## The live stream: `live/`")
    )
    assert (
        set(control)
        == {f.name for f in dataclasses.fields(LiveControl)}
        == _table_fields("## The live stream: `live/`", 1)
    )


def test_each_document_parses_what_it_builds(tmp_path, model):
    status, status_doc, control_doc = _live_docs(tmp_path, model)
    assert LiveStatus.parse("s", json.dumps(status_doc).encode()) == status
    ctl = LiveControl.parse("c", json.dumps(control_doc).encode())
    assert ctl.on and ctl.rate == 0.5 and ctl.active()
    run = trajscope.open_run(tmp_path / "r")
    assert run.live_status() == status and run.live_control() == ctl
    # Every reader of the manifest goes through parse_manifest: the reader lists exactly it.
    (chunk,) = run.live_chunks()
    path = tmp_path / "r" / "live" / chunk.id / "capture.json"
    parsed = _documents.parse_manifest(str(path), path.read_bytes(), run.model_info)
    assert parsed["capture_id"] == chunk.id and parsed["kind"] == "live"
    with pytest.raises(trajscope.FormatError, match=r"control\.json"):
        LiveControl.parse("live/control.json", b"[1, 2")
