"""What the viewer costs per displayed frame, and how fast a big root opens.

    python benchmarks/viewer.py            # 1, 16, 64, 256 environments of a humanoid
    python benchmarks/viewer.py --quick
    python benchmarks/viewer.py --clients-only   # only the 20-clients load test

For each count of environments it writes a run of MuJoCo Playground's DM Control humanoid
(nq=28, 20 geoms) simulated with random controls, opens it in the viewer in grid layout with
every environment shown, connects a real websocket client (as a browser would: the bytes it
receives are counted), and plays frames at 30 per second. It prints the server-side
milliseconds per frame (MuJoCo kinematics of every shown environment plus the scene update),
the bytes sent per frame, and the frame rate that leaves. Then it writes a root with one run
of 1,000 captures and times opening it until the first client has the page's state.

Load: 20 websocket clients on one viewer of 16 humanoids, playing at 30 frames per second,
all reading; then 19 reading and one stalled (it opened its websocket and never reads
again, like a laptop gone to sleep). It prints the updates per second each reading client
received (minimum and median), side by side: a stalled client must not slow the others.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import tyro

import trajscope
from trajscope.serve import ScenePanel, Viewer


@dataclasses.dataclass(frozen=True)
class Args:
    quick: bool = False
    """Fewer frames per count."""
    envs: tuple[int, ...] = (1, 16, 64, 256)
    frames: int = 120
    """Frames played per count (40 with --quick)."""
    captures: int = 1000
    """Captures in the big root."""
    clients: int = 20
    """Websocket clients of the load test."""
    clients_only: bool = False
    """Run only the load test."""
    browser: bool = True
    """Also measure in a headless Chromium: the server pushing frames against the tab playing."""
    browser_envs: tuple[int, ...] = (16, 64, 256, 1024)
    browser_steps: int = 300
    """Steps of the browser side's captures (its first-frame and wire figures use 1,000)."""
    seconds: float = 10.0
    """Seconds of playback measured each way."""
    browser_only: bool = False


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def humanoid():
    import mujoco
    import mujoco_playground

    xml = Path(mujoco_playground.__file__).parent / "_src" / "dm_control_suite" / "xmls" / "humanoid.xml"
    return mujoco.MjModel.from_xml_path(str(xml))


def simulate(model, *, E: int, T: int, seed: int = 0) -> dict[str, np.ndarray]:
    import mujoco

    rng = np.random.default_rng(seed)
    d = mujoco.MjData(model)
    qpos = np.zeros((T, E, model.nq), np.float32)
    reward = np.zeros((T, E), np.float32)
    for e in range(E):
        mujoco.mj_resetData(model, d)
        d.qpos[7:] = rng.normal(0, 0.2, model.nq - 7)
        for t in range(T):
            d.ctrl[:] = rng.uniform(-1, 1, model.nu)
            for _ in range(5):
                mujoco.mj_step(model, d)
            qpos[t, e] = d.qpos
            reward[t, e] = d.qpos[2]
    return {"qpos": qpos, "reward": reward, "metrics": {"height": reward}}


class Client:
    """A websocket client speaking viser's protocol version; counts the bytes it gets."""

    def __init__(self, port: int) -> None:
        import viser
        from websockets.sync.client import connect

        self.ws = connect(f"ws://127.0.0.1:{port}", subprotocols=[f"viser-v{viser.__version__}"], max_size=None)
        self.bytes = 0
        self.messages = 0
        self.last = time.monotonic()
        self._stop = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            while not self._stop:
                try:
                    msg = self.ws.recv(timeout=1.0)
                except TimeoutError:
                    continue  # nothing for a second: the viewer is idle
                self.bytes += len(msg)
                self.messages += 1
                self.last = time.monotonic()
        except Exception:  # noqa: BLE001 - closed
            pass

    def wait_messages(self, n: int, timeout: float = 30.0) -> bool:
        """Wait until ``n`` messages have arrived in all; whether they did."""
        end = time.monotonic() + timeout
        while self.messages < n and time.monotonic() < end:
            time.sleep(0.005)
        return self.messages >= n

    def quiet(self, seconds: float = 0.5, timeout: float = 30.0) -> None:
        """Wait until nothing has arrived for ``seconds``."""
        end = time.monotonic() + timeout
        while time.monotonic() - self.last < seconds and time.monotonic() < end:
            time.sleep(0.05)

    def close(self) -> None:
        self._stop = True
        self.ws.close()


class StalledClient:
    """Opens the viewer's websocket (a real upgrade handshake) and never reads again, with
    a small receive buffer: the server's sends to it block as soon as a few kB wait."""

    def __init__(self, port: int) -> None:
        import viser

        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Protocol: viser-v{viser.__version__}\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise RuntimeError(f"websocket upgrade refused: {head[:200]!r}")

    def close(self) -> None:
        self.sock.close()


STEPS = 60
"""Steps of each benchmark capture; playback loops over them."""


def grid_viewer(model, root: Path, name: str, E: int) -> Viewer:
    """A viewer of a capture of ``E`` humanoids (written once per name), every one shown."""
    if not (root / name).exists():
        with trajscope.RunWriter(root, name=name, model=model, env_name="humanoid") as w:
            w.add_capture(step=0, **simulate(model, E=E, T=STEPS))
    v = Viewer(str(root / name), port=_port(), poll_s=3600)
    v.panel(ScenePanel).layout.value = "grid"
    v.panel(ScenePanel).count.value = E
    v.reload()
    return v


def play(v: Viewer, frames: int) -> tuple[list[float], float]:
    """Frames shown at 30 per second, as playback does (viser sends only the newest pose of
    a node when several wait, so unpaced frames would not all be sent): the server's
    milliseconds per frame, and the seconds it took."""
    ms = []
    start = time.perf_counter()
    for i in range(frames):
        t0 = time.perf_counter()
        v.show_step((i + 1) % STEPS)
        ms.append(1000 * (time.perf_counter() - t0))
        time.sleep(max(0.0, start + (i + 1) / 30 - time.perf_counter()))
    return ms, time.perf_counter() - start


def bench_clients(model, root: Path, *, clients: int, stalled: int, frames: int, E: int = 16) -> dict[str, float]:
    """Updates per second received by each reading client while the viewer plays."""
    v = grid_viewer(model, root, f"humanoid-{E}", E)
    try:
        stuck = [StalledClient(v.port) for _ in range(stalled)]
        readers = [Client(v.port) for _ in range(clients - stalled)]
        for c in readers:
            c.quiet()
        m0 = [c.messages for c in readers]
        ms, seconds = play(v, frames)
        for c in readers:
            c.quiet(0.3)
        rates = [(c.messages - m) / seconds for c, m in zip(readers, m0)]
        alive = sum(1 for c in readers if not c._stop and c._thread.is_alive())
        for c in readers:
            c.close()
        for c in stuck:
            c.close()
    finally:
        v.close()
    return {
        "clients": clients,
        "stalled": stalled,
        "min_ups": min(rates),
        "median_ups": statistics.median(rates),
        "server_ms": statistics.median(ms),
        "readers_alive": alive,
    }


def bench_frames(model, root: Path, E: int, frames: int) -> dict[str, float]:
    v = grid_viewer(model, root, f"humanoid-{E}", E)
    try:
        client = Client(v.port)
        client.quiet()
        b0 = client.bytes
        ms, _ = play(v, frames)
        client.quiet(0.3)
        sent = (client.bytes - b0) / frames
        client.close()
    finally:
        v.close()
    med = statistics.median(ms)
    return {"E": E, "ms": med, "p90": float(np.percentile(ms, 90)), "bytes": sent, "fps": 1000 / med}


