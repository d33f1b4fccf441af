"""Multi-process trainings (``jax.distributed``): one run, written by every process."""

from __future__ import annotations

import jax
import numpy as np

from .. import store

_NAME_BYTES = 256


def process_index() -> int | None:
    """This process's index when JAX runs several processes, else None."""
    return jax.process_index() if jax.process_count() > 1 else None


def shared_run_name(name: str | None = None, env_name: str | None = None) -> str:
    """The run name every process of a training writes under.

    With one process: ``name``, or a fresh one. With several (``jax.distributed``), a
    collective: every process must call it, and all get process 0's ``name`` (or its fresh
    one), so that their ``RunWriter(name=..., process_index=...)`` write one run.
    """
    mine = name or store.new_run_name(env_name)
    if jax.process_count() == 1:
        return mine
    from jax.experimental import multihost_utils

    raw = mine.encode()
    if len(raw) > _NAME_BYTES:
        raise ValueError(f"run name longer than {_NAME_BYTES} bytes: {mine!r}")
    buf = np.zeros(_NAME_BYTES, np.uint8)
    buf[: len(raw)] = np.frombuffer(raw, np.uint8)
    agreed = np.asarray(multihost_utils.broadcast_one_to_all(buf))
    return bytes(agreed.astype(np.uint8)).rstrip(b"\0").decode()
