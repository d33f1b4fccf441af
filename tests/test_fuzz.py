"""The reader against damaged run directories: the fuzzer's quick mode (the long mode is
``python tests/fuzz_reader.py --cases 10000``), and the cases it is built around."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from fuzz_reader import HUGE, classify, run_fuzz
from trajscope.store import FormatError, RunWriter, open_run


def test_quick_fuzz_of_mutated_runs():
    lines = []
    report = run_fuzz(300, seed=1, workers=2, log=lines.append)
    print(json.dumps({k: v for k, v in report.items() if k != "failures"}, indent=1))
    assert report["cases"] == 300
    assert report["failures"] == [], "\n".join(lines)
    # The mutations reach the reader: many runs fail to read, each with a FormatError.
    assert report["outcomes"]["format_error"] >= 15 and report["outcomes"]["ok"] >= 150


@pytest.fixture
def run_dir(tmp_path, model):
    from conftest import all_kinds

    with RunWriter(tmp_path, name="r", model=model, strict=True) as w:
        w.add_capture(step=1, **all_kinds(model))
    return tmp_path / "r"


def _manifest(run_dir):
    (cdir,) = (run_dir / "captures").iterdir()
    return cdir / "capture.json"


@pytest.mark.parametrize("compress", [True, False])
def test_a_declared_shape_of_a_trillion_values_allocates_nothing(tmp_path, model, compress):
    from conftest import all_kinds
    from trajscope import cli
    from trajscope.serve import _shown

    with RunWriter(tmp_path, name="r", model=model, strict=True, compress=compress) as w:
        w.add_capture(step=1, **all_kinds(model))
    path = _manifest(tmp_path / "r")
    doc = json.loads(path.read_text())
    doc["num_steps"] = HUGE  # every per-step array now declares 10^12 steps
    for e in doc["arrays"]:
        if e["layout"] == "time_env":
            e["shape"][0] = HUGE
            e["stored_shape"][1] = HUGE
    path.write_text(json.dumps(doc))
    run = open_run(tmp_path / "r")
    (info,) = run.captures
    assert info.num_steps == HUGE
    json.dumps(cli.info_json(run, run.check(checksums=False)))
    cap = run.capture(0)
    tracemalloc.start()
    for env in (None, 0):
        with pytest.raises(FormatError) as err:
            cap.load("reward", env=env)
        assert "reward" in err.value.path
    with pytest.raises(FormatError):
        _shown.Shown.load(cap, [0, 1], 0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50 * 2**20  # bytes, not the terabytes the manifest declares


def test_damage_is_reported_with_the_file(run_dir):
    path = _manifest(run_dir)
    doc = json.loads(path.read_text())
    doc["arrays"][0]["group"] = {"not": "a string"}
    path.write_text(json.dumps(doc))
    outcome, _ = classify(run_dir)
    assert outcome == "ok"  # the run opens; the damaged capture is listed as a problem
    run = open_run(run_dir)
    assert run.captures == [] and "malformed field 'group'" in run.problems[0].problem
    assert run.problems[0].path == str(path)


def test_a_manifest_in_the_wrong_folder_is_refused(run_dir):
    path = _manifest(run_dir)
    doc = json.loads(path.read_text())
    doc["capture_id"] = "000000000001-eval-somewhere"
    path.write_text(json.dumps(doc))
    run = open_run(run_dir)
    assert run.captures == [] and "is not its folder's name" in run.problems[0].problem
