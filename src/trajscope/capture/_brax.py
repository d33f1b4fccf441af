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

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import io_callback

from ..store import RunWriter
from ..store._writer import emit_warning
from . import _rollout, _state
from ._live import LiveStream


def _env_name(env: Any) -> str:
    u = getattr(env, "unwrapped", env)
    return type(u).__name__


class BraxRecorder:
    """Records evaluation rollouts of a brax or MuJoCo Playground training into a run.

    Args:
        env: the environment being trained, unwrapped (as passed to ``train``).
        root, name: where the run goes (see :class:`trajscope.RunWriter`).
        num_envs: environments per captured rollout (``E``).
        episode_length: control steps per captured rollout (``T``) times ``action_repeat``,
            as passed to ``train``.
        action_repeat: as passed to ``train``.
        deterministic: capture the policy's mode (True) or samples from it.
        every: capture every n-th checkpoint.
        info_keys: ``state.info`` entries to store.
        randomization_fn: as passed to ``train``; each captured environment gets its own
            randomised model, and the fields randomised are stored per environment.
        normalize_observations, network_factory: as passed to PPO's ``train``; used to
            evaluate the value network at every captured step. ``value=False`` skips that.
        store_params: which checkpoint parameters each capture keeps: ``"policy"`` (the
            observation normaliser and the policy network: enough to run the policy again,
            for saliency and the like), ``"all"`` (also the value network, often much the
            largest), or ``"none"``.
        algorithm, env_name, config, tags: run metadata.
        seed: seed of the capture rollouts, independent of training's.
        strict: raise instead of warning (for tests); also compiles in the foreground.
        background_compile: trace and compile the rollout at the first checkpoint on a
            background thread while training goes on (not with ``randomization_fn``).
        source: ``"rollout"``: the recorder's own evaluation rollout at each checkpoint
            (PPO's ``policy_params_fn``). ``"eval"``: no rollout of its own; the first
            ``num_envs`` environments of brax's own evaluation episode are tapped through
            ``wrap_env_fn`` (pass ``wrap_env_fn=rec.wrap_env_fn()`` too), which costs
            training almost nothing; ``deterministic`` should then match train's
            ``deterministic_eval``. SAC always uses ``"eval"``.
        live: stream this many of the *training* environments (0: no live stream). Pass
            ``wrap_env_fn=rec.wrap_env_fn()`` to ``train``; viewers switch the stream on
            and off (see :class:`trajscope.capture.LiveStream`).
        live_chunk_steps: consecutive training steps per live chunk.
        live_obs: include observations in the live stream.
    """

    def __init__(
        self,
        env: Any,
        *,
        root: str | os.PathLike[str] | None = None,
        name: str | None = None,
        num_envs: int = 16,
        episode_length: int = 1000,
        action_repeat: int = 1,
        deterministic: bool = True,
        every: int = 1,
        info_keys: Sequence[str] = (),
        randomization_fn: Callable[..., Any] | None = None,
        normalize_observations: bool = False,
        network_factory: Callable[..., Any] | None = None,
        value: bool = True,
        store_params: Literal["policy", "all", "none"] = "policy",
        algorithm: str = "ppo",
        env_name: str | None = None,
        config: Mapping[str, Any] | None = None,
        tags: Sequence[str] = (),
        seed: int = 0,
        strict: bool = False,
        background_compile: bool = True,
        source: Literal["rollout", "eval"] = "rollout",
        live: int = 0,
        live_chunk_steps: int = 64,
        live_obs: bool = True,
        writer: RunWriter | None = None,
    ) -> None:
        self.env = env
        self.cfg = _rollout.RolloutConfig(
            num_envs=num_envs,
            num_steps=max(1, episode_length // action_repeat),
            action_repeat=action_repeat,
            deterministic=deterministic,
            info_keys=tuple(info_keys),
            randomization_fn=randomization_fn,
        )
        self.every = max(1, every)
        self.normalize_observations = normalize_observations
        self.network_factory = network_factory
        self.value = value
        self.store_params = store_params
        self.strict = strict
        self.seed = seed
        dt = float(getattr(env, "dt", 0.0)) * action_repeat or None
        self.writer = writer or RunWriter(
            root,
            name=name,
            model=_rollout.mj_model(env),
            env_name=env_name or _env_name(env),
            algorithm=algorithm,
            config={
                "trajscope": {
                    "num_envs": num_envs,
                    "episode_length": episode_length,
                    "action_repeat": action_repeat,
                    "deterministic": deterministic,
                    "info_keys": list(info_keys),
                    "randomization": randomization_fn is not None,
                },
                **dict(config or {}),
            },
            tags=tags,
            control_dt_s=dt,
            strict=strict,
        )
        self.captures_failed = 0
        self.checkpoints_seen = 0
        self.compiles = 0
        self.capture_seconds: list[float] = []
        self._rollouts: dict[int, Callable[..., Any]] = {}
        self._warned: set[str] = set()
        self._pending: dict[str, Any] | None = None
        self._pending_lock = threading.Lock()
        self._wrap_calls = 0
        self.background_compile = background_compile
        self.source = "eval" if algorithm == "sac" else source
        self.algorithm = algorithm
        self._pending_params: tuple[int, Any, Any] | None = None
        self._value_jit: Any = None
        self._compiling: threading.Thread | None = None
        self.live: LiveStream | None = None
        if live:
            self.live = LiveStream(
                self.writer,
                num_envs=int(live),
                chunk_steps=live_chunk_steps,
                info_keys=info_keys,
                obs=live_obs,
                control_dt_s=dt,
                strict=strict,
            )

    # ------------------------------------------------------------------ PPO

    def policy_params_fn(self, chain: Callable[..., None] | None = None) -> Callable[..., None]:
        """The hook for ``ppo.train(policy_params_fn=...)``; calls ``chain`` after capturing."""

        def hook(current_step: int, make_policy: Callable[..., Any], params: Any) -> None:
            if self.source == "eval":
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
        so training goes on meanwhile; later ones only dispatch the compiled rollout.
        """
        self.checkpoints_seen += 1
        if (self.checkpoints_seen - 1) % self.every:
            return False
        t0 = time.perf_counter()
        self._join_compile()
        key = jax.random.fold_in(jax.random.PRNGKey(self.seed), self.checkpoints_seen)
        args = (int(step), make_policy, _strong(params), key, params)
        background = (
            self.background_compile
            and not self.strict
            and id(make_policy) not in self._rollouts
            # Randomisation swaps the environment's model while tracing; so may training's
            # own randomisation wrapper, so the two must not trace at the same time.
            and self.cfg.randomization_fn is None
        )
        if background:
            self._compiling = threading.Thread(
                target=self._capture_now, args=args, name="trajscope-compile", daemon=True
            )
            self._compiling.start()
            ok = True
        else:
            ok = self._capture_now(*args)
        self.capture_seconds.append(time.perf_counter() - t0)
        return ok

    def _join_compile(self) -> None:
        if self._compiling is not None:
            self._compiling.join()
            self._compiling = None

    def _capture_now(
        self, step: int, make_policy: Callable[..., Any], strong: Any, key: jax.Array, params: Any
    ) -> bool:
        try:
            traj = self._rollout_for(make_policy)(strong, key)
            ok = self.writer.add_capture(
                step=int(step),
                kind="eval",
                deterministic=self.cfg.deterministic,
                params=_params_tree(params, self.store_params),
                **_state.drop_empty(traj),
            )
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
            value_fn = self._value_fn() if self.value else None
            fn = _rollout.make_rollout(self.env, make_policy, self.cfg, value_fn=value_fn)
            fn = _CountingJit(fn, self)
            self._rollouts = {id(make_policy): fn}  # one trainer at a time; drop old executables
        return fn

    def _value_fn(self) -> Callable[[Any, Any], jax.Array] | None:
        """The PPO value network, rebuilt as ``ppo.train`` builds it."""
        try:
            from brax.training.acme import running_statistics
            from brax.training.agents.ppo import networks as ppo_networks

            state = jax.eval_shape(self.env.reset, jax.random.PRNGKey(0))
            obs_shape = jax.tree_util.tree_map(lambda x: x.shape, state.obs)
            factory = self.network_factory or ppo_networks.make_ppo_networks

            def identity(x: Any, _: Any) -> Any:
                return x

            normalize: Any = running_statistics.normalize if self.normalize_observations else identity
            nets = factory(obs_shape, self.env.action_size, preprocess_observations_fn=normalize)
        except Exception as e:  # noqa: BLE001 - value is optional
            self._warn("value", f"trajscope: value predictions not captured: {type(e).__name__}: {e}")
            return None

        def value_fn(params: Any, obs: Any) -> jax.Array:
            v = nets.value_network.apply(params[0], params[2], obs)
            return v[0] if isinstance(v, tuple) else v

        return value_fn

    # ------------------------------------------------------------------ SAC

    def wrap_env_fn(self, base: Callable[..., Any] | None = None) -> Callable[..., Any]:
        """The hook for ``train(wrap_env_fn=...)`` of PPO and SAC.

        Wraps as ``base`` would (default: MuJoCo Playground's ``wrap_for_brax_training``
        for Playground environments, else ``brax.envs.training.wrap``). brax's trainers
        wrap the training environment first and the evaluation environment second: the
        first gets the live stream (``live``), the second the evaluation tap
        (``source="eval"``, and always for SAC).
        """

        def wrap(env: Any, **kwargs: Any) -> Any:
            fn = base or _default_wrap(env)
            wrapped = fn(env, **kwargs)
            self._wrap_calls += 1
            if self._wrap_calls == 1 and self.live is not None:
                return self.live.wrap(wrapped, action_repeat=int(kwargs.get("action_repeat", 1)))
            if self._wrap_calls == 2 and self.source == "eval":
                return EvalTap(wrapped, self)
            return wrapped

        return wrap

    def progress_fn(self, chain: Callable[[int, Any], None] | None = None) -> Callable[[int, Any], None]:
        """The hook for ``sac.train(progress_fn=...)``: writes the tapped evaluation."""

        def hook(step: int, metrics: Any) -> None:
            self._write_tapped(int(step))
            if chain is not None:
                chain(step, metrics)

        return hook

    def _write_tapped(self, step: int | None) -> None:
        """Write the evaluation episode the tap received, with the parameters of the
        checkpoint it evaluated when ``policy_params_fn`` saw them (PPO)."""
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
                extra["params"] = _params_tree(params, self.store_params)
                value_fn = self._tap_value_fn()
                if value_fn is not None and "obs" in pending:
                    extra["value"] = value_fn(_strong(params), pending["obs"])
            self.writer.add_capture(step=step, kind="eval", deterministic=self.cfg.deterministic, **pending, **extra)
        except Exception as e:
            if self.strict:
                raise
            self.captures_failed += 1
            self._warn("tap", f"trajscope: capture of brax's evaluation at step {step} failed: {type(e).__name__}: {e}")

    def _tap_value_fn(self) -> Callable[[Any, Any], Any] | None:
        if not self.value or self.algorithm != "ppo":
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
            self.live.close()
        self._join_compile()
        self._write_tapped(None)
        self.writer.close()

    def __enter__(self) -> BraxRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _warn(self, what: str, message: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            emit_warning(message, strict=self.strict)


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
    if type(env).__module__.startswith("mujoco_playground"):
        from mujoco_playground import wrapper

        return wrapper.wrap_for_brax_training
    from brax import envs

    return envs.training.wrap


class EvalTap:
    """Wraps brax's batched evaluation environment; keeps the first ``num_envs``
    environments' steps in a device buffer and sends it to the host once per episode.

    It sits outside brax's vmap, so the hand-off is one host callback per evaluation,
    not one per environment per step.
    """

    _T = "trajscope/t"
    _BUF = "trajscope/buf"

    def __init__(self, env: Any, rec: BraxRecorder) -> None:
        self.env = env
        self._rec = rec
        self._K = rec.cfg.num_envs
        self._steps = rec.cfg.num_steps

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)

    def _frame(self, state: Any, action: jax.Array, obs: Any) -> dict[str, Any]:
        rec = _state.extract(state, action=action, obs=obs, info_keys=self._rec.cfg.info_keys)
        return jax.tree_util.tree_map(lambda x: x[: self._K], rec)

    def reset(self, rng: jax.Array) -> Any:
        state = self.env.reset(rng)
        buf = _state.step_buffer(self.env, state, self._frame, self._steps)
        info = {**state.info, self._T: jnp.zeros((), jnp.int32), self._BUF: buf}
        return state.replace(info=info)

    def step(self, state: Any, action: jax.Array) -> Any:
        t = state.info[self._T]
        buf = state.info[self._BUF]
        inner = state.replace(info={k: v for k, v in state.info.items() if k not in (self._T, self._BUF)})
        nstate = self.env.step(inner, action)
        frame = _state.conform(self._frame(nstate, action, state.obs), buf)
        buf = jax.tree_util.tree_map(lambda b, x: b.at[jnp.minimum(t, self._steps - 1)].set(x), buf, frame)

        def send(b: Any) -> None:
            io_callback(self._rec._receive, None, b, ordered=False)

        jax.lax.cond(t == self._steps - 1, send, lambda b: None, buf)
        info = {**nstate.info, self._T: t + 1, self._BUF: buf}
        return nstate.replace(info=info)
