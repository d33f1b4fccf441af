"""One call that runs brax's trainer with capture on: the trainer and its keyword arguments
as the user already has them (MuJoCo Playground's ``ppo_params``, say), every hook wired,
the training configuration recorded in the run.

    from brax.training.agents.ppo import train as ppo
    from mujoco_playground.config import dm_control_suite_params
    import trajscope.capture

    params = dm_control_suite_params.brax_ppo_config("CartpoleBalance")
    make_policy, params, metrics = trajscope.capture.train(ppo.train, "CartpoleBalance", **params)
"""

from __future__ import annotations

import functools
import inspect
import math
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from ._brax import BraxRecorder
from ._config import RecorderConfig

# What the recorder takes from train's arguments, by train's name for it.
_FROM_TRAIN = (
    "episode_length",
    "action_repeat",
    "randomization_fn",
    "normalize_observations",
    "network_factory",
    "reward_scaling",
    "discounting",
)


def algorithm_of(train_fn: Callable[..., Any]) -> str:
    """``"ppo"`` or ``"sac"``: which brax trainer ``train_fn`` is (through partials)."""
    fn = train_fn
    while isinstance(fn, functools.partial):
        fn = fn.func
    module = getattr(fn, "__module__", "") or ""
    for name in ("ppo", "sac"):
        if f".{name}." in f".{module}.":
            return name
    raise ValueError(
        f"{module}.{getattr(fn, '__name__', fn)} is not brax's ppo.train or sac.train: "
        "hook other trainers with BraxRecorder's hooks (docs/capture.md)"
    )


def _defaults(train_fn: Callable[..., Any]) -> dict[str, Any]:
    """The trainer's own keyword defaults (and a partial's bound keywords)."""
    out: dict[str, Any] = {}
    fn = train_fn
    bound: dict[str, Any] = {}
    while isinstance(fn, functools.partial):
        bound = {**fn.keywords, **bound}
        fn = fn.func
    try:
        for name, p in inspect.signature(fn).parameters.items():
            if p.default is not inspect.Parameter.empty:
                out[name] = p.default
    except (TypeError, ValueError):
        pass
    return {**out, **bound}


def planned_steps(algorithm: str, kw: Mapping[str, Any]) -> int | None:
    """The environment steps brax's PPO will really run for these arguments: it trains whole
    epochs, so ``num_timesteps`` is rounded up (None for SAC or when arguments are missing)."""
    if algorithm != "ppo":
        return None
    try:
        per_step = int(kw["batch_size"]) * int(kw["unroll_length"]) * int(kw["num_minibatches"])
        per_step *= int(kw.get("action_repeat", 1))
        evals = max(int(kw.get("num_evals", 1)) - 1, 1)
        resets = max(int(kw.get("num_resets_per_eval", 0)), 1)
        epochs = math.ceil(int(kw["num_timesteps"]) / (evals * per_step * resets))
        return epochs * evals * per_step * resets
    except (KeyError, TypeError, ValueError):
        return None


def load_env(name: str, env_config: Any = None) -> Any:
    """A MuJoCo Playground environment by its registry name, with ``impl="jax"`` unless
    ``env_config`` says otherwise (Playground's default, MuJoCo Warp, is far slower on CPU)."""
    from mujoco_playground import registry

    if env_config is None:
        env_config = registry.get_default_config(name)
        if "impl" in env_config:
            env_config.impl = "jax"
    return registry.load(name, config=env_config)


def resolve_env(environment: Any, env_name: str | None = None, env_config: Any = None) -> tuple[Any, str | None]:
    """``(environment, name to show)``: a registry name is loaded (:func:`load_env`) and
    becomes the run's name, as users know the task by it ("CartpoleBalance", not "Balance")."""
    if isinstance(environment, str):
        return load_env(environment, env_config), env_name or environment
    return environment, env_name


def _network_factory(algorithm: str, factory: Any) -> Any:
    """Playground's configs give ``network_factory`` as keyword arguments of brax's default
    factory; turn those into the factory, as Playground's training script does."""
    if factory is None or callable(factory):
        return factory
    if isinstance(factory, Mapping) or hasattr(factory, "to_dict"):
        kwargs = factory.to_dict() if hasattr(factory, "to_dict") else dict(factory)
        from ._networks import default_factory

        return functools.partial(default_factory(algorithm), **kwargs)
    raise TypeError(f"network_factory must be a factory or its keyword arguments, not {type(factory).__name__}")


def recorder_for(
    train_fn: Callable[..., Any],
    environment: Any,
    *,
    capture: RecorderConfig | Mapping[str, Any] | None = None,
    env_name: str | None = None,
    **train_kwargs: Any,
) -> BraxRecorder:
    """The :class:`BraxRecorder` that :func:`train` makes for these arguments: what the
    recorder and the analysis need of the training taken from them and the trainer's
    defaults, the whole configuration recorded. Make it first when something must happen
    between making the run and training (the demo starts its viewer there), then pass it
    to :func:`train` as ``recorder=`` with the same arguments."""
    algorithm = algorithm_of(train_fn)
    kw = {**_defaults(train_fn), **train_kwargs}
    if "network_factory" in kw:
        kw["network_factory"] = _network_factory(algorithm, kw["network_factory"])
    taken: dict[str, Any] = {k: kw[k] for k in _FROM_TRAIN if k in kw and kw[k] is not None}
    if algorithm == "sac" and kw.get("checkpoint_logdir"):
        taken["checkpoint_dir"] = str(kw["checkpoint_logdir"])
    given = capture.flat() if isinstance(capture, RecorderConfig) else dict(capture or {})
    if isinstance(capture, RecorderConfig):
        given = {k: v for k, v in given.items() if not _unset(capture, k)}
    cfg = RecorderConfig.of(algorithm=algorithm, **taken).replace(**given)
    if cfg.capture_source == "eval" and "deterministic" not in given and "deterministic_eval" in kw:
        # The tap records brax's own evaluation: it acts as train's deterministic_eval says.
        cfg = cfg.replace(deterministic=bool(kw["deterministic_eval"]))
    if cfg.run.env_name is None and env_name is not None:
        cfg = cfg.replace(env_name=env_name)
    if cfg.run.config is None:
        cfg = cfg.replace(config=_plain_config(train_kwargs))
    return BraxRecorder(environment, cfg)


