"""The description of a training's networks that ``run.json`` keeps under ``network``: a
typed record, read from untrusted JSON with clear errors and written back as plain JSON.

It names one of brax's own network factories by key (never a dotted path a reader would
import), with plain-JSON keyword arguments, so a later process can rebuild the policy and
value networks around a capture's stored parameters. numpy-free and JAX-free.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

FACTORIES = {
    "ppo": ("brax.training.agents.ppo.networks", "make_ppo_networks"),
    "ppo_vision": ("brax.training.agents.ppo.networks_vision", "make_ppo_networks_vision"),
    "sac": ("brax.training.agents.sac.networks", "make_sac_networks"),
}
"""The factories a run may name, by the key ``kind`` holds: (module, function)."""


class NetworkSpecError(ValueError):
    """``run.json``'s ``network`` is malformed."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class NetworkSpec:
    """How to rebuild a training's networks, or why they cannot be (``kind`` None, ``why``)."""

    kind: str | None
    """A key of ``FACTORIES``, or None when the factory is not one of brax's."""
    factory: str
    """The dotted path of the factory the training used (informative only)."""
    algorithm: str
    kwargs: Mapping[str, Any]
    """The factory's keyword arguments as plain JSON; activations as ``{"activation": name}``."""
    observation_size: int | list[int] | dict[str, list[int]]
    action_size: int
    normalize_observations: bool
    why: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)} | {"kwargs": dict(self.kwargs)}

    @property
    def rebuildable(self) -> bool:
        return self.kind in FACTORIES

    @classmethod
    def from_json(cls, doc: Any) -> NetworkSpec:
        """Read an untrusted ``network`` document; ``NetworkSpecError`` names what is wrong."""
        if not isinstance(doc, Mapping):
            raise NetworkSpecError(f"'network' must be an object, not {type(doc).__name__}")
        kind = doc.get("kind")
        if kind is not None and kind not in FACTORIES:
            raise NetworkSpecError(f"unknown network kind {str(kind)[:40]!r} (known: {', '.join(FACTORIES)})")
        kwargs = doc.get("kwargs") or {}
        if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
            raise NetworkSpecError("'network.kwargs' must be an object of named arguments")
        action = doc.get("action_size")
        if not isinstance(action, int) or isinstance(action, bool) or not 0 < action < 2**20:
            raise NetworkSpecError(f"'network.action_size' must be a positive count, not {str(action)[:40]!r}")
        return cls(
            kind=kind,
            factory=str(doc.get("factory") or "?"),
            algorithm=str(doc.get("algorithm") or "?"),
            kwargs=dict(kwargs),
            observation_size=_size(doc.get("observation_size")),
            action_size=action,
            normalize_observations=bool(doc.get("normalize_observations", False)),
            why=None if doc.get("why") is None else str(doc.get("why")),
        )


def _dims(v: Any) -> list[int]:
    if isinstance(v, int) and not isinstance(v, bool):
        v = [v]
    if not isinstance(v, list) or not v or not all(isinstance(d, int) and not isinstance(d, bool) for d in v):
        raise NetworkSpecError(f"'network.observation_size' has a malformed shape {str(v)[:40]!r}")
    if not all(0 < d < 2**24 for d in v):
        raise NetworkSpecError(f"'network.observation_size' has an impossible shape {str(v)[:40]!r}")
    return list(v)


def _size(v: Any) -> int | list[int] | dict[str, list[int]]:
    if isinstance(v, Mapping):
        if not v or not all(isinstance(k, str) for k in v):
            raise NetworkSpecError("'network.observation_size' must name its observations")
        return {k: _dims(d) for k, d in v.items()}
    dims = _dims(v)
    return dims[0] if isinstance(v, int) else dims
