"""The description of a training's networks that a run keeps in ``run.json`` (``network``),
so that a later process can rebuild the policy and value networks around a capture's stored
parameters (saliency, playing a checkpoint) without the training script.

Only brax's own network factories are described as rebuildable, with their keyword
arguments as plain JSON (activations by their name in ``brax.training.networks.ACTIVATION``).
A reader imports the factory by name from that fixed list, never code named by the run.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

from ..format.network import FACTORIES, NetworkSpec

_PATHS = {kind: f"{module}.{name}" for kind, (module, name) in FACTORIES.items()}

_APPLY_IRRELEVANT = ("_init_fn", "_init_kwargs")
"""Keyword arguments that only change how weights are initialised (not stored)."""


def default_factory(algorithm: str) -> Any:
    """brax's default network factory of ``ppo.train`` or ``sac.train``."""
    if algorithm == "sac":
        from brax.training.agents.sac import networks as sac_networks

        return sac_networks.make_sac_networks
    from brax.training.agents.ppo import networks as ppo_networks

    return ppo_networks.make_ppo_networks


def describe(
    factory: Any,
    *,
    algorithm: str,
    observation_size: Any,
    action_size: int,
    normalize_observations: bool,
) -> NetworkSpec:
    """``run.json``'s ``network``: what rebuilds the networks of this training, or why
    they cannot be rebuilt (``kind`` None, ``why`` the reason)."""
    func, kwargs = _unwrap(factory)
    path = f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"
    kinds = {v: k for k, v in _PATHS.items()}
    spec = NetworkSpec(
        kind=None,
        factory=path,
        algorithm=algorithm,
        kwargs={},
        observation_size=_size_json(observation_size),
        action_size=int(action_size),
        normalize_observations=bool(normalize_observations),
    )
    if path not in kinds:
        why = f"{path} is not one of brax's network factories ({', '.join(sorted(_PATHS.values()))})"
        return dataclasses.replace(spec, why=why)
    plain, why = _plain_kwargs(kwargs)
    if why is not None:
        return dataclasses.replace(spec, why=why)
    return dataclasses.replace(spec, kind=kinds[path], kwargs=plain)


def _unwrap(factory: Any) -> tuple[Any, dict[str, Any]]:
    """The function under ``functools.partial`` layers, and their keyword arguments."""
    kwargs: dict[str, Any] = {}
    while isinstance(factory, functools.partial):
        if factory.args:
            return factory, {}
        kwargs = {**factory.keywords, **kwargs}
        factory = factory.func
    return factory, kwargs


def _plain_kwargs(kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    from brax.training import networks

    names = {id(fn): name for name, fn in networks.ACTIVATION.items()}
    out: dict[str, Any] = {}
    for k, v in kwargs.items():
        if k == "preprocess_observations_fn" or k.endswith(_APPLY_IRRELEVANT):
            continue
        if callable(v):
            if id(v) not in names:
                return {}, f"keyword {k}={v!r} is not a named brax activation"
            out[k] = {"activation": names[id(v)]}
        elif isinstance(v, (tuple, list)) and all(isinstance(x, (int, float, str, bool)) for x in v):
            out[k] = list(v)
        elif v is None or isinstance(v, (int, float, str, bool)):
            out[k] = v
        else:
            return {}, f"keyword {k}={v!r} is not plain JSON"
    return out, None


def _size_json(size: Any) -> Any:
    if isinstance(size, Mapping):
        return {str(k): [int(d) for d in (v if isinstance(v, (tuple, list)) else (v,))] for k, v in size.items()}
    if isinstance(size, (tuple, list)):
        return int(size[0]) if len(size) == 1 else [int(d) for d in size]
    return int(size)
