"""What following a run on an object store costs: requests while a viewer sits idle, and
what the local cache of capture files saves.

    python benchmarks/remote.py              # 60 s idle per poll interval
    python benchmarks/remote.py --seconds 20

Starts moto's S3 API server on 127.0.0.1 (``pip install 'moto[server]'``), writes a run of
4 captures of 16 humanoids there, opens it in a viewer and counts the HTTP requests the
server answers while nothing changes, for the default remote poll interval and for 1 s.
Then it reads every array of every capture twice in fresh processes' worth of state (a
new ``open_run``): cold from the server, then from the local cache, and prints the
requests and seconds of each.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tyro

import trajscope
from trajscope.serve import Viewer

sys.path.insert(0, str(Path(__file__).parent))
from viewer import humanoid, simulate  # the sibling benchmark's model and rollout


@dataclasses.dataclass(frozen=True)
class Args:
    seconds: float = 60.0
    """Idle seconds per poll interval measured."""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Moto:
    def __init__(self, log: Path) -> None:
        self.port = _port()
        self.log = log
        self._f = open(log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._f,
            stderr=subprocess.STDOUT,
        )
        for _ in range(600):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            time.sleep(0.05)
        os.environ.update(
            AWS_ENDPOINT_URL=f"http://127.0.0.1:{self.port}",
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            AWS_DEFAULT_REGION="us-east-1",
        )

    def requests(self) -> int:
        self._f.flush()
        return len(re.findall(r'"(GET|PUT|POST|HEAD|DELETE) ', self.log.read_text(errors="replace")))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self._f.close()


def idle_requests(moto: Moto, url: str, poll_s: float | None, seconds: float) -> tuple[float, float]:
    """Requests per minute of an idle viewer, and its poll interval."""
    v = Viewer(url, port=_port(), poll_s=poll_s)
    try:
        time.sleep(2 * v.poll_s)  # past opening the run
        r0, t0 = moto.requests(), time.monotonic()
        time.sleep(seconds)
        return (moto.requests() - r0) * 60 / (time.monotonic() - t0), v.poll_s
    finally:
        v.close()


def read_all(url: str) -> int:
    run = trajscope.open_run(url)
    n = 0
    for info in run.captures:
        cap = run.capture(info)
        for name in cap.names():
            n += cap.load(name).nbytes
    return n


def main(args: Args) -> None:
    import fsspec

    with tempfile.TemporaryDirectory(prefix="trajscope-remote-bench-") as tmp:
        moto = Moto(Path(tmp) / "moto.log")
        os.environ["TRAJSCOPE_CACHE"] = str(Path(tmp) / "cache")
        try:
            fsspec.filesystem("s3").mkdir("bench")
            model = humanoid()
            with trajscope.RunWriter("s3://bench/runs", name="h", model=model, env_name="humanoid") as w:
                for i in range(4):
                    w.add_capture(step=i * 1000, **simulate(model, E=16, T=100, seed=i))
            url = "s3://bench/runs/h"
            rows = [idle_requests(moto, url, poll, args.seconds) for poll in (None, 1.0)]
            r0, t0 = moto.requests(), time.perf_counter()
            nbytes = read_all(url)
            cold = (moto.requests() - r0, time.perf_counter() - t0)
            r0, t0 = moto.requests(), time.perf_counter()
            read_all(url)
            warm = (moto.requests() - r0, time.perf_counter() - t0)
        finally:
            moto.stop()
    print()
    print(f"moto server on 127.0.0.1; a run of 4 captures x 16 humanoids x 100 steps; {args.seconds:.0f} s idle each")
    print(f"{'poll interval':>14} {'requests/min idle':>18}")
    for rate, poll in rows:
        print(f"{poll:>12.1f} s {rate:>18.1f}")
    print(f"read every array of every capture: cold {cold[0]} requests in {cold[1]:.2f} s ({nbytes / 1e6:.1f} MB),")
    print(f"                                  cached {warm[0]} requests in {warm[1]:.2f} s")
    print(
        f"remote: idle_requests_per_min={rows[0][0]:.1f} at poll {rows[0][1]:.0f} s "
        f"({rows[1][0]:.1f} at {rows[1][1]:.0f} s); cold_requests={cold[0]} cached_requests={warm[0]}"
    )


if __name__ == "__main__":
    main(tyro.cli(Args))
