"""A run directory is untrusted input: the hostile corpus (tests/hostile.py) read under an
address-space limit and a timeout, the viewer serving a good run beside every hostile one,
hostile text in a real browser (viewer and exported HTML), a model that crashes MuJoCo,
the token gate against other origins and idle connections, and the writer's refusals."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from hostile import MARKER, damaged_model_bytes, make_corpus
from servers import free_port
from trajscope.serve import TABS, NanPanel
from trajscope.store import FormatError, RunConflict, RunWriter, open_run

CAPS = {"TRAJSCOPE_MAX_MODEL_MB": "64", "TRAJSCOPE_MAX_CAPTURE_MB": "256", "TRAJSCOPE_CACHE": "off"}
"""The reader's ceilings in these tests: small, so the corpus stays small."""

EXPECT = {
    "zero_symlink": "not a regular file",
    "sparse": "the manifest says",
    "fifo_manifest": "not a regular file",
    "fifo_array": "not a regular file",
    "fifo_run": "not a regular file",
    "model_bomb": "inflates to more than",
    "array_bomb": "beyond this reader's ceiling",
    "manifest_symlink_out": "leaves the run",
    "captures_symlink_out": "leaves the run",
    "run_json_symlink_out": "leaves the run",
    "mjcf_outside": "names files outside the run",
    "deep_run_json": "nested too deeply",
    "deep_manifest": "nested too deeply",
    "deep_attrs": "nests deeper than",
    "huge_int": "out of range",
    "absurd_dtype": "unknown dtype",
    "nul_name": "leaves the capture folder",
    "shape_2_64": "malformed shape",
    "dt_nan": "NaN is not JSON",
    "dt_str": "control_dt_s",
    "dt_inf": "control_dt_s",
    "gamma_str": "discounting",
    "gamma_nan": "Infinity is not JSON",
    "strings": "unknown group",
    "problem_folders": "incomplete: no capture.json",
    "sparse_manifests": "corrupt or truncated JSON",
    "object_bomb": "JSON objects and arrays; refused unread",
    "attrs_items": "holds more than 100,000 values",
    "texture_bomb": "textures hold",
}
"""Each hostile run and the words of the refusal it must get."""

