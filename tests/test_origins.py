"""No web page can reach a trajscope viewer: pages of other origins cannot open its
websocket (the default viewer, ``show()``, the token gate and viser's inner port behind
it), a name that resolves to 127.0.0.1 (DNS rebinding) gets 403, and a proxy that rewrites
``Host`` works with the documented ``allow_origins``. In a real headless Chromium, whose
resolver maps ``evil.example`` and ``proxy.example`` to 127.0.0.1."""

from __future__ import annotations

import http.client
import socket
import time

import pytest
import viser
from websockets.sync.client import connect

from servers import HostRewritingProxy, free_port, other_origin
from test_serve_browser import ARGS, CHROMIUM
from trajscope.demo import write_demo_run
from trajscope.serve import Viewer
from trajscope.serve._guard import probe

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")

_PROBE = (
    "url => new Promise(done => {"
    f"  const ws = new WebSocket(url, ['viser-v{viser.__version__}']);"
    "  ws.onopen = () => { ws.close(); done('open'); };"
    "  ws.onerror = () => done('refused');"
    "})"
)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    return write_demo_run(str(tmp_path_factory.mktemp("origins")), name="demo", checkpoints=1, num_envs=2)


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    rules = "MAP evil.example 127.0.0.1, MAP proxy.example 127.0.0.1"
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, f"--host-resolver-rules={rules}"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def evil():
    """A page of another origin: another port of the same machine."""
    with other_origin("0.0.0.0") as port:
        yield port


def _wait(cond, timeout_s=60.0):
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _status(port: int, host_header: str, path: str = "/", addr: str = "127.0.0.1") -> int:
    return probe(port, host=addr, path=path, headers={"Host": host_header})


def _ws(port: int, origin: str | None, *, addr: str = "127.0.0.1", **kw) -> str:
    try:
        c = connect(
            f"ws://{addr}:{port}/",
            subprotocols=[f"viser-v{viser.__version__}"],  # pyright: ignore[reportArgumentType]
            origin=origin,  # pyright: ignore[reportArgumentType]
            open_timeout=10,
            **kw,
        )
    except Exception as e:  # noqa: BLE001 - the refusal is what is tested
        return f"refused: {e}"
    c.close()
    return "open"


def test_the_default_viewer_refuses_other_origins_and_foreign_hosts(demo_run, browser, evil):
    v = Viewer(demo_run, port=free_port(), poll_s=3600)
    try:
        pg = browser.new_page()
        for page in (f"http://127.0.0.1:{evil}/", f"http://localhost:{evil}/", f"http://evil.example:{evil}/"):
            pg.goto(page, wait_until="load")
            for target in (f"ws://127.0.0.1:{v.port}/", f"ws://localhost:{v.port}/"):
                assert pg.evaluate(_PROBE, target) == "refused", (page, target)
        assert v.guard.refused["origin"] >= 6 and not v.server.get_clients()
        # DNS rebinding: a name of the attacker's that resolves to 127.0.0.1 gets neither page nor socket.
        r = pg.goto(f"http://evil.example:{v.port}/", wait_until="load")
        assert r is not None and r.status == 403 and "another host name" in pg.inner_text("body")
        assert pg.evaluate(_PROBE, f"ws://evil.example:{v.port}/") == "refused"
        # The viewer's own page connects, by either loopback name, and so does a client that
        # is no browser (no Origin); an https or foreign origin does not.
        for own in (f"http://localhost:{v.port}/", f"http://127.0.0.1:{v.port}/"):
            pg.goto(own, wait_until="domcontentloaded")
            _wait(lambda: len(v.server.get_clients()) == 1)
        assert _ws(v.port, None) == "open"
        assert _ws(v.port, f"HTTP://LOCALHOST:{v.port}", addr="localhost") == "open"  # scheme and host: any case
        for origin in (f"https://127.0.0.1:{v.port}", f"http://127.0.0.1:{v.port + 1}", "null", "http://127.0.0.1"):
            assert _ws(v.port, origin).startswith("refused"), origin
        assert _status(v.port, "evil.example") == 403 and _status(v.port, f"localhost:{v.port}") == 200
        pg.close()
    finally:
        v.close()


def test_show_refuses_other_origins_and_a_proxy_needs_its_origin_named(demo_run, browser, evil):
    import trajscope

    with pytest.raises(ValueError, match="allow_origins"):
        trajscope.show(demo_run, proxy=True)
    shown = trajscope.show(demo_run)
    try:
        port = shown.viewer.port
        pg = browser.new_page()
        pg.goto(f"http://127.0.0.1:{evil}/", wait_until="load")
        assert pg.evaluate(_PROBE, f"ws://127.0.0.1:{port}/") == "refused"
        assert _status(port, "evil.example") == 403
        pg.goto(shown.src, wait_until="domcontentloaded")  # what the notebook's IFrame loads
        _wait(lambda: len(shown.viewer.server.get_clients()) == 1)
        pg.close()
    finally:
        shown.close()


