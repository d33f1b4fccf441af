"""The MuJoCo model of a run: saved as trained, summarised for readers without MuJoCo."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def geom_type_name(t: int) -> str:
    """MuJoCo's name of a geom type, lower case without its prefix: ``plane``, ``mesh``, ..."""
    import mujoco

    try:
        name = mujoco.mjtGeom(int(t)).name
    except ValueError:
        name = ""
    return name.removeprefix("mjGEOM_").lower() if name.startswith("mjGEOM_") else f"type{int(t)}"


def describe(model: Any) -> dict[str, Any]:
    """Sizes and geom types of an ``mujoco.MjModel``, as plain JSON."""
    types = sorted({int(t) for t in np.asarray(model.geom_type).ravel()})
    return {
        "nq": int(model.nq),
        "nv": int(model.nv),
        "nu": int(model.nu),
        "na": int(model.na),
        "nbody": int(model.nbody),
        "ngeom": int(model.ngeom),
        "nmocap": int(model.nmocap),
        "timestep_s": float(model.opt.timestep),
        "geom_types": [geom_type_name(t) for t in types],
    }


def to_bytes(model: Any) -> bytes:
    """``mj_saveModel`` bytes: the compiled model exactly as trained."""
    import mujoco

    buf = np.zeros(mujoco.mj_sizeModel(model), dtype=np.uint8)
    mujoco.mj_saveModel(model, None, buf)
    return buf.tobytes()


def load_xml_path(path: str | os.PathLike[str]) -> tuple[Any, str, dict[str, bytes]]:
    """Compile an MJCF file; return the model, its XML text and the files beside it it names."""
    import mujoco

    p = Path(path)
    model = mujoco.MjModel.from_xml_path(str(p))
    xml = p.read_text()
    assets: dict[str, bytes] = {}
    for f in p.parent.rglob("*"):
        if f.is_file() and f != p and f.suffix.lower() in _ASSET_SUFFIXES:
            rel = f.relative_to(p.parent).as_posix()
            if rel in xml or f.name in xml:
                assets[rel] = f.read_bytes()
    return model, xml, assets


_ASSET_SUFFIXES = {".xml", ".stl", ".obj", ".msh", ".png", ".skn", ".mjb"}


def from_bytes(data: bytes) -> Any:
    """An ``mujoco.MjModel`` from ``mj_saveModel`` bytes (through a temporary file)."""
    import mujoco

    fd, tmp = tempfile.mkstemp(suffix=".mjb")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return mujoco.MjModel.from_binary_path(tmp)
    finally:
        os.unlink(tmp)


# ---------------------------------------------------------------------------- untrusted models


def inflate(path: str, data: bytes, limit: int) -> bytes:
    """``model.mjb.z`` inflated to at most ``limit`` bytes: a bomb is refused before it
    is decompressed whole."""
    import zlib

    from ..format.errors import FormatError

    d = zlib.decompressobj()
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error as e:
        raise FormatError(path, f"corrupt compressed model ({e})") from None
    if len(out) > limit:
        raise FormatError(path, f"inflates to more than {limit} bytes ($TRAJSCOPE_MAX_MODEL_MB); refused")
    if not d.eof:
        raise FormatError(path, "truncated compressed model")
    return out


# The child that vets a model: it imports mujoco and numpy only, under an address-space
# limit, in an empty working folder, and runs what the viewer, play and the exports do
# with a model (load or compile; forward dynamics and the contact pass at the reset pose
# and at perturbed poses; a few steps). It answers the model's MJB bytes, or dies.
_CHILD = r"""
import json, os, resource, sys
limit = int(sys.argv[1])
try:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
except (ValueError, OSError):
    pass
import numpy as np
import mujoco
raw = sys.stdin.buffer.read()
n = int.from_bytes(raw[:8], "little")
head = json.loads(raw[8:8 + n])
body = raw[8 + n:]
if head["kind"] == "mjb":
    with open("model.mjb", "wb") as f:
        f.write(body)
    m = mujoco.MjModel.from_binary_path("model.mjb")
    os.unlink("model.mjb")
else:
    assets, at = {}, len(body) - sum(head["sizes"])
    xml = body[:at].decode()
    for name, size in zip(head["names"], head["sizes"]):
        assets[name] = body[at:at + size]
        at += size
    m = mujoco.MjModel.from_xml_string(xml, assets)
if m.ntexdata > head["max_texture_bytes"]:
    sys.exit(f"its textures hold {m.ntexdata:,} bytes, more than the {head['max_texture_bytes']:,} allowed "
             "($TRAJSCOPE_MAX_TEXTURE_MB)")
if mujoco.mj_sizeModel(m) > head["max_model_bytes"]:
    sys.exit(f"it takes {mujoco.mj_sizeModel(m):,} bytes in memory, more than the {head['max_model_bytes']:,} "
             "allowed ($TRAJSCOPE_MAX_MODEL_MB)")
d = mujoco.MjData(m)
mujoco.mj_forward(m, d)
rng = np.random.default_rng(0)
for scale in (0.1, 1.0, 10.0):
    mujoco.mj_resetData(m, d)
    d.qpos[:] = d.qpos + scale * rng.standard_normal(m.nq)
    mujoco.mj_forward(m, d)
    mujoco.mj_collision(m, d)
mujoco.mj_resetData(m, d)
for _ in range(3):
    mujoco.mj_step(m, d)
buf = np.zeros(mujoco.mj_sizeModel(m), dtype=np.uint8)
mujoco.mj_saveModel(m, None, buf)
sys.stdout.buffer.write(b"OK" + (buf.tobytes() if head["kind"] == "xml" else b""))
"""

