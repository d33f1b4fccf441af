"""Capture from unmodified ``brax.training`` trainers through their public hooks.

PPO: ``policy_params_fn(step, make_policy, params)`` runs after every training epoch; the
recorder runs its own compiled-once evaluation rollout there.

SAC: brax 0.14's SAC has no ``policy_params_fn``. Its ``wrap_env_fn`` wraps the training
environment first and the evaluation environment second; the recorder wraps the second in a
:class:`EvalTap` that keeps the first environments of brax's own evaluation episode in a
buffer on the device and hands it to the host once, at the episode's last step. SAC's
``progress_fn`` runs right after that evaluation and supplies the step count.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import sim, store
from ..store import RunWriter
from . import _networks, _processes, _rollout, _state
from ._buffer import BufferMirror
from ._config import RecorderConfig
from ._core import Failures
from ._live import LiveStream
from ._nan import NanGuard
from ._tap import EvalTap
from ._video_log import VideoLog

WRAP_ORDER = ("train", "eval")
"""The order in which brax 0.14's ``ppo.train`` and ``sac.train`` call ``wrap_env_fn``."""


def _recorded(cfg: RecorderConfig, env: Any) -> dict[str, Any]:
    """What ``run.json``'s ``config["trajscope"]`` records of the recorder, the trainer and
    the environment (``impl``: Playground's MJX implementation, ``jax`` or ``warp``, which
    play loads the environment with)."""
    t = cfg.trainer
    impl = getattr(getattr(getattr(env, "unwrapped", env), "_config", None), "impl", None)
    return {
        "impl": impl if isinstance(impl, str) else None,
        "num_envs": cfg.rollout.num_envs,
        "episode_length": t.episode_length,
        "action_repeat": t.action_repeat,
        "deterministic": cfg.rollout.deterministic,
        "info_keys": list(cfg.info_keys),
        "contacts": cfg.contacts,
        "randomization": t.randomization_fn is not None,
        "source": cfg.capture_source,
        "normalize_observations": t.normalize_observations,
        "reward_scaling": t.reward_scaling,
        "discounting": t.discounting,
    }


def _env_name(env: Any) -> str:
    u = getattr(env, "unwrapped", env)
    return type(u).__name__


