"""A token gate in front of the viewer: for a viewer beyond the loopback interface, or on it
when a token is asked for.

viser has no authentication. With the gate, viser listens on 127.0.0.1 at a private port
and answers only requests that carry the gate's secret header (see :mod:`._guard`); the
gate listens where the user asked. Every connection starts with an HTTP request (page,
asset or websocket upgrade); the gate reads that request's head and:

- a ``Host`` that is neither a loopback name nor the interface asked for (nor the host of
  an allowed origin): ``403`` (DNS rebinding);
- a websocket upgrade whose ``Origin`` is not this gate's own address (``http://`` and the
  ``Host`` asked for, compared exactly) nor an allowed origin: ``403``, whatever cookie it
  carries;
- with this gate's session cookie (``trajscope_<port>``, a random session key, never the
  token itself): forwards the connection, bytes both ways, to the viewer, with the secret
  header added (and any copy the client sent removed);
- with ``?token=<token>`` in the URL: answers with a redirect to the same path without the
  token, setting the cookie (HttpOnly, SameSite=Strict), so the token leaves the address
  bar and the page's later requests and its websocket carry the cookie;
- otherwise: ``401`` and the connection is closed.

A client has :data:`HEAD_TIMEOUT_S` seconds to send its request head. At most
:data:`MAX_PENDING` connections may be waiting for theirs at once, and at most
:data:`MAX_PENDING_PER_ADDRESS` from one address: past either, the oldest waiting one (of
that address first) is closed to make room, so idle connections can neither use up the
process's files nor lock out a user who sends a request at once. Tokens and cookies are
compared in constant time. What the gate does not protect against is written in
docs/viewer.md ("The token gate").
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import secrets
import threading
import urllib.parse

from ._guard import INNER_HEADER, Guard

COOKIE = "trajscope"
"""The session cookie's name is this, ``_`` and the gate's port: two gated viewers on one
host keep a cookie each."""
_MAX_HEAD = 64 * 1024
HEAD_TIMEOUT_S = 10.0
MAX_PENDING = 64
MAX_PENDING_PER_ADDRESS = 16


class TokenGate:
    """Listens on ``host:port`` and forwards authenticated connections to ``127.0.0.1:inner_port``.

    ``guard``: the host and origin rule of the public side (its ``inner_secret`` is the
    header the gate adds for viser's inner port)."""

    def __init__(self, host: str, port: int, inner_port: int, token: str, *, guard: Guard) -> None:
        if not token:
            raise ValueError("an empty token would let everyone in")
        self.host, self.inner_port, self.token = host, inner_port, token
        self.guard = guard
        self._session = secrets.token_urlsafe(32)
        self._waiting: collections.OrderedDict[int, tuple[str, asyncio.StreamWriter]] = collections.OrderedDict()
        self.refused = {"timeout": 0, "busy": 0, "host": 0, "origin": 0, "token": 0}
        """Connections turned away, by reason (tests and curious users); ``busy``: waiting
        ones closed to make room for newer ones."""
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, host, port))
            except BaseException as e:  # noqa: BLE001 - reported to the caller below
                errors.append(e)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="trajscope-token-gate", daemon=True)
        self._thread.start()
        ready.wait()
        if errors:
            raise errors[0]
        assert self._server is not None
        self.port = int(self._server.sockets[0].getsockname()[1])
        self.cookie = f"{COOKIE}_{self.port}"

    @property
    def waiting(self) -> int:
        """Connections now waiting for their request head."""
        return len(self._waiting)

    def close(self) -> None:
        """Stop listening, end every connection (forwarded ones too), then the loop."""

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for _, w in list(self._waiting.values()):
                w.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout=5)
        except Exception:  # noqa: BLE001 - closing goes on: the loop is stopped below
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def _ok(self, value: str | None, secret: str | None = None) -> bool:
        want = (secret or self.token).encode()
        return value is not None and hmac.compare_digest(value.encode("utf-8", "replace"), want)

    def _make_room(self, address: str) -> None:
        """Close the oldest waiting connection of ``address`` if it holds its share, else the
        oldest of all if the gate is full."""
        mine = [k for k, (a, _) in self._waiting.items() if a == address]
        if len(mine) >= MAX_PENDING_PER_ADDRESS:
            victim = mine[0]
        elif len(self._waiting) >= MAX_PENDING:
            victim = next(iter(self._waiting))
        else:
            return
        _, w = self._waiting.pop(victim)
        self.refused["busy"] += 1
        w.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        self._make_room(address)
        key = id(writer)
        self._waiting[key] = (address, writer)
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_S)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, asyncio.TimeoutError) as e:
            if isinstance(e, asyncio.TimeoutError) and key in self._waiting:
                self.refused["timeout"] += 1
            writer.close()
            return
        finally:
            self._waiting.pop(key, None)
        if len(head) > _MAX_HEAD:
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        target = parts[1] if len(parts) >= 2 else "/"
        cookies: dict[str, str] = {}
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
            if name.strip().lower() == "cookie":
                for item in value.split(";"):
                    k, _, v = item.strip().partition("=")
                    cookies[k] = v
        if not self.guard.host_ok(headers.get("host")):
            self.refused["host"] += 1
            await self._answer(writer, "403 Forbidden", b"trajscope: a request for another host name refused.\n")
            return
        if headers.get("upgrade", "").lower() == "websocket" and not self.guard.origin_ok(
            headers.get("origin"), headers.get("host")
        ):
            self.refused["origin"] += 1
            await self._answer(writer, "403 Forbidden", b"trajscope: websocket from another origin refused.\n")
            return
        url = urllib.parse.urlsplit(target)
        query = urllib.parse.parse_qs(url.query)
        if self._ok(cookies.get(self.cookie), self._session):
            await self._forward(self._inner_head(lines), reader, writer)
            return
        if self._ok((query.get("token") or [None])[0]):
            rest = urllib.parse.urlencode({k: v for k, v in query.items() if k != "token"}, doseq=True)
            location = url.path + (f"?{rest}" if rest else "")
            if not location.startswith("/") or location.startswith("//"):
                location = "/"  # never a redirect to another host
            writer.write(
                (
                    "HTTP/1.1 302 Found\r\n"
                    f"Location: {location}\r\n"
                    f"Set-Cookie: {self.cookie}={self._session}; HttpOnly; SameSite=Strict; Path=/\r\n"
                    "Content-Length: 0\r\nConnection: close\r\n\r\n"
                ).encode()
            )
            try:
                await writer.drain()
            finally:
                writer.close()
            return
        self.refused["token"] += 1
        body = b"trajscope: this viewer needs its token: open the URL that trajscope view printed.\n"
        await self._answer(writer, "401 Unauthorized", body)

    def _inner_head(self, lines: list[str]) -> bytes:
        """The request head as sent on to viser: the client's copies of the secret header
        dropped, the gate's own added."""
        name = INNER_HEADER.lower()
        kept = [ln for ln in lines[1:] if ln and ln.partition(":")[0].strip().lower() != name]
        out = [lines[0], *kept, f"{INNER_HEADER}: {self.guard.inner_secret}", "", ""]
        return "\r\n".join(out).encode("latin-1")

    @staticmethod
    async def _answer(writer: asyncio.StreamWriter, status: str, body: bytes) -> None:
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\n".encode()
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        try:
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _forward(self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.inner_port)
        except OSError:
            writer.close()
            return
        up_writer.write(head)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
