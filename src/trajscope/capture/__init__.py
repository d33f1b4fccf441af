"""Capture rollouts inside or beside JAX training; writes only through the store's writer.

    from trajscope.capture import BraxRecorder

This subpackage imports JAX; ``import trajscope`` alone does not.
"""

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
from ._live import LiveStream as LiveStream
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
