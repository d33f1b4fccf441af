"""What a :class:`BraxRecorder` records: one frozen, keyword-only configuration.

Options that contradict each other are refused when the configuration is made, never
resolved silently.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal


@dataclasses.dataclass(frozen=True, kw_only=True)
class RecorderConfig:
    """Configuration of a :class:`BraxRecorder`; every field keyword-only, none mutable."""

    root: str | os.PathLike[str] | None = None
    """Where runs go (see :class:`trajscope.RunWriter`); default ``$TRAJSCOPE_DIR`` or ``./trajscope_runs``."""
    name: str | None = None
    """The run's folder name; default ``<env_name>-<date>-<time>-<random>``."""
    num_envs: int = 16
    """Environments per captured rollout (``E``)."""
    episode_length: int = 1000
    """Control steps per captured rollout times ``action_repeat``, as passed to ``train``."""
    action_repeat: int = 1
    """As passed to ``train``."""
    deterministic: bool = True
    """Capture the policy's mode (True) or samples from it. With ``source="eval"`` it should
    match train's ``deterministic_eval``."""
    every: int = 1
    """Capture every n-th checkpoint."""
    info_keys: Sequence[str] = ()
    """``state.info`` entries to store (commands, curriculum levels, ...)."""
    randomization_fn: Callable[..., Any] | None = None
    """As passed to ``train``: each captured environment gets its own randomised model, and
    the fields randomised are stored per environment."""
    normalize_observations: bool = False
    """As passed to PPO's ``train``; for the value network."""
    network_factory: Callable[..., Any] | None = None
    """As passed to PPO's ``train``; for the value network."""
    value: bool | None = None
    """Store the PPO value network's prediction at every step. Default: on for PPO; SAC has
    no state-value network, so True with ``algorithm="sac"`` is an error."""
    store_params: Literal["policy", "all", "none"] = "policy"
    """Checkpoint parameters each capture keeps: ``"policy"`` (observation normaliser and
    policy network: enough to run the policy again), ``"all"`` (also the value network),
    or ``"none"``."""
    algorithm: Literal["ppo", "sac"] = "ppo"
    """The brax trainer: decides which hooks capture (see ``source``)."""
    env_name: str | None = None
    """Shown by the viewer; default the environment's class name."""
    config: Mapping[str, Any] | None = None
    """The training configuration, stored in ``run.json``."""
    tags: Sequence[str] = ()
    seed: int = 0
    """Seed of the capture rollouts, independent of training's."""
    strict: bool = False
    """Raise instead of warning (for tests); also compiles in the foreground."""
    background_compile: bool = True
    """Compile the rollout at the first checkpoint on a background thread while training
    goes on (never with ``randomization_fn``, whose tracing swaps the environment's model)."""
    source: Literal["rollout", "eval"] | None = None
    """``"rollout"``: the recorder's own evaluation rollout at each checkpoint (PPO's
    ``policy_params_fn``). ``"eval"``: the first ``num_envs`` environments of brax's own
    evaluation episode, tapped through ``wrap_env_fn``. Default: ``"rollout"`` for PPO,
    ``"eval"`` for SAC, which has no ``policy_params_fn``; ``"rollout"`` with SAC is an error."""
    live: int = 0
    """Stream this many of the *training* environments (0: no live stream); needs
    ``wrap_env_fn=rec.wrap_env_fn()``."""
    live_chunk_steps: int = 64
    """Consecutive training steps per live chunk."""
    live_obs: bool = True
    """Include observations in the live stream."""
    nan_guard: int = 0
    """Keep the last this many steps of every training environment on the device; when one
    becomes non-finite (state, reward or observation), write its steps as a capture of kind
    ``nan`` (0: off). Needs ``wrap_env_fn=rec.wrap_env_fn()``."""
    nan_guard_stop: bool = False
    """Stop training (``NonFiniteTrainingError`` at the next checkpoint) once the guard trips;
    by default training goes on."""
    replay_sample: int = 0
    """Mirror a uniform sample of this many training transitions (what an off-policy trainer
    such as SAC inserts into its replay buffer), stored with every capture as its ``buffer``
    group with the env step of each (0: off). Needs ``wrap_env_fn=rec.wrap_env_fn()``."""
    replay_per_step: int = 4
    """Training environments the replay mirror samples at every step."""
    video_every: int = 0
    """Render every this-many-th evaluation capture to ``videos/<capture id>.mp4`` in the run
    on a thread of its own (MuJoCo's offscreen renderer: set ``MUJOCO_GL``; the ``video``
    extra), its first ``video_envs`` environments tiled (0: off)."""
    video_envs: int = 4
    """Environments tiled in each training video."""
    on_video: Callable[[str, int], None] | None = None
    """Called with ``(url, step)`` after each training video is stored: hand it to
    TensorBoard or W&B here (see docs/export.md)."""
    obs_float16: bool = False
    """Store float observations (not images) as float16: lossy, opt-in, about half their
    bytes; everything else stays lossless (see ``RunWriter(obs_float16=...)``)."""
    checkpoint_dir: str | None = None
    """SAC: the ``checkpoint_logdir`` given to ``sac.train``. brax's SAC hands its hooks no
    parameters; it saves the policy's (observation normaliser and policy network) there at
    every evaluation, and the recorder stores them with that evaluation's capture, so that
    saliency and rebuilt policies work for SAC too."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "info_keys", tuple(self.info_keys))
        object.__setattr__(self, "tags", tuple(self.tags))
        if self.video_every < 0 or self.video_envs < 1:
            raise ValueError(f"video_every must be >= 0 and video_envs >= 1, got {self.video_every}, {self.video_envs}")
        if self.replay_sample < 0 or self.replay_per_step < 1:
            raise ValueError("replay_sample must be >= 0 and replay_per_step >= 1")
        for field in ("num_envs", "episode_length", "action_repeat", "every"):
            if int(getattr(self, field)) < 1:
                raise ValueError(f"{field} must be >= 1, got {getattr(self, field)}")
        if self.algorithm not in ("ppo", "sac"):
            raise ValueError(f"algorithm must be 'ppo' or 'sac', not {self.algorithm!r}")
        if self.source not in (None, "rollout", "eval"):
            raise ValueError(f"source must be 'rollout' or 'eval', not {self.source!r}")
        if self.store_params not in ("policy", "all", "none"):
            raise ValueError(f"store_params must be 'policy', 'all' or 'none', not {self.store_params!r}")
        if self.algorithm == "sac" and self.source == "rollout":
            raise ValueError(
                "source='rollout' needs PPO's policy_params_fn, which brax's SAC does not have: "
                "leave source unset (SAC captures brax's own evaluation, source='eval')"
            )
        if self.algorithm == "sac" and self.value:
            raise ValueError("value=True needs PPO's value network; brax's SAC has none (leave value unset)")
        if self.nan_guard < 0 or self.nan_guard == 1:
            raise ValueError(f"nan_guard must be 0 (off) or at least 2 steps, got {self.nan_guard}")
        if self.nan_guard_stop and not self.nan_guard:
            raise ValueError("nan_guard_stop=True needs nan_guard=N steps")
        if self.live < 0 or self.live_chunk_steps < 2:
            raise ValueError(f"live must be >= 0 and live_chunk_steps >= 2, got {self.live}, {self.live_chunk_steps}")

    @property
    def capture_source(self) -> Literal["rollout", "eval"]:
        """``source`` with its default resolved."""
        return self.source or ("eval" if self.algorithm == "sac" else "rollout")

    @property
    def capture_value(self) -> bool:
        """``value`` with its default resolved."""
        return self.algorithm == "ppo" if self.value is None else self.value

    @property
    def num_steps(self) -> int:
        """Control steps per captured rollout (``T``)."""
        return max(1, self.episode_length // self.action_repeat)
