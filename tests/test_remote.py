"""Runs on remote filesystems, against real servers on 127.0.0.1: moto's S3 API server
(``s3://``) and Debian's OpenSSH server (``sftp://``, through sshfs). A real tiny brax
training writes to them; ``trajscope info --json``, the viewer and headless Chromium read
back; faults (a bucket that vanishes, a network that fails, a server that refuses writes)
cost captures, counted and warned, never the training or what was already written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("s3fs")
pytest.importorskip("sshfs")
pytest.importorskip("moto")

import trajscope
import trajscope.analyse
from conftest import TINY_PPO, all_kinds
from servers import SSHD, Proxy, S3Server, SSHServer, environ, free_port
from trajscope.store import RunWriter, TrajscopeWarning, list_runs, open_run

PPO_KW = TINY_PPO
REC_KW = dict(num_envs=5, episode_length=50, normalize_observations=True)


def _fresh_fsspec() -> None:
    """fsspec caches filesystem instances by their arguments, not by the endpoint the
    environment names: forget them when the endpoint changes."""
    import s3fs
    import sshfs

    s3fs.S3FileSystem.clear_instance_cache()
    sshfs.SSHFileSystem.clear_instance_cache()


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    folder = tmp_path_factory.mktemp("s3")
    server = S3Server(folder / "moto.log")
    _fresh_fsspec()
    with environ({**server.env, "TRAJSCOPE_CACHE": str(folder / "cache")}):
        import boto3

        for bucket in ("runs", "vanishing", "flaky"):
            boto3.client("s3").create_bucket(Bucket=bucket)
        yield server
    server.stop()
    _fresh_fsspec()


def _train(env, root, name, chain=None):
    from brax.training.agents.ppo import train as ppo

    from trajscope.capture import BraxRecorder

    rec = BraxRecorder(env, root=root, name=name, **REC_KW)
    ppo.train(env, policy_params_fn=rec.policy_params_fn(chain=chain), **PPO_KW)
    return rec


def _cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "trajscope", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def s3_run(s3, pendulum):
    """A real tiny PPO training that wrote its run to the S3 server."""
    rec = _train(pendulum, "s3://runs/root", "ppo")
    rec.close()
    return rec


def test_brax_training_writes_to_s3_and_info_reads_it(s3, s3_run):
    assert s3_run.stats.dropped == 0 and s3_run.stats.written == 3
    out = _cli("info", "--json", "s3://runs/root/ppo")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["path"] == "s3://runs/root/ppo" and info["env_name"] == "InvertedPendulum"
    assert len(info["captures"]) == 3 and info["problems"] == []
    run = open_run("s3://runs/root/ppo")
    assert [c["id"] for c in info["captures"]] == [c.id for c in run.captures]
    assert "ppo" in [r.name for r in list_runs("s3://runs/root")]  # a root of runs in a bucket
    assert run.check(checksums=True) == []
    assert run.capture(0).load("qpos").shape[1] == 5  # the recorder's five environments


def test_capture_files_are_cached_locally(s3, s3_run, tmp_path):
    with environ({"TRAJSCOPE_CACHE": str(tmp_path / "cache")}):
        first = open_run("s3://runs/root/ppo").capture(2)
        a = first.load("qpos", env=1)
        b = first.load("reward")
        before = s3.requests()
        again = open_run("s3://runs/root/ppo").capture(2)
        after_open = s3.requests()
        np.testing.assert_array_equal(again.load("qpos", env=1), a)
        np.testing.assert_array_equal(again.load("reward"), b)
        # Reading the arrays again asks the server for nothing: their bytes come from disk.
        assert s3.requests() == after_open > before
    assert any((tmp_path / "cache").rglob("*"))


def test_viewer_serves_s3_run_to_chromium(s3, s3_run):
    pytest.importorskip("playwright.sync_api")
    from test_serve_browser import ARGS, CHROMIUM, _wait_pixels

    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    from trajscope.serve import Viewer

    viewer = Viewer("s3://runs/root/ppo", port=free_port())
    try:
        assert viewer.run is not None and len(viewer.run.captures) == 3
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            pg = browser.new_page(viewport={"width": 1280, "height": 800})
            pg.goto(viewer.url, wait_until="domcontentloaded")
            pg.wait_for_selector("canvas", timeout=60_000)
            px = _wait_pixels(pg, "viewer_s3", lambda px: px.std() > 10)
            assert px.std() > 10  # the pendulum's scene drew
            pg.wait_for_function("document.body.innerText.includes('3 captures')", timeout=60_000)
            browser.close()
        assert viewer.errors == []
    finally:
        viewer.close()


def test_viewer_follows_s3_run_at_a_bounded_request_rate(s3, s3_run, model):
    with RunWriter("s3://runs/root", name="followed", model=model) as w:
        w.add_capture(**all_kinds(model, seed=1), step=100)
    from trajscope.serve import Viewer

    viewer = Viewer("s3://runs/root/followed", port=free_port(), poll_s=3600)  # polls driven below
    try:
        assert viewer.poll_s == 3600 and len(viewer.run.captures) == 1
        polls = 10
        before = s3.requests()
        for _ in range(polls):
            viewer.poll()
        per_poll = (s3.requests() - before) / polls
        from trajscope.serve._app import POLL_S

        print(f"idle viewer of an s3 run: {per_poll:.1f} requests per poll, {per_poll * 60 / POLL_S['remote']:.0f}/min")
        assert per_poll <= 3  # a listing of captures/ and the live status, nothing per capture
        # Another process (a training) adds a capture; the next poll shows it.
        code = (
            "import numpy as np, mujoco, sys; sys.path.insert(0, 'tests');"
            "from conftest import XML, all_kinds; from trajscope.store import RunWriter;"
            "m = mujoco.MjModel.from_xml_string(XML);"
            "w = RunWriter('s3://runs/root', name='followed', model=m, strict=True);"
            "w.add_capture(**all_kinds(m, seed=2), step=200); w.close()"
        )
        repo = os.path.dirname(os.path.dirname(__file__))
        subprocess.run([sys.executable, "-c", code], check=True, timeout=300, cwd=repo)
        viewer.poll()
        assert [c.step for c in viewer.run.captures] == [100, 200]
    finally:
        viewer.close()


def _wait_first_capture(rec, timeout_s: float = 240) -> None:
    """Until the first checkpoint's capture (compiled and captured on the recorder's own
    thread) is on the server: a condition, not a duration."""
    deadline = time.monotonic() + timeout_s
    while rec.stats.written < 1 and time.monotonic() < deadline:
        time.sleep(0.05)


def test_bucket_vanishing_mid_run_costs_captures_not_training(s3, pendulum):
    import boto3

    seen = []

    def vanish(step, *_):
        seen.append(step)
        if len(seen) == 1:  # the hook calls this after handing the capture to its thread
            _wait_first_capture(rec)
            bucket = boto3.resource("s3").Bucket("vanishing")
            bucket.objects.all().delete()
            bucket.delete()

    from brax.training.agents.ppo import train as ppo

    from trajscope.capture import BraxRecorder

    rec = BraxRecorder(pendulum, root="s3://vanishing/r", name="v", **REC_KW)
    with pytest.warns(TrajscopeWarning, match="NoSuchBucket|not written|cannot create"):
        ppo.train(pendulum, policy_params_fn=rec.policy_params_fn(chain=vanish), **PPO_KW)
        rec.close()
    assert len(seen) == 3  # training went on to its end
    assert rec.stats.written == 1 and rec.stats.dropped_write_error == 2  # the two checkpoints after it
    names = [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]]
    assert "vanishing" not in names  # the writer never creates a bucket behind the user's back


def test_network_failure_mid_run_keeps_what_was_written(s3, pendulum):
    """A relay in front of the S3 server is cut once the first checkpoint's capture is on
    the server: the later checkpoints' writes fail (connection refused, after s3fs's
    retries) while training goes on; what was written before stays."""
    proxy = Proxy(s3.port)
    _fresh_fsspec()
    url = f"http://127.0.0.1:{proxy.port}"
    seen = []
    written_before_cut = []

    def cut(step, *_):
        seen.append(step)
        if len(seen) == 1:  # the hook calls this after handing the capture to its thread
            _wait_first_capture(rec)
            written_before_cut.extend(c.id for c in open_run("s3://flaky/r/n").captures)
            proxy.cut()  # the next two checkpoints come later: their writes must fail

    try:
        with environ({"AWS_ENDPOINT_URL": url}):
            from brax.training.agents.ppo import train as ppo

            from trajscope.capture import BraxRecorder

            rec = BraxRecorder(pendulum, root="s3://flaky/r", name="n", **REC_KW)
            with pytest.warns(TrajscopeWarning, match="not written"):
                ppo.train(pendulum, policy_params_fn=rec.policy_params_fn(chain=cut), **PPO_KW)
                assert len(seen) == 3  # training ended while the network was down
                deadline = time.monotonic() + 240
                while rec.stats.dropped_write_error < 1 and time.monotonic() < deadline:
                    time.sleep(0.1)  # a condition, not a duration: the first failed write
                proxy.restore()
                rec.close()
            assert len(written_before_cut) == 1 and rec.stats.dropped_write_error >= 1
            assert rec.stats.written + rec.stats.dropped == 3
            run = open_run("s3://flaky/r/n")  # through the restored relay
            assert len(run.captures) == rec.stats.written
            assert written_before_cut[0] in [c.id for c in run.captures]
            assert run.check(checksums=True) == []  # nothing written before the cut was lost
    finally:
        proxy.cut()
        _fresh_fsspec()


# ------------------------------------------------------------------------------- sftp

needs_sshd = pytest.mark.skipif(SSHD is None, reason="Debian's openssh-server is not installed")


@pytest.fixture(scope="module")
def ssh(tmp_path_factory):
    if SSHD is None:
        pytest.skip("Debian's openssh-server is not installed")
    server = SSHServer(tmp_path_factory.mktemp("ssh"))
    _fresh_fsspec()
    import fsspec.config

    with environ(server.env):
        fsspec.config.set_conf_env(fsspec.config.conf)
        yield server
        fsspec.config.conf.pop("sftp", None)
    server.stop()
    _fresh_fsspec()


@needs_sshd
def test_sftp_round_trip_and_info(ssh, model, tmp_path):
    kw = all_kinds(model, seed=4)
    url = ssh.url(str(tmp_path / "runs"))
    with RunWriter(url, name="s", model=model, strict=True) as w:
        w.add_capture(**kw, step=7)
    assert (tmp_path / "runs" / "s" / "run.json").exists()  # it went through the server onto this disk
    run = open_run(f"{url}/s")
    cap = run.capture(0)
    np.testing.assert_array_equal(cap.load("qpos"), kw["qpos"])
    np.testing.assert_array_equal(cap.load("metrics/reward/alive", env=2), kw["metrics"]["reward/alive"][:, 2])
    assert run.load_model().nq == model.nq
    out = _cli("info", "--json", f"{url}/s")
    assert out.returncode == 0, out.stderr
    assert [c["step"] for c in json.loads(out.stdout)["captures"]] == [7]


@needs_sshd
def test_sftp_permission_denied_costs_captures_not_training(pendulum, model, tmp_path):
    """The SFTP server refuses every write (``internal-sftp -R``): the training completes,
    every capture is counted as dropped with a warning, and the run already there (written
    before) is untouched."""
    root = tmp_path / "runs"
    with RunWriter(root, name="ro", model=model, strict=True) as w:
        w.add_capture(**all_kinds(model, seed=5), step=1)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    server = SSHServer(tmp_path / "ssh", read_only=True)
    _fresh_fsspec()
    import fsspec.config

    try:
        with environ(server.env):
            fsspec.config.set_conf_env(fsspec.config.conf)
            with pytest.warns(TrajscopeWarning, match=re.compile("permission|denied", re.I)):
                rec = _train(pendulum, server.url(str(root)), "ro")
                rec.close()
            assert rec.stats.written == 0 and rec.stats.dropped_write_error == 3
    finally:
        fsspec.config.conf.pop("sftp", None)
        server.stop()
        _fresh_fsspec()
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    assert len(trajscope.open_run(root / "ro").captures) == 1


def test_analysis_on_a_dask_cluster_reads_from_the_object_store(s3, s3_run, capsys):
    """The analyse room on a local Dask cluster of two worker processes: each worker opens
    the run at its s3:// URL and reads captures itself; the result equals the analysis
    done here."""
    distributed = pytest.importorskip("distributed")
    from trajscope import analyse

    url = "s3://runs/root/ppo"
    here_doc, here_arrays = analyse.analyse_run(open_run(url), write=False)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        doc, arrays = analyse.analyse_run(open_run(url), write=False, executor=client.get_executor())

        def opened() -> list[str]:
            from trajscope.analyse._runs import _Loader

            return sorted(_Loader._runs)

        per_worker = client.run(opened)
    assert len(per_worker) == 2 and all(runs == [url] for runs in per_worker.values())
    assert doc == here_doc
    assert arrays.keys() == here_arrays.keys()
    for k in arrays:
        np.testing.assert_array_equal(arrays[k], here_arrays[k])
    # The command line does the same (with a cluster of its own), and stores the result in the bucket.
    from trajscope import cli

    with pytest.raises(SystemExit) as done:
        cli.main(["analyse", url, "--dask", "local:2", "--json"])
    assert done.value.code in (0, None)
    assert json.loads(capsys.readouterr().out)["captures"] == doc["captures"]
    stored = open_run(url).analysis()
    assert stored is not None and stored[0]["analysis"]["embedding"]["points"] == doc["embedding"]["points"]
