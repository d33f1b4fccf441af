"""Capture rollouts inside or beside JAX training; writes only through the store's writer.

    from trajscope.capture import BraxRecorder

This subpackage imports JAX; ``import trajscope`` alone does not.
"""

from ._brax import BraxRecorder as BraxRecorder
from ._brax import EvalTap as EvalTap
from ._live import LiveStream as LiveStream
from ._live import LiveTap as LiveTap
from ._rollout import make_rollout as make_rollout
from ._state import extract as extract
