"""A token gate in front of the viewer, for when it listens beyond the loopback interface.

viser has no authentication. When the user asks for another interface, the viser server
still binds 127.0.0.1 on a private port, and this gate listens on the interface asked for.
Every connection starts with an HTTP request (page, asset or websocket upgrade); the gate
reads that request's head and:

- a websocket upgrade whose ``Origin`` is not this gate's own address (a page served from
  another port or host, in the user's browser): ``403``, whatever cookie it carries;
- with this gate's session cookie (``trajscope_<port>``, a random session key, never the
  token itself): forwards the connection, bytes both ways, to the viewer;
- with ``?token=<token>`` in the URL: answers with a redirect to the same path without the
  token, setting the cookie (HttpOnly, SameSite=Strict), so the token leaves the address
  bar and the page's later requests and its websocket carry the cookie;
- otherwise: ``401`` and the connection is closed.

A client has :data:`HEAD_TIMEOUT_S` seconds to send its request head, and at most
:data:`MAX_PENDING` connections may be waiting for theirs at once (more are closed at
once), so half-open connections cannot hold the gate or use up the process's files.
Tokens and cookies are compared in constant time. What the gate does not protect against
is written in docs/viewer.md ("The token gate").
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import threading
import urllib.parse

COOKIE = "trajscope"
"""The session cookie's name is this, ``_`` and the gate's port: two gated viewers on one
host keep a cookie each."""
_MAX_HEAD = 64 * 1024
HEAD_TIMEOUT_S = 10.0
MAX_PENDING = 64


class TokenGate:
    """Listens on ``host:port`` and forwards authenticated connections to ``127.0.0.1:inner_port``."""

    def __init__(self, host: str, port: int, inner_port: int, token: str) -> None:
        if not token:
            raise ValueError("an empty token would let everyone in")
        self.host, self.inner_port, self.token = host, inner_port, token
        self._session = secrets.token_urlsafe(32)
        self._pending = 0
        self.refused = {"timeout": 0, "busy": 0, "origin": 0, "token": 0}
        """Connections turned away, by reason (tests and curious users)."""
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

    def close(self) -> None:
        def stop() -> None:
            if self._server is not None:
                self._server.close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(stop)
        self._thread.join(timeout=5)

    def _ok(self, value: str | None, secret: str | None = None) -> bool:
        want = (secret or self.token).encode()
        return value is not None and hmac.compare_digest(value.encode("utf-8", "replace"), want)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._pending >= MAX_PENDING:
            self.refused["busy"] += 1
            writer.close()
            return
        self._pending += 1
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_S)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, asyncio.TimeoutError) as e:
            if isinstance(e, asyncio.TimeoutError):
                self.refused["timeout"] += 1
            writer.close()
            return
        finally:
            self._pending -= 1
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
        if headers.get("upgrade", "").lower() == "websocket" and not self._same_origin(headers):
            self.refused["origin"] += 1
            await self._answer(writer, "403 Forbidden", b"trajscope: websocket from another origin refused.\n")
            return
        url = urllib.parse.urlsplit(target)
        query = urllib.parse.parse_qs(url.query)
        if self._ok(cookies.get(self.cookie), self._session):
            await self._forward(head, reader, writer)
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

    @staticmethod
    def _same_origin(headers: dict[str, str]) -> bool:
        """A browser's websocket names the page's origin: it must be this gate's own
        address (the ``Host`` it was asked for). Clients that are not browsers send none."""
        origin = headers.get("origin")
        if origin is None:
            return True
        o = urllib.parse.urlsplit(origin)
        return o.scheme in ("http", "https") and bool(o.netloc) and o.netloc.lower() == headers.get("host", "").lower()

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
