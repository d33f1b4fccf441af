"""Capture from MuJoCo environments stepped on the host, whatever trains the agent: needs
neither JAX nor brax, nor any agent library.

:class:`StepRecorder` takes batched arrays after each training step from any loop (mjlab's
PyTorch tensors included): the live stream and the NaN guard. :class:`GymRecorder` builds on
it for Gymnasium's MuJoCo environments and writes the same run format as the brax recorders, so the viewer, the
analyses, the video and HTML exports and the NaN finder work unchanged:

- ``capture(step, policy)``: evaluation episodes of a checkpoint's policy (any callable
  from a batch of observations to a batch of actions: a NumPy function, an SB3
  ``model.predict``, a CleanRL actor), in environments of its own, from the same starts
  at every checkpoint (seeds ``seed + i``), so checkpoints compare environment by
  environment. Reward terms of the environment's ``info`` (``reward_forward``,
  ``reward_ctrl``, ...) are stored as metrics ``reward/forward``, ... for the triage.
- ``wrap(vector_env)``: the live stream of the first ``live`` *training* environments of a
  Gymnasium vector environment that holds its environments in this process
  (``SyncVectorEnv``; SB3's ``DummyVecEnv`` through :meth:`GymRecorder.after_step`),
  switched on and off from the viewer, through the same host-side stream as brax's. Off,
  a step costs a counter. With ``nan_guard=N``, the last ``N`` steps of every training
  environment are kept and written as a capture of kind ``nan`` the first time one turns
  non-finite, or MuJoCo itself reports it unstable (MuJoCo then resets that simulation
  silently, and the episode goes on from its initial pose).

Nothing here raises into training: failures are counted and warned about once (``strict``
raises, for tests).
"""

from __future__ import annotations

import collections
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .. import store
from ..format import images
from ._host import Failures, LiveStream

UNSTABLE = ("mjWARN_BADQPOS", "mjWARN_BADQVEL", "mjWARN_BADQACC")
"""MuJoCo's warnings that it found the state unstable (it resets the simulation then)."""


def _physics(env: Any) -> tuple[Any, Any]:
    """``(model, data)`` of a Gymnasium MuJoCo environment; a clear error for others."""
    u = getattr(env, "unwrapped", env)
    model, data = getattr(u, "model", None), getattr(u, "data", None)
    import mujoco

    if not isinstance(model, mujoco.MjModel) or not isinstance(data, mujoco.MjData):
        raise TypeError(
            f"{type(u).__name__} is not a MuJoCo environment: its unwrapped environment has no mujoco "
            "MjModel .model and MjData .data (Gymnasium's MuJoCo environments have both)"
        )
    return model, data


def _state(data: Any, model: Any) -> dict[str, np.ndarray]:
    """The physics state of one environment, as the format names it (copies)."""
    out = {"qpos": data.qpos.copy(), "qvel": data.qvel.copy()}
    if model.na:
        out["act"] = data.act.copy()
    if model.nmocap:
        out["mocap_pos"] = data.mocap_pos.copy()
        out["mocap_quat"] = data.mocap_quat.copy()
    return out


def _unstable(data: Any) -> int:
    """How many times MuJoCo has warned that this simulation's state was unstable."""
    return sum(int(data.warning[i].number) for i in _unstable_index())


@functools.cache
def _unstable_index() -> tuple[int, ...]:
    import mujoco

    return tuple(int(getattr(mujoco.mjtWarning, w)) for w in UNSTABLE)


def metric_name(key: str) -> str:
    """The metric a Gymnasium ``info`` entry is stored as: ``reward_forward`` becomes
    ``reward/forward`` (a reward term), other names stay."""
    return f"reward/{key[len('reward_') :]}" if key.startswith("reward_") and len(key) > 7 else key


def _scalars(info: Mapping[str, Any]) -> dict[str, float]:
    """The finite-or-not numeric scalars of one environment's ``info``."""
    out = {}
    for k, v in info.items():
        if isinstance(v, (bool, np.bool_)) or not isinstance(k, str) or k.startswith("_"):
            continue
        if isinstance(v, (int, float, np.integer, np.floating)) or (isinstance(v, np.ndarray) and v.shape == ()):
            out[metric_name(k)] = float(v)
    return out


