"""The rooms stay apart: the store and the CLI's reading paths never import JAX."""

from __future__ import annotations

import subprocess
import sys


def test_store_never_imports_jax(tmp_path):
    code = (
        "import sys, trajscope, trajscope.store, trajscope.cli\n"
        "from trajscope.cli import main\n"
        "import trajscope._demo\n"
        f"trajscope._demo.write_demo_run({str(tmp_path)!r}, name='d', checkpoints=1)\n"
        f"r = trajscope.open_run({str(tmp_path / 'd')!r}); r.capture(0).load('qpos'); r.load_model()\n"
        "heavy = ('jax', 'jaxlib', 'brax', 'flax', 'mujoco_playground')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr
