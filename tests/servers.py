"""Real servers on 127.0.0.1 for the remote-storage tests: moto's S3 API server and
Debian's OpenSSH server, each in its own process, started and stopped by the tests."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from trajscope.serve import free_port

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
_REQUEST = re.compile(r'"(GET|PUT|POST|HEAD|DELETE) ')


def wait_port(port: int, proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


class S3Server:
    """``python -m moto.server`` on 127.0.0.1; its request log counts requests."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._log_file = open(log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        wait_port(self.port, self.proc)

    @property
    def env(self) -> dict[str, str]:
        """The variables that point boto, s3fs and trajscope's subprocesses at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def requests(self) -> int:
        """HTTP requests the server has answered so far."""
        self._log_file.flush()
        return len(_REQUEST.findall(self.log.read_text(errors="replace")))

    def stop(self) -> None:
        self.proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        self.proc.kill()
        self._log_file.close()


class SSHServer:
    """Debian's ``sshd`` on 127.0.0.1 with a host key and a client key made here, logging
    in as the current user; ``env`` configures fsspec's ``sftp://`` (sshfs) for it.
    ``read_only``: the SFTP server refuses every write with "permission denied"."""

    def __init__(self, folder: Path, *, read_only: bool = False) -> None:
        assert SSHD is not None
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        for name in ("host_key", "client_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True)
        (folder / "authorized_keys").write_text((folder / "client_key.pub").read_text())
        os.chmod(folder / "authorized_keys", 0o600)
        self.port = free_port()
        self.user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
        config = folder / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {folder / 'host_key'}",
                    f"AuthorizedKeysFile {folder / 'authorized_keys'}",
                    f"PidFile {folder / 'sshd.pid'}",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PubkeyAuthentication yes",
                    "PermitRootLogin prohibit-password",
                    "StrictModes no",
                    "UsePAM no",
                    "Subsystem sftp internal-sftp" + (" -R" if read_only else ""),  # -R: writes are refused
                    "",
                ]
            )
        )
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation folder
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=open(folder / "sshd.log", "wb")
        )
        wait_port(self.port, self.proc)

    def url(self, path: str) -> str:
        return f"sftp://{self.user}@127.0.0.1:{self.port}{path}"

    @property
    def env(self) -> dict[str, str]:
        """fsspec's configuration by environment (``FSSPEC_<PROTOCOL>``, JSON): the client
        key, and the host key accepted without a known_hosts file."""
        return {"FSSPEC_SFTP": json.dumps({"client_keys": [str(self.folder / "client_key")], "known_hosts": None})}

    def stop(self) -> None:
        self.proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        self.proc.kill()


@contextlib.contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for a block (this process and the subprocesses it starts)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class Proxy:
    """A TCP relay from a port of its own to ``127.0.0.1:target``; :meth:`cut` makes the
    network fail (open connections reset, new ones refused) until :meth:`restore`."""

    def __init__(self, target: int, *, port: int | None = None) -> None:
        self.target = target
        self.port = port or free_port()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread, so the port is free
            listener.close()
        for c in conns:
            with contextlib.suppress(OSError):
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset
                c.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._conns += [client, upstream]
            self._relay(client, upstream)

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        """Bytes both ways, a thread each."""
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def other_origin(host: str = "127.0.0.1") -> Iterator[int]:
    """A plain web page on a port of its own (another origin than any viewer's); its port."""
    import http.server

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<html><body>another site</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer((host, free_port()), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


class HostRewritingProxy(Proxy):
    """A reverse proxy as nginx's ``proxy_set_header Host $host;`` makes one: every request
    reaches ``127.0.0.1:target`` with ``Host`` set to the name the browser asked for, without
    its port (websocket upgrades relayed as they are, then bytes both ways)."""

    _HOST = re.compile(rb"\r\nhost:[ \t]*([^\r\n:]+|\[[^\]\r\n]*\])(?::\d+)?[ \t]*\r\n", re.IGNORECASE)

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        threading.Thread(target=self._rewrite, args=(client, upstream), daemon=True).start()
        threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _rewrite(self, src: socket.socket, dst: socket.socket) -> None:
        upgraded, pending = False, b""
        try:
            while data := src.recv(65536):
                if upgraded:
                    dst.sendall(data)
                    continue
                pending += data
                while b"\r\n\r\n" in pending:  # whole request heads (the page sends no bodies)
                    head, _, pending = pending.partition(b"\r\n\r\n")
                    head = self._HOST.sub(lambda m: b"\r\nHost: " + m.group(1) + b"\r\n", head + b"\r\n")
                    dst.sendall(head + b"\r\n")
                    if b"upgrade: websocket" in head.lower():
                        upgraded = True
                        dst.sendall(pending)
                        pending = b""
                        break
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