def _stack(frames: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Frames of dicts of arrays (or dicts of them) stacked along a new leading axis."""
    out: dict[str, Any] = {}
    for k, v in frames[0].items():
        if isinstance(v, Mapping):
            out[k] = _stack([f[k] for f in frames])
        else:
            out[k] = np.stack([np.asarray(f[k]) for f in frames])
    return out


def _numpy(x: Any) -> np.ndarray:
    """A copy on the host (a PyTorch tensor detached and moved to the CPU first): loops step
    their environments in place, so a view would change under the recorder."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu()
    return np.array(x, copy=True)


def _rows(x: Any, idx: Any) -> Any:
    """Rows ``idx`` of an array or of each array of a dict (observations may be dicts)."""
    if isinstance(x, Mapping):
        return {k: _rows(v, idx) for k, v in x.items()}
    return _numpy(x[idx] if hasattr(x, "detach") else np.asarray(x)[idx])


class StepRecorder:
    """The training steps of batched MuJoCo environments stepped by any loop on the host
    (Gymnasium, mjlab on PyTorch, your own): the live stream of the first ``live``
    environments and the NaN guard, into a trajscope run. Call :meth:`record_step` after
    every step with that step's batched arrays (NumPy, or anything ``np.asarray`` takes;
    PyTorch tensors are moved to the CPU, only the rows needed). Switched off, a step costs
    a counter; the live stream's switch, lease and rate are the viewer's, as for brax.

    Args:
        model: the ``mujoco.MjModel`` the environments simulate.
        root, name, writer: where the run goes (as :class:`trajscope.RunWriter`), or a
            writer to use.
        control_dt_s: seconds per environment step.
        live: training environments streamed (0: no live stream).
        live_chunk_steps: consecutive training steps per live chunk.
        live_obs: stream observations too.
        nan_guard: training steps kept per environment and written as a capture of kind
            ``nan`` when one turns non-finite or MuJoCo reports it unstable (0: off; it
            copies every environment's state each step: meant for a few CPU environments).
        env_name, algorithm, config, tags: recorded in ``run.json``.
        source: the loop, recorded as the captures' ``attrs["loop"]`` and ``run.json``'s
            ``config.trajscope.loop``.
        strict: raise instead of warning (tests).
    """

    def __init__(
        self,
        model: Any,
        *,
        root: Any = None,
        name: str | None = None,
        writer: store.RunWriter | None = None,
        control_dt_s: float | None = None,
        live: int = 0,
        live_chunk_steps: int = 64,
        live_obs: bool = True,
        nan_guard: int = 0,
        env_name: str | None = None,
        algorithm: str | None = None,
        config: Mapping[str, Any] | None = None,
        tags: Sequence[str] = (),
        source: str = "host",
        strict: bool = False,
    ) -> None:
        if live < 0 or nan_guard < 0 or (nan_guard and nan_guard < 2):
            raise ValueError("live must be >= 0 and nan_guard 0 or >= 2")
        self.model = model
        self.source = source
        self.strict = strict
        conf = dict(config or {})
        conf.setdefault("trajscope", {"loop": source, "live": int(live), "nan_guard": int(nan_guard)})
        self.writer = writer or store.RunWriter(
            root,
            name=name,
            model=model,
            env_name=env_name,
            algorithm=algorithm,
            config=conf,
            tags=tags,
            control_dt_s=control_dt_s,
            strict=strict,
        )
        self._fail = Failures(strict=strict)
        self.live: LiveStream | None = None
        if live:
            self.live = LiveStream(
                self.writer, num_envs=live, chunk_steps=live_chunk_steps, obs=live_obs, strict=strict
            )
        self.nan_guard = int(nan_guard)
        self.tripped: dict[str, Any] | None = None
        """What the NaN guard caught: ``{"step", "envs", "field", "t"}``, or None."""
        self._ring: collections.deque[dict[str, Any]] = collections.deque(maxlen=max(self.nan_guard, 1))
        self._warnings: np.ndarray | None = None
        self._chunk: list[dict[str, Any]] = []
        self._recording = False
        self._steps = 0

    def record_step(
        self,
        actions: Any,
        rewards: Any,
        dones: Any,
        *,
        qpos: Any,
        qvel: Any = None,
        act: Any = None,
        mocap_pos: Any = None,
        mocap_quat: Any = None,
        obs: Any = None,
        infos: Mapping[str, Any] | None = None,
    ) -> None:
        """One step of all ``E`` training environments: ``actions (E, nu)``, ``rewards``
        and ``dones (E,)``, the physics state after the step (``qpos (E, nq)``, ``qvel``,
        ``act``, mocap poses) and optionally ``obs`` (an array or a dict of them) and
        ``infos`` (name to ``(E,)``: stored as metrics; ``reward_x`` as ``reward/x``).
        Never raises (unless ``strict``)."""
        given = {"qpos": qpos, "qvel": qvel, "act": act, "mocap_pos": mocap_pos, "mocap_quat": mocap_quat}

        def state(rows: slice) -> dict[str, np.ndarray]:
            return {k: _numpy(v[rows]) for k, v in given.items() if v is not None}

        self._record(len(rewards), actions, rewards, dones, obs, infos, state, None)

    def _record(
        self, n: int, actions: Any, rewards: Any, dones: Any, obs: Any, infos: Any, state: Any, unstable: Any
    ) -> None:
        try:
            self._steps += 1
            guard = bool(self.nan_guard) and self.tripped is None
            if guard:  # the guard reads every environment's state: the stream slices it
                whole = state(slice(n))
                state = lambda rows: {k: v[rows].copy() for k, v in whole.items()}  # noqa: E731
            if self.live is not None:
                self._live_step(n, actions, rewards, dones, obs, infos, state)
            if guard:
                self._guard_step(n, actions, rewards, dones, obs, state, unstable)
        except Exception as e:  # noqa: BLE001 - never into training (raised when strict)
            self._fail.failed("step", f"trajscope: training-step capture failed: {type(e).__name__}: {e}", e)

    def _live_step(self, n: int, actions: Any, rewards: Any, dones: Any, obs: Any, infos: Any, state: Any) -> None:
        live = self.live
        assert live is not None
        C, K = live.chunk_steps, min(live.num_envs, n)
        if self._steps == 1:  # ask at once whether to record the first chunk
            self._recording = bool(live._tick(None, 0, 0, n))
        if self._recording:
            f = self._frame(state(slice(K)), actions, rewards, dones, K)
            if obs is not None and live.obs:
                f["obs"] = _rows(obs, slice(K))
            if isinstance(infos, Mapping):
                arrays = {k: np.asarray(v) for k, v in infos.items() if not k.startswith("_")}
                metrics = {
                    metric_name(k): a[:K].astype(np.float32)
                    for k, a in arrays.items()
                    if a.shape == (n,) and a.dtype.kind in "fiu"
                }
                if metrics:
                    f["metrics"] = metrics
            self._chunk.append(f)
        if self._steps % C == 0:
            full = self._recording and len(self._chunk) == C
            buf = _conform(self._chunk) if full else None
            self._chunk = []
            self._recording = bool(live._tick(buf, int(full), self._steps, n))

    @staticmethod
    def _frame(state: dict[str, np.ndarray], actions: Any, rewards: Any, dones: Any, k: int) -> dict[str, Any]:
        """One step of the first ``k`` environments, as the format names its arrays."""
        f: dict[str, Any] = dict(state)
        f["action"] = _rows(actions, slice(k)).astype(np.float32).reshape(k, -1)
        f["reward"] = _rows(rewards, slice(k)).astype(np.float32).reshape(k)
        f["done"] = _rows(dones, slice(k)).astype(bool).reshape(k)
        return f

    def _guard_step(self, n: int, actions: Any, rewards: Any, dones: Any, obs: Any, state: Any, unstable: Any) -> None:
        f = self._frame(state(slice(n)), actions, rewards, dones, n)
        if obs is not None:
            f["obs"] = _rows(obs, slice(None))
        self._ring.append(f)
        counts = np.asarray(unstable() if unstable is not None else np.zeros(n, int))
        if self._warnings is None or len(self._warnings) != len(counts):
            self._warnings = np.zeros_like(counts)
        bad = counts > self._warnings  # MuJoCo warned since the last step
        self._warnings = counts
        field = "?"
        for name, leaf in images.flatten(f).items():
            a = np.asarray(leaf)
            if a.dtype.kind == "f":
                nonfinite = ~np.isfinite(a.reshape(n, -1)).all(axis=1)
                if nonfinite.any() and field == "?":
                    field = name
                bad |= nonfinite
        if not bad.any():
            return
        if field == "?":
            field = "mujoco: unstable simulation (" + "/".join(w.removeprefix("mjWARN_") for w in UNSTABLE) + ")"
        idx = np.flatnonzero(bad)[:8]
        frames = list(self._ring)
        arrays = _conform([{k: _rows(v, idx) for k, v in fr.items()} for fr in frames])
        step = self._steps * n
        self.tripped = {"step": step, "envs": idx.tolist(), "field": field, "t": len(frames) - 1, "time": time.time()}
        self.writer.add_capture(
            step=step,
            kind="nan",
            deterministic=False,
            attrs={
                "training_envs": idx.tolist(),
                "first_nonfinite_field": field,
                "source": "train",
                "loop": self.source,
            },
            **arrays,
        )

    @property
    def failures(self) -> int:
        """Captures and steps that failed (counted, warned about once)."""
        return self._fail.count + (self.live.failures if self.live is not None else 0)

    @property
    def stats(self) -> Any:
        return self.writer.stats

    def close(self) -> None:
        """Report the live stream finished and write what is queued."""
        if self.live is not None:
            self.live.close()
        self.writer.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class GymRecorder(StepRecorder):
    """Captures a Gymnasium MuJoCo environment into a trajscope run.

    Args:
        env: a Gymnasium id (``"HalfCheetah-v5"``), a function making a new environment,
            or an environment made by ``gymnasium.make`` (made again from its spec).
            Evaluation episodes run in environments of the recorder's own.
        root, name, writer: where the run goes (as :class:`trajscope.RunWriter`), or a
            writer to use.
        num_envs: evaluation episodes per checkpoint (run side by side).
        episode_length: the most steps of an evaluation episode (it also ends when the
            environment terminates or truncates it).
        seed: evaluation episode ``i`` is reset with seed ``seed + i`` at every checkpoint.
        deterministic: recorded: whether the policy given to :meth:`capture` acts
            deterministically (SB3: ``predict(obs, deterministic=True)``).
        live: training environments streamed by :meth:`wrap` (0: no live stream).
        live_chunk_steps: consecutive training steps per live chunk.
        live_obs: stream observations too.
        nan_guard: training steps kept per environment by :meth:`wrap` and written when one
            turns non-finite or MuJoCo reports it unstable (0: off).
        discounting, reward_scaling: the training's, for the value figures (as brax's).
        algorithm, config, tags, env_name: recorded in ``run.json``.
        make_kwargs: keyword arguments for ``gymnasium.make`` when ``env`` is an id.
        strict: raise instead of warning (tests).
    """

    def __init__(
        self,
        env: str | Callable[[], Any] | Any,
        *,
        root: Any = None,
        name: str | None = None,
        writer: store.RunWriter | None = None,
        num_envs: int = 8,
        episode_length: int = 1000,
        seed: int = 0,
        deterministic: bool = True,
        live: int = 0,
        live_chunk_steps: int = 64,
        live_obs: bool = True,
        nan_guard: int = 0,
        discounting: float | None = None,
        reward_scaling: float = 1.0,
        algorithm: str | None = None,
        config: Mapping[str, Any] | None = None,
        tags: Sequence[str] = (),
        env_name: str | None = None,
        make_kwargs: Mapping[str, Any] | None = None,
        strict: bool = False,
    ) -> None:
        if num_envs < 1 or episode_length < 1:
            raise ValueError("num_envs and episode_length must be >= 1")
        self._make = self._maker(env, dict(make_kwargs or {}))
        probe = self._make()
        model, _ = _physics(probe)
        self.dt = float(getattr(probe.unwrapped, "dt", model.opt.timestep))
        spec = getattr(probe, "spec", None)
        self.env_name = env_name or (spec.id if spec is not None else type(probe.unwrapped).__name__)
        self._eval_envs: list[Any] = [probe]
        self.num_envs = int(num_envs)
        self.episode_length = int(episode_length)
        self.seed = int(seed)
        self.deterministic = bool(deterministic)
        self.captures = 0
        recorded = {
            "loop": "gymnasium",
            "source": "rollout",
            "num_envs": self.num_envs,
            "episode_length": self.episode_length,
            "seed": self.seed,
            "deterministic": self.deterministic,
            "reward_scaling": float(reward_scaling),
            "discounting": discounting,
            "live": int(live),
            "nan_guard": int(nan_guard),
        }
        super().__init__(
            model,
            root=root,
            name=name,
            writer=writer,
            control_dt_s=self.dt,
            live=live,
            live_chunk_steps=live_chunk_steps,
            live_obs=live_obs,
            nan_guard=nan_guard,
            env_name=self.env_name,
            algorithm=algorithm,
            config={"trajscope": recorded, **dict(config or {})},
            tags=tags,
            source="gymnasium",
            strict=strict,
        )

    @staticmethod
    def _maker(env: Any, make_kwargs: dict[str, Any]) -> Callable[[], Any]:
        if isinstance(env, str):
            import gymnasium

            return lambda: gymnasium.make(env, **make_kwargs)
        if callable(env) and not hasattr(env, "step"):
            return env
        spec = getattr(env, "spec", None)
        if spec is None:
            raise TypeError("give a Gymnasium id, a function making the environment, or an env made by gymnasium.make")
        import gymnasium

        return lambda: gymnasium.make(spec, **make_kwargs)

    # ------------------------------------------------------------------ evaluation

    def capture(
        self,
        step: int,
        policy: Callable[[Any], Any],
        *,
        value_fn: Callable[[Any], Any] | None = None,
        params: Any = None,
    ) -> bool:
        """Run ``num_envs`` evaluation episodes of ``policy`` (a batch of observations,
        ``(E, ...)`` or a dict of them, to a batch of actions ``(E, nu)``) and queue them as
        the capture of checkpoint ``step``. ``value_fn`` (observations to ``(E,)``) adds the
        critic's predictions for the value figures; ``params`` (a dict of arrays) is stored
        with the capture. Returns whether it was queued; never raises (unless ``strict``)."""
        try:
            arrays, attrs = self._episodes(policy, value_fn)
            ok = self.writer.add_capture(
                step=int(step),
                kind="eval",
                reset_frame=True,
                deterministic=self.deterministic,
                params=params,
                attrs={"source": "rollout", "loop": "gymnasium", **attrs},
                **arrays,
            )
        except Exception as e:  # noqa: BLE001 - never into training (raised when strict)
            self._fail.failed("capture", f"trajscope: evaluation capture failed: {type(e).__name__}: {e}", e)
            return False
        self.captures += int(ok)
        return ok

    def _episodes(self, policy: Callable[[Any], Any], value_fn: Callable[[Any], Any] | None) -> tuple[dict, dict]:
        E, T = self.num_envs, self.episode_length
        while len(self._eval_envs) < E:
            self._eval_envs.append(self._make())
        envs = self._eval_envs[:E]
        physics = [_physics(e) for e in envs]
        obs_list, infos = zip(*(e.reset(seed=self.seed + i) for i, e in enumerate(envs)))
        obs = _batch(obs_list)
        alive = np.ones(E, bool)
        ended = np.full(E, -1)
        nu = self.model.nu

        def frame(obs: Any, action: np.ndarray, reward: np.ndarray, done: np.ndarray, extra: Sequence[Any]) -> dict:
            states = [_state(d, m) for m, d in physics]
            f: dict[str, Any] = {k: np.stack([s[k] for s in states]) for k in states[0]}
            f.update(obs=obs, action=action, reward=reward, done=done, metrics=extra)
            if value_fn is not None:
                f["value"] = np.asarray(value_fn(obs), np.float32).reshape(E)
            return f

        frames = [frame(obs, np.zeros((E, nu), np.float32), np.zeros(E, np.float32), np.zeros(E, bool), infos)]
        truncated = [np.zeros(E, bool)]
        for t in range(T):
            action = np.asarray(policy(obs), np.float32)
            if action.shape != (E, nu):
                raise ValueError(f"the policy returned actions of shape {action.shape}, not (num_envs, nu) = {(E, nu)}")
            reward = np.zeros(E, np.float32)
            done = ~alive
            trunc = np.zeros(E, bool)
            step_infos: list[dict] = [{} for _ in range(E)]
            new_obs = list(_unbatch(obs, E))
            for i, env in enumerate(envs):
                if not alive[i]:
                    continue
                o, r, term, tr, info = env.step(action[i])
                new_obs[i], reward[i], step_infos[i] = o, float(r), info
                if term or tr:
                    alive[i], done[i], trunc[i], ended[i] = False, True, bool(tr and not term), t + 1
            applied = np.where((done & (ended != t + 1))[:, None], 0.0, action).astype(np.float32)
            obs = _batch(new_obs)
            frames.append(frame(obs, applied, reward, done, step_infos))
            truncated.append(trunc)
            if not alive.any():
                break
        ended[ended < 0] = len(frames) - 1
        arrays: dict[str, Any] = {k: np.stack([f[k] for f in frames]) for k in frames[0] if k not in ("obs", "metrics")}
        arrays["obs"] = _stack([{"o": f["obs"]} for f in frames])["o"]
        arrays["metrics"] = _metrics([f["metrics"] for f in frames], E)
        arrays["info"] = {"truncated": np.stack(truncated)}
        return arrays, {"episode_steps": ended.tolist(), "seeds": [self.seed + i for i in range(E)]}

    # ------------------------------------------------------------------ training environments

    def wrap(self, vector_env: Any) -> Any:
        """A Gymnasium vector environment that streams its first ``live`` environments and
        keeps the NaN guard's steps. Its environments must live in this process
        (``SyncVectorEnv``, whose ``envs`` holds them)."""
        envs = getattr(vector_env, "envs", None)
        if envs is None:
            raise TypeError(
                f"{type(vector_env).__name__} keeps its environments in other processes: use "
                "gymnasium.vector.SyncVectorEnv (or call after_step with environments of this process)"
            )
        for e in envs[:1]:
            _physics(e)
        import gymnasium

        recorder = self

        class Recorded(gymnasium.vector.VectorWrapper):
            """The wrapped vector environment, its steps seen by the recorder."""

            def step(self, actions: Any) -> Any:
                out = self.env.step(actions)
                obs, reward, terminated, truncated, infos = out
                recorder.after_step(envs, actions, reward, np.logical_or(terminated, truncated), obs=obs, infos=infos)
                return out

        return Recorded(vector_env)

    def after_step(
        self,
        envs: Sequence[Any],
        actions: Any,
        rewards: Any,
        dones: Any,
        *,
        obs: Any = None,
        infos: Any = None,
    ) -> None:
        """Called after each step of the training environments ``envs`` (all of them, in
        order) with what that step took and gave. :meth:`wrap` calls it; call it yourself
        for vector environments of other libraries (SB3's ``DummyVecEnv``: its ``envs``,
        ``actions``, ``rewards``, ``dones`` and ``obs``). Never raises (unless ``strict``)."""
        model = self.model

        def state(rows: slice) -> dict[str, np.ndarray]:
            states = [_state(getattr(e, "unwrapped", e).data, model) for e in envs[rows]]
            return {k: np.stack([s[k] for s in states]) for k in states[0]}

        def unstable() -> np.ndarray:
            return np.array([_unstable(getattr(e, "unwrapped", e).data) for e in envs])

        self._record(len(envs), actions, rewards, dones, obs, infos, state, unstable)

    def close(self) -> None:
        """Report the live stream finished, write what is queued, close the evaluation envs."""
        super().close()
        for e in self._eval_envs:
            try:
                e.close()
            except Exception:  # noqa: BLE001 - closing a viewer-less env
                pass


def _batch(items: Sequence[Any]) -> Any:
    """One observation per environment, batched (dict observations per key)."""
    if isinstance(items[0], Mapping):
        return {k: _batch([it[k] for it in items]) for k in items[0]}
    return np.stack([np.asarray(it) for it in items])


def _unbatch(obs: Any, n: int) -> list[Any]:
    if isinstance(obs, Mapping):
        parts = {k: _unbatch(v, n) for k, v in obs.items()}
        return [{k: parts[k][i] for k in parts} for i in range(n)]
    return [obs[i] for i in range(n)]


def _metrics(per_frame: Sequence[Sequence[Mapping[str, Any]]], E: int) -> dict[str, np.ndarray]:
    """``(T, E)`` metrics from each frame's per-environment ``info``: reward terms are 0
    where a frame has none (the reset frame, an ended episode), other entries hold their
    last value."""
    scalars = [[_scalars(info) for info in frame] for frame in per_frame]
    names = sorted({k for frame in scalars for s in frame for k in s})
    out = {}
    for name in names:
        a = np.zeros((len(scalars), E), np.float32)
        for e in range(E):
            last = next((frame[e][name] for frame in scalars if name in frame[e]), 0.0)
            for t, frame in enumerate(scalars):
                if name in frame[e]:
                    last = frame[e][name]
                    a[t, e] = last
                elif not name.startswith("reward/"):
                    a[t, e] = last
        out[name] = a
    return out


def _conform(frames: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Frames stacked; metrics only those every frame has (a vector env's infos vary)."""
    common = None
    for f in frames:
        keys = set(f.get("metrics", {}))
        common = keys if common is None else common & keys
    trimmed = []
    for f in frames:
        g = dict(f)
        if "metrics" in g:
            g["metrics"] = {k: v for k, v in g["metrics"].items() if k in (common or set())}
            if not g["metrics"]:
                del g["metrics"]
        trimmed.append(g)
    return _stack(trimmed)
