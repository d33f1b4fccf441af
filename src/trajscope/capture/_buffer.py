"""A mirror of an off-policy trainer's replay buffer: a bounded, uniform sample of the
transitions the training environments produce (each of which brax's SAC inserts into its
buffer), kept on the host, stored with every capture as the ``buffer`` group.

On the device (the wrapper brax's ``wrap_env_fn`` puts around the training environment),
every step writes ``per_step`` randomly chosen environments' transitions (the state, its
observation, the action taken and the reward) into a small buffer; every ``chunk_steps``
steps one host callback hands it over. The host keeps a reservoir (Vitter's algorithm R)
of ``capacity`` of them, each with the env step at which it was produced: a uniform
sample of all transitions so far, whatever the training's length.

Nothing here raises into training: failures are counted and warned about once.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _state
from ._core import Failures, SlotWrapper, ask
from ._live import _device_index, _num_devices


class BufferMirror:
    """The host side: the reservoir, and the counters.

    Args:
        capacity: transitions kept (the reservoir's size).
        per_step: environments sampled at every training step.
        chunk_steps: training steps between host hand-offs.
        seed: of the environments' choice and of the reservoir.
    """

    def __init__(
        self, *, capacity: int, per_step: int = 4, chunk_steps: int = 32, seed: int = 0, strict: bool = False
    ) -> None:
        if capacity < 1 or per_step < 1 or chunk_steps < 1:
            raise ValueError("capacity, per_step and chunk_steps must be >= 1")
        self.capacity = int(capacity)
        self.per_step = int(per_step)
        self.chunk_steps = int(chunk_steps)
        self.seed = int(seed)
        self.strict = strict
        self.action_repeat = 1
        self.env_steps = 0
        """Training env steps seen so far (all environments, all devices)."""
        self.offered = 0
        """Transitions handed to the reservoir so far."""
        self._fail = Failures(strict=strict)
        self._rng = np.random.default_rng(seed)
        self._slots: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self._last_tick = 0

    @property
    def failures(self) -> int:
        """Hand-offs that failed (counted, warned about once)."""
        return self._fail.count

    def wrap(self, env: Any, *, action_repeat: int = 1) -> BufferTap:
        """Wrap brax's batched training environment (what ``wrap_env_fn`` returns)."""
        self.action_repeat = int(action_repeat)
        return BufferTap(env, self)

    @property
    def size(self) -> int:
        return min(self.offered, self.capacity)

    def snapshot(self) -> dict[str, Any] | None:
        """The reservoir now, for ``RunWriter.add_capture(buffer=...)``; None while empty."""
        with self._lock:
            n = self.size
            if n == 0:
                return None
            return _nest({k: v[:n].copy() for k, v in self._slots.items()})

    # ------------------------------------------------------------ host callback

    def _tick(self, buf: Mapping[str, Any], tick: Any, batch: Any) -> np.int32:
        try:
            tick, batch = int(tick), int(batch)
            delta = tick - self._last_tick if tick > self._last_tick else tick
            self._last_tick = tick
            start = self.env_steps
            self.env_steps += delta * batch * self.action_repeat
            flat = {k: np.asarray(v) for k, v in _state_flat(buf).items()}
            C, S = next(iter(flat.values())).shape[:2]
            # The transitions of row t were produced (delta - C + t + 1) steps into the window.
            rows = start + (np.arange(C) + 1 + max(0, delta - C)) * batch * self.action_repeat
            items = {k: v.reshape(C * S, *v.shape[2:]) for k, v in flat.items()}
            items["step"] = np.repeat(rows, S).astype(np.int64)
            self._offer(items)
        except Exception as e:  # noqa: BLE001 - never into training (Failures raises when strict)
            self._fail.failed("mirror", f"trajscope: buffer mirror: {type(e).__name__}: {e}", e)
        return np.int32(0)

    def _offer(self, items: dict[str, np.ndarray]) -> None:
        m = len(items["step"])
        with self._lock:
            if not self._slots:
                self._slots = {k: np.zeros((self.capacity, *v.shape[1:]), v.dtype) for k, v in items.items()}
            n = self.offered + np.arange(m)
            slot = np.where(n < self.capacity, n, self._rng.integers(0, n + 1))
            keep = slot < self.capacity
            for k, v in items.items():
                self._slots[k][slot[keep]] = v[keep]
            self.offered += m


class BufferTap(SlotWrapper):
    """brax's batched training environment, sampling its transitions for the mirror."""

    slot = "trajscope/buffer"

    def __init__(self, env: Any, mirror: BufferMirror) -> None:
        super().__init__(env)
        self._mirror = mirror

    def _frame(self, state: Any, action: jax.Array, reward: jax.Array, idx: jax.Array) -> dict[str, Any]:
        d = _state.physics(state)
        pick = lambda x: jnp.take(x, idx, axis=0)  # noqa: E731
        out: dict[str, Any] = {
            "qpos": pick(_state.physics_qpos(d)),
            "qvel": pick(_state.physics_qvel(d)),
            "action": pick(action),
            "reward": pick(reward),
        }
        obs = state.obs
        if isinstance(obs, Mapping):
            vec = {k: pick(v) for k, v in obs.items() if not str(k).startswith("pixels/") and v.ndim == 2}
            if vec:
                out["obs"] = vec
        elif obs.ndim == 2:
            out["obs"] = pick(obs)
        return out

    def init_slot(self, state: Any) -> Any:
        B = int(state.reward.shape[0])
        idx = jnp.zeros((self._mirror.per_step,), jnp.int32)
        action = jnp.zeros((B, self.env.action_size))
        one = jax.eval_shape(lambda s, a: self._frame(s, a, s.reward, idx), state, action)
        buf = jax.tree_util.tree_map(lambda x: jnp.zeros((self._mirror.chunk_steps, *x.shape), x.dtype), one)
        return {"buf": buf, "t": jnp.zeros((), jnp.int32), "tick": jnp.zeros((), jnp.int32)}

    def step_slot(self, m: Any, state: Any, nstate: Any, action: jax.Array) -> Any:
        B = int(state.reward.shape[0])
        mirror = self._mirror
        key = jax.random.fold_in(jax.random.PRNGKey(mirror.seed), m["tick"] * 1024 + _device_index())
        idx = jax.random.randint(key, (mirror.per_step,), 0, B)
        frame = self._frame(state, action, nstate.reward, idx)
        buf = jax.tree_util.tree_map(lambda b, x: b.at[m["t"]].set(x.astype(b.dtype)), m["buf"], frame)
        t, tick = m["t"] + 1, m["tick"] + 1
        boundary = t == mirror.chunk_steps
        batch = jnp.int32(B * _num_devices())
        ack = ask(jnp.logical_and(boundary, _device_index() == 0), mirror._tick, buf, tick, batch)
        # The callback's answer is kept in the state, so that XLA keeps the callback.
        t = jnp.where(boundary, ack, t)
        return {"buf": buf, "t": t, "tick": tick}


def _state_flat(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_state_flat(v, name + "/"))
        else:
            out[name] = v
    return out


def _nest(flat: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """``obs/<key>`` back into an ``obs`` dict (observation keys may hold '/')."""
    out: dict[str, Any] = {}
    for k, v in flat.items():
        if k.startswith("obs/"):
            out.setdefault("obs", {})[k[4:]] = v
        else:
            out[k] = v
    return out
