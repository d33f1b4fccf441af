"""brax's own evaluation episode, tapped: no rollout of trajscope's own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from . import _state
from ._core import SlotWrapper, hand_off
from ._rollout import RolloutConfig


class EvalTap(SlotWrapper):
    """Wraps brax's batched evaluation environment; keeps the first ``num_envs``
    environments' steps in a device buffer and sends it to the host once per episode.

    It sits outside brax's vmap, so the hand-off is one host callback per evaluation,
    not one per environment per step.
    """

    slot = "trajscope/eval"

    def __init__(self, env: Any, cfg: RolloutConfig, receive: Callable[[Any], None], *, hand_off: bool = True) -> None:
        """``hand_off=False`` keeps the buffer but never sends it (to measure its parts:
        ``benchmarks/eval_tap.py``)."""
        super().__init__(env)
        self._hand_off = hand_off
        self._cfg = cfg
        self._receive = receive
        self._K = cfg.num_envs
        self._steps = cfg.num_steps

    def _frame(self, state: Any, action: jax.Array, obs: Any) -> dict[str, Any]:
        rec = _state.extract(state, action=action, obs=obs, info_keys=self._cfg.info_keys, contacts=self._cfg.contacts)
        return jax.tree_util.tree_map(lambda x: x[: self._K], rec)

    def init_slot(self, state: Any) -> Any:
        """Frame 0 of the buffer is the reset state (no action led to it)."""
        buf = _state.step_buffer(self.env, state, self._frame, self._steps + 1)
        first = self._frame(state, jnp.zeros((state.reward.shape[0], self.env.action_size)), state.obs)
        first["reward"] = jnp.zeros_like(first["reward"])
        first["done"] = jnp.zeros_like(first["done"])
        first = _state.conform(first, buf)
        buf = jax.tree_util.tree_map(lambda b, x: b.at[0].set(x.astype(b.dtype)), buf, first)
        return {"t": jnp.zeros((), jnp.int32), "buf": buf}

    def step_slot(self, mine: Any, state: Any, nstate: Any, action: jax.Array) -> Any:
        t, buf = mine["t"], mine["buf"]
        frame = _state.conform(self._frame(nstate, action, nstate.obs), buf)
        buf = jax.tree_util.tree_map(lambda b, x: b.at[jnp.minimum(t + 1, self._steps)].set(x), buf, frame)
        if self._hand_off:
            hand_off(t == self._steps - 1, self._receive, buf)
        return {"t": t + 1, "buf": buf}
