"""The host side of capture, which needs no JAX: what the brax recorders and the Gymnasium
recorder share.

- :class:`Failures`: never crash the caller (training). A failure on the host side of a
  recorder is counted, remembered and warned about once per kind; only ``strict`` raises.
- :func:`drop_empty`: a frame's empty groups (no metrics, no info) left out.
- :class:`LiveStream`: the live stream's host side. It reads the viewers' switch
  (``live/control.json``) on a thread of its own, decides per chunk whether to record (the
  switch, its lease and the rate), and queues recorded chunks on the run's writer as
  captures of kind ``live``. Its ``_tick`` is called every ``chunk_steps`` training steps,
  by the brax live tap's host callback or by the Gymnasium recorder's vector wrapper.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import store


class Failures:
    """Counts, remembers and warns once per kind; raises only when ``strict``."""

    def __init__(self, *, strict: bool = False) -> None:
        self.strict = strict
        self.count = 0
        self.last: str | None = None
        self._warned: set[str] = set()

    def warn(self, what: str, message: str) -> None:
        """Warn about ``what`` the first time only (as a :class:`trajscope.store.TrajscopeWarning`)."""
        if what not in self._warned:
            self._warned.add(what)
            store.warn(message, strict=self.strict)

    def failed(self, what: str, message: str, error: BaseException | None = None) -> None:
        """A failure of kind ``what``: raised again when ``strict``, else counted, kept as
        :attr:`last` and warned about once."""
        if self.strict and error is not None:
            raise error
        self.count += 1
        self.last = message
        self.warn(what, message)


def drop_empty(tree: Mapping[str, Any]) -> dict[str, Any]:
    """Remove empty dicts (no metrics, no info) so add_capture sees only real groups."""
    return {k: v for k, v in tree.items() if not (isinstance(v, Mapping) and not v)}


class LiveStream:
    """Host side of the live stream of one training run.

    Args:
        writer: the run's writer; chunks go to its ``live/`` folder.
        num_envs: training environments streamed (``K``), the first ones of the first device.
        chunk_steps: consecutive control steps per chunk (``C``); also how often, in
            training steps, the device asks the host whether to record.
        info_keys: ``state.info`` entries to stream (curriculum levels, commands, ...).
        contacts: each environment's first contacts streamed too (brax's live tap: MJX only).
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
        contacts: int = 0,
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
        self.contacts = int(contacts)
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
        self._stepped_unix_s = time.time()
        self._status_lock = threading.Lock()
        self._last_chunk: tuple[str, int, float] | None = None
        self._control = store.LiveControl()
        self._override: store.LiveControl | None = None
        self._poller: threading.Thread | None = None
        self._stop = threading.Event()

    # ------------------------------------------------------------ public

    def wrap(self, env: Any, *, action_repeat: int = 1) -> Any:
        """Wrap brax's batched training environment (what ``wrap_env_fn`` returns) in a
        ``LiveTap`` (JAX: imported only here)."""
        from ._live import LiveTap, first_randomized

        self.action_repeat = int(action_repeat)
        self.model_fields = first_randomized(env, self.num_envs)
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

    HEARTBEAT_S = 5.0
    """How often the recorder says it lives while training does not step (evaluating,
    checkpointing, compiling): ``alive_unix_s`` in ``live/status.json``."""

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_s):
            self._control = self.writer.live_control()
            if time.monotonic() - self._last_status > self.HEARTBEAT_S:
                try:
                    self._last_status = time.monotonic()
                    self._write_status()
                except Exception as e:  # noqa: BLE001 - never into training
                    self._fail.failed("heartbeat", f"trajscope: live stream: {type(e).__name__}: {e}")

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
            self._stepped_unix_s = time.time()
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
        arrays = drop_empty(buf)
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
        with self._status_lock:
            self._set_status(last, finished)

    def _set_status(self, last: tuple[str, int, float] | None, finished: bool) -> None:
        self.writer.set_live_status(
            store.LiveStatus(
                updated_unix_s=self._stepped_unix_s,
                alive_unix_s=time.time(),
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
