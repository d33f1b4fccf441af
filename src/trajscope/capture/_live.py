"""The live stream: the first few *training* environments, as training steps them.

:class:`LiveTap` wraps brax's batched training environment (outside its vmap, so the state
it sees holds every environment of the device). Each step it slices the first ``K``
environments and writes them into a small device buffer of ``C`` steps kept in
``state.info``, every step, on or off (a few in-place updates cost less than a conditional
around them). Every ``C`` steps, on the first device only, one host callback hands over
whether the chunk just finished was recorded (and then the buffer) and gets back whether
to record the next ``C`` steps: that is the only device-to-host traffic. Switched off, a
step costs the buffer write, and every ``C`` steps one callback whose buffer the host
ignores.

:class:`LiveStream` (in ``_host``: it needs no JAX, and the Gymnasium recorder streams
through it too) is the host side. It reads the viewers' switch (``live/control.json``)
on a thread of its own, decides per chunk whether to record (the switch, its lease and
the rate), and queues recorded chunks on the run's writer as captures of kind ``live``.
Nothing here raises into training: failures are counted and warned about once.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import sim
from . import _state
from ._core import SlotWrapper, ask
from ._host import LiveStream as LiveStream


class LiveTap(SlotWrapper):
    """brax's batched training environment, its first environments streamed."""

    slot = "trajscope/live"

    def __init__(self, env: Any, stream: LiveStream) -> None:
        super().__init__(env)
        self._stream = stream

    def _frame(self, state: Any, action: jax.Array, obs: Any) -> dict[str, Any]:
        s = self._stream
        rec = _state.extract(state, action=action, obs=obs, info_keys=s.info_keys, contacts=s.contacts)
        if not s.obs:
            rec.pop("obs", None)
        k = min(s.num_envs, int(state.reward.shape[0]))
        return jax.tree_util.tree_map(lambda x: x[:k], rec)

    def init_slot(self, state: Any) -> Any:
        return {
            "buf": _state.step_buffer(self.env, state, self._frame, self._stream.chunk_steps),
            "t": jnp.zeros((), jnp.int32),
            "tick": jnp.zeros((), jnp.int32),
            "rec": jnp.zeros((), jnp.int32),
        }

    def step_slot(self, live: Any, state: Any, nstate: Any, action: jax.Array) -> Any:
        buf, t = live["buf"], live["t"]
        C = self._stream.chunk_steps
        # Written every step, on or off: a few small in-place updates cost less than a
        # conditional around them. Off, the chunk is simply never sent.
        frame = _state.conform(self._frame(nstate, action, nstate.obs), buf)
        buf = jax.tree_util.tree_map(lambda bb, x: bb.at[t].set(x.astype(bb.dtype)), buf, frame)
        t = t + 1
        tick = live["tick"] + 1
        boundary = t == C
        batch = jnp.int32(state.reward.shape[0] * _num_devices())
        rec = ask(jnp.logical_and(boundary, _device_index() == 0), self._stream._tick, buf, live["rec"], tick, batch)
        # Devices other than the first never record; on the first, rec changes only at a boundary.
        rec = jnp.where(boundary, rec, live["rec"])
        return {"buf": buf, "t": jnp.where(boundary, 0, t), "tick": tick, "rec": rec}


_AXIS = "i"  # brax's trainers pmap over this axis name


def _device_index() -> jax.Array:
    try:
        return jax.lax.axis_index(_AXIS)
    except Exception:  # noqa: BLE001 - not under brax's pmap (a plain jit): one device
        return jnp.zeros((), jnp.int32)


def _num_devices() -> int:
    try:
        return int(jax.lax.psum(1, _AXIS))
    except Exception:  # noqa: BLE001
        return 1


def first_randomized(env: Any, k: int) -> dict[str, np.ndarray] | None:
    """The randomised model fields of the first ``k`` training environments, from brax's
    or Playground's domain-randomisation wrapper in ``env``'s wrapper chain."""
    e: Any = env
    for _ in range(32):
        if e is None:
            return None
        model_v = getattr(e, "_mjx_model_v", None)
        if model_v is None:
            model_v = getattr(e, "_sys_v", None)
        in_axes = getattr(e, "_in_axes", None)
        if model_v is not None and in_axes is not None:
            fields = sim.randomized_fields(model_v, in_axes)
            return {n: np.asarray(v)[:k] for n, v in fields.items()} or None
        e = getattr(e, "env", None)
    return None
