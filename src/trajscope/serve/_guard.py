"""Which requests a trajscope server answers: no web page of another origin, no foreign host.

A browser lets any page it shows open a websocket to any address, ``127.0.0.1`` included,
and sends the page's ``Origin`` with it; it lets a page's own host name resolve to
``127.0.0.1`` (DNS rebinding) and then sends that name as ``Host``. viser checks neither,
so every server trajscope starts runs behind a :class:`Guard`:

- an HTTP request whose ``Host`` is not a loopback name or address (``localhost``,
  ``127.0.0.0/8``, ``::1``), nor a host the user chose (the interface asked for, the host
  of an allowed origin), gets ``403``;
- a websocket upgrade whose ``Origin`` is not the viewer's own (``http://`` and the
  request's ``Host``: scheme, host and port compared exactly, scheme and host without
  regard to case) nor one of the allowed origins gets ``403``. A client that is not a
  browser sends no ``Origin`` and is let in: a web page cannot leave it out.
- behind the token gate, viser's own port answers only requests carrying the gate's
  secret header (:attr:`Guard.inner_secret`), which the gate adds and strips from what
  clients send: a page that finds the inner port by scanning gets ``403``.

viser offers no hook for this; the check is put into the ``process_request`` hook of the
websockets server that viser starts (:func:`guarded_viser`), and a request with a foreign
``Host`` is sent to the new server before it is used: a viser whose server could not be
guarded is stopped and reported, never served unguarded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http
import ipaddress
import secrets
import socket
import threading
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

INNER_HEADER = "X-Trajscope-Gate"
"""The header by which the token gate proves itself to viser's inner port."""

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """A name or address that only ever means this machine (never one a DNS answer sets)."""
    h = host.strip().strip("[]").lower()
    if h in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def split_host(value: str) -> tuple[str, int | None]:
    """``Host`` header or netloc -> (host lower-cased, port or None); ``("", None)`` when malformed."""
    v = value.strip()
    if not v or any(c in v for c in "/@?#\\ \t"):
        return "", None
    if v.startswith("["):
        end = v.find("]")
        if end < 0:
            return "", None
        host, rest = v[1:end], v[end + 1 :]
        if rest and not rest.startswith(":"):
            return "", None
        port_s = rest[1:] if rest else ""
    else:
        host, _, port_s = v.partition(":") if v.count(":") <= 1 else (v, "", "")
    if port_s:
        if not port_s.isdigit() or not 0 < int(port_s) < 65536:
            return "", None
        return host.lower(), int(port_s)
    return host.lower(), None


def normalise_origin(origin: str) -> str | None:
    """``scheme://host:port`` with the default port made explicit; None if not an http(s) origin."""
    o = urllib.parse.urlsplit(origin.strip())
    scheme = o.scheme.lower()
    if scheme not in ("http", "https") or o.path not in ("", "/") or o.query or o.fragment or o.username:
        return None
    host, port = split_host(o.netloc)
    if not host:
        return None
    port = port or (443 if scheme == "https" else 80)
    return f"{scheme}://{_bracket(host)}:{port}"


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def machine_names() -> set[str]:
    """This machine's own names and addresses, for a viewer that listens on every interface."""
    names = {socket.gethostname().lower()}
    with contextlib.suppress(OSError):
        names.add(socket.getfqdn().lower())
    for name in list(names):
        with contextlib.suppress(OSError):
            for info in socket.getaddrinfo(name, None):
                names.add(str(info[4][0]).lower())
    return names


