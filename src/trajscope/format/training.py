"""What a run says of the training that made it, as far as figures need it: the discount and
reward scaling that turn stored rewards into the returns a value network predicts.

One place decides them: the recorder's record (``config["trajscope"]``, written by
``trajscope.capture.train`` and ``BraxRecorder(discounting=..., reward_scaling=...)``), else
the user's stored training config (brax's names), else the documented assumption, which
is then said, never silently used.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

ASSUMED_GAMMA = 0.99
ASSUMED_REWARD_SCALING = 1.0


@dataclasses.dataclass(frozen=True)
class ReturnSettings:
    gamma: float
    reward_scaling: float
    assumed: tuple[str, ...] = ()
    """Which of ``discounting`` and ``reward_scaling`` the run does not record (assumed)."""

    @classmethod
    def of_run(cls, metadata: Mapping[str, Any] | None) -> ReturnSettings:
        conf = (metadata or {}).get("config") or {}
        conf = conf if isinstance(conf, Mapping) else {}
        mine = conf.get("trajscope")
        mine = mine if isinstance(mine, Mapping) else {}
        found: dict[str, float] = {}
        for name, ok in (("discounting", lambda x: 0 < x <= 1), ("reward_scaling", lambda x: x > 0)):
            for source in (mine, conf):
                v = source.get(name)
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and ok(v):
                    found[name] = float(v)
                    break
        return cls(
            gamma=found.get("discounting", ASSUMED_GAMMA),
            reward_scaling=found.get("reward_scaling", ASSUMED_REWARD_SCALING),
            assumed=tuple(n for n in ("discounting", "reward_scaling") if n not in found),
        )

    def note(self) -> str | None:
        """What a figure built on these must say, or None when the run records both."""
        if not self.assumed:
            return None
        values = {
            "discounting": f"discounting {ASSUMED_GAMMA:g}",
            "reward_scaling": f"reward scaling {ASSUMED_REWARD_SCALING:g}",
        }
        return (
            f"this run does not record its {' or '.join(n.replace('_', ' ') for n in self.assumed)}: "
            f"assumed {', '.join(values[n] for n in self.assumed)}; value against return is off by the "
            "true factor if the training used another (record them with trajscope.capture.train, or "
            "BraxRecorder(discounting=..., reward_scaling=...))"
        )