PROBE = r"""
import json, os, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from trajscope.store import FormatError, list_runs, open_run
from trajscope.serve import _shown

def refusals(path):
    out = []
    try:
        run = open_run(path)
    except FormatError as e:
        return [e.problem]
    out += [p.problem for p in run.problems]
    for info in run.captures + run.live_chunks():
        try:
            cap = run.capture(info)
        except FormatError as e:
            out.append(e.problem)
            continue
        for n in cap.names():
            for env in (None, 0):
                try:
                    cap.load(n, env=env)
                except FormatError as e:
                    out.append(e.problem)
                except ValueError as e:
                    assert "not per environment" in str(e), e
        try:
            _shown.Shown.load(cap, [0, 1], 0)
        except FormatError as e:
            out.append(e.problem)
    for fn in (run.load_model, run.analysis, run.live_status, run.videos):
        try:
            fn()
        except FormatError as e:
            out.append(e.problem)
    return out

root = Path(sys.argv[1])
listed = {r.name: r.problem for r in list_runs(root)}
result = {n: refusals(root / n) for n in sorted(os.listdir(root))}
# VmHWM: this process's peak (ru_maxrss would carry the forking parent's over exec).
rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) // 1024
print(json.dumps({"refusals": result, "listed": listed, "max_rss_mb": rss}))
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    import mujoco

    from conftest import XML

    root = tmp_path_factory.mktemp("hostile") / "root"
    made = make_corpus(root, mujoco.MjModel.from_xml_string(XML))
    return root, made


def test_every_hostile_run_is_refused_in_bounded_memory_and_time(corpus):
    """Each attack ends in a FormatError naming what is wrong, read under a 2 GB address
    space limit and a time limit; a root holding them all still lists the good run."""
    root, made = corpus
    assert set(made) == set(EXPECT)
    t0 = time.monotonic()
    p = subprocess.run(
        [sys.executable, "-c", PROBE, str(root), str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **CAPS},
    )
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout)
    print(f"corpus of {len(made)} hostile runs read in {time.monotonic() - t0:.1f} s, peak RSS {out['max_rss_mb']} MB")
    assert out["refusals"]["good"] == []
    for name, words in EXPECT.items():
        got = out["refusals"][name]
        assert any(words in r for r in got), (name, made[name], got)
    assert out["max_rss_mb"] < 1024
    assert out["listed"]["good"] is None and len(out["listed"]) == len(made) + 1  # every run listed, none fatal


def test_the_viewer_serves_a_good_run_beside_every_hostile_one(corpus, monkeypatch):
    from trajscope.serve import Viewer

    for k, v in CAPS.items():
        monkeypatch.setenv(k, v)
    root, made = corpus
    v = Viewer(str(root), port=free_port(), poll_s=3600)
    try:
        assert set(made) | {"good"} <= set(v.runs)
        for name in made:
            v.run_menu.value = name  # what a user's click on the run list does
            v.poll()
            v.show_step(3)
        v.run_menu.value = "good"
        assert v.run is not None and v.run.name == "good"
        assert v.shown is not None and v.shown.capture.info.num_envs == 3
        v.show_step(4)
        assert v.t == 4
        # The hostile runs were reported on the page, escaped: no raw markup in any text.
        assert any("not a regular file" in e for e in v.errors) and any("leaves the run" in e for e in v.errors)
        for text in (v.error.content, v.status.content):
            assert not re.search(r"(?<!\\)<", text), text  # every "<" escaped
        names = {t.name for t in threading.enumerate()}
        assert {"trajscope-steps", "trajscope-poll"} <= names  # no viewer thread died
    finally:
        v.close()


def test_a_model_that_crashes_mujoco_is_refused_and_the_viewer_lives(tmp_path, model):
    """A model file that loads and then crashes MuJoCo (SIGSEGV in mj_forward) is vetted
    in a child process: the viewer, video export and ``load_model`` report it."""
    from trajscope import export
    from trajscope.serve import Viewer
    from trajscope.store import _model

    bad = damaged_model_bytes(model)
    child = (
        "import sys, mujoco; m = mujoco.MjModel.from_binary_path(sys.argv[1]); mujoco.mj_forward(m, mujoco.MjData(m))"
    )
    (tmp_path / "bad.mjb").write_bytes(bad)
    raw = subprocess.run([sys.executable, "-c", child, str(tmp_path / "bad.mjb")], capture_output=True)
    if raw.returncode >= 0:
        pytest.skip("this MuJoCo no longer crashes on the damaged model (nothing to guard against)")
    from conftest import all_kinds

    root = tmp_path / "root"
    for name in ("good", "crashing"):
        with RunWriter(root, name=name, model=model, strict=True) as w:
            w.add_capture(step=1, **all_kinds(model))
    import zlib

    (root / "crashing" / "model" / "model.mjb.z").write_bytes(zlib.compress(bad))
    _model._VETTED.clear()
    with pytest.raises(FormatError, match="MuJoCo crashed on it"):
        open_run(root / "crashing").load_model()
    with pytest.raises(FormatError, match="crashed"):
        export.video(str(root / "crashing"), out=tmp_path / "x.mp4")
    v = Viewer(str(root), port=free_port(), poll_s=3600)
    try:
        v.run_menu.value = "crashing"
        assert v.run is None and "unreadable" in v.status.content and "crashed" in v.status.content
        v.run_menu.value = "good"
        assert v.run is not None and v.shown is not None  # the same process serves the good run
    finally:
        v.close()


def test_hostile_text_runs_no_script_in_the_viewer_or_the_exported_html(corpus, tmp_path):
    """In headless Chromium: every panel opened on the run whose every string is hostile;
    the text shows as text, and nothing from it becomes an element or runs."""
    playwright = pytest.importorskip("playwright.sync_api")
    from test_serve_browser import ARGS, CHROMIUM

    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh installs it)")
    from trajscope import export
    from trajscope.serve import Viewer

    root, _ = corpus
    run = root / "strings"
    out = tmp_path / "export.html"
    export.html(str(run), out=out, env=0)
    v = Viewer(str(run), port=free_port(), poll_s=0.5)
    injected = (
        "() => ({pwned: window.__pwned === undefined ? null : window.__pwned,"
        " elements: document.querySelectorAll('[onerror], [onload], iframe, a[href^=\"javascript\"]').length})"
    )
    try:
        v.panel(NanPanel).jump.disabled = False
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            pg = browser.new_page(viewport={"width": 1280, "height": 1600})
            pg.goto(v.url, wait_until="domcontentloaded")
            pg.wait_for_function(f"document.body.innerText.includes('{MARKER}-name')", timeout=60_000)
            # Every panel is in the page (folded ones too, in every tab): the run's strings
            # reached them all, and none of them made an element that runs script.
            tags = {"name", "env", "algo", "metric", "info", "analysis-note", "body"}
            found: set[str] = set()
            for tab in TABS:
                pg.get_by_role("tab", name=tab).click()
                pg.wait_for_function(
                    f"Array.from(document.querySelectorAll('[role=tab]')).some("
                    f"t => t.textContent.trim() === {tab!r} && t.getAttribute('aria-selected') === 'true')",
                    timeout=30_000,
                )
                text = pg.evaluate("document.body.textContent")
                found |= {tag for tag in tags if f"{MARKER}-{tag}" in text}
                assert pg.evaluate(injected) == {"pwned": None, "elements": 0}, tab
            assert found == tags, tags - found
            v.show_error(f"{MARKER}-error <img src=x onerror=window.__pwned=1>")
            pg.wait_for_function(f"document.body.innerText.includes('{MARKER}-error <img')", timeout=30_000)
            body = pg.inner_text("body")
            assert f"{MARKER}-error <img src=x onerror" in body  # shown as the characters it is
            assert pg.evaluate(injected) == {"pwned": None, "elements": 0}
            ARTIFACTS = Path(__file__).parents[1] / "artifacts"
            ARTIFACTS.mkdir(exist_ok=True)
            pg.screenshot(path=str(ARTIFACTS / "hostile_strings_viewer.png"))
            page2 = browser.new_page()
            page2.goto(out.as_uri(), wait_until="load")
            page2.wait_for_selector("canvas", timeout=60_000)
            assert page2.evaluate(injected) == {"pwned": None, "elements": 0}
            browser.close()
    finally:
        v.close()


def _gate_viewer(demo_run, token):
    from trajscope.serve import Viewer

    return Viewer(demo_run, host="127.0.0.2", port=free_port(), token=token, poll_s=3600)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    from trajscope.demo import write_demo_run

    return write_demo_run(str(tmp_path_factory.mktemp("gate")), name="demo", checkpoints=1, num_envs=2)


def test_the_gate_refuses_websockets_from_other_origins_and_keeps_a_cookie_per_viewer(demo_run):
    """Chromium logs in to two gated viewers on one host (each keeps its session), then a
    page served from another port of that host, holding the user's cookies, tries to open
    the viewer's websocket: refused (403), and the viewer's own page still connects."""
    playwright = pytest.importorskip("playwright.sync_api")
    from servers import other_origin
    from test_serve_browser import ARGS, CHROMIUM

    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed")
    a, b = _gate_viewer(demo_run, "token-a"), _gate_viewer(demo_run, "token-b")
    evil = contextlib.ExitStack()
    evil_port = evil.enter_context(other_origin("127.0.0.2"))
    probe = """url => new Promise(done => {
        const ws = new WebSocket(url);
        ws.onopen = () => { ws.close(); done('open'); };
        ws.onerror = () => done('refused');
    })"""
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            ctx = browser.new_context()
            pg = ctx.new_page()
            for viewer in (a, b):
                pg.goto(viewer.url, wait_until="domcontentloaded")
                pg.wait_for_selector("canvas", timeout=60_000)
            cookies = {c["name"] for c in ctx.cookies()}
            assert {f"trajscope_{a.gate.port}", f"trajscope_{b.gate.port}"} <= cookies
            for viewer in (a, b):  # both sessions still valid: neither cookie overwrote the other
                pg.goto(f"http://127.0.0.2:{viewer.gate.port}/", wait_until="domcontentloaded")
                assert pg.evaluate(probe, f"ws://127.0.0.2:{viewer.gate.port}/") == "open"
            pg.goto(f"http://127.0.0.2:{evil_port}/", wait_until="load")
            assert pg.evaluate(probe, f"ws://127.0.0.2:{a.gate.port}/") == "refused"
            assert a.gate.refused["origin"] >= 1
            browser.close()
    finally:
        evil.close()
        a.close()
        b.close()


def _closed(s: socket.socket) -> bool:
    """The other side closed ``s``: an end of stream, or a reset (a close with the
    request's bytes unread)."""
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def test_the_gate_times_out_idle_connections_and_caps_pending_ones(demo_run, monkeypatch):
    """Half-open connections are closed after the head timeout; past one address's share,
    its oldest waiting ones are closed to make room; a client with the token is served
    throughout."""
    import http.client

    from trajscope.serve import _auth

    monkeypatch.setattr(_auth, "HEAD_TIMEOUT_S", 1.0)
    v = _gate_viewer(demo_run, "tok")
    idle = []
    try:
        for _ in range(_auth.MAX_PENDING_PER_ADDRESS + 20):
            s = socket.create_connection(("127.0.0.2", v.gate.port), timeout=5)
            s.sendall(b"GET / HTTP/1.1\r\n")  # a head that never ends
            idle.append(s)
        deadline = time.monotonic() + 30
        while v.gate.refused["busy"] < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert v.gate.refused["busy"] >= 20
        assert _closed(idle[0])  # the oldest made room
        deadline = time.monotonic() + 30
        while v.gate.refused["timeout"] < _auth.MAX_PENDING_PER_ADDRESS and time.monotonic() < deadline:
            time.sleep(0.05)
        assert v.gate.refused["timeout"] >= _auth.MAX_PENDING_PER_ADDRESS  # each idle one closed by the gate
        for s in idle[-5:]:
            assert _closed(s)  # closed from the gate's side
        assert v.gate.waiting == 0
        c = http.client.HTTPConnection("127.0.0.2", v.gate.port, timeout=10)
        c.request("GET", "/?token=tok")
        assert c.getresponse().status == 302
    finally:
        for s in idle:
            s.close()
        v.close()


def test_a_run_of_another_model_is_not_appended_to(tmp_path, model):
    import mujoco

    from conftest import XML, simulate

    with RunWriter(tmp_path, name="r", model=model, strict=True) as w:
        w.add_capture(step=1, **simulate(model, T=3, E=2))
    other = mujoco.MjModel.from_xml_string(XML.replace('size="0.1 0.1 0.1"', 'size="0.2 0.1 0.1"'))
    with pytest.raises(RunConflict, match="already holds another model"):
        RunWriter(tmp_path, name="r", model=other)
    with RunWriter(tmp_path, name="r", model=model, strict=True) as w:  # the same model appends
        w.add_capture(step=2, **simulate(model, T=3, E=2))
    run = open_run(tmp_path / "r")
    assert [c.step for c in run.captures] == [1, 2]
    np.testing.assert_array_equal(run.load_model().geom_size, model.geom_size)


def test_two_writers_of_one_run_in_one_process_lose_nothing(tmp_path, model, recwarn):
    """Their temporary files never collide: 30 captures each, all written, no warning."""
    from conftest import simulate

    kw = simulate(model, T=3, E=2)
    writers = [RunWriter(tmp_path, name="shared", model=model, max_queue=64) for _ in range(2)]
    threads = [
        threading.Thread(target=lambda w=w, k=k: [w.add_capture(step=k * 100 + i, **kw) for i in range(30)])
        for k, w in enumerate(writers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in writers:
        w.close()
    assert [w.stats.written for w in writers] == [30, 30] and sum(w.stats.dropped for w in writers) == 0
    assert not [r for r in recwarn if "trajscope" in str(r.message)]
    assert len(open_run(tmp_path / "shared").captures) == 60
    assert not [p for p in (tmp_path / "shared").rglob("*.tmp*")]


def test_model_fields_from_a_run_never_write_index_fields(model):
    """Randomised fields are untrusted: an integer field (an index MuJoCo would follow out
    of its arrays) is never applied, a float field is."""
    import copy

    from trajscope.sim import apply_model_fields

    m = copy.copy(model)
    fields = {
        "body_parentid": np.full((1, m.nbody), 10**6, np.int32),
        "geom_size": np.full((1, m.ngeom, 3), 0.5),
        "__class__": np.zeros((1, 1)),
    }
    apply_model_fields(m, fields, 0)
    np.testing.assert_array_equal(m.body_parentid, model.body_parentid)
    np.testing.assert_array_equal(m.geom_size, 0.5)


def test_terminal_output_shows_control_characters(tmp_path, model):
    from conftest import simulate

    with RunWriter(tmp_path, name="r", model=model, strict=True, env_name="\x1b]0;owned\x07env") as w:
        w.add_capture(step=1, **simulate(model, T=3, E=2))
    p = subprocess.run([sys.executable, "-m", "trajscope", "info", str(tmp_path / "r")], capture_output=True, text=True)
    assert p.returncode == 0 and "\x1b" not in p.stdout and "?]0;owned?env" in p.stdout


@pytest.mark.skipif(shutil.which("mkfifo") is None and not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_appearing_mid_session_never_blocks_the_viewer(tmp_path, model):
    """A capture folder whose manifest is a FIFO, written while the viewer follows the run:
    the poll goes on (no lock held forever) and the next good capture is listed."""
    from conftest import simulate
    from trajscope.serve import Viewer

    kw = simulate(model, T=3, E=2)
    with RunWriter(tmp_path, name="r", model=model, strict=True) as w:
        w.add_capture(step=1, **kw)
    v = Viewer(str(tmp_path / "r"), port=free_port(), poll_s=0.2)
    try:
        bad = tmp_path / "r" / "captures" / "000000000002-eval-deadbeef"
        bad.mkdir()
        os.mkfifo(bad / "capture.json")
        with RunWriter(tmp_path, name="r", model=model, strict=True) as w:
            w.add_capture(step=3, **kw)
        deadline = time.monotonic() + 60
        while len(v.run.captures) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [c.step for c in v.run.captures] == [1, 3]
        assert any("not a regular file" in p.problem for p in v.run.problems)
    finally:
        v.close()


@pytest.mark.parametrize("folder", ["live", "analysis"])
def test_a_link_out_of_the_run_is_never_written_through(tmp_path, model, folder):
    """``live/`` or ``analysis/`` a link to a folder elsewhere: the viewer's switch and
    ``trajscope analyse``'s store refuse to write, and the folder elsewhere is untouched;
    so is a file inside the run planted as a link."""
    from conftest import simulate
    from trajscope.store import write_analysis, write_live_control

    with RunWriter(tmp_path, name="r", model=model, strict=True) as w:
        w.add_capture(step=1, **simulate(model, T=3, E=2))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "control.json").write_text("theirs")
    (tmp_path / "r" / folder).symlink_to(elsewhere)
    with pytest.raises(PermissionError, match="writes only inside the run"):
        if folder == "live":
            write_live_control(tmp_path / "r", on=True)
        else:
            write_analysis(str(tmp_path / "r"), {"captures": []}, {"a": np.zeros(3)})
    assert sorted(os.listdir(elsewhere)) == ["control.json"] and (elsewhere / "control.json").read_text() == "theirs"
    (tmp_path / "r" / folder).unlink()
    (tmp_path / "r" / folder).mkdir()
    target = tmp_path / "target.npy"
    target.write_text("theirs")
    if folder == "analysis":  # an array file planted as a link: the write fails, the target stays
        (tmp_path / "r" / "analysis" / "array.000.npy").symlink_to(target)
        with pytest.raises(OSError):
            write_analysis(str(tmp_path / "r"), {"captures": []}, {"a": np.zeros(3)})
        assert target.read_text() == "theirs"


def test_bidi_and_c1_controls_are_neutralised_everywhere(tmp_path, model):
    """U+202E (shows what follows reversed) and U+009B (a terminal's CSI) from a run: gone
    from markdown and HTML, shown as ? in the terminal; ls names a run by its folder and
    shows the name its run.json claims beside it."""
    from conftest import simulate
    from trajscope._escape import html, md, md_lines, plain

    evil = "run\u202etxt.exe\u009b2J\u2066x\u2069"
    for f in (md, md_lines, html):
        out = f(evil)
        assert not set(out) & {"\u202e", "\u009b", "\u2066", "\u2069"}, (f, out)
    assert plain(evil) == "run?txt.exe?2J?x?"
    with RunWriter(tmp_path, name="honest", model=model, strict=True) as w:
        w.add_capture(step=1, **simulate(model, T=3, E=2))
    doc = json.loads((tmp_path / "honest" / "run.json").read_text())
    doc["name"] = "other\u202erun"
    (tmp_path / "honest" / "run.json").write_text(json.dumps(doc))
    p = subprocess.run([sys.executable, "-m", "trajscope", "ls", str(tmp_path)], capture_output=True, text=True)
    assert p.returncode == 0 and "honest (run.json says 'other\\u202erun')" in p.stdout and "\u202e" not in p.stdout
