"""A checkpoint's policy run forward on the host from a captured state.

The environment is the user's own (a MuJoCo Playground or brax environment object, as
trained; ``impl='jax'`` on CPU): nothing from the run directory is imported or run. The run
gives the state to start from (a captured frame: ``qpos``, ``qvel``, ``act``, mocap poses,
the environment's randomised model fields, the captured ``state.info`` entries and the
observation), and the policy (a capture's stored ``params`` around the networks that
``run.json``'s ``network`` describes, rebuilt by :func:`trajscope.analyse.load_policy`).

The environment's own ``step`` advances it, jitted once, with the same physics (MJX, or
brax's pipeline) as the captured rollout; so the stored deterministic policy played from a
captured frame reproduces the captured frames that follow (tested). Needs JAX and brax.
"""

from __future__ import annotations

import dataclasses
import threading
import weakref
from typing import Any

import numpy as np

from .. import analyse, sim, store
from ..sim import perturbable as perturbable


class PlayUnavailable(ValueError):
    """This capture cannot be played: the reason is the message."""


@dataclasses.dataclass
class Frame:
    """One step of play: the state after it and what led to it."""

    t: int
    """Steps played since the start (0: the captured state)."""
    qpos: np.ndarray
    qvel: np.ndarray
    action: np.ndarray
    reward: float
    done: bool
    obs: Any
    mocap_pos: np.ndarray | None = None
    mocap_quat: np.ndarray | None = None
    finite: bool = True


