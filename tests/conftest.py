"""Tiny, real fixtures: inline MJCF models and arrays made from them."""

from __future__ import annotations

import os
import tempfile

# Every brax training in the suite compiles programs that earlier tests compiled too (same
# trainer, same tiny configuration): JAX's persistent compilation cache reuses them. Set
# before JAX starts; subprocesses inherit it.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "trajscope-test-jax-cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
# Video export renders with MuJoCo offscreen; MuJoCo reads MUJOCO_GL once, at import.
os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco
import numpy as np
import pytest

# The suite runs on two workers (scripts/test.sh: ``pytest -n 2 --dist loadgroup``): every
# file goes to one of two groups, about equally long, each run whole by one worker, and each
# worker is pinned to cores of its own, so that a brax compilation on one never starves the
# other's headless browser (which then timed out). The groups, by their measured times on a
# 2-core machine (1159 s and 1057 s of test time; 1178 s of wall time, where moving the
# analyses to the rest made it 1344 s: their numba and t-SNE start-up then met the Warp
# child's compilation on the same core): brax's capture trainings with the analyses, and
# the rest (the viewer, browsers, the store, the README walk, the Warp cases' child).
TRAINING_GROUP = frozenset(
    {
        "test_capture_brax.py",
        "test_capture_live.py",
        "test_remote.py",
        "test_capture_nan.py",
        "test_analyse_brax.py",
        "test_capture_playground.py",
        "test_multihost.py",
        "test_analyse_run.py",
    }
)
WORKER = os.environ.get("PYTEST_XDIST_WORKER")
"""This process's xdist worker (``gw0``, ``gw1``), or None when the suite runs in one process."""
if WORKER is not None and hasattr(os, "sched_setaffinity"):
    _cpus = sorted(os.sched_getaffinity(0))
    _n = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if 1 < _n <= len(_cpus):
        os.sched_setaffinity(0, _cpus[int(WORKER[2:]) % _n :: _n])  # before any thread or child starts


def group_of(nodeid: str) -> str:
    """The worker group of a test (its file's)."""
    return "training" if nodeid.split("::")[0].rsplit("/", 1)[-1] in TRAINING_GROUP else "rest"


def worker_group(nodeids: list[str]) -> str | None:
    """The group this worker runs: xdist's loadgroup hands the group with the most tests to
    ``gw0`` and the next to ``gw1`` (ties in collection order); None in one process."""
    if WORKER is None:
        return None
    counts: dict[str, int] = {}
    for nodeid in nodeids:
        counts[group_of(nodeid)] = counts.get(group_of(nodeid), 0) + 1
    order = sorted(counts, key=lambda g: -counts[g])
    i = int(WORKER[2:])
    return order[i] if i < len(order) else None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    if WORKER is not None:
        for item in items:
            item.add_marker(pytest.mark.xdist_group(group_of(item.nodeid)))


# A free-floating body, a hinge, a filtered actuator (na=1) and a mocap target.
XML = """
<mujoco model="fixture">
  <option timestep="0.005"/>
  <worldbody>
    <geom type="plane" size="2 2 0.1"/>
    <body name="target" mocap="true" pos="1 0 0.5"><geom type="sphere" size="0.05" contype="0" conaffinity="0"/></body>
    <body name="torso" pos="0 0 0.5">
      <freejoint/>
      <geom type="box" size="0.1 0.1 0.1"/>
      <body name="arm" pos="0.1 0 0">
        <joint name="elbow" type="hinge" axis="0 1 0"/>
        <geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.03"/>
      </body>
    </body>
  </worldbody>
  <actuator>
    <general joint="elbow" dyntype="filter" dynprm="0.05" gainprm="1"/>
    <motor joint="elbow" gear="2"/>
  </actuator>
</mujoco>
"""


TINY_PPO = dict(
    num_timesteps=6_000,
    num_evals=3,
    episode_length=50,
    num_envs=16,
    batch_size=16,
    num_minibatches=4,
    unroll_length=8,
    num_eval_envs=4,
    normalize_observations=True,
    seed=3,
)
"""A brax PPO training of inverted_pendulum that compiles and runs in seconds on a CPU (its
programs are shared by the suite's trainings through JAX's compilation cache)."""


@pytest.fixture(scope="session")
def pendulum():
    """brax's inverted_pendulum, made once for the whole suite."""
    pytest.importorskip("brax")
    import warnings

    from brax import envs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return envs.get_environment("inverted_pendulum")


@pytest.fixture(scope="session")
def ppo_baseline(pendulum):
    """The parameters of ``TINY_PPO`` trained with capture off, once for the whole suite:
    every test that checks capture leaves training unchanged compares with it."""
    from brax.training.agents.ppo import train as ppo

    _, params, _ = ppo.train(pendulum, **TINY_PPO)
    return params


@pytest.fixture(scope="session")
def ppo_captured(pendulum, tmp_path_factory):
    """One ``TINY_PPO`` training captured into a run, shared by every test that only reads
    it: ``(recorder, params, run, checkpoint steps seen)``."""
    from brax.training.agents.ppo import train as ppo

    import trajscope
    from trajscope.capture import BraxRecorder

    root = tmp_path_factory.mktemp("ppo")
    seen: list[int] = []
    rec = BraxRecorder(
        pendulum,
        root=root,
        name="p",
        num_envs=5,
        episode_length=50,
        normalize_observations=True,
        store_params="all",
    )
    _, params, _ = ppo.train(
        pendulum, policy_params_fn=rec.policy_params_fn(chain=lambda s, *_: seen.append(s)), **TINY_PPO
    )
    rec.close()
    return rec, params, trajscope.open_run(root / "p"), seen


