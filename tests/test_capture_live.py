"""The live stream of the real training environments, from tiny unmodified brax trainings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import warnings

import jax
import numpy as np
import pytest

import trajscope
from conftest import brax_restep
from trajscope.store import LiveControl, RunWriter, write_live_control

pytest.importorskip("brax")
from brax.training.agents.ppo import train as ppo

from trajscope.capture import BraxRecorder
from trajscope.sim import mj_model

C = 16  # steps per live chunk
PPO_KW = dict(
    num_timesteps=16_000,
    num_evals=5,
    episode_length=40,
    num_envs=16,
    batch_size=16,
    num_minibatches=4,
    unroll_length=8,
    num_eval_envs=4,
    seed=5,
)


def _recorder(env, root, name, *, live=3, **kw):
    # Keep every chunk, so the test sees all the stream sent.
    writer = RunWriter(root, name=name, model=mj_model(env), control_dt_s=float(env.dt), keep_live=10_000)
    rec = BraxRecorder(env, writer=writer, live=live, live_chunk_steps=C, value=False, **kw)
    rec.live.poll_s = 0.05
    return rec


def _wait_until(condition, timeout_s=60.0):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def ppo_live(pendulum, tmp_path_factory):
    """One training: streamed, switched off, a crashed viewer's stale switch, a fresh one."""
    root = tmp_path_factory.mktemp("live")
    rec = _recorder(pendulum, root, "r")
    live = rec.live
    url = rec.writer.url
    sent: list[int] = []

    def at_checkpoint(step, *_):
        sent.append(live.chunks_sent)
        i = len(sent) - 1
        if i == 0:
            live.switch(True, rate=1000)  # every chunk, from the training script
        elif i == 1:
            live.switch(False)
        elif i == 2:
            live.release()
            # A viewer that switched the stream on and then crashed a minute ago.
            stale = {"on": True, "rate": 1000, "updated_unix_s": time.time() - 60}
            (root / "r" / "live" / "control.json").write_text(json.dumps(stale))
            # The switch is read on a thread every poll_s: wait until it has been.
            _wait_until(lambda: live.control.updated_unix_s == stale["updated_unix_s"])
        elif i == 3:
            write_live_control(url, on=True, rate=1000)  # a viewer attached now
            _wait_until(lambda: live.control.active())

    _, params, _ = ppo.train(
        pendulum, wrap_env_fn=rec.wrap_env_fn(), policy_params_fn=rec.policy_params_fn(chain=at_checkpoint), **PPO_KW
    )
    rec.close()
    sent.append(live.chunks_sent)
    return rec, params, trajscope.open_run(url), sent


def test_live_frames_are_consecutive_training_steps(ppo_live, pendulum):
    _, _, run, sent = ppo_live
    chunks = run.live_chunks()
    assert len(chunks) == sent[-1] and len(chunks) >= 4
    env = pendulum

    restep = brax_restep(env)

    checked = 0
    for info in chunks:
        cap = run.capture(info)
        assert info.num_steps == C and info.num_envs == 3 and info.kind == "live"
        q, qd, a, done = (cap.load(n) for n in ("qpos", "qvel", "action", "done"))
        assert np.isfinite(q).all()
        # Stepping the environment again from step t's state with step t+1's action gives
        # step t+1's positions, except where the episode ended and training reset the env.
        nq = q.shape[-1]
        pred = np.asarray(restep(q[:-1].reshape(-1, nq), qd[:-1].reshape(-1, nq), a[1:].reshape(-1, a.shape[-1])))
        ok = ~done[1:].reshape(-1)
        np.testing.assert_allclose(pred[ok], q[1:].reshape(-1, nq)[ok], atol=1e-4)
        checked += int(ok.sum())
    assert checked > 100
    steps = [c.step for c in chunks]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)


def test_switching_off_stops_chunks_and_training_goes_on(ppo_live):
    rec, _, run, sent = ppo_live
    on0, off1, stale2, fresh3, end = sent[:5]
    assert off1 - on0 >= 2  # streamed while on
    assert stale2 - off1 <= 1  # switched off: at most the chunk under way was finished
    assert fresh3 == stale2  # a crashed viewer's expired switch does not stream
    assert end > fresh3  # a viewer's fresh switch does
    status = run.live_status()
    assert status is not None and not status.streaming and status.chunks_sent == end
    # The stream counted every training step (brax rounds num_timesteps up).
    assert status.env_steps >= PPO_KW["num_timesteps"]
    # At rate=1000 chunks come as fast as training makes them: on a loaded machine the writer
    # may fall behind, and then a chunk is dropped and counted, never an error. Nothing else.
    stats = rec.writer.stats
    assert stats.dropped_write_error == stats.dropped_invalid == stats.dropped_at_close == 0, stats
    assert rec.live.failures == stats.dropped_queue_full, (rec.live.last_failure, stats)


def test_streaming_does_not_change_training(ppo_live, pendulum):
    _, params, _, _ = ppo_live
    _, baseline, _ = ppo.train(pendulum, **PPO_KW)
    for x, y in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(baseline)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_lease_expires():
    now = 1000.0
    assert LiveControl(on=True, updated_unix_s=now - 1).active(now, lease_s=5)
    assert not LiveControl(on=True, updated_unix_s=now - 6).active(now, lease_s=5)
    assert not LiveControl(on=False, updated_unix_s=now).active(now, lease_s=5)


def test_a_broken_run_directory_does_not_stop_training(pendulum, tmp_path):
    rec = _recorder(pendulum, tmp_path, "broken")
    rec.live.switch(True, rate=1000)
    rec.writer.flush()
    # A file where the live folder should be: no chunk can be written, not even by root
    # (which permission bits would not stop).
    (tmp_path / "broken" / "live").write_text("not a folder")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The live fixture's very training (its programs are compiled already), its stream unwritable.
        _, params, _ = ppo.train(pendulum, wrap_env_fn=rec.wrap_env_fn(), **PPO_KW)
    rec.close()
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree_util.tree_leaves(params))
    assert rec.live.chunks_sent > 0 and rec.writer.stats.dropped_write_error >= rec.live.chunks_sent
    assert rec.writer.stats.written == 0


def test_two_devices_stream_the_first_device(tmp_path):
    script = textwrap.dedent(
        f"""
        import warnings
        warnings.simplefilter("ignore")
        import jax
        assert jax.local_device_count() == 2
        from brax import envs
        from brax.training.agents.ppo import train as ppo
        import trajscope
        from trajscope.capture import BraxRecorder
        env = envs.get_environment("inverted_pendulum")
        rec = BraxRecorder(env, root={str(tmp_path)!r}, name="d", live=3, live_chunk_steps={C}, value=False)
        rec.live.switch(True, rate=1000)
        kw = {PPO_KW!r}
        ppo.train(env, wrap_env_fn=rec.wrap_env_fn(), **kw)
        rec.close()
        run = trajscope.open_run(rec.writer.url)
        chunks = run.live_chunks()
        assert chunks, "no chunks"
        q = run.capture(chunks[-1]).load("qpos")
        assert q.shape[:2] == ({C}, 3), q.shape
        assert rec.live.env_steps >= kw["num_timesteps"], rec.live.env_steps
        print("OK", len(chunks), rec.live.env_steps)
        """
    )
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "OK" in out.stdout
