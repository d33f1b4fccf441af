"""The rooms stay apart: the store and the CLI's reading paths never import JAX."""

from __future__ import annotations

import subprocess
import sys


def test_store_never_imports_jax(tmp_path):
    code = (
        "import sys, trajscope, trajscope.store, trajscope.cli, trajscope.serve\n"
        "from trajscope.cli import main\n"
        "import trajscope.demo\n"
        f"trajscope.demo.write_demo_run({str(tmp_path)!r}, name='d', checkpoints=1)\n"
        f"r = trajscope.open_run({str(tmp_path / 'd')!r}); r.capture(0).load('qpos'); r.load_model()\n"
        "heavy = ('jax', 'jaxlib', 'brax', 'flax', 'mujoco_playground')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr


def _imports(path):
    import ast

    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield "." * node.level + (node.module or "")


def test_rooms_import_only_downstream():
    """capture -> store -> serve/analyse: the store imports neither JAX nor the other rooms,
    and capture never imports the viewer."""
    from pathlib import Path

    src = Path(__file__).parents[1] / "src" / "trajscope"
    rules = {
        "store": ("jax", "jaxlib", "brax", "flax", "mujoco_playground", "..capture", "..serve", "..analyse"),
        "capture": ("..serve", "..analyse"),
        "serve": ("jax", "jaxlib", "brax", "flax", "mujoco_playground", "..capture"),
    }
    checked = 0
    for room, banned in rules.items():
        for f in (src / room).glob("*.py"):
            checked += 1
            for name in _imports(f):
                assert not any(name == b or name.startswith(b + ".") for b in banned), f"{f.name} imports {name}"
    assert checked >= 11