class Player:
    """Plays a run's policies in one environment from captured states.

    Args:
        run: an open run (:func:`trajscope.open_run`).
        env: the environment the run was trained on, unwrapped and unbatched, as passed to
            ``train`` (for MuJoCo Playground, loaded with ``impl='jax'`` on CPU).

    ``start(capture, env_index, t)`` restores a captured frame; ``use_policy(capture)``
    loads a checkpoint's policy (again at any time: the next step uses it; the networks are
    compiled once per run); ``step()`` advances one control step; ``push(body, force)``
    applies a force to a body (MuJoCo's ``xfrc_applied``) until ``push`` is called again;
    ``set_info(key, value)`` edits a ``state.info`` entry (a command input);
    ``reset()`` goes back to the captured state. Thread-safe.
    """

    def __init__(self, run: store.Run, env: Any) -> None:
        import jax

        self.run = run
        self.env = env
        self._jax = jax
        self._lock = threading.RLock()
        self._apply: Any = None
        self._params: Any = None
        self.policy_capture: store.CaptureInfo | None = None
        self._start: Any = None
        self._start_at: tuple[str, int, int] | None = None
        self.state: Any = None
        self.t = 0
        self.xfrc: np.ndarray | None = None
        try:
            self._model_attr, self._base_model = sim.base_model(env)
        except TypeError as e:
            raise PlayUnavailable(str(e)) from None
        self._model = self._base_model
        self._step, self._reset = _compiled(env, self._model_attr)

    # ------------------------------------------------------------------ policy

    def use_policy(self, capture: store.CaptureInfo | int | str) -> store.CaptureInfo:
        """Act with the policy of the checkpoint this capture evaluated (hot swap)."""
        cap = self.run.capture(capture)
        policy = analyse.capture_policy(self.run, cap)
        jax = self._jax
        with self._lock:
            if self._apply is None:
                # One compiled forward pass for the whole run: every capture's parameters
                # fit the one network run.json describes; swapping them recompiles nothing.
                self._apply = jax.jit(policy.apply)
            self._params = policy.params
            self.policy_capture = cap.info
        return cap.info

    def action(self, obs: Any) -> np.ndarray:
        """The deterministic action of the current policy for one observation."""
        jax = self._jax
        with self._lock:
            if self._apply is None:
                raise PlayUnavailable("no policy loaded: call use_policy(capture) first")
            batched = jax.tree_util.tree_map(lambda x: np.asarray(x, np.float32)[None], obs)
            return np.asarray(self._apply(self._params, batched))[0]

    # ------------------------------------------------------------------ state

    def start(self, capture: store.CaptureInfo | int | str, env_index: int = 0, t: int = 0) -> Frame:
        """Restore frame ``t`` of environment ``env_index`` of a capture."""
        jax = self._jax
        import jax.numpy as jnp

        cap = self.run.capture(capture)
        info = cap.info
        if not 0 <= env_index < info.num_envs:
            raise PlayUnavailable(f"env {env_index} out of range: the capture has {info.num_envs}")
        if not 0 <= t < info.num_steps:
            raise PlayUnavailable(f"step {t} out of range: the capture has {info.num_steps}")
        qpos = cap.load("qpos", env=env_index)[t]
        qvel = cap.load("qvel", env=env_index)[t] if "qvel" in cap.names("") else None
        if qvel is None:
            raise PlayUnavailable("this capture stores no qvel: a state cannot be restored from positions alone")
        if not (np.isfinite(qpos).all() and np.isfinite(qvel).all()):
            raise PlayUnavailable(f"the state at step {t} is not finite: start from an earlier step")
        obs = cap.obs(env=env_index)
        if obs is None:
            raise PlayUnavailable("this capture stores no observations: the policy has nothing to act on")
        obs_t = jax.tree_util.tree_map(lambda x: np.asarray(x[t]), obs)
        fields = cap.group("model_fields", env=env_index)
        extra = {n: cap.load(n, env=env_index)[t] for n in ("act", "mocap_pos", "mocap_quat") if n in cap.names("")}
        info_vals = {k: v[t] for k, v in cap.group("info", env=env_index).items()}
        with self._lock:
            try:
                self._model = sim.with_fields(self._base_model, fields)
                state = self._reset(self._model, jax.random.PRNGKey(0))
                state = sim.restore(self.env, self._model, state, qpos, qvel, extra)
            except (KeyError, sim.StateError) as e:
                raise PlayUnavailable(str(e).strip("'\"")) from None
            new_info = dict(state.info)
            for k, v in info_vals.items():
                if k in new_info:
                    new_info[k] = jnp.asarray(v, dtype=jnp.asarray(new_info[k]).dtype).reshape(jnp.shape(new_info[k]))
            state = state.replace(
                obs=jax.tree_util.tree_map(jnp.asarray, obs_t),
                info=new_info,
                reward=jnp.zeros_like(state.reward),
                done=jnp.zeros_like(state.done),
            )
            self._start = state
            self._start_at = (info.id, env_index, t)
            self.state = state
            self.t = 0
            self.xfrc = None
            return self._frame(state, np.zeros(int(self.env.action_size), np.float32))

    def reset(self) -> Frame:
        """Back to the captured state play started from."""
        with self._lock:
            if self._start is None:
                raise PlayUnavailable("nothing started: call start(capture, env, t) first")
            self.state, self.t, self.xfrc = self._start, 0, None
            return self._frame(self.state, np.zeros(int(self.env.action_size), np.float32))

    @property
    def started_from(self) -> tuple[str, int, int] | None:
        """``(capture id, env, step)`` play started from."""
        return self._start_at

    def qpos(self) -> np.ndarray:
        """Positions of the current state."""
        from ..sim import physics, physics_qpos

        with self._lock:
            if self.state is None:
                raise PlayUnavailable("nothing started")
            return np.asarray(physics_qpos(physics(self.state)))

    def push(self, body: int | None, force: Any = (0.0, 0.0, 0.0), torque: Any = (0.0, 0.0, 0.0)) -> None:
        """Apply ``force`` (N, world frame, at the body's centre of mass) and ``torque`` to
        ``body`` at every step from now on, as MuJoCo's viewer does when one drags a body;
        ``push(None)`` lets go."""
        with self._lock:
            if body is None:
                self.xfrc = None
                return
            nbody = int(self._base_model.nbody)
            if not 0 < int(body) < nbody:
                raise ValueError(f"body {body} out of range 1..{nbody - 1} (0 is the world)")
            x = np.zeros((nbody, 6), np.float32)
            x[int(body), :3] = np.asarray(force, np.float32)
            x[int(body), 3:] = np.asarray(torque, np.float32)
            self.xfrc = x

    def set_info(self, key: str, value: Any) -> None:
        """Set ``state.info[key]`` (e.g. a velocity command) for the next steps."""
        import jax.numpy as jnp

        with self._lock:
            if self.state is None:
                raise PlayUnavailable("nothing started")
            if key not in self.state.info:
                raise KeyError(f"state.info has no {key!r}; it has {sorted(self.state.info)}")
            old = jnp.asarray(self.state.info[key])
            new = jnp.asarray(np.asarray(value, dtype=old.dtype).reshape(old.shape))
            self.state = self.state.replace(info={**self.state.info, key: new})

    def step(self) -> Frame:
        """One control step of the current policy from the current state."""
        import jax.numpy as jnp

        with self._lock:
            if self.state is None:
                raise PlayUnavailable("nothing started: call start(capture, env, t) first")
            action = self.action(self.state.obs)
            xfrc = None if self.xfrc is None else jnp.asarray(self.xfrc)
            self.state = self._step(self._model, self.state, jnp.asarray(action), xfrc)
            self.t += 1
            return self._frame(self.state, action)

    def frame(self) -> Frame:
        """The current state as a frame, without stepping (the action: zeros)."""
        with self._lock:
            if self.state is None:
                raise PlayUnavailable("nothing started")
            return self._frame(self.state, np.zeros(int(self.env.action_size), np.float32))

    def _frame(self, state: Any, action: np.ndarray) -> Frame:
        from ..sim import physics, physics_qpos, physics_qvel

        d = physics(state)
        qpos = np.asarray(physics_qpos(d))
        qvel = np.asarray(physics_qvel(d))
        mp = getattr(d, "mocap_pos", None)
        mq = getattr(d, "mocap_quat", None)
        return Frame(
            t=self.t,
            qpos=qpos,
            qvel=qvel,
            action=np.asarray(action),
            reward=float(np.asarray(state.reward)),
            done=bool(np.asarray(state.done)),
            obs=self._jax.tree_util.tree_map(np.asarray, state.obs),
            mocap_pos=None if mp is None else np.asarray(mp),
            mocap_quat=None if mq is None else np.asarray(mq),
            finite=bool(np.isfinite(qpos).all() and np.isfinite(qvel).all()),
        )


