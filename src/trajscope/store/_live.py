"""The live stream's two small files: training's status and the viewers' switch.

Live chunks themselves are captures of kind ``live`` in ``live/`` (see ``_schema``). The
stream's state travels through the run directory, so a viewer in the training process
and a ``trajscope view`` in another process (or on another machine sharing the
filesystem) work the same way:

- ``live/control.json`` is written by viewers. Training streams only while it says
  ``on`` and a viewer has renewed it within ``lease_s`` seconds, so a crashed or closed
  viewer switches the stream off by itself.
- ``live/status.json`` is written by training (through :class:`RunWriter`): how far
  training is, whether it streams, and the newest chunk.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any

from . import _fs, _schema

LEASE_S = 15.0
"""How long a viewer's ``on`` lasts unless renewed; viewers renew it every few seconds."""

RENEW_S = 5.0
"""How often a viewer that keeps the stream on renews its lease."""

RATE_RANGE = (0.05, 1000.0)


@dataclasses.dataclass(frozen=True)
class LiveControl:
    """What viewers ask of the live stream."""

    on: bool = False
    rate: float = 1.0
    """Fraction of real time streamed: 1.0 sends chunks as fast as they play back at the
    environment's control rate; 0.25 sends a quarter of that (gaps between chunks); a
    large value sends every chunk. When training runs slower than real time every chunk
    is sent."""
    updated_unix_s: float = 0.0

    def active(self, now_unix_s: float | None = None, *, lease_s: float = LEASE_S) -> bool:
        """On, and renewed within ``lease_s`` seconds."""
        now = time.time() if now_unix_s is None else now_unix_s
        return self.on and now - self.updated_unix_s <= lease_s


@dataclasses.dataclass(frozen=True)
class LiveStatus:
    """What training reports about the live stream."""

    updated_unix_s: float
    streaming: bool
    """Whether the stream is switched on (a viewer's lease is valid, or training switched it on)."""
    env_steps: int
    """Training environment steps taken so far, counted by the stream."""
    chunks_sent: int
    num_envs: int
    chunk_steps: int
    last_chunk_id: str | None = None
    last_chunk_env_steps: int | None = None
    last_chunk_unix_s: float | None = None
    failures: int = 0

    @staticmethod
    def from_json(doc: dict[str, Any]) -> LiveStatus:
        names = {f.name for f in dataclasses.fields(LiveStatus)}
        return LiveStatus(**{k: v for k, v in doc.items() if k in names})


def read_control(run: str | os.PathLike[str]) -> LiveControl:
    """The viewers' switch; off when the file is missing or unreadable."""
    fs, path = _fs.resolve(run)
    try:
        doc = json.loads(_fs.cat(fs, _fs.join(path, _schema.LIVE_CONTROL)))
        return LiveControl(
            on=bool(doc.get("on", False)),
            rate=_clip_rate(float(doc.get("rate", 1.0))),
            updated_unix_s=float(doc.get("updated_unix_s", 0.0)),
        )
    except (OSError, ValueError, TypeError, AttributeError):
        return LiveControl()


def write_control(run: str | os.PathLike[str], *, on: bool, rate: float = 1.0) -> LiveControl:
    """Switch the live stream of a run on or off (and renew the lease). Raises ``OSError``
    when the run directory cannot be written."""
    fs, path = _fs.resolve(run)
    ctl = LiveControl(on=bool(on), rate=_clip_rate(rate), updated_unix_s=time.time())
    _fs.makedirs(fs, _fs.join(path, _schema.LIVE_DIR))
    _fs.write_atomic(
        fs, _fs.join(path, _schema.LIVE_CONTROL), json.dumps(dataclasses.asdict(ctl)).encode(), durable=False
    )
    return ctl


def read_status(run: str | os.PathLike[str]) -> LiveStatus | None:
    """Training's report, or None when the run has never streamed (or it is unreadable)."""
    fs, path = _fs.resolve(run)
    try:
        return LiveStatus.from_json(json.loads(_fs.cat(fs, _fs.join(path, _schema.LIVE_STATUS))))
    except (OSError, ValueError, TypeError):
        return None


def _clip_rate(rate: float) -> float:
    if rate != rate:  # NaN
        return 1.0
    return min(max(rate, RATE_RANGE[0]), RATE_RANGE[1])