@dataclasses.dataclass
class Guard:
    """The rule for one server's requests (see the module's text); counts what it refused."""

    hosts: frozenset[str] = frozenset()
    """Host names besides the loopback ones that ``Host`` may carry (lower case, no port)."""
    origins: frozenset[str] = frozenset()
    """Origins (normalised, :func:`normalise_origin`) allowed besides the viewer's own."""
    inner_secret: str | None = None
    """When set (viser behind the gate), every request must carry it in :data:`INNER_HEADER`."""
    refused: dict[str, int] = dataclasses.field(default_factory=lambda: {"host": 0, "origin": 0, "inner": 0})
    """Requests refused, by reason."""

    @classmethod
    def make(cls, *, bind_host: str = "127.0.0.1", allow_origins: Iterable[str] = (), inner: bool = False) -> Guard:
        """The guard of a server listening on ``bind_host``, with the user's allowed origins."""
        origins = set()
        for o in allow_origins:
            n = normalise_origin(o)
            if n is None:
                raise ValueError(f"--allow-origin {o!r} is not an origin (like https://host:port)")
            origins.add(n)
        hosts = {split_host(o.split("://", 1)[1])[0] for o in origins}
        b = bind_host.strip("[]").lower()
        if b in ("", "0.0.0.0", "::"):
            hosts |= machine_names()
        elif not is_loopback(b):
            hosts.add(b)
        return cls(frozenset(hosts), frozenset(origins), secrets.token_urlsafe(32) if inner else None)

    def host_ok(self, host_header: str | None) -> bool:
        host, _ = split_host(host_header or "")
        return bool(host) and (is_loopback(host) or host in self.hosts)

    def origin_ok(self, origin: str | None, host_header: str | None) -> bool:
        """A websocket's ``Origin``: absent (not a browser), the viewer's own, or allowed."""
        if origin is None:
            return True
        n = normalise_origin(origin)
        if n is None:
            return False
        if n in self.origins:
            return True
        host, port = split_host(host_header or "")
        return bool(host) and n == f"http://{_bracket(host)}:{port or 80}" and self.host_ok(host_header)

    def check(self, headers: Mapping[str, str]) -> str | None:
        """Why a request with these headers (names lower-cased) is refused; None to serve it."""
        if self.inner_secret is not None:
            given = headers.get(INNER_HEADER.lower(), "")
            if not secrets.compare_digest(given.encode("utf-8", "replace"), self.inner_secret.encode()):
                self.refused["inner"] += 1
                return "this port serves the token gate only"
            return None
        if not self.host_ok(headers.get("host")):
            self.refused["host"] += 1
            return "a request for another host name (DNS rebinding?) refused"
        if headers.get("upgrade", "").lower() == "websocket" and not self.origin_ok(
            headers.get("origin"), headers.get("host")
        ):
            self.refused["origin"] += 1
            return "a websocket from a page of another origin refused (see --allow-origin in docs/viewer.md)"
        return None


_install_lock = threading.Lock()
_pending: list[Guard] = []


def _guarding_serve(original: Any) -> Any:
    def serve(handler: Any, *args: Any, **kwargs: Any) -> Any:
        guard = _pending.pop() if _pending else None
        if guard is None:
            return original(handler, *args, **kwargs)
        inner = kwargs.get("process_request")

        def process_request(connection: Any, request: Any) -> Any:
            from websockets.datastructures import Headers
            from websockets.http11 import Response

            headers = {k.lower(): v for k, v in request.headers.raw_items()}
            why = guard.check(headers)
            if why is not None:
                body = f"trajscope: {why}.\n".encode()
                h = Headers({"Content-Type": "text/plain", "Content-Length": str(len(body)), "Connection": "close"})
                return Response(http.HTTPStatus.FORBIDDEN, "Forbidden", h, body)
            return inner(connection, request) if inner is not None else None

        kwargs["process_request"] = process_request
        return original(handler, *args, **kwargs)

    serve.__trajscope_guard__ = True  # type: ignore[attr-defined]
    return serve


@contextlib.contextmanager
def _serving_with(guard: Guard) -> Iterator[None]:
    import websockets.asyncio.server as ws_server

    with _install_lock:
        original = ws_server.serve
        ws_server.serve = _guarding_serve(original)
        _pending.append(guard)
        try:
            yield
        finally:
            _pending.clear()
            ws_server.serve = original


def guarded_viser(guard: Guard, *, host: str, port: int) -> Any:
    """A ``viser.ViserServer`` on ``host:port`` whose every request passes ``guard``.

    Raises ``RuntimeError`` (after stopping it) if the server answers a request the guard
    refuses: then this viser starts its server in a way trajscope cannot guard."""
    import viser

    with _serving_with(guard):
        server = viser.ViserServer(host=host, port=port, verbose=False)
    if probe(server.get_port(), host="127.0.0.1" if host in ("0.0.0.0", "::", "") else host) != 403:
        server.stop()
        raise RuntimeError(
            f"viser {viser.__version__} serves in a way trajscope cannot guard against other web pages; "
            "not serving (tell trajscope's developers which viser version this is)"
        )
    for k in guard.refused:  # the probe's refusal is not the user's
        guard.refused[k] = 0
    return server


def probe(port: int, *, host: str = "127.0.0.1", path: str = "/", headers: Mapping[str, str] | None = None) -> int:
    """The status a plain GET of ``path`` with ``headers`` (default: a foreign ``Host``) gets."""
    import http.client

    c = http.client.HTTPConnection(host, port, timeout=10)
    try:
        c.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        for k, v in (headers or {"Host": "trajscope-guard-probe.invalid"}).items():
            c.putheader(k, v)
        c.endheaders()
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()
