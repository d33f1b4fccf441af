"""brax's own evaluation episode, tapped: no rollout of trajscope's own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.experimental import io_callback

from . import _state
from ._rollout import RolloutConfig


class EvalTap:
    """Wraps brax's batched evaluation environment; keeps the first ``num_envs``
    environments' steps in a device buffer and sends it to the host once per episode.

    It sits outside brax's vmap, so the hand-off is one host callback per evaluation,
    not one per environment per step.
    """

    _T = "trajscope/t"
    _BUF = "trajscope/buf"

    def __init__(self, env: Any, cfg: RolloutConfig, receive: Callable[[Any], None], *, hand_off: bool = True) -> None:
        """``hand_off=False`` keeps the buffer but never sends it (to measure its parts:
        ``benchmarks/eval_tap.py``)."""
        self.env = env
        self._hand_off = hand_off
        self._cfg = cfg
        self._receive = receive
        self._K = cfg.num_envs
        self._steps = cfg.num_steps

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)

    def _frame(self, state: Any, action: jax.Array, obs: Any) -> dict[str, Any]:
        rec = _state.extract(state, action=action, obs=obs, info_keys=self._cfg.info_keys)
        return jax.tree_util.tree_map(lambda x: x[: self._K], rec)

    def reset(self, rng: jax.Array) -> Any:
        """Frame 0 of the buffer is the reset state (no action led to it)."""
        state = self.env.reset(rng)
        buf = _state.step_buffer(self.env, state, self._frame, self._steps + 1)
        first = self._frame(state, jnp.zeros((state.reward.shape[0], self.env.action_size)), state.obs)
        first["reward"] = jnp.zeros_like(first["reward"])
        first["done"] = jnp.zeros_like(first["done"])
        first = _state.conform(first, buf)
        buf = jax.tree_util.tree_map(lambda b, x: b.at[0].set(x.astype(b.dtype)), buf, first)
        info = {**state.info, self._T: jnp.zeros((), jnp.int32), self._BUF: buf}
        return state.replace(info=info)

    def step(self, state: Any, action: jax.Array) -> Any:
        t = state.info[self._T]
        buf = state.info[self._BUF]
        inner = state.replace(info={k: v for k, v in state.info.items() if k not in (self._T, self._BUF)})
        nstate = self.env.step(inner, action)
        frame = _state.conform(self._frame(nstate, action, nstate.obs), buf)
        buf = jax.tree_util.tree_map(lambda b, x: b.at[jnp.minimum(t + 1, self._steps)].set(x), buf, frame)

        def send(b: Any) -> None:
            io_callback(self._receive, None, b, ordered=False)

        if self._hand_off:
            jax.lax.cond(t == self._steps - 1, send, lambda b: None, buf)
        info = {**nstate.info, self._T: t + 1, self._BUF: buf}
        return nstate.replace(info=info)
