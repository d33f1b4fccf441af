"""The docs say what the code does: names, defaults and figures that a test can hold them to."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()
DOCS = {p.name: p.read_text() for p in (ROOT / "docs").glob("*.md")}


def _code_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_readme_and_docs_imports_exist():
    """Every import line in the README's and the docs' Python examples works."""
    lines = {
        line.strip()
        for text in (README, *DOCS.values())
        for block in _code_blocks(text)
        for line in block.splitlines()
        if re.match(r"\s*(from trajscope\S* import|import trajscope)", line)
    }
    assert len(lines) >= 3
    for line in sorted(lines):
        if "capture" in line:
            pytest.importorskip("jax")
        exec(compile(line.split("#")[0].rstrip().rstrip("("), "<docs>", "exec"), {})


def test_every_recorder_option_is_documented_with_its_default():
    pytest.importorskip("jax")
    from trajscope.capture import RecorderConfig, _config

    doc = DOCS["capture.md"]
    defaults = RecorderConfig().flat()
    documented = dict(re.findall(r"^\| `(\w+)` \| `[\w.]+` \| `([^`]*)` \|", doc, re.M))
    assert set(documented) == set(defaults), set(documented) ^ set(defaults)
    for name, default in defaults.items():
        assert documented[name] in (repr(default), str(default)), (name, documented[name])
        field = ".".join(_config.FLAT.get(name, (name,)))
        assert re.search(rf"^\| `{name}` \| `{re.escape(field)}` \|", doc, re.M), (name, field)


def test_live_stream_figures_match_the_code():
    import inspect

    import trajscope
    from trajscope.store import LiveControl

    live, fmt = DOCS["live.md"], DOCS["format.md"]
    keep_live = inspect.signature(trajscope.RunWriter).parameters["keep_live"].default
    assert f"newest {keep_live} chunks (`keep_live`)" in live
    assert f"renews it every {LiveControl.RENEW_S:g} s" in live
    assert f"renewed within {LiveControl.LEASE_S:g} s" in live
    assert f"treats `on` as off {LiveControl.LEASE_S:g} s after this" in fmt
    try:
        from trajscope.capture import RecorderConfig
    except ImportError:
        return
    assert f"`live_chunk_steps` (default {RecorderConfig().live.chunk_steps})" in live


def test_readme_cost_figures_are_those_in_the_results():
    """The README quotes benchmarks/RESULTS.md; every ratio it quotes is there."""
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    section = README.split("What it costs", 1)[1].split("\n## ", 1)[0]
    ratios = re.findall(r"\b1\.\d{3}\b", section)
    assert len(ratios) >= 3
    for r in ratios:
        assert r in results, r
    noise = re.search(r"about (\d+\.\d)%", section).group(1)
    assert f"differ by {noise}%" in results


def test_format_doc_names_the_code_that_defines_it():
    fmt = DOCS["format.md"]
    for path in re.findall(r"`(src/trajscope/[^`]+\.py)`", fmt):
        assert (ROOT / path).is_file(), path
    # The object-store commit is what _fs.write_atomic does: a temporary object, then a move.
    src = (ROOT / "src/trajscope/store/_fs.py").read_text()
    assert "capture.json.tmp-<pid>-<thread>-<random>" in fmt and 'tmp = f"{path}.tmp-{tag}"' in src
    assert "fs.mv(tmp, path)" in src


def test_viewer_doc_gives_the_code_s_polling_intervals():
    from trajscope.serve import _app

    doc = " ".join(DOCS["viewer.md"].split())
    local = max(_app.RUNS_POLL_S, 6 * _app.POLL_S["local"])
    remote = max(_app.RUNS_POLL_S, 6 * _app.POLL_S["remote"])
    assert f"new runs appear in the list within {local:g} s ({remote:g} s on remote filesystems" in doc
    assert f"{_app.POLL_S['local']:g} on a local disk, {_app.POLL_S['remote']:g} on remote filesystems" in doc


def test_architecture_doc_names_every_room_in_the_tested_order():
    from test_imports import ROOMS

    doc = DOCS["architecture.md"].split("## The rooms, lowest first", 1)[1].split("\n## ", 1)[0]
    table = [m.group(1) for m in re.finditer(r"^\| `([a-z_]+)`", doc, re.M)]
    rooms = [r for r in ROOMS if not r.startswith("__") and r not in ("notebook", "cli")]
    assert table == rooms
