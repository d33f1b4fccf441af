"""A token gate in front of the viewer, for when it listens beyond the loopback interface.

viser has no authentication. When the user asks for another interface, the viser server
still binds 127.0.0.1 on a private port, and this gate listens on the interface asked for.
Every connection starts with an HTTP request (page, asset or websocket upgrade); the gate
reads that request's head and:

- with a ``trajscope_token`` cookie equal to the token: forwards the connection, bytes both
  ways, to the viewer;
- with ``?token=<token>`` in the URL: answers with a redirect to the same path without the
  token, setting the cookie (HttpOnly, SameSite=Strict), so the token leaves the address
  bar and the page's later requests and its websocket carry the cookie;
- otherwise: ``401`` and the connection is closed.

Tokens are compared in constant time.
"""

from __future__ import annotations

import asyncio
import hmac
import threading
import urllib.parse

COOKIE = "trajscope_token"
_MAX_HEAD = 64 * 1024


class TokenGate:
    """Listens on ``host:port`` and forwards authenticated connections to ``127.0.0.1:inner_port``."""

    def __init__(self, host: str, port: int, inner_port: int, token: str) -> None:
        if not token:
            raise ValueError("an empty token would let everyone in")
        self.host, self.inner_port, self.token = host, inner_port, token
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

    def close(self) -> None:
        def stop() -> None:
            if self._server is not None:
                self._server.close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(stop)
        self._thread.join(timeout=5)

    def _ok(self, value: str | None) -> bool:
        return value is not None and hmac.compare_digest(value.encode(), self.token.encode())

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        if len(head) > _MAX_HEAD:
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        target = parts[1] if len(parts) >= 2 else "/"
        cookies: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "cookie":
                for item in value.split(";"):
                    k, _, v = item.strip().partition("=")
                    cookies[k] = v
        url = urllib.parse.urlsplit(target)
        query = urllib.parse.parse_qs(url.query)
        if self._ok(cookies.get(COOKIE)):
            await self._forward(head, reader, writer)
            return
        if self._ok((query.get("token") or [None])[0]):
            rest = urllib.parse.urlencode({k: v for k, v in query.items() if k != "token"}, doseq=True)
            location = url.path + (f"?{rest}" if rest else "")
            writer.write(
                (
                    "HTTP/1.1 302 Found\r\n"
                    f"Location: {location or '/'}\r\n"
                    f"Set-Cookie: {COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/\r\n"
                    "Content-Length: 0\r\nConnection: close\r\n\r\n"
                ).encode()
            )
        else:
            body = b"trajscope: this viewer needs its token: open the URL that trajscope view printed.\n"
            writer.write(
                b"HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\n"
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
        try:
            await writer.drain()
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
