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


def summarize(model: Any) -> dict[str, Any]:
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
