"""Capture rollouts inside or beside training; writes only through the store's writer.

    from trajscope.capture import BraxRecorder     # brax / MuJoCo Playground (JAX)
    from trajscope.capture import GymRecorder      # Gymnasium MuJoCo environments (no JAX)

Names are imported when first used: ``GymRecorder`` needs neither JAX nor brax, the brax
recorders import JAX; ``import trajscope`` alone imports neither.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..sim import base_model as base_model
    from ..sim import physics as physics
    from ..sim import physics_qpos as physics_qpos
    from ..sim import physics_qvel as physics_qvel
    from ._brax import BraxRecorder as BraxRecorder
    from ._config import BufferOptions as BufferOptions
    from ._config import LiveOptions as LiveOptions
    from ._config import NanGuardOptions as NanGuardOptions
    from ._config import RecorderConfig as RecorderConfig
    from ._config import RolloutOptions as RolloutOptions
    from ._config import RunOptions as RunOptions
    from ._config import TrainerOptions as TrainerOptions
    from ._config import VideoOptions as VideoOptions
    from ._demo import train_demo as train_demo
    from ._gym import GymRecorder as GymRecorder
    from ._gym import StepRecorder as StepRecorder
    from ._host import LiveStream as LiveStream
    from ._nan import NonFiniteTrainingError as NonFiniteTrainingError
    from ._processes import process_index as process_index
    from ._processes import shared_run_name as shared_run_name
    from ._rollout import RolloutConfig as RolloutConfig
    from ._rollout import make_rollout as make_rollout
    from ._state import extract as extract
    from ._tap import EvalTap as EvalTap
    from ._train import planned_steps as planned_steps
    from ._train import recorder_for as recorder_for
    from ._train import train as train
    from ._video_log import video_to_tensorboard as video_to_tensorboard
    from ._video_log import video_to_wandb as video_to_wandb

_WHERE = {
    **dict.fromkeys(("base_model", "physics", "physics_qpos", "physics_qvel"), "..sim"),
    "BraxRecorder": "._brax",
    **dict.fromkeys(
        (
            "BufferOptions",
            "LiveOptions",
            "NanGuardOptions",
            "RecorderConfig",
            "RolloutOptions",
            "RunOptions",
            "TrainerOptions",
            "VideoOptions",
        ),
        "._config",
    ),
    "train_demo": "._demo",
    "GymRecorder": "._gym",
    "StepRecorder": "._gym",
    "LiveStream": "._host",
    "NonFiniteTrainingError": "._nan",
    "process_index": "._processes",
    "shared_run_name": "._processes",
    "RolloutConfig": "._rollout",
    "make_rollout": "._rollout",
    "extract": "._state",
    "EvalTap": "._tap",
    "planned_steps": "._train",
    "recorder_for": "._train",
    "train": "._train",
    "video_to_tensorboard": "._video_log",
    "video_to_wandb": "._video_log",
}
"""Where each public name lives (imported at first use)."""

__all__ = [
    "BraxRecorder",
    "BufferOptions",
    "EvalTap",
    "GymRecorder",
    "LiveOptions",
    "LiveStream",
    "NanGuardOptions",
    "NonFiniteTrainingError",
    "RecorderConfig",
    "RolloutConfig",
    "RolloutOptions",
    "RunOptions",
    "StepRecorder",
    "TrainerOptions",
    "VideoOptions",
    "base_model",
    "extract",
    "make_rollout",
    "physics",
    "physics_qpos",
    "physics_qvel",
    "planned_steps",
    "process_index",
    "recorder_for",
    "shared_run_name",
    "train",
    "train_demo",
    "video_to_tensorboard",
    "video_to_wandb",
]


assert sorted(__all__) == sorted(_WHERE)


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(where, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