class BraxRecorder:
    """Records evaluation rollouts of a brax or MuJoCo Playground training into a run.

    ``BraxRecorder(env, cfg)`` or ``BraxRecorder(env, num_envs=16, live=4, ...)``: the
    keyword options are the flat names of :class:`RecorderConfig`'s fields, or whole records
    (``live=LiveOptions(...)``); they replace those of ``cfg`` when both are given. Options
    that contradict each other raise ``ValueError``.

    Args:
        env: the environment being trained, unwrapped (as passed to ``train``).
        cfg: a :class:`RecorderConfig`.
        writer: write into this :class:`trajscope.RunWriter` instead of a new one (then
            ``root``, ``name``, ``env_name``, ``config`` and ``tags`` must not be given).
        **options: flat options or records of :class:`RecorderConfig` (see ``RecorderConfig.of``).
    """

    def __init__(
        self, env: Any, cfg: RecorderConfig | None = None, *, writer: RunWriter | None = None, **options: Any
    ) -> None:
        cfg = (cfg or RecorderConfig()).replace(**options)
        if writer is not None:
            run = cfg.run
            given = [f for f in ("root", "name", "env_name", "config") if getattr(run, f) is not None] + (
                ["tags"] if run.tags else []
            )
            if run.obs_float16:
                given.append("obs_float16 (give it to the RunWriter)")
            if given:
                raise ValueError(f"writer= names the run already; {', '.join(given)} cannot be given with it")
        self.env = env
        self.config = cfg
        trainer, rollout = cfg.trainer, cfg.rollout
        self._rollout_cfg = _rollout.RolloutConfig(
            num_envs=rollout.num_envs,
            num_steps=cfg.num_steps,
            action_repeat=trainer.action_repeat,
            deterministic=rollout.deterministic,
            info_keys=cfg.info_keys,
            contacts=cfg.contacts,
            randomization_fn=trainer.randomization_fn,
        )
        if cfg.contacts and not hasattr(getattr(env, "unwrapped", env), "_mjx_model"):
            raise ValueError(
                f"contacts={cfg.contacts} needs a MuJoCo Playground environment (MJX's JAX or Warp "
                f"implementation); {_env_name(env)} is not one"
            )
        self.strict = cfg.strict
        dt = float(getattr(env, "dt", 0.0)) * trainer.action_repeat or None
        env_name = cfg.run.env_name or _env_name(env)
        self.writer = writer or RunWriter(
            cfg.run.root,
            # Several processes (jax.distributed): one run, under process 0's name.
            name=_processes.shared_run_name(cfg.run.name, env_name),
            process_index=_processes.process_index(),
            model=sim.mj_model(env),
            env_name=env_name,
            algorithm=trainer.algorithm,
            config={"trajscope": _recorded(cfg, env), **dict(cfg.run.config or {})},
            tags=cfg.run.tags,
            control_dt_s=dt,
            strict=cfg.strict,
            obs_float16=cfg.run.obs_float16,
        )
        self.video_log: VideoLog | None = None
        if cfg.video.every:
            self.video_log = VideoLog(
                self.writer,
                every=cfg.video.every,
                envs=cfg.video.envs,
                on_video=cfg.video.on_video,
                # A warning, never an error, even when strict: it comes from its own thread.
                warn=lambda what, msg: store.warn(msg, strict=False),
            )
        self.captures_failed = 0
        self.checkpoints_seen = 0
        self.compiles = 0
        self.capture_seconds: list[float] = []
        self._rollouts: dict[int, Callable[..., Any]] = {}
        self._failures = Failures(strict=cfg.strict)
        self._pending: dict[str, Any] | None = None
        self._pending_lock = threading.Lock()
        self._pending_params: tuple[int, Any, Any] | None = None
        self._value_jit: Any = None
        self._network_described = False
        self._compiling: threading.Thread | None = None
        # Checkpoints that arrived while the first rollout was still compiling: the compile
        # thread captures them once it is done, so the training loop never waits for it.
        self._backlog: list[tuple[Any, ...]] = []
        self._backlog_lock = threading.Lock()
        self._background_busy = False
        self._eval_envs: list[Any] = []
        self.nan: NanGuard | None = None
        if cfg.nan_guard.steps:
            self.nan = NanGuard(
                self.writer,
                steps=cfg.nan_guard.steps,
                stop=cfg.nan_guard.stop,
                info_keys=tuple(cfg.info_keys),
                contacts=cfg.contacts,
                action_repeat=trainer.action_repeat,
                strict=cfg.strict,
            )
        self.buffer: BufferMirror | None = None
        if cfg.buffer.sample:
            self.buffer = BufferMirror(
                capacity=cfg.buffer.sample, per_step=cfg.buffer.per_step, seed=rollout.seed, strict=cfg.strict
            )
        self.live: LiveStream | None = None
        if cfg.live.envs:
            self.live = LiveStream(
                self.writer,
                num_envs=cfg.live.envs,
                chunk_steps=cfg.live.chunk_steps,
                info_keys=cfg.info_keys,
                contacts=cfg.contacts,
                obs=cfg.live.obs,
                control_dt_s=dt,
                strict=cfg.strict,
            )

    # ------------------------------------------------------------------ PPO

    def policy_params_fn(self, chain: Callable[..., None] | None = None) -> Callable[..., None]:
        """The hook for ``ppo.train(policy_params_fn=...)``; calls ``chain`` after capturing."""

        def hook(current_step: int, make_policy: Callable[..., Any], params: Any) -> None:
            if self.nan is not None:
                self.nan.check()
            self._describe_network()
            if self.config.capture_source == "eval":
                # The tapped evaluation of the previous checkpoint, if progress_fn did not write it.
                self._write_tapped(None)
                self._pending_params = (int(current_step), make_policy, params)
            else:
                self.capture(current_step, make_policy, params)
            if chain is not None:
                chain(current_step, make_policy, params)

        return hook

    def capture(self, step: int, make_policy: Callable[..., Any], params: Any) -> bool:
        """Run the evaluation rollout for this checkpoint and queue it; never raises
        (unless ``strict``). Returns True if a capture was started.

        The first capture traces and compiles the rollout (seconds) on a background thread,
        so training goes on meanwhile; checkpoints that arrive before it is done are handed
        to that thread, which captures them in order once the rollout is compiled (the
        training loop never waits for the compilation). Later ones only dispatch the
        compiled rollout.
        """
        self.checkpoints_seen += 1
        if (self.checkpoints_seen - 1) % self.config.rollout.every:
            return False
        t0 = time.perf_counter()
        key = jax.random.PRNGKey(self.config.rollout.seed)
        if not self.config.rollout.same_starts:
            key = jax.random.fold_in(key, self.checkpoints_seen)
        args = (int(step), make_policy, _strong(params), key, params)
        with self._backlog_lock:
            if self._background_busy:
                self._backlog.append(args)
                self.capture_seconds.append(time.perf_counter() - t0)
                return True
        self._join_compile()
        background = (
            self.config.rollout.background_compile
            and not self.strict
            and id(make_policy) not in self._rollouts
            # Randomisation swaps the environment's model while tracing; so may training's
            # own randomisation wrapper, so the two must not trace at the same time.
            and self.config.trainer.randomization_fn is None
        )
        if background:
            self._background_busy = True
            self._compiling = threading.Thread(
                target=self._capture_in_background, args=args, name="trajscope-compile", daemon=True
            )
            self._compiling.start()
            ok = True
        else:
            ok = self._capture_now(*args)
        self.capture_seconds.append(time.perf_counter() - t0)
        return ok

    def _capture_in_background(self, *args: Any) -> None:
        """The first capture (tracing and compiling the rollout), then every checkpoint that
        arrived meanwhile, in order."""
        try:
            self._capture_now(*args)
            while True:
                with self._backlog_lock:
                    if not self._backlog:
                        return
                    args = self._backlog.pop(0)
                self._capture_now(*args)
        finally:
            with self._backlog_lock:
                self._background_busy = False
                self._backlog.clear()

    def _join_compile(self) -> None:
        if self._compiling is not None:
            self._compiling.join()
            self._compiling = None

    def _capture_now(
        self, step: int, make_policy: Callable[..., Any], strong: Any, key: jax.Array, params: Any
    ) -> bool:
        try:
            traj = self._rollout_for(make_policy)(strong, key)
            ro = self.config.rollout
            ok = self.writer.add_capture(
                step=int(step),
                kind="eval",
                reset_frame=True,
                deterministic=ro.deterministic,
                attrs={"starts": {"same": ro.same_starts, "seed": ro.seed}},
                params=_params_tree(params, ro.store_params),
                buffer=self.buffer.snapshot() if self.buffer is not None else None,
                **_state.drop_empty(traj),
            )
            if ok and self.video_log is not None:
                self.video_log.captured(int(step))
        except Exception as e:
            if self.strict:
                raise
            self.captures_failed += 1
            self._warn("capture", f"trajscope: capture at step {step} failed: {type(e).__name__}: {e}")
            return False
        return ok

    def _rollout_for(self, make_policy: Callable[..., Any]) -> Callable[..., Any]:
        fn = self._rollouts.get(id(make_policy))
        if fn is None:
            value_fn = self._value_fn() if self.config.capture_value else None
            fn = _rollout.make_rollout(self.env, make_policy, self._rollout_cfg, value_fn=value_fn)
            fn = _CountingJit(fn, self)
            self._rollouts = {id(make_policy): fn}  # one trainer at a time; drop old executables
        return fn

    def _obs_shape(self) -> Any:
        """One environment's observation shape (a dict of them for dict observations)."""
        state = jax.eval_shape(self.env.reset, jax.random.PRNGKey(0))
        return jax.tree_util.tree_map(lambda x: x.shape, state.obs)

    def _describe_network(self) -> None:
        """Once: how to rebuild this training's networks, into ``run.json`` (``network``)."""
        if self._network_described:
            return
        self._network_described = True
        try:
            algorithm = self.config.trainer.algorithm
            factory = self.config.trainer.network_factory or _networks.default_factory(algorithm)
            desc = _networks.describe(
                factory,
                algorithm=algorithm,
                observation_size=self._obs_shape(),
                action_size=int(self.env.action_size),
                normalize_observations=self.config.trainer.normalize_observations,
            )
            self.writer.set_metadata(network=desc.to_json())
        except Exception as e:  # noqa: BLE001 - the description is optional
            self._warn("network", f"trajscope: the network description was not stored: {type(e).__name__}: {e}")

    def _value_fn(self) -> Callable[[Any, Any], jax.Array] | None:
        """The PPO value network, rebuilt as ``ppo.train`` builds it."""
        try:
            from brax.training.acme import running_statistics

            obs_shape = self._obs_shape()
            factory = self.config.trainer.network_factory or _networks.default_factory("ppo")

            def identity(x: Any, _: Any) -> Any:
                return x

            normalize: Any = running_statistics.normalize if self.config.trainer.normalize_observations else identity
            nets = factory(obs_shape, self.env.action_size, preprocess_observations_fn=normalize)
        except Exception as e:  # noqa: BLE001 - value is optional
            self._warn("value", f"trajscope: value predictions not captured: {type(e).__name__}: {e}")
            return None

        def value_fn(params: Any, obs: Any) -> jax.Array:
            v = nets.value_network.apply(params[0], params[2], obs)
            return v[0] if isinstance(v, tuple) else v

        return value_fn

    # ------------------------------------------------------------------ SAC

    def eval_env(self, env: Any = None) -> Any:
        """The environment to pass as ``train(eval_env=...)``: a shallow copy of ``env``
        (default: the recorder's) that ``wrap_env_fn`` knows as the evaluation environment.

        With it, the hook tells brax's two ``wrap_env_fn`` calls apart by the environment it
        is handed, not by their order; :meth:`hooks` and :func:`trajscope.capture.train` pass it.
        """
        marked = copy.copy(env if env is not None else self.env)
        self._eval_envs.append(marked)
        return marked

    def hooks(self, eval_env: Any = None) -> dict[str, Any]:
        """Every hook of this recorder for ``train(**rec.hooks())``: ``wrap_env_fn``,
        ``eval_env`` (:meth:`eval_env` of ``eval_env``, default the recorder's environment),
        and ``policy_params_fn`` for PPO or ``progress_fn`` for SAC."""
        out = {"wrap_env_fn": self.wrap_env_fn(), "eval_env": self.eval_env(eval_env)}
        if self.config.trainer.algorithm == "ppo":
            out["policy_params_fn"] = self.policy_params_fn()
        else:
            out["progress_fn"] = self.progress_fn()
        return out

    def wrap_env_fn(self, base: Callable[..., Any] | None = None) -> Callable[..., Any]:
        """The hook for ``train(wrap_env_fn=...)`` of PPO and SAC; one per ``train`` call.

        Wraps as ``base`` would (default: MuJoCo Playground's ``wrap_for_brax_training``
        for Playground environments, else ``brax.envs.training.wrap``), then adds the live
        stream, NaN guard and buffer mirror to the training environment and the evaluation
        tap (``source="eval"``) to the evaluation environment. brax's trainers call it once
        for each. The evaluation environment is the one made by :meth:`eval_env` (passed as
        ``train(eval_env=...)``; :meth:`hooks` does both). Without it, the two calls are told
        apart by their order in brax 0.14 (training first, evaluation second). A second call
        for a role means the hook was passed to a second ``train``: that environment is
        wrapped as ``base`` would and nothing else, with a warning (make a new hook for each
        ``train``).
        """
        seen: list[str] = []

        def wrap(env: Any, **kwargs: Any) -> Any:
            wrapped = (base or _default_wrap(env))(env, **kwargs)
            if any(env is e for e in self._eval_envs):
                role = "eval"
            elif self._eval_envs:
                role = "train"
            else:
                role = WRAP_ORDER[len(seen)] if len(seen) < len(WRAP_ORDER) else "again"
            if role in seen or role == "again":
                self._warn(
                    "wrap",
                    "trajscope: this wrap_env_fn was already used by a train() call; nothing is captured "
                    "from this one (pass a fresh rec.wrap_env_fn() to each train())",
                )
                return wrapped
            seen.append(role)
            if role == "train":
                repeat = int(kwargs.get("action_repeat", 1))
                if self.live is not None:
                    wrapped = self.live.wrap(wrapped, action_repeat=repeat)
                if self.nan is not None:
                    wrapped = self.nan.wrap(wrapped, action_repeat=repeat)
                if self.buffer is not None:
                    wrapped = self.buffer.wrap(wrapped, action_repeat=repeat)
                return wrapped
            if self.config.capture_source == "eval":
                return EvalTap(wrapped, self._rollout_cfg, self._receive)
            return wrapped

        return wrap

    def progress_fn(self, chain: Callable[[int, Any], None] | None = None) -> Callable[[int, Any], None]:
        """The hook for ``sac.train(progress_fn=...)``: writes the tapped evaluation."""

        def hook(step: int, metrics: Any) -> None:
            if self.nan is not None:
                self.nan.check()
            self._describe_network()
            self._write_tapped(int(step), metrics)
            if chain is not None:
                chain(step, metrics)

        return hook

    def _write_tapped(self, step: int | None, metrics: Any = None) -> None:
        """Write the evaluation episode the tap received, with the parameters of the
        checkpoint it evaluated when ``policy_params_fn`` saw them (PPO) or brax saved them
        in ``checkpoint_dir`` (SAC), and the trainer's scalar metrics (SAC's ``progress_fn``:
        ``training/buffer_current_size``, ...) in ``attrs["metrics"]``."""
        with self._pending_lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return
        try:
            ckpt = self._pending_params
            if step is None:
                step = ckpt[0] if ckpt is not None else 0
            extra: dict[str, Any] = {}
            if ckpt is not None and ckpt[0] == step:
                params = ckpt[2]
                extra["params"] = _params_tree(params, self.config.rollout.store_params)
                value_fn = self._tap_value_fn()
                if value_fn is not None and "obs" in pending:
                    extra["value"] = value_fn(_strong(params), pending["obs"])
            elif self.config.trainer.checkpoint_dir and self.config.rollout.store_params != "none":
                saved = self._saved_params(step)
                if saved is not None:
                    extra["params"] = _params_tree(saved, self.config.rollout.store_params)
            attrs = {"metrics": _scalars(metrics)} if metrics else {}
            ok = self.writer.add_capture(
                step=step,
                kind="eval",
                reset_frame=True,
                deterministic=self.config.rollout.deterministic,
                buffer=self.buffer.snapshot() if self.buffer is not None else None,
                attrs=attrs,
                **pending,
                **extra,
            )
            if ok and self.video_log is not None:
                self.video_log.captured(int(step))
        except Exception as e:
            if self.strict:
                raise
            self.captures_failed += 1
            self._warn("tap", f"trajscope: capture of brax's evaluation at step {step} failed: {type(e).__name__}: {e}")

    def _saved_params(self, step: int) -> Any:
        """The parameters brax's SAC saved in ``checkpoint_dir`` at ``step``, by brax's
        loader; None before training (brax saves none for its first evaluation)."""
        import os

        from brax.training import checkpoint

        path = os.path.join(str(self.config.trainer.checkpoint_dir), f"{int(step):012d}")
        if not os.path.isdir(path):
            if step > 0:
                self._warn(
                    "checkpoint",
                    f"trajscope: no checkpoint at {path}: is checkpoint_dir sac.train's checkpoint_logdir?",
                )
            return None
        return tuple(checkpoint.load(path))

    def _tap_value_fn(self) -> Callable[[Any, Any], Any] | None:
        if not self.config.capture_value:
            return None
        if self._value_jit is None:
            fn = self._value_fn()
            self._value_jit = jax.jit(fn) if fn is not None else False
        return self._value_jit or None

    def _receive(self, traj: dict[str, Any]) -> None:
        """Host side of :class:`EvalTap`: called once per evaluation episode."""
        with self._pending_lock:
            self._pending = _state.drop_empty(jax.tree_util.tree_map(np.asarray, traj))

    # ------------------------------------------------------------------ common

    @property
    def stats(self) -> Any:
        return self.writer.stats

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()  # no more chunks: training has ended
        self._join_compile()
        self._write_tapped(None)
        if self.video_log is not None:
            self.video_log.close()
        if self.live is not None:
            # "finished" only once every capture is on disk: a viewer that sees it goes to
            # the newest capture, which must be the last one.
            self.writer.flush(self.writer.close_timeout_s)
            self.live.close()
        self.writer.close()

    def __enter__(self) -> BraxRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _warn(self, what: str, message: str) -> None:
        self._failures.warn(what, message)


