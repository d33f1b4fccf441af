"""The capture room's two small parts that every recorder is made of.

- :class:`Failures` (from ``_host``, which needs no JAX): never crash the caller. A failure
  on the host side of a recorder (a write, a status file, a chunk the writer dropped) is
  counted, remembered and warned about once per kind; only ``strict`` (tests) raises.
- :class:`SlotWrapper`: a brax environment wrapper that keeps a pytree of its own in
  ``state.info[slot]`` (a device buffer and its counters), hidden from the environment it
  wraps, with :func:`hand_off` and :func:`ask` to give the buffer to the host from inside
  ``jit`` through one host callback. The evaluation tap, the live stream, the NaN guard and
  the buffer mirror (of a replay buffer) are each one ``SlotWrapper``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jax.experimental import io_callback

from ._host import Failures as Failures


class SlotWrapper:
    """A brax environment wrapper keeping its own state in ``state.info[slot]``.

    Subclasses give :meth:`init_slot` (the slot's value after a reset) and
    :meth:`step_slot` (its value after a step, from the state before and after it); the
    wrapped environment never sees the slot. Every other attribute is the environment's.
    """

    slot: ClassVar[str]

    def __init__(self, env: Any) -> None:
        self.env = env

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)

    def init_slot(self, state: Any) -> Any:
        raise NotImplementedError

    def step_slot(self, mine: Any, state: Any, nstate: Any, action: jax.Array) -> Any:
        """``mine``: the slot before the step; ``state``: the state before it (slot
        removed); ``nstate``: the state after it."""
        raise NotImplementedError

    def reset(self, rng: jax.Array) -> Any:
        state = self.env.reset(rng)
        return state.replace(info={**state.info, self.slot: self.init_slot(state)})

    def step(self, state: Any, action: jax.Array) -> Any:
        mine = state.info[self.slot]
        inner = state.replace(info={k: v for k, v in state.info.items() if k != self.slot})
        nstate = self.env.step(inner, action)
        return nstate.replace(info={**nstate.info, self.slot: self.step_slot(mine, inner, nstate, action)})


def hand_off(
    when: jax.Array, receive: Callable[..., None], *args: Any, prepare: Callable[..., tuple[Any, ...]] | None = None
) -> None:
    """Give ``args`` to ``receive`` on the host when ``when`` holds (one host callback,
    unordered; nothing when it does not). ``prepare(*args)`` makes what is sent, inside the
    branch that sends: work that only the hand-off needs costs nothing on the other steps."""

    def send(a: Any) -> None:
        io_callback(receive, None, *(prepare(*a) if prepare is not None else a), ordered=False)

    jax.lax.cond(when, send, lambda a: None, args)


def ask(when: jax.Array, receive: Callable[..., Any], *args: Any) -> jax.Array:
    """:func:`hand_off` whose host side answers an ``int32`` (0 when not asked)."""

    def call(a: Any) -> jax.Array:
        return io_callback(receive, jax.ShapeDtypeStruct((), jnp.int32), *a, ordered=False)

    return jax.lax.cond(when, call, lambda a: jnp.zeros((), jnp.int32), args)
