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


ROOMS = (
    "_escape",
    "format",
    "store",
    "sim",
    "scene",
    "analyse",
    "export",
    "capture",
    "play",
    "serve",
    "demo",
    "notebook",
    "cli",
    "__main__",
    "__init__",
)
"""Every room of the package, lowest first: a module may import its own room and the rooms
before it, never one after it (docs/architecture.md). Single-module rooms are named by
their module; ``__init__`` (the package's door) comes last, so it may import any room."""

HEAVY = ("jax", "jaxlib", "brax", "flax", "mujoco_playground")
NO_JAX = ("format", "store", "sim", "scene", "serve", "export")
"""Rooms that never import JAX at import time (reading and viewing a run needs none);
``sim`` imports it inside the functions that restore JAX states, ``serve`` inside play."""


def _resolve(f, name, src):
    """An import as a dotted module path inside trajscope (None for outside packages)."""
    if not name.startswith("."):
        return name if name.split(".")[0] == "trajscope" else None
    level = len(name) - len(name.lstrip("."))
    base = list(f.relative_to(src.parent).with_suffix("").parts)[:-level]
    rest = name.lstrip(".")
    return ".".join([*base, rest] if rest else base)


def _imports_from(f, *, top_level=False):
    """(module, names) of each import statement of a file (``top_level``: only those run
    when the module is imported)."""
    import ast

    tree = ast.parse(f.read_text())
    for node in tree.body if top_level else ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, ()
        elif isinstance(node, ast.ImportFrom):
            yield "." * node.level + (node.module or ""), tuple(a.name for a in node.names)


def _room_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "trajscope":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def _edges(*, top_level=False):
    """(file, its room, imported module, its room) for every import of a trajscope module
    by a file of the package: lazy ones (inside functions) too, unless ``top_level``."""
    from pathlib import Path

    src = Path(__file__).parents[1] / "src" / "trajscope"
    for f in sorted(src.rglob("*.py")):
        rel = f.relative_to(src).parts
        room = rel[0] if len(rel) > 1 else f.stem
        for name, names in _imports_from(f, top_level=top_level):
            module = _resolve(f, name, src)
            if module is None:
                continue
            # "from .. import store" imports the room store
            targets = [f"{module}.{n}" for n in names] if module == "trajscope" else [module]
            for t in targets:
                yield f, room, t, _room_of(t)


def test_every_room_is_named_and_imports_only_rooms_before_it():
    """One ordered list names every room; no import (lazy ones included) runs back up it."""
    from pathlib import Path

    src = Path(__file__).parents[1] / "src" / "trajscope"
    rooms_on_disk = {p.name for p in src.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    rooms_on_disk |= {p.stem for p in src.glob("*.py")}
    assert rooms_on_disk == set(ROOMS), rooms_on_disk ^ set(ROOMS)
    order = {r: i for i, r in enumerate(ROOMS)}
    upward = [
        f"{f.relative_to(src)} ({room}) imports {module} ({target})"
        for f, room, module, target in _edges()
        if target in order and order[target] > order[room]
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycle_between_modules():
    """No two modules of the package import each other, directly or through others, when
    imported (a cycle that works only by import order)."""
    from pathlib import Path

    src = Path(__file__).parents[1] / "src" / "trajscope"

    def module_of(f):
        parts = list(f.relative_to(src.parent).with_suffix("").parts)
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    modules = {module_of(f) for f in src.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for f in src.rglob("*.py"):
        me = module_of(f)
        for name, names in _imports_from(f, top_level=True):
            module = _resolve(f, name, src)
            if module is None:
                continue
            for t in [module, *(f"{module}.{n}" for n in names)]:
                if t in modules and t != me and not me.startswith(t + "."):
                    graph[me].add(t)  # a package's own __init__ runs first: not an edge back
    state: dict[str, int] = {}
    cycles = []

    def visit(m, path):
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycles.append(" -> ".join([*path[path.index(n) :], n]))
            elif n not in state:
                visit(n, [*path, n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, cycles


def test_importtime_agrees_every_room_imports_only_rooms_before_it():
    """What Python really imports (``-X importtime``) when each room is imported alone in a
    fresh interpreter: only modules of its own room and of rooms before it, and no JAX for
    the rooms that must not need it."""
    import subprocess
    import sys

    order = {r: i for i, r in enumerate(ROOMS)}

    def imported(code: str) -> tuple[set[str], set[str]]:
        """Modules imported before and after the line MARK printed by ``code``."""
        p = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr[-2000:]
        before, after = p.stderr.split("MARK\n", 1)
        names = [
            {line.rsplit("|", 1)[-1].strip() for line in part.splitlines() if "|" in line} for part in (before, after)
        ]
        return names[0], names[1]

    mark = "import sys; print('MARK', file=sys.stderr, flush=True)"
    door, _ = imported(f"import trajscope; {mark}")  # the package's door: the format and the store
    assert {_room_of(m) for m in door} - {None} <= {"__init__", "format", "store"}, door
    for room in ("format", "store", "sim", "scene", "analyse", "export", "capture", "play", "serve"):
        _, added = imported(f"import trajscope; {mark}; import trajscope.{room}")
        later = sorted(m for m in added if (r := _room_of(m)) in order and order[r] > order[room] and r != "__init__")
        assert not later, (room, later)
        if room in NO_JAX:
            heavy = sorted(m for m in added | door if m.split(".")[0] in HEAVY)
            assert not heavy, (room, heavy[:5])


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
