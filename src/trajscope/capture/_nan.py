"""The NaN guard: the last steps of the training environments, kept on the device, handed
to the host once when a training environment's state, reward or observation stops being
finite, and written as a capture of kind ``nan``.

:class:`NanTap` wraps brax's batched training environment (outside its vmap, like the live
stream). Each step it writes every environment's frame into a ring buffer of ``N`` steps in
``state.info`` (a buffer write, no host callback) and tests the new frame for non-finite
values. The first time one appears, one host callback hands over the buffers of up to
``max_envs`` affected environments with the step counter; the device never calls again.
:class:`NanGuard` is the host side: it orders the ring oldest first, writes the capture,
and, when asked to stop training, raises :class:`NonFiniteTrainingError` at the next
checkpoint (``policy_params_fn`` or ``progress_fn``), outside jitted code.
"""

from __future__ import annotations

import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import store
from . import _state
from ._core import Failures, SlotWrapper, hand_off
from ._live import _num_devices


class NonFiniteTrainingError(RuntimeError):
    """A training environment's state became non-finite and the guard was asked to stop."""


class NanGuard:
    """Host side of the NaN guard of one training run.

    Args:
        writer: the run's writer; the capture goes to ``captures/`` with kind ``nan``.
        steps: training steps kept before (and including) the first non-finite one.
        max_envs: affected environments written at most.
        stop: raise :class:`NonFiniteTrainingError` at the next checkpoint.
        info_keys: ``state.info`` entries kept too.
        contacts: each environment's first contacts kept too (MJX only).
    """

    def __init__(
        self,
        writer: store.RunWriter,
        *,
        steps: int,
        max_envs: int = 8,
        stop: bool = False,
        info_keys: tuple[str, ...] = (),
        contacts: int = 0,
        action_repeat: int = 1,
        strict: bool = False,
    ) -> None:
        if steps < 2 or max_envs < 1:
            raise ValueError("nan_guard needs at least 2 steps and 1 environment")
        self.writer = writer
        self.steps = int(steps)
        self.max_envs = int(max_envs)
        self.stop = stop
        self.info_keys = info_keys
        self.contacts = int(contacts)
        self.action_repeat = action_repeat
        self.strict = strict
        self.tripped: dict[str, Any] | None = None
        """What was caught: ``step``, ``envs``, ``field`` and ``t`` (the frame in the capture)."""
        self._fail = Failures(strict=strict)

    def wrap(self, env: Any, *, action_repeat: int = 1) -> NanTap:
        self.action_repeat = int(action_repeat)
        return NanTap(env, self)

    def check(self) -> None:
        """Raise :class:`NonFiniteTrainingError` if the guard tripped and was asked to stop."""
        if self.stop and self.tripped is not None:
            t = self.tripped
            raise NonFiniteTrainingError(
                f"trajscope: training environment(s) {t['envs']} became non-finite ({t['field']}) at env step "
                f"{t['step']:,}; the {self.steps} steps up to it are written as a capture of kind 'nan' in "
                f"{self.writer.url}"
            )

    @property
    def failures(self) -> int:
        """Reports that could not be written (counted, warned about once)."""
        return self._fail.count

    def _receive(self, buf: Any, bad: Any, envs: Any, count: Any, batch: Any) -> None:
        """The device's one report: ring buffers ``(N, K, ...)`` of the environments
        ``envs`` (``bad`` says which are affected), after ``count`` steps."""
        try:
            count, batch = int(count), int(batch)
            bad = np.asarray(bad, bool)
            envs = np.asarray(envs)[bad]
            n = min(count, self.steps)
            # The ring's slot of step c is c % N: the oldest kept step comes first.
            order = (np.arange(count - n, count)) % self.steps
            arrays = jax.tree_util.tree_map(lambda x: np.asarray(x)[order][:, bad], buf)
            arrays = _state.drop_empty(arrays)
            field = _first_field(arrays)
            step = count * batch * self.action_repeat
            self.tripped = {"step": step, "envs": envs.tolist(), "field": field, "t": n - 1, "time": time.time()}
            self.writer.add_capture(
                step=step,
                kind="nan",
                deterministic=False,
                attrs={"training_envs": envs.tolist(), "first_nonfinite_field": field, "source": "train"},
                **arrays,
            )
        except Exception as e:  # noqa: BLE001 - never into training (Failures raises when strict)
            self._fail.failed(
                "write", f"trajscope: NaN guard could not write what it caught: {type(e).__name__}: {e}", e
            )


def _first_field(arrays: dict[str, Any]) -> str:
    """The name of the first array (in the format's order) with a non-finite last frame."""
    flat: list[tuple[str, Any]] = []
    for k, v in arrays.items():
        if isinstance(v, dict):
            flat += [(f"{k}/{kk}", vv) for kk, vv in v.items()]
        else:
            flat.append((k, v))
    for name, a in flat:
        a = np.asarray(a)
        if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a[-1]).all():
            return name
    return "?"


class NanTap(SlotWrapper):
    """brax's batched training environment, watched for non-finite values."""

    slot = "trajscope/nan"

    def __init__(self, env: Any, guard: NanGuard) -> None:
        super().__init__(env)
        self._guard = guard

    def _frame(self, state: Any, action: jax.Array, obs: Any) -> dict[str, Any]:
        return _state.extract(
            state, action=action, obs=obs, info_keys=self._guard.info_keys, contacts=self._guard.contacts
        )

    def init_slot(self, state: Any) -> Any:
        return {
            "buf": _state.step_buffer(self.env, state, self._frame, self._guard.steps),
            "count": jnp.zeros((), jnp.int32),
            "sent": jnp.zeros((), bool),
        }

    def step_slot(self, nan: Any, state: Any, nstate: Any, action: jax.Array) -> Any:
        N = self._guard.steps
        frame = _state.conform(self._frame(nstate, action, nstate.obs), nan["buf"])
        slot = nan["count"] % N
        buf = jax.tree_util.tree_map(lambda b, x: b.at[slot].set(x.astype(b.dtype)), nan["buf"], frame)
        count = nan["count"] + 1
        # Per environment: any non-finite value in its new frame (floating arrays only).
        B = state.reward.shape[0]
        bad = jnp.zeros(B, bool)
        for leaf in jax.tree_util.tree_leaves(frame):
            if jnp.issubdtype(leaf.dtype, jnp.floating):
                bad = bad | ~jnp.isfinite(leaf.reshape(B, -1)).all(axis=1)
        K = min(self._guard.max_envs, B)
        envs = jnp.argsort(~bad, stable=True)[:K]  # the affected environments first
        batch = jnp.int32(B * _num_devices())
        fire = jnp.logical_and(bad.any(), ~nan["sent"])

        def pick(b: Any, bad: Any, e: Any, c: Any, n: Any) -> tuple[Any, ...]:
            return jax.tree_util.tree_map(lambda x: x[:, e], b), bad[e], e, c, n

        hand_off(fire, self._guard._receive, buf, bad, envs, count, batch, prepare=pick)
        return {"buf": buf, "count": count, "sent": jnp.logical_or(nan["sent"], fire)}
