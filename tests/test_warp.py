"""MuJoCo Warp on every capture path (``tests/warp_cases.py``), in a fresh interpreter.

XLA segfaulted compiling the Warp trainings late in the suite's long process (after some
300 other tests; never when they run alone), as it had aborted on test_saliency's vision
network: a child process keeps the suite whole and the failure, if any, readable."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mujoco_playground")
pytest.importorskip("warp")


def test_every_capture_path_works_with_mujoco_warp(tmp_path):
    cases = Path(__file__).with_name("warp_cases.py")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", str(tmp_path), str(cases)]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=cases.parents[1], env=dict(os.environ), timeout=1500)
    failures = p.stdout.find("= FAILURES =")  # what failed, not the warnings after it
    tail = p.stdout[failures : failures + 8000] if failures >= 0 else p.stdout[-6000:] + p.stderr[-3000:]
    assert p.returncode == 0, tail
    passed = re.search(r"(\d+) passed", p.stdout)
    assert passed and int(passed.group(1)) >= 6 and "failed" not in p.stdout, tail