class _CountingJit:
    """A jitted function that counts its compilations (the benchmark reports them)."""

    def __init__(self, fn: Any, rec: BraxRecorder) -> None:
        self._fn = fn
        self._rec = rec
        self._size = 0

    def __call__(self, *args: Any) -> Any:
        out = self._fn(*args)
        size = self._fn._cache_size()
        if size != self._size:
            self._rec.compiles += size - self._size
            self._size = size
        return out


def _strong(tree: Any) -> Any:
    """Drop JAX's weak types: brax's first checkpoint has weakly typed scalars and later ones
    do not, which would otherwise compile the rollout a second time."""
    return jax.tree_util.tree_map(
        lambda x: jnp.asarray(x, dtype=x.dtype) if getattr(x, "weak_type", False) else x, tree
    )


def _scalars(metrics: Any) -> dict[str, float]:
    """The scalar entries of a trainer's metrics, as floats."""
    out = {}
    for k, v in dict(metrics).items():
        try:
            if np.ndim(v) == 0:
                out[str(k)] = float(v)
        except (TypeError, ValueError):
            continue
    return out


def _params_tree(params: Any, which: str) -> dict[str, Any] | None:
    """PPO's ``(normalizer, policy, value)`` params as a named tree, as much as asked for."""
    if which == "none":
        return None
    if isinstance(params, tuple) and len(params) in (2, 3):
        tree = {"normalizer": params[0], "policy": params[1]}
        if which == "all" and len(params) == 3:
            tree["value"] = params[2]
        return tree
    return {"params": params}


def _default_wrap(env: Any) -> Callable[..., Any]:
    """Playground's training wrapper for Playground environments (also inside a user's own
    wrapper: what holds the model tells, not the class), else brax's."""
    inner = getattr(env, "unwrapped", env)
    if type(env).__module__.startswith("mujoco_playground") or hasattr(inner, "_mjx_model"):
        from mujoco_playground import wrapper

        return wrapper.wrap_for_brax_training
    from brax import envs

    return envs.training.wrap