@pytest.fixture
def model() -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_string(XML)


def simulate(model: mujoco.MjModel, *, T: int, E: int, seed: int = 0) -> dict:
    """A real rollout of E environments under random actions: every fixed array of the format."""
    rng = np.random.default_rng(seed)
    out = {
        "qpos": np.zeros((T, E, model.nq)),
        "qvel": np.zeros((T, E, model.nv)),
        "act": np.zeros((T, E, model.na)),
        "mocap_pos": np.zeros((T, E, model.nmocap, 3)),
        "mocap_quat": np.zeros((T, E, model.nmocap, 4)),
        "action": rng.uniform(-1, 1, (T, E, model.nu)).astype(np.float32),
    }
    for e in range(E):
        d = mujoco.MjData(model)
        d.mocap_pos[0] = [1.0, 0.1 * e, 0.5]
        for t in range(T):
            d.ctrl[:] = out["action"][t, e]
            mujoco.mj_step(model, d)
            for k in ("qpos", "qvel", "act", "mocap_pos", "mocap_quat"):
                out[k][t, e] = getattr(d, k)
    out["reward"] = rng.normal(size=(T, E)).astype(np.float32)
    done = np.zeros((T, E), bool)
    done[T // 2, 0] = True
    out["done"] = done
    out["value"] = rng.normal(size=(T, E)).astype(np.float32)
    return out


def all_kinds(model: mujoco.MjModel, *, T: int = 7, E: int = 3, seed: int = 0) -> dict:
    """Arguments of add_capture covering every array kind of the format."""
    rng = np.random.default_rng(seed)
    kw = simulate(model, T=T, E=E, seed=seed)
    kw["metrics"] = {"reward/alive": rng.normal(size=(T, E)).astype(np.float32), "height": rng.normal(size=(T, E))}
    kw["obs"] = {
        "state": rng.normal(size=(T, E, 11)).astype(np.float32),
        "pixels/rgb_u8": rng.integers(0, 256, (T, E, 8, 6, 3), dtype=np.uint8),
        # Rendered images as vision environments give them: k/255 floats, plain or centred.
        "pixels/rgb_unit": (rng.integers(0, 256, (T, E, 8, 6, 3)) / 255.0).astype(np.float32),
        "pixels/depth_centred": (rng.integers(0, 256, (T, E, 8, 6, 1)) / 255.0 - 0.5).astype(np.float32),
    }
    kw["info"] = {"command": rng.normal(size=(T, E, 3)).astype(np.float32), "level": rng.integers(0, 5, (T, E))}
    kw["model_fields"] = {
        "geom_rgba": rng.uniform(size=(E, model.ngeom, 4)).astype(np.float32),
        "body_mass": rng.uniform(1, 2, size=(E, model.nbody)),
    }
    kw["params"] = {
        "normalizer": {"mean": rng.normal(size=11).astype(np.float32), "count": np.float32(7.0)},
        "policy": {
            "hidden_0": {"kernel": rng.normal(size=(11, 4)).astype(np.float32), "bias": np.zeros(4, np.float32)}
        },
    }
    N = 5  # a replay-buffer sample of a prioritised buffer
    kw["buffer"] = {
        "step": np.arange(N) * 8,
        "qpos": rng.normal(size=(N, model.nq)),
        "qvel": rng.normal(size=(N, model.nv)),
        "obs": {"state": rng.normal(size=(N, 11)).astype(np.float32)},
        "action": rng.normal(size=(N, model.nu)).astype(np.float32),
        "reward": rng.normal(size=N).astype(np.float32),
        "priority": rng.uniform(size=N).astype(np.float32),
    }
    return kw


def brax_restep(env):
    """A jitted, batched ``(q, qd, action) -> q`` of one brax environment step from a given
    physics state: to check captured states against the environment itself."""
    import jax

    @jax.jit
    @jax.vmap
    def restep(q, qd, a):
        s = env.reset(jax.random.PRNGKey(0))
        s = s.replace(pipeline_state=env.pipeline_init(q, qd))
        return env.step(s, a).pipeline_state.q

    return restep


def pytest_collection_finish(session):
    """Start the Warp cases' child process as soon as the suite knows it will run them
    (tests/test_warp.py): it runs beside the other tests instead of after them."""
    warp = [item.nodeid for item in session.items if item.nodeid.startswith("tests/test_warp.py")]
    mine = worker_group([item.nodeid for item in session.items])
    if warp and not session.config.option.collectonly and (mine is None or group_of(warp[0]) == mine):
        try:
            from test_warp import start_cases
        except pytest.skip.Exception:  # Playground or Warp missing: the test skips itself
            return
        session.config._trajscope_warp_cases = start_cases()


def pytest_sessionfinish(session):
    """The Warp cases' child never outlives the suite (a run stopped early, -x)."""
    started = getattr(session.config, "_trajscope_warp_cases", None)
    if started is not None and started[0].poll() is None:
        started[0].kill()
