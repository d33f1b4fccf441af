"""The rooms stay apart: the store and the CLI's reading paths never import JAX."""

from __future__ import annotations

import subprocess
import sys


def test_store_never_imports_jax(tmp_path):
    code = (
        "import sys, trajscope, trajscope.store, trajscope.cli, trajscope.serve, trajscope.analyse\n"
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


def _imports(path, *, top_level=False):
    """Imported module names; ``top_level``: only those run when the module is imported."""
    import ast

    tree = ast.parse(path.read_text())
    for node in tree.body if top_level else ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield "." * node.level + (node.module or "")


ROOMS = ("store", "capture", "serve", "analyse")


def _resolve(f, name, src):
    """An import as a dotted module path inside trajscope (None for outside packages)."""
    if not name.startswith("."):
        return name if name.split(".")[0] == "trajscope" else None
    level = len(name) - len(name.lstrip("."))
    base = list(f.relative_to(src.parent).with_suffix("").parts)[:-level]
    rest = name.lstrip(".")
    return ".".join([*base, rest] if rest else base)


def _imports_from(f):
    """(module, names) of each import statement of a file."""
    import ast

    for node in ast.walk(ast.parse(f.read_text())):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, ()
        elif isinstance(node, ast.ImportFrom):
            yield "." * node.level + (node.module or ""), tuple(a.name for a in node.names)


def test_rooms_import_only_downstream():
    """capture -> store -> serve; analyse is arrays in, arrays out and imports no room (the
    store calls it for summaries). The store imports neither JAX nor capture or serve, and
    capture never imports the viewer. analyse imports JAX and brax only inside the functions
    that need them (saliency, rebuilt policies), never when it is imported."""
    from pathlib import Path

    src = Path(__file__).parents[1] / "src" / "trajscope"
    rules = {
        "store": ("jax", "jaxlib", "brax", "flax", "mujoco_playground", "..capture", "..serve"),
        "capture": ("..serve", "..analyse"),
        "serve": ("jax", "jaxlib", "brax", "flax", "mujoco_playground", "..capture"),
        "analyse": ("mujoco", "viser", "..store", "..capture", "..serve"),
    }
    top_level_only = {"analyse": ("jax", "jaxlib", "brax", "flax")}
    checked = 0
    for room, banned in rules.items():
        for f in (src / room).glob("*.py"):
            checked += 1
            for name in _imports(f):
                assert not any(name == b or name.startswith(b + ".") for b in banned), f"{f.name} imports {name}"
            for name in _imports(f, top_level=True):
                lazy = top_level_only.get(room, ())
                assert not any(name == b or name.startswith(b + ".") for b in lazy), f"{f.name} imports {name} at once"
    assert checked >= 20


def test_no_private_module_of_another_room_is_imported():
    """Each room's door is its package ``__init__``: code outside a room (another room, the
    CLI, examples, benchmarks) imports only public names, never ``room._module``."""
    from pathlib import Path

    root = Path(__file__).parents[1]
    src = root / "src" / "trajscope"
    files = [*src.rglob("*.py"), *(root / "examples").glob("*.py"), *(root / "benchmarks").glob("*.py")]
    found = []
    for f in files:
        rel = f.relative_to(src).parts if f.is_relative_to(src) else ()
        own_room = rel[0] if len(rel) > 1 and rel[0] in ROOMS else None
        for name, names in _imports_from(f):
            module = _resolve(f, name, src) if f.is_relative_to(src) else name
            if module is None or not module.startswith("trajscope"):
                continue
            parts = module.split(".")
            targets = [[*parts, n] for n in names] if len(parts) == 2 and parts[1] in ROOMS else [parts]
            for p in targets:
                room = p[1] if len(p) > 1 else None
                private = len(p) > 2 and p[2].startswith("_")
                top_private = len(p) > 1 and p[1].startswith("_")  # trajscope._x
                if (room in ROOMS and room != own_room and private) or (top_private and not f.is_relative_to(src)):
                    found.append(f"{f.relative_to(root)}: {'.'.join(p)}")
    assert not found, found
