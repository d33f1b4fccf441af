"""Security: nothing in a run directory is unpickled or run, paths never leave the run or
the viewer's files, and beyond loopback the viewer needs its token (tested in
test_serve.py: ``test_a_viewer_beyond_loopback_requires_its_token`` and
``test_the_exported_viewer_class_gates_too``)."""

from __future__ import annotations

import http.client
import io
import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import all_kinds
from servers import free_port
from trajscope.store import FormatError, RunWriter, open_run

SRC = Path(__file__).parents[1] / "src" / "trajscope"


class _Canary:
    """Unpickling it runs code: it creates a file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def booby_trapped_run(tmp_path, model):
    """A run whose array files, model and extra files all hold pickles that would create
    ``canary`` if anything unpickled them."""
    canary = tmp_path / "canary"
    with RunWriter(tmp_path, name="r", model=model, strict=True, compress=False) as w:
        w.add_capture(step=1, **all_kinds(model))
    run = tmp_path / "r"
    (cdir,) = (run / "captures").iterdir()
    payload = pickle.dumps(_Canary(str(canary)))
    buf = io.BytesIO()
    np.save(buf, np.array([_Canary(str(canary))], dtype=object), allow_pickle=True)
    (cdir / "qpos.npy").write_bytes(buf.getvalue())  # an object .npy in place of qpos
    (cdir / "reward.npy").write_bytes(payload)  # a bare pickle
    (cdir / "params.pkl").write_bytes(payload)
    (run / "model" / "model.mjb.z").write_bytes(payload)
    return run, canary


def test_nothing_in_a_run_is_unpickled(booby_trapped_run):
    from trajscope import cli
    from trajscope.serve import Viewer, _shown

    run_dir, canary = booby_trapped_run
    run = open_run(run_dir)
    cap = run.capture(0)
    for name in ("qpos", "reward"):
        for env in (None, 0):
            with pytest.raises(FormatError):
                cap.load(name, env=env)
    with pytest.raises(FormatError):
        _shown.Shown.load(cap, [0], 0)
    with pytest.raises(FormatError):
        run.load_model()
    json.dumps(cli.info_json(run, run.check(checksums=True)))
    out = subprocess.run(
        [sys.executable, "-m", "trajscope", "info", "--checksums", str(run_dir)], capture_output=True, text=True
    )
    assert out.returncode == 1 and "qpos.npy" in out.stdout + out.stderr
    v = Viewer(str(run_dir), port=free_port(), poll_s=3600)
    try:
        assert v.errors  # the page says what is wrong
    finally:
        v.close()
    assert not canary.exists()


def test_the_package_never_unpickles_or_evaluates():
    """No pickle, eval, exec or dynamic import anywhere in the package's source."""
    pattern = re.compile(r"\bimport pickle\b|\bpickle\.|allow_pickle\s*=\s*True|\beval\(|\bexec\(|__import__\(")
    hits = [
        f"{p.relative_to(SRC)}:{i}: {line.strip()}"
        for p in SRC.rglob("*.py")
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line.split("#", 1)[0])
    ]
    assert hits == []


@pytest.mark.parametrize("name", ["..", ".", "../escape", "a/b", "/abs"])
def test_run_names_cannot_leave_the_root(tmp_path, name):
    with pytest.raises(ValueError, match="plain folder name"):
        RunWriter(tmp_path, name=name)
    assert not (tmp_path.parent / "escape").exists()


@pytest.mark.parametrize("relpath", ["../x.mp4", "/etc/x", "videos/../../x", "a//b", "./x"])
def test_derived_files_cannot_leave_the_run(tmp_path, model, relpath):
    with RunWriter(tmp_path, name="r", model=model, strict=True) as w:
        with pytest.raises(ValueError, match="not a path inside the run"):
            w.write_file(relpath, b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


@pytest.mark.parametrize("file", ["../../run.json", "/etc/passwd", "..", "sub/qpos.zs", ".hidden"])
def test_a_manifest_cannot_point_outside_its_capture(tmp_path, model, file):
    with RunWriter(tmp_path, name="r", model=model, strict=True) as w:
        w.add_capture(step=1, **all_kinds(model))
    (cdir,) = (tmp_path / "r" / "captures").iterdir()
    doc = json.loads((cdir / "capture.json").read_text())
    doc["arrays"][0]["file"] = file
    (cdir / "capture.json").write_text(json.dumps(doc))
    run = open_run(tmp_path / "r")
    assert run.captures == [] and "leaves the capture folder" in run.problems[0].problem


def _get(host: str, port: int, path: str, headers: dict | None = None) -> tuple[int, bytes]:
    c = http.client.HTTPConnection(host, port, timeout=10)
    c.putrequest("GET", path, skip_accept_encoding=True)  # the path exactly as given, dots and all
    for k, v in (headers or {}).items():
        c.putheader(k, v)
    c.endheaders()
    r = c.getresponse()
    out = r.status, r.read()
    c.close()
    return out


TRAVERSALS = [
    "/../../../../../../etc/passwd",
    "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/assets/../../../../../etc/passwd",
    "//etc/passwd",
]


def test_the_viewer_serves_no_file_outside_its_own(tmp_path):
    """Path traversal in URLs, on loopback and through the token gate."""
    from trajscope.demo import write_demo_run
    from trajscope.serve import Viewer

    secret = Path("/etc/passwd").read_bytes() if os.path.exists("/etc/passwd") else b"root:"
    run = write_demo_run(str(tmp_path), name="demo", checkpoints=1, num_envs=2)
    for host in ("127.0.0.1", "127.0.0.2"):
        port = free_port()
        v = Viewer(run, host=host, port=port, token="tok")
        try:
            cookie = {}
            if v.gate is not None:
                c = http.client.HTTPConnection(host, port, timeout=10)
                c.request("GET", "/?token=tok")
                cookie = {"Cookie": c.getresponse().getheader("Set-Cookie").split(";")[0]}
                c.close()
            assert _get(host, port, "/", cookie)[0] == 200
            for path in TRAVERSALS:
                status, body = _get(host, port, path, cookie)
                assert secret[:32] not in body, (host, path, status)
                if v.gate is not None:
                    assert _get(host, port, path)[0] == 401  # no token, nothing at all
        finally:
            v.close()


def test_the_viewer_opens_only_runs_it_listed(tmp_path):
    from trajscope.demo import write_demo_run
    from trajscope.serve import Viewer

    write_demo_run(str(tmp_path / "root"), name="a", checkpoints=1, num_envs=2)
    write_demo_run(str(tmp_path), name="outside", checkpoints=1, num_envs=2)
    v = Viewer(str(tmp_path / "root"), port=free_port(), poll_s=3600)
    try:
        assert list(v.runs) == ["a"]
        for name in ("../outside", str(tmp_path / "outside"), "a/../../outside"):
            v.act(v.open_run, name)  # what a client could send as the run selector's value
            assert v.run is not None and v.run.name == "a"
    finally:
        v.close()