def test_the_gate_and_its_inner_port_refuse_other_origins(demo_run, browser, evil):
    """Logged in through the gate, the user's browser still cannot be used by another page:
    not through the gate, and not through viser's inner port (which answers the gate only)."""
    v = Viewer(demo_run, host="127.0.0.2", port=free_port(), token="tok", poll_s=3600)
    try:
        ctx = browser.new_context()
        pg = ctx.new_page()
        pg.goto(v.url, wait_until="domcontentloaded")
        _wait(lambda: len(v.server.get_clients()) == 1)
        for page in (f"http://127.0.0.2:{evil}/", f"http://127.0.0.1:{evil}/"):
            pg.goto(page, wait_until="load")
            assert pg.evaluate(_PROBE, f"ws://127.0.0.2:{v.gate.port}/") == "refused"
            assert pg.evaluate(_PROBE, f"ws://127.0.0.1:{v.port}/") == "refused"  # the inner port
        assert v.gate.refused["origin"] >= 2 and v.guard.refused["inner"] >= 2
        assert _status(v.gate.port, f"evil.example:{v.gate.port}", "/?token=tok", addr="127.0.0.2") == 403
        # The inner port: 403 to anyone without the gate's header, whatever Host or cookie.
        for host in (f"127.0.0.1:{v.port}", "localhost"):
            assert _status(v.port, host) == 403
        cookie = {c["name"]: c["value"] for c in ctx.cookies()}[v.gate.cookie]
        header = {"Cookie": f"{v.gate.cookie}={cookie}"}
        own = f"http://127.0.0.2:{v.gate.port}"
        assert _ws(v.gate.port, own, addr="127.0.0.2", additional_headers=header) == "open"
        for origin in (f"https://127.0.0.2:{v.gate.port}", f"http://127.0.0.2:{evil}"):
            assert _ws(v.gate.port, origin, addr="127.0.0.2", additional_headers=header).startswith("refused")
        # A client's own copy of the gate's header is dropped, never trusted.
        forged = {**header, "X-Trajscope-Gate": "guess"}
        assert _ws(v.gate.port, own, addr="127.0.0.2", additional_headers=forged) == "open"
        ctx.close()
    finally:
        v.close()


def test_a_token_on_loopback_is_honoured(demo_run):
    v = Viewer(demo_run, port=free_port(), token="tok", poll_s=3600)
    try:
        assert v.gate is not None and "token=tok" in v.url
        assert _status(v.gate.port, f"127.0.0.1:{v.gate.port}") == 401
        assert _status(v.gate.port, f"127.0.0.1:{v.gate.port}", "/?token=tok") == 302
        assert _status(v.port, f"127.0.0.1:{v.port}") == 403  # viser's own port answers the gate only
    finally:
        v.close()


@pytest.mark.parametrize("token", [None, "tok"], ids=["loopback", "gate"])
def test_behind_a_proxy_that_rewrites_host_the_allowed_origin_works(demo_run, browser, token):
    """nginx's ``proxy_set_header Host $host;`` drops the port: the page's origin then differs
    from its Host. Refused by default; ``allow_origins=[the proxy's origin]`` makes it work."""
    port = free_port()
    origin = f"http://proxy.example:{port}"
    for allowed in ([], [origin]):
        v = Viewer(demo_run, port=free_port(), token=token, poll_s=3600, allow_origins=allowed)
        proxy = HostRewritingProxy(v.gate.port if v.gate is not None else v.port, port=port)
        try:
            pg = browser.new_page()
            r = pg.goto(f"{origin}/" + ("?token=tok" if token else ""), wait_until="domcontentloaded")
            assert r is not None
            if allowed:
                assert r.status == 200
                _wait(lambda v=v: len(v.server.get_clients()) == 1)
            else:
                assert r.status == 403  # the Host "proxy.example" is nobody the user named
            pg.close()
        finally:
            proxy.cut()
            v.close()


def test_idle_connections_do_not_lock_out_a_user_with_the_token(demo_run):
    """100 connections that never send a request head: the user's request is answered at
    once (the oldest idle ones make room), not after the gate's head timeout."""
    from trajscope.serve import _auth

    v = Viewer(demo_run, host="127.0.0.2", port=free_port(), token="tok", poll_s=3600)
    idle = []
    try:
        for _ in range(100):
            s = socket.create_connection(("127.0.0.2", v.gate.port), timeout=5)
            s.sendall(b"GET / HTTP/1.1\r\n")
            idle.append(s)
        _wait(lambda: v.gate.refused["busy"] >= 100 - _auth.MAX_PENDING_PER_ADDRESS)
        started = time.monotonic()
        for _ in range(5):
            c = http.client.HTTPConnection("127.0.0.2", v.gate.port, timeout=_auth.HEAD_TIMEOUT_S / 2)
            c.request("GET", "/?token=tok")
            assert c.getresponse().status == 302
            c.close()
        assert time.monotonic() - started < _auth.HEAD_TIMEOUT_S  # never waited for a timeout
        assert v.gate.waiting <= _auth.MAX_PENDING_PER_ADDRESS
    finally:
        for s in idle:
            s.close()
        v.close()