_VETTED: dict[str, bytes] = {}
"""Models this process has vetted, by the SHA-256 of what was read: their MJB bytes."""

VET_TIMEOUT_S = 60.0


def _vet_cache(digest: str) -> Path | None:
    from . import _cache

    root = _cache.folder()
    return None if root is None else root / "models" / f"{digest}.ok"


def unsafe_file_refs(xml: str) -> list[str]:
    """File names in MJCF text that would reach outside the run: absolute paths, ``..``,
    drive letters and URLs, in ``file*`` attributes and the compiler's ``*dir``s."""
    import re

    bad = []
    for attr, value in re.findall(r"""\b(file\w*|meshdir|texturedir|assetdir)\s*=\s*["']([^"']*)["']""", xml):
        v = value.strip().replace("\\", "/")
        if v.startswith(("/", "~")) or ".." in v.split("/") or re.match(r"^[A-Za-z][\w+.-]*:", v):
            bad.append(f"{attr}={value!r}")
    return bad


def load_untrusted(path: str, data: bytes, *, xml: bool = False, assets: dict[str, bytes] | None = None) -> Any:
    """An ``mujoco.MjModel`` from a run's model file, vetted first in a child process
    (:data:`_CHILD`): a file that makes MuJoCo abort or crash ends the child, not this
    process, and becomes a :class:`FormatError` with the reason. The verdict is kept by
    the SHA-256 of the bytes (in this process, and on disk in ``$TRAJSCOPE_CACHE`` for
    models that passed), so each model is vetted once. ``xml``: ``data`` is MJCF text
    whose files come from ``assets`` only, never from the disk."""
    import hashlib
    import json
    import subprocess
    import sys

    from ..format.errors import FormatError

    assets = dict(assets or {})
    if xml:
        texts = [("model.xml", data)] + [(k, v) for k, v in assets.items() if k.lower().endswith(".xml")]
        for name, blob in texts:
            bad = unsafe_file_refs(blob.decode("utf-8", "replace"))
            if bad:
                raise FormatError(path, f"{name} names files outside the run ({', '.join(bad[:3])}); refused")
        names = sorted(assets)
        head = {"kind": "xml", "names": names, "sizes": [len(assets[n]) for n in names]}
        body = data + b"".join(assets[n] for n in names)
    else:
        head = {"kind": "mjb"}
        body = data
    from ._fs import max_model_bytes, max_texture_bytes

    head |= {"max_texture_bytes": max_texture_bytes(), "max_model_bytes": max_model_bytes()}
    h = hashlib.sha256(json.dumps(head).encode())
    h.update(body)
    digest = h.hexdigest()
    mjb = _VETTED.get(digest)
    cache = _vet_cache(digest)
    if mjb is None and cache is not None and not xml:
        try:
            if cache.exists():
                mjb = _VETTED[digest] = data
        except OSError:
            pass
    if mjb is None:
        frame = json.dumps(head).encode()
        limit = max(4 * 2**30, 8 * len(body) + 2**30)
        with tempfile.TemporaryDirectory(prefix="trajscope-vet-") as cwd:
            try:
                p = subprocess.run(
                    [sys.executable, "-c", _CHILD, str(limit)],
                    input=len(frame).to_bytes(8, "little") + frame + body,
                    capture_output=True,
                    timeout=VET_TIMEOUT_S,
                    cwd=cwd,
                    env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
                )
            except subprocess.TimeoutExpired:
                raise FormatError(path, f"MuJoCo took over {VET_TIMEOUT_S:.0f} s to load and step the model") from None
        if p.returncode != 0 or not p.stdout.startswith(b"OK"):
            err = p.stderr.decode("utf-8", "replace").strip().splitlines()
            why = err[-1][:300] if err else f"MuJoCo ended the process (exit {p.returncode})"
            if p.returncode < 0:
                why = f"MuJoCo crashed on it (signal {-p.returncode})"
            raise FormatError(path, f"model cannot be loaded safely: {why}")
        mjb = _VETTED[digest] = p.stdout[2:] if xml else data
        if cache is not None and not xml:
            try:
                cache.parent.mkdir(parents=True, exist_ok=True)
                cache.touch()
            except OSError:
                pass
    try:
        return from_bytes(mjb)
    except Exception as e:  # noqa: BLE001 - vetted, yet refused here: report it
        raise FormatError(path, f"model cannot be loaded: {e}") from None
