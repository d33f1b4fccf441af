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

:class:`LiveStream` is the host side. It reads the viewers' switch (``live/control.json``)
on a thread of its own, decides per chunk whether to record (the switch, its lease and
the rate), and queues recorded chunks on the run's writer as captures of kind ``live``.
Nothing here raises into training: failures are counted and warned about once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import sim, store
from . import _state
from ._core import Failures, SlotWrapper, ask


class LiveStream:
    """Host side of the live stream of one training run.

    Args:
        writer: the run's writer; chunks go to its ``live/`` folder.
        num_envs: training environments streamed (``K``), the first ones of the first device.
        chunk_steps: consecutive control steps per chunk (``C``); also how often, in
            training steps, the device asks the host whether to record.
        info_keys: ``state.info`` entries to stream (curriculum levels, commands, ...).
        obs: stream observations too (pixel observations can be large).
        control_dt_s: seconds per control step, for the rate (default: the writer's).
        poll_s: how often the viewers' switch is read.
        lease_s: a viewer's ``on`` expires unless renewed within this many seconds.
        strict: raise instead of warning (tests).
    """

    def __init__(
        self,
        writer: store.RunWriter,
        *,
        num_envs: int = 4,
        chunk_steps: int = 64,
        info_keys: Sequence[str] = (),
        obs: bool = True,
        control_dt_s: float | None = None,
        poll_s: float = 0.5,
        lease_s: float = store.LiveControl.LEASE_S,
        strict: bool = False,
    ) -> None:
        if num_envs < 1 or chunk_steps < 2:
            raise ValueError("num_envs must be >= 1 and chunk_steps >= 2")
        self.writer = writer
        self.num_envs = int(num_envs)
        self.chunk_steps = int(chunk_steps)
        self.info_keys = tuple(info_keys)
        self.obs = obs
        self.control_dt_s = control_dt_s or writer.control_dt_s or 0.02
        self.poll_s = poll_s
        self.lease_s = lease_s
        self.strict = strict
        self.action_repeat = 1
        self.model_fields: dict[str, np.ndarray] | None = None
        # Counters (read them at any time).
        self.ticks = 0
        """Host callbacks received (one per ``chunk_steps`` training steps)."""
        self.env_steps = 0
        self.chunks_sent = 0
        self._fail = Failures(strict=strict)
        """What the newest failure was (for reports and tests)."""
        self._last_tick = 0
        self._on = False
        self._last_record_start = -1e9
        self._last_status = 0.0
        self._last_chunk: tuple[str, int, float] | None = None
        self._control = store.LiveControl()
        self._override: store.LiveControl | None = None
        self._poller: threading.Thread | None = None
        self._stop = threading.Event()

    # ------------------------------------------------------------ public

    def wrap(self, env: Any, *, action_repeat: int = 1) -> LiveTap:
        """Wrap brax's batched training environment (what ``wrap_env_fn`` returns)."""
        self.action_repeat = int(action_repeat)
        self.model_fields = _first_randomized(env, self.num_envs)
        return LiveTap(env, self)

    def switch(self, on: bool, *, rate: float = 1.0) -> None:
        """Switch streaming on or off from the training process, whatever viewers ask;
        :meth:`release` follows the viewers' switch again."""
        self._override = store.LiveControl(on=on, rate=rate, updated_unix_s=float("inf"))

    def release(self) -> None:
        """Follow the viewers' switch again after :meth:`switch`."""
        self._override = None

    @property
    def control(self) -> store.LiveControl:
        return self._override or self._control

    def stop(self) -> None:
        """Stop streaming and reading the switch (training has ended)."""
        self._stop.set()
        self._on = False

    def close(self) -> None:
        """Stop, and report the stream as finished."""
        self.stop()
        try:
            self._write_status(finished=True)
        except Exception:  # noqa: BLE001 - the writer may be closed already
            pass

    # ------------------------------------------------------------ host callback

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_s):
            self._control = self.writer.live_control()

    def _start_poller(self) -> None:
        if self._poller is None:
            self._control = self.writer.live_control()
            self._poller = threading.Thread(target=self._poll, name="trajscope-live-control", daemon=True)
            self._poller.start()

    def _tick(self, buf: Any, recorded: Any, tick: Any, batch: Any) -> np.int32:
        """Called by the device every ``chunk_steps`` steps; returns 1 to record the next
        chunk. Never raises (unless strict)."""
        try:
            self._start_poller()
            tick, batch = int(tick), int(batch)
            delta = tick - self._last_tick if tick > self._last_tick else tick  # training reset the envs
            self._last_tick = tick
            self.ticks += 1
            self.env_steps += delta * batch * self.action_repeat
            now = time.monotonic()
            if int(recorded):
                self._send(buf)
            ctl = self.control
            on = ctl.active(lease_s=self.lease_s)
            record = on
            if record:
                period = self.chunk_steps * self.control_dt_s / ctl.rate
                record = now - self._last_record_start >= period * 0.95
            if record:
                self._last_record_start = now
            if on != self._on or int(recorded) or now - self._last_status > 1.0:
                self._on = on
                self._last_status = now
                self._write_status()
            return np.int32(record)
        except Exception as e:  # noqa: BLE001 - never into training (Failures raises when strict)
            self._fail.failed("tick", f"trajscope: live stream: {type(e).__name__}: {e}", e)
            return np.int32(0)

    def _send(self, buf: dict[str, Any]) -> None:
        arrays = _state.drop_empty(buf)
        if self.model_fields:
            arrays["model_fields"] = self.model_fields
        ok = self.writer.add_capture(
            step=self.env_steps,
            kind="live",
            deterministic=False,
            attrs={"chunk": self.chunks_sent, "source": "train"},
            **arrays,
        )
        if ok:
            self.chunks_sent += 1
            self._last_chunk = (str(self.chunks_sent - 1), self.env_steps, time.time())
        else:
            self._fail.count += 1
            self._fail.last = "the writer dropped a chunk (see its stats and warnings)"

    def _write_status(self, *, finished: bool = False) -> None:
        last = self._last_chunk
        self.writer.set_live_status(
            store.LiveStatus(
                updated_unix_s=time.time(),
                streaming=self._on,
                env_steps=self.env_steps,
                chunks_sent=self.chunks_sent,
                num_envs=self.num_envs,
                chunk_steps=self.chunk_steps,
                last_chunk_id=last[0] if last else None,
                last_chunk_env_steps=last[1] if last else None,
                last_chunk_unix_s=last[2] if last else None,
                failures=self.failures,
                finished=finished,
            )
        )

    @property
    def failures(self) -> int:
        """Chunks or status reports that failed (counted, warned about once)."""
        return self._fail.count

    @property
    def last_failure(self) -> str | None:
        return self._fail.last


class LiveTap(SlotWrapper):
    """brax's batched training environment, its first environments streamed."""

    slot = "trajscope/live"

    def __init__(self, env: Any, stream: LiveStream) -> None:
        super().__init__(env)
        self._stream = stream

    def _frame(self, state: Any, action: jax.Array, obs: Any) -> dict[str, Any]:
        s = self._stream
        rec = _state.extract(state, action=action, obs=obs, info_keys=s.info_keys)
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


def _first_randomized(env: Any, k: int) -> dict[str, np.ndarray] | None:
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