def bench_open(model_root: Path, n: int) -> dict[str, float]:
    import mujoco

    from trajscope.demo import CARTPOLE_XML

    model = mujoco.MjModel.from_xml_string(CARTPOLE_XML)
    rng = np.random.default_rng(0)
    with trajscope.RunWriter(model_root, name="big", model=model, max_queue=n + 1) as w:
        for i in range(n):
            w.add_capture(step=i * 1000, qpos=rng.normal(size=(20, 2, model.nq)), reward=rng.normal(size=(20, 2)))
    t0 = time.perf_counter()
    v = Viewer(str(model_root), port=_port(), poll_s=3600)
    ready = time.perf_counter() - t0
    try:
        t1 = time.perf_counter()
        client = Client(v.port)
        client.quiet(0.3)
        page = client.last - t1 + (t1 - t0)
        nbytes = client.bytes
        client.close()
    finally:
        v.close()
    return {"ready_s": ready, "page_s": page, "bytes": nbytes}


def print_load(load: list[dict[str, float]]) -> None:
    print()
    print(f"load: {load[0]['clients']} websocket clients, 16 humanoids in a grid, 30 frames/s played")
    header = f"{'stalled':>8} {'min upd/s':>10} {'median upd/s':>13} {'server ms/frame':>16} {'readers alive':>14}"
    print(header)
    print("-" * len(header))
    for r in load:
        print(
            f"{r['stalled']:>8} {r['min_ups']:>10.1f} {r['median_ups']:>13.1f} {r['server_ms']:>16.2f}"
            f" {r['readers_alive']:>14}"
        )
    print(
        f"viewer_load: clients={load[0]['clients']} min_ups_all_reading={load[0]['min_ups']:.1f} "
        f"min_ups_one_stalled={load[1]['min_ups']:.1f} ratio={load[1]['min_ups'] / max(load[0]['min_ups'], 1e-9):.3f}"
    )


def run_load(model, root: Path, clients: int, frames: int) -> list[dict[str, float]]:
    # Interleaved, twice each, so that a burst of other work on the machine shows as spread.
    runs = [bench_clients(model, root, clients=clients, stalled=s, frames=frames) for s in (0, 1, 1, 0)]
    best = {s: max((r for r in runs if r["stalled"] == s), key=lambda r: r["min_ups"]) for s in (0, 1)}
    return [best[0], best[1]]


def browser_side(args: Args, model) -> None:
    """The browser side (``_browser_bench.py``): the tab playing against the server pushing."""
    import _browser_bench

    with tempfile.TemporaryDirectory(prefix="trajscope-viewer-bench-") as tmp:
        _browser_bench.run(
            model, Path(tmp), simulate, envs=args.browser_envs, steps=args.browser_steps,
            seconds=args.seconds, tabs=args.clients,
        )  # fmt: skip


def main(args: Args) -> None:
    model = humanoid()
    frames = 40 if args.quick else args.frames
    if args.browser_only:
        browser_side(args, model)
        return
    with tempfile.TemporaryDirectory(prefix="trajscope-viewer-bench-") as tmp:
        load = run_load(model, Path(tmp), args.clients, 90 if args.quick else 300)
        if args.clients_only:
            print_load(load)
            return
        rows = [bench_frames(model, Path(tmp), E, frames) for E in args.envs]
        big = bench_open(Path(tmp) / "root", args.captures)
    print_load(load)
    print()
    print(f"humanoid (nq={model.nq}, {model.ngeom} geoms), grid layout, every environment shown, {frames} frames")
    print(f"viser {__import__('viser').__version__}, mujoco {__import__('mujoco').__version__}, {os.cpu_count()} CPUs")
    header = f"{'envs':>6} {'ms/frame':>9} {'p90 ms':>8} {'kB/frame':>9} {'max fps':>8}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['E']:>6} {r['ms']:>9.2f} {r['p90']:>8.2f} {r['bytes'] / 1e3:>9.1f} {r['fps']:>8.0f}")
    print()
    print(
        f"root with {args.captures} captures: viewer ready in {big['ready_s']:.3f} s, first client has the page "
        f"state {big['page_s']:.3f} s after start ({big['bytes'] / 1e3:.0f} kB)"
    )
    by_e = {r["E"]: r for r in rows}
    if 64 in by_e:
        print(f"viewer: ms_per_frame_64={by_e[64]['ms']:.2f} kB_per_frame_64={by_e[64]['bytes'] / 1e3:.1f}")
    if args.browser:
        browser_side(args, model)


if __name__ == "__main__":
    main(tyro.cli(Args))
