"""A model with one environment's randomised fields: ``mujoco.MjModel`` (in place) and the
JAX models of MJX and brax (a new model)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np


def apply_model_fields(model: Any, fields: Mapping[str, np.ndarray], env: int) -> None:
    """Set one environment's randomised fields on an ``MjModel`` (in place).

    Fields come from a run, untrusted: only floating-point arrays of the model's own shape
    are set (sizes, masses, colours, positions, gains, ...). Integer fields (indices,
    addresses, counts) are never written, since an index out of range would make MuJoCo
    read outside its arrays; other names are ignored."""
    for name, values in fields.items():
        if name.startswith("_"):
            continue
        target = getattr(model, name, None)
        v = values[env]
        if (
            isinstance(target, np.ndarray)
            and target.dtype.kind == "f"
            and np.shape(v) == target.shape
            and np.asarray(v).dtype.kind in "fiu"
        ):
            target[...] = v


def with_fields(model: Any, fields: Mapping[str, Any]) -> Any:
    """An MJX ``Model`` (or brax ``System``) with one environment's randomised fields, as a
    new model; ``KeyError`` names fields the model lacks."""
    if not fields:
        return model
    import jax.numpy as jnp

    known = {f.name for f in dataclasses.fields(model)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise KeyError(f"the capture randomises fields the environment's model lacks: {unknown}")
    return model.replace(**{k: jnp.asarray(v) for k, v in fields.items()})