IMPLS = ("jax", "warp")
"""MuJoCo Playground's MJX implementations a play environment can be loaded with."""


def _parse(spec: str) -> tuple[str, str, str | None]:
    """``(kind, name, impl)`` of ``playground:NAME[@IMPL]`` or ``brax:NAME``."""
    kind, _, rest = spec.partition(":")
    name, at, impl = rest.partition("@")
    return kind, name, (impl if at else None)


def trained_impl(metadata: Any) -> str | None:
    """The MJX implementation a run's environment was trained with, as its recorder wrote
    it in ``run.json`` (``config.trajscope.impl``; None when not recorded or not valid)."""
    try:
        impl = metadata["config"]["trajscope"]["impl"]
    except (KeyError, TypeError):
        return None
    return impl if impl in IMPLS else None


def check_env(spec: str) -> str | None:
    """What is wrong with a ``--play-env`` spec (None when it names an environment that
    exists); checked before serving, so a typo fails at start, not at the first click."""
    kind, name, impl = _parse(spec)
    if kind not in ("playground", "brax") or not name:
        return f"play environment {spec!r}: use playground:NAME[@jax|@warp] or brax:NAME"
    if impl is not None and (kind != "playground" or impl not in IMPLS):
        return f"play environment {spec!r}: @{impl} is not an implementation; use playground:NAME@jax or @warp"
    try:
        if kind == "playground":
            from mujoco_playground import registry

            known = list(registry.ALL_ENVS)
        else:
            from brax import envs

            known = list(envs._envs)
    except ImportError as e:
        return f"play environment {spec!r} needs {kind} ({e.name or e}): install the jax and playground extras"
    if name not in known:
        import difflib

        close = difflib.get_close_matches(name, known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f" (known: {', '.join(sorted(known)[:12])}, ...)"
        return f"play environment {spec!r}: {kind} has no environment {name!r}{hint}"
    return None


def load_env(spec: str, *, impl: str | None = None) -> Any:
    """An environment from ``playground:NAME[@IMPL]`` (MuJoCo Playground) or ``brax:NAME``
    (``brax.envs.get_environment``). A Playground environment is loaded with the
    implementation the spec names, else ``impl`` (the one the run was trained with, see
    :func:`trained_impl`), else ``"jax"``. Play steps one environment: MuJoCo Warp on its CPU
    device plays a DM Control task in real time too."""
    problem = check_env(spec) if "@" in spec else None
    if problem:
        raise ValueError(problem)
    kind, name, asked = _parse(spec)
    if not name:
        raise ValueError(f"play environment {spec!r}: use playground:NAME or brax:NAME")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "playground":
            from mujoco_playground import registry

            return registry.load(name, config_overrides={"impl": asked or impl or "jax"})
        if kind == "brax":
            from brax import envs

            return envs.get_environment(name)
    raise ValueError(f"play environment {spec!r}: unknown kind {kind!r} (playground or brax)")


_COMPILED: weakref.WeakKeyDictionary[Any, tuple[str, Any, Any]] = weakref.WeakKeyDictionary()
"""Per environment object: its jitted step and reset, shared by every player of it (a new
player, or a viewer's Play panel opened again, compiles nothing again)."""
_COMPILED_LOCK = threading.Lock()


def _compiled(env: Any, attr: str) -> tuple[Any, Any]:
    """The jitted ``step(model, state, action, xfrc)`` and ``reset(model, key)`` of ``env``."""
    import jax

    try:
        ref: Any = weakref.ref(env)  # the cache's values must not keep its keys alive
    except TypeError:  # an environment that cannot be weakly referenced: its own, per player
        ref = lambda: env  # noqa: E731

    def step(model: Any, state: Any, action: Any, xfrc: Any) -> Any:
        if xfrc is not None:
            try:
                state = sim.set_xfrc(state, xfrc)
            except sim.StateError as e:
                raise PlayUnavailable(str(e)) from None
        e = ref()
        with sim.swap_model(e, attr, model):
            return e.step(state, action)

    def reset(model: Any, key: Any) -> Any:
        e = ref()
        with sim.swap_model(e, attr, model):
            return e.reset(key)

    with _COMPILED_LOCK:
        try:
            found = _COMPILED.get(env)
        except TypeError:
            return jax.jit(step), jax.jit(reset)
        if found is not None and found[0] == attr:
            return found[1], found[2]
        pair = (attr, jax.jit(step), jax.jit(reset))
        _COMPILED[env] = pair
        return pair[1], pair[2]
