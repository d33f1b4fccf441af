"""A checkpoint's policy and value networks, rebuilt on the host from what a run stores: the
``network`` description in ``run.json`` and a capture's ``params/`` arrays.

Needs JAX and brax (imported when called). The factory is looked up in a fixed list of
brax's own factories by the name the run gives; nothing named by a run is imported or run
otherwise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..format.network import FACTORIES, NetworkSpec, NetworkSpecError


class PolicyUnavailable(ValueError):
    """The run does not say how to rebuild its networks, or its parameters do not fit."""


@dataclasses.dataclass
class Policy:
    """A checkpoint's networks as plain functions of observations (batched, leading axis).

    ``action(obs)``: the deterministic action (the mode of the action distribution);
    ``value(obs)``: the critic's state value (PPO; None when no value parameters are stored).
    ``obs`` is an array ``(N, ...)`` or, for dict observations, a dict of them.
    """

    action: Callable[[Any], Any]
    value: Callable[[Any], Any] | None
    apply: Callable[[Any, Any], Any]
    """``apply(params, obs) -> action``, differentiable in ``obs`` (for :func:`saliency`)."""
    params: Any
    value_apply: Callable[[Any, Any], Any] | None
    kind: str


def load_policy(network: NetworkSpec | Mapping[str, Any] | None, params: Mapping[str, np.ndarray]) -> Policy:
    """Rebuild a checkpoint's networks.

    Args:
        network: ``run.json``'s ``network`` (``Run.metadata["network"]``), or its
            :class:`~trajscope.format.network.NetworkSpec`.
        params: a capture's ``params`` group, flat names (``policy/params/hidden_0/kernel``,
            ``normalizer/mean``, ``value/...``) to arrays.

    Raises:
        PolicyUnavailable: with the reason, when the networks cannot be rebuilt.
    """
    if not network:
        raise PolicyUnavailable(
            "this run does not describe its networks (run.json has no 'network'; written by a "
            "trajscope older than format 1.2, or not by BraxRecorder)"
        )
    try:
        spec = network if isinstance(network, NetworkSpec) else NetworkSpec.from_json(network)
    except NetworkSpecError as e:
        raise PolicyUnavailable(f"run.json's network description is malformed: {e}") from None
    kind = spec.kind
    if kind is None or not spec.rebuildable:
        raise PolicyUnavailable(f"the networks of this run cannot be rebuilt: {spec.why or kind}")
    if not any(k.startswith("policy/") for k in params):
        raise PolicyUnavailable("this capture stores no policy parameters (BraxRecorder(store_params='none'))")

    import importlib

    import jax
    import jax.numpy as jnp
    from brax.training import networks as brax_networks
    from brax.training.acme import running_statistics

    module, name = FACTORIES[kind]
    factory = getattr(importlib.import_module(module), name)
    kwargs = {}
    for k, v in spec.kwargs.items():
        if isinstance(v, dict) and set(v) == {"activation"}:
            if v["activation"] not in brax_networks.ACTIVATION:
                raise PolicyUnavailable(f"unknown activation {v['activation']!r}")
            v = brax_networks.ACTIVATION[v["activation"]]
        elif isinstance(v, list):
            v = tuple(v)
        kwargs[k] = v
    size = spec.observation_size
    obs_size: Any = {k: tuple(d) for k, d in size.items()} if isinstance(size, dict) else size
    obs_size = tuple(obs_size) if isinstance(obs_size, list) else obs_size

    def identity(x: Any, _: Any) -> Any:
        return x

    normalize: Any = running_statistics.normalize if spec.normalize_observations else identity
    try:
        nets = factory(obs_size, spec.action_size, preprocess_observations_fn=normalize, **kwargs)
    except TypeError as e:
        raise PolicyUnavailable(f"{module}.{name} refused the stored arguments: {e}") from None

    obs_keys = sorted(size) if isinstance(size, dict) else []
    tree = {
        "normalizer": _normalizer(params, obs_keys, running_statistics),
        "policy": _nested(params, "policy/"),
        "value": _nested(params, "value/") if any(k.startswith("value/") for k in params) else None,
    }
    tree = jax.tree_util.tree_map(jnp.asarray, tree)
    dist = nets.parametric_action_distribution

    def apply(p: Any, obs: Any) -> Any:
        return dist.mode(nets.policy_network.apply(p["normalizer"], p["policy"], obs))

    def value(p: Any, obs: Any) -> Any:
        v = nets.value_network.apply(p["normalizer"], p["value"], obs)
        return v[0] if isinstance(v, tuple) else v

    value_apply = value if tree["value"] is not None and hasattr(nets, "value_network") else None

    try:
        jax.eval_shape(apply, tree, _example_obs(obs_size))
    except Exception as e:  # noqa: BLE001 - any mismatch of stored params and network
        raise PolicyUnavailable(f"the stored parameters do not fit the described network: {e}") from None
    act = jax.jit(lambda obs: apply(tree, obs))
    val = jax.jit(lambda obs: value_apply(tree, obs)) if value_apply is not None else None
    return Policy(action=act, value=val, apply=apply, params=tree, value_apply=value_apply, kind=kind)


def _nested(flat: Mapping[str, np.ndarray], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in flat.items():
        if not k.startswith(prefix):
            continue
        node = out
        *path, leaf = k[len(prefix) :].split("/")
        for p in path:
            node = node.setdefault(p, {})
        node[leaf] = np.asarray(v)
    return out


def _normalizer(flat: Mapping[str, np.ndarray], obs_keys: list[str], running_statistics: Any) -> Any:
    """The running statistics; observation keys may hold '/' (``pixels/view_0``)."""

    def field(name: str) -> Any:
        p = f"normalizer/{name}"
        if p in flat:
            return np.asarray(flat[p])
        sub = {k[len(p) + 1 :]: np.asarray(v) for k, v in flat.items() if k.startswith(p + "/")}
        if not sub and not obs_keys:
            raise PolicyUnavailable(f"this capture stores no {p}")
        unknown = set(sub) - set(obs_keys)
        if unknown:
            raise PolicyUnavailable(f"{p} has keys {sorted(unknown)} the observation does not")
        return sub

    if not any(k.startswith("normalizer/") for k in flat):
        raise PolicyUnavailable("this capture stores no normalizer parameters")
    extra = {}
    if "normalizer/std_eps" in flat:
        extra["std_eps"] = float(np.asarray(flat["normalizer/std_eps"]))
    if "normalizer/mode" in flat:
        extra["mode"] = int(np.asarray(flat["normalizer/mode"]))
    count: Any
    if "normalizer/count/hi" in flat:  # brax's 64-bit counter, two 32-bit halves
        from brax.training import types as training_types

        hi, lo = (np.asarray(flat[f"normalizer/count/{h}"]) for h in ("hi", "lo"))
        count = training_types.UInt64(hi=hi, lo=lo)  # pyright: ignore[reportCallIssue]
    else:
        count = field("count")
    return running_statistics.RunningStatisticsState(
        count=count, mean=field("mean"), summed_variance=field("summed_variance"), std=field("std"), **extra
    )


def _example_obs(obs_size: Any) -> Any:
    import jax
    import jax.numpy as jnp

    def one(shape: Any) -> Any:
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        return jax.ShapeDtypeStruct((1, *shape), jnp.float32)

    if isinstance(obs_size, dict):
        return {k: one(v) for k, v in obs_size.items()}
    return one(obs_size)
