"""What a :class:`BraxRecorder` records: a frozen configuration made of a few frozen records.

``RecorderConfig`` groups the options by concern: the run (:class:`RunOptions`), what the
trainer was given (:class:`TrainerOptions`), the evaluation rollouts (:class:`RolloutOptions`),
the live stream (:class:`LiveOptions`), the NaN guard (:class:`NanGuardOptions`), the
replay-buffer mirror (:class:`BufferOptions`) and training videos (:class:`VideoOptions`).
Each option also has one flat keyword name (``FLAT``), which ``BraxRecorder(env, **options)``
and :meth:`RecorderConfig.of` take. Options that contradict each other are refused when the
configuration is made, never resolved silently.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunOptions:
    """The run the recorder writes."""

    root: str | os.PathLike[str] | None = None
    """Where runs go (see ``trajscope.RunWriter``); default ``$TRAJSCOPE_DIR`` or ``./trajscope_runs``."""
    name: str | None = None
    """The run's folder name; default ``<env_name>-<date>-<time>-<random>``."""
    env_name: str | None = None
    """Shown by the viewer; default the registry name given to ``trajscope.capture.train``,
    else the environment's class name."""
    config: Mapping[str, Any] | None = None
    """The training configuration, stored in ``run.json``."""
    tags: Sequence[str] = ()
    """Free labels stored in ``run.json``."""
    obs_float16: bool = False
    """Store float observations (not images) as float16: lossy, opt-in, about half their
    bytes; everything else stays lossless (format 1.4; see ``RunWriter(obs_float16=...)``)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", tuple(self.tags))


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainerOptions:
    """What the brax trainer was given, as far as capture and analysis need it."""

    algorithm: Literal["ppo", "sac"] = "ppo"
    """The brax trainer: decides which hooks capture (see ``source``)."""
    episode_length: int = 1000
    """Control steps per captured rollout times ``action_repeat``, as passed to ``train``."""
    action_repeat: int = 1
    """As passed to ``train``."""
    randomization_fn: Callable[..., Any] | None = None
    """As passed to ``train``: each captured environment gets its own randomised model, and
    the fields randomised are stored per environment."""
    normalize_observations: bool = False
    """As passed to PPO's ``train``; for the value network."""
    network_factory: Callable[..., Any] | None = None
    """As passed to ``train``; for the value network and the stored network description."""
    reward_scaling: float | None = None
    """As passed to ``train`` (None: not known). PPO's value network predicts scaled
    returns; the analysis divides by this, and says so when it is unknown."""
    discounting: float | None = None
    """As passed to ``train`` (None: not known); the analysis computes returns with it."""
    checkpoint_dir: str | None = None
    """SAC: the ``checkpoint_logdir`` given to ``sac.train``; the recorder stores the policy
    parameters brax saves there at every evaluation with that evaluation's capture."""

    def __post_init__(self) -> None:
        if self.algorithm not in ("ppo", "sac"):
            raise ValueError(f"algorithm must be 'ppo' or 'sac', not {self.algorithm!r}")
        for field in ("episode_length", "action_repeat"):
            if int(getattr(self, field)) < 1:
                raise ValueError(f"{field} must be >= 1, got {getattr(self, field)}")
        if self.reward_scaling is not None and not float(self.reward_scaling) > 0:
            raise ValueError(f"reward_scaling must be > 0, got {self.reward_scaling}")
        if self.discounting is not None and not 0 < float(self.discounting) <= 1:
            raise ValueError(f"discounting must be in (0, 1], got {self.discounting}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class RolloutOptions:
    """The evaluation captures, one per checkpoint."""

    num_envs: int = 16
    """Environments per captured rollout (``E``)."""
    deterministic: bool = True
    """Capture the policy's mode (True) or samples from it. With ``source="eval"`` it should
    match train's ``deterministic_eval``."""
    every: int = 1
    """Capture every n-th checkpoint."""
    seed: int = 0
    """Seed of the capture rollouts, independent of training's."""
    source: Literal["rollout", "eval"] | None = None
    """``"rollout"``: the recorder's own evaluation rollout at each checkpoint (PPO's
    ``policy_params_fn``). ``"eval"``: the first ``num_envs`` environments of brax's own
    evaluation episode, tapped through ``wrap_env_fn``. Default: ``"rollout"`` for PPO,
    ``"eval"`` for SAC, which has no ``policy_params_fn``; ``"rollout"`` with SAC is an error."""
    value: bool | None = None
    """Store the PPO value network's prediction at every step. Default: on for PPO; SAC has
    no state-value network, so True with ``algorithm="sac"`` is an error."""
    store_params: Literal["policy", "all", "none"] = "policy"
    """Checkpoint parameters each capture keeps: ``"policy"`` (observation normaliser and
    policy network: enough to run the policy again), ``"all"`` (also the value network),
    or ``"none"``."""
    same_starts: bool = True
    """Evaluate every checkpoint from the same reset states, randomised models and action
    noise (``seed``): a difference between two checkpoints' captures is then the policy's,
    not the draw's, and the analysis compares them environment by environment (where they
    part, the return difference, the reward terms that changed). False: fresh starts at
    every checkpoint (more distinct starts seen over training, comparisons mixed with luck)."""
    background_compile: bool = True
    """Compile the rollout at the first checkpoint on a background thread while training
    goes on (never with ``randomization_fn``, whose tracing swaps the environment's model)."""

    def __post_init__(self) -> None:
        for field in ("num_envs", "every"):
            if int(getattr(self, field)) < 1:
                raise ValueError(f"{field} must be >= 1, got {getattr(self, field)}")
        if self.source not in (None, "rollout", "eval"):
            raise ValueError(f"source must be 'rollout' or 'eval', not {self.source!r}")
        if self.store_params not in ("policy", "all", "none"):
            raise ValueError(f"store_params must be 'policy', 'all' or 'none', not {self.store_params!r}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class LiveOptions:
    """The live stream of training environments (needs ``wrap_env_fn``)."""

    envs: int = 0
    """Stream this many of the *training* environments (0: no live stream); needs
    ``wrap_env_fn=rec.wrap_env_fn()``."""
    chunk_steps: int = 64
    """Consecutive training steps per live chunk."""
    obs: bool = True
    """Include observations in the live stream."""

    def __post_init__(self) -> None:
        if self.envs < 0 or self.chunk_steps < 2:
            raise ValueError(f"live must be >= 0 and live_chunk_steps >= 2, got {self.envs}, {self.chunk_steps}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class NanGuardOptions:
    """The NaN guard over every training environment (needs ``wrap_env_fn``)."""

    steps: int = 0
    """Keep the last this many steps of every training environment on the device; when one
    becomes non-finite (state, reward or observation), write its steps as a capture of kind
    ``nan`` (0: off). Needs ``wrap_env_fn=rec.wrap_env_fn()``."""
    stop: bool = False
    """Stop training (``NonFiniteTrainingError`` at the next checkpoint) once the guard trips;
    by default training goes on."""

    def __post_init__(self) -> None:
        if self.steps < 0 or self.steps == 1:
            raise ValueError(f"nan_guard must be 0 (off) or at least 2 steps, got {self.steps}")
        if self.stop and not self.steps:
            raise ValueError("nan_guard_stop=True needs nan_guard=N steps")


@dataclasses.dataclass(frozen=True, kw_only=True)
class BufferOptions:
    """The mirror of an off-policy trainer's replay buffer (needs ``wrap_env_fn``)."""

    sample: int = 0
    """Mirror a uniform sample of this many training transitions (what an off-policy trainer
    such as SAC inserts into its replay buffer), stored with every capture as its ``buffer``
    group with the env step of each (0: off). Needs ``wrap_env_fn=rec.wrap_env_fn()``."""
    per_step: int = 4
    """Training environments the mirror samples at every step."""

    def __post_init__(self) -> None:
        if self.sample < 0 or self.per_step < 1:
            raise ValueError("replay_sample must be >= 0 and replay_per_step >= 1")


@dataclasses.dataclass(frozen=True, kw_only=True)
class VideoOptions:
    """Training videos rendered from evaluation captures."""

    every: int = 0
    """Render every this-many-th evaluation capture to ``videos/<capture id>.mp4`` in the run
    on a thread of its own (MuJoCo's offscreen renderer: set ``MUJOCO_GL``; the ``video``
    extra), its first ``video_envs`` environments tiled (0: off)."""
    envs: int = 4
    """Environments tiled in each training video."""
    on_video: Callable[[str, int], None] | None = None
    """Called with ``(url, step)`` after each training video is stored: hand it to
    TensorBoard or W&B here (see docs/export.md)."""

    def __post_init__(self) -> None:
        if self.every < 0 or self.envs < 1:
            raise ValueError(f"video_every must be >= 0 and video_envs >= 1, got {self.every}, {self.envs}")


GROUPS: dict[str, type] = {
    "run": RunOptions,
    "trainer": TrainerOptions,
    "rollout": RolloutOptions,
    "live": LiveOptions,
    "nan_guard": NanGuardOptions,
    "buffer": BufferOptions,
    "video": VideoOptions,
}
"""The records of a :class:`RecorderConfig`, by its field name."""

_RENAMED = {
    ("live", "envs"): "live",
    ("live", "chunk_steps"): "live_chunk_steps",
    ("live", "obs"): "live_obs",
    ("nan_guard", "steps"): "nan_guard",
    ("nan_guard", "stop"): "nan_guard_stop",
    ("buffer", "sample"): "replay_sample",
    ("buffer", "per_step"): "replay_per_step",
    ("video", "every"): "video_every",
    ("video", "envs"): "video_envs",
}

FLAT: dict[str, tuple[str, str]] = {
    _RENAMED.get((group, f.name), f.name): (group, f.name)
    for group, cls in GROUPS.items()
    for f in dataclasses.fields(cls)
}
"""Flat option name (``BraxRecorder(env, live=4)``) to ``(record, field)``
(``cfg.live.envs``). Fields of no record (``info_keys``, ``contacts``, ``strict``) keep their names."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class RecorderConfig:
    """Configuration of a :class:`BraxRecorder`: one frozen record per concern.

    Make one from flat options with :meth:`of`; change one with :meth:`replace`.
    """

    run: RunOptions = dataclasses.field(default_factory=RunOptions)
    trainer: TrainerOptions = dataclasses.field(default_factory=TrainerOptions)
    rollout: RolloutOptions = dataclasses.field(default_factory=RolloutOptions)
    live: LiveOptions = dataclasses.field(default_factory=LiveOptions)
    nan_guard: NanGuardOptions = dataclasses.field(default_factory=NanGuardOptions)
    buffer: BufferOptions = dataclasses.field(default_factory=BufferOptions)
    video: VideoOptions = dataclasses.field(default_factory=VideoOptions)
    info_keys: Sequence[str] = ()
    """``state.info`` entries to store with every capture, live chunk and NaN capture
    (commands, curriculum levels, ...)."""
    contacts: int = 0
    """Store each environment's first ``contacts`` contacts as the simulator found them (MJX's
    JAX or Warp implementation) with every capture, live chunk and NaN capture, as
    ``info/contact/...``; the viewer draws them instead of recomputing them (0: off)."""
    strict: bool = False
    """Raise instead of warning (for tests); also compiles in the foreground."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "info_keys", tuple(self.info_keys))
        if not isinstance(self.contacts, int) or isinstance(self.contacts, bool) or self.contacts < 0:
            raise ValueError(f"contacts must be a non-negative int, not {self.contacts!r}")
        for group, cls in GROUPS.items():
            if not isinstance(getattr(self, group), cls):
                raise TypeError(f"RecorderConfig.{group} must be a {cls.__name__}, not {getattr(self, group)!r}")
        if self.trainer.algorithm == "sac" and self.rollout.source == "rollout":
            raise ValueError(
                "source='rollout' needs PPO's policy_params_fn, which brax's SAC does not have: "
                "leave source unset (SAC captures brax's own evaluation, source='eval')"
            )
        if self.trainer.algorithm == "sac" and self.rollout.value:
            raise ValueError("value=True needs PPO's value network; brax's SAC has none (leave value unset)")

    @classmethod
    def of(cls, **options: Any) -> RecorderConfig:
        """A configuration from flat options (``num_envs=4, live=2``, see ``FLAT``) and/or whole
        records (``rollout=RolloutOptions(...)``); a record and a flat option of it together
        are a ``ValueError``, an unknown option a ``TypeError``."""
        return cls().replace(**options)

    def replace(self, **options: Any) -> RecorderConfig:
        """This configuration with the given flat options or records replaced."""
        records: dict[str, Any] = {}
        changes: dict[str, dict[str, Any]] = {}
        top: dict[str, Any] = {}
        for key, value in options.items():
            if key in GROUPS and isinstance(value, GROUPS[key]):
                records[key] = value
            elif key in FLAT:
                group, field = FLAT[key]
                changes.setdefault(group, {})[field] = value
            elif key in ("info_keys", "contacts", "strict"):
                top[key] = value
            else:
                raise TypeError(f"unknown recorder option {key!r}")
        both = sorted(set(records) & set(changes))
        if both:
            flat = [k for k in options if k in FLAT and FLAT[k][0] in both]
            raise ValueError(
                f"give either the record or its options, not both: {', '.join(both)} and {', '.join(flat)}"
            )
        for group, fields in changes.items():
            records[group] = dataclasses.replace(getattr(self, group), **fields)
        return dataclasses.replace(self, **records, **top)

    def flat(self) -> dict[str, Any]:
        """Every option under its flat name."""
        out = {name: getattr(getattr(self, g), f) for name, (g, f) in FLAT.items()}
        out.update(info_keys=self.info_keys, contacts=self.contacts, strict=self.strict)
        return out

    @property
    def capture_source(self) -> Literal["rollout", "eval"]:
        """``source`` with its default resolved."""
        return self.rollout.source or ("eval" if self.trainer.algorithm == "sac" else "rollout")

    @property
    def capture_value(self) -> bool:
        """``value`` with its default resolved."""
        return self.trainer.algorithm == "ppo" if self.rollout.value is None else self.rollout.value

    @property
    def num_steps(self) -> int:
        """Control steps per captured rollout (``T``)."""
        return max(1, self.trainer.episode_length // self.trainer.action_repeat)