def train(
    train_fn: Callable[..., Any],
    environment: Any,
    *,
    capture: RecorderConfig | Mapping[str, Any] | None = None,
    recorder: BraxRecorder | None = None,
    env_name: str | None = None,
    env_config: Any = None,
    progress: bool = True,
    **train_kwargs: Any,
) -> Any:
    """Run ``train_fn(environment=..., **train_kwargs)`` (brax's ``ppo.train`` or ``sac.train``)
    with capture on, and return what it returns.

    Every hook is wired: ``policy_params_fn`` (PPO), ``wrap_env_fn`` and a marked
    ``eval_env``, ``progress_fn``; hooks given in ``train_kwargs`` still run (a
    ``wrap_env_fn`` given is the base the recorder wraps around). What the recorder and the
    analysis need of the training is taken from the arguments and the trainer's defaults
    (``episode_length``, ``action_repeat``, ``normalize_observations``, ``network_factory``,
    ``reward_scaling``, ``discounting``, ``randomization_fn``, SAC's ``checkpoint_logdir``)
    and recorded in the run with the whole configuration. The recorder is closed at the end.

    Args:
        train_fn: ``brax.training.agents.ppo.train.train`` or ``sac.train.train`` (or a
            ``functools.partial`` of one).
        environment: the environment, or a MuJoCo Playground registry name (loaded with
            ``impl="jax"``; see ``env_config``); the run is named after it.
        capture: recorder options (flat names, see docs/capture.md) or a ``RecorderConfig``;
            what is given here wins over what is taken from the training's arguments.
        recorder: the recorder :func:`recorder_for` made for the same arguments (then no
            ``capture``).
        env_name: the name shown by the viewer; default the registry name, else the class's.
        env_config: Playground config for a registry name (default: its default config).
        progress: print progress lines in the terminal.
    """
    algorithm = algorithm_of(train_fn)
    environment, env_name = resolve_env(environment, env_name, env_config)
    if "network_factory" in train_kwargs:
        train_kwargs = {**train_kwargs, "network_factory": _network_factory(algorithm, train_kwargs["network_factory"])}
    if recorder is not None and capture is not None:
        raise ValueError("give either recorder= or capture=, not both")
    if recorder is None:
        recorder = recorder_for(train_fn, environment, capture=capture, env_name=env_name, **train_kwargs)
    kw = {**_defaults(train_fn), **train_kwargs}
    rec = recorder
    user_progress = train_kwargs.pop("progress_fn", None)
    user_params = train_kwargs.pop("policy_params_fn", None)
    user_wrap = train_kwargs.pop("wrap_env_fn", None)
    user_eval = train_kwargs.pop("eval_env", None)
    planned = planned_steps(algorithm, kw)
    asked = kw.get("num_timesteps")
    t0 = time.perf_counter()
    out = sys.stdout

    def say(line: str) -> None:
        if progress:
            print(f"trajscope: {line}", file=out, flush=True)

    sac_hook = rec.progress_fn() if algorithm == "sac" else None

    def on_progress(step: int, metrics: Any) -> None:
        if sac_hook is not None:
            sac_hook(step, metrics)
        r = metrics.get("eval/episode_reward") if isinstance(metrics, Mapping) else None
        total = planned or asked
        share = f" / {total:,} ({100 * step / total:.0f}%)" if total else ""
        rate = f", {step / (time.perf_counter() - t0):,.0f} steps/s since the start" if step else ""
        reward = f", eval return {float(r):.1f}" if r is not None else ""
        say(f"step {int(step):,}{share}{reward}{rate}, {_written(rec.stats)}")
        if user_progress is not None:
            user_progress(step, metrics)

    hooks: dict[str, Any] = {
        "wrap_env_fn": rec.wrap_env_fn(user_wrap),
        "eval_env": rec.eval_env(user_eval),
        "progress_fn": on_progress,
    }
    if algorithm == "ppo":
        hooks["policy_params_fn"] = rec.policy_params_fn(user_params)
    elif user_params is not None:
        hooks["policy_params_fn"] = user_params
    rounding = f" (brax trains whole epochs: {planned:,} steps)" if planned and asked and planned != int(asked) else ""
    say(
        f"training {algorithm.upper()} on {rec.config.run.env_name or type(environment).__name__} for "
        f"{int(asked):,} steps{rounding}, capturing into {rec.writer.url}"
        if asked
        else f"training {algorithm.upper()}, capturing into {rec.writer.url}"
    )
    say("compiling the training step (a minute or more on a CPU); progress follows at each evaluation")
    try:
        result = train_fn(environment=environment, **train_kwargs, **hooks)
    finally:
        rec.close()
    s = rec.stats
    say(
        f"done in {time.perf_counter() - t0:.0f} s: {_written(s)}, {s.dropped} dropped; "
        f"view with: trajscope view {rec.writer.url}"
    )
    return result


def _unset(cfg: RecorderConfig, flat: str) -> bool:
    """The option still has its default in ``cfg``."""
    return cfg.flat()[flat] == RecorderConfig().flat()[flat]


def _plain_config(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The training's arguments that are plain values, for ``run.json``; callables by name."""
    out: dict[str, Any] = {}
    for k, v in kwargs.items():
        if v is None or isinstance(v, (bool, int, float, str)):
            out[k] = v
        elif isinstance(v, (list, tuple)) and all(isinstance(x, (bool, int, float, str)) for x in v):
            out[k] = list(v)
        elif callable(v):
            fn = v.func if isinstance(v, functools.partial) else v
            out[k] = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"
    return out


def _written(stats: Any) -> str:
    """What the writer wrote: captures and live chunks counted apart."""
    captures = stats.written - stats.live_written
    live = f", {stats.live_written} live chunks" if stats.live_written else ""
    return f"{captures} capture{'s' if captures != 1 else ''}{live} written"
