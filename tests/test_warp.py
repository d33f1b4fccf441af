"""MuJoCo Warp on every capture path (``tests/warp_cases.py``), in a fresh interpreter.

XLA segfaulted compiling the Warp trainings late in the suite's long process (after some
300 other tests; never when they run alone), as it had aborted on test_saliency's vision
network: a child process keeps the suite whole and the failure, if any, readable. The
child starts as soon as the suite is collected (``conftest.pytest_collection_finish``) and
runs beside the other tests: its two minutes, mostly Warp's and XLA's compilation, overlap
theirs instead of adding to them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("mujoco_playground")
pytest.importorskip("warp")

CASES = Path(__file__).with_name("warp_cases.py")


def start_cases() -> tuple[subprocess.Popen, Path]:
    """The Warp cases running in a child pytest: ``(process, file its output goes to)``."""
    base = Path(tempfile.mkdtemp(prefix="trajscope-warp-cases-"))
    out = base / "output.txt"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", str(base / "tmp"), str(CASES)]
    with open(out, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=CASES.parents[1], env=dict(os.environ))
    return proc, out


def test_every_capture_path_works_with_mujoco_warp(request):
    started = getattr(request.config, "_trajscope_warp_cases", None)
    proc, out = started if started is not None else start_cases()
    try:
        rc = proc.wait(timeout=1500)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = out.read_text(errors="replace")
    failures = text.find("= FAILURES =")  # what failed, not the warnings after it
    shown = text[failures : failures + 8000] if failures >= 0 else text[-8000:]
    assert rc == 0, shown
    passed = re.search(r"(\d+) passed", text)
    assert passed and int(passed.group(1)) >= 6 and "failed" not in text, shown
