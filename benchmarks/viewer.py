"""What the viewer costs per displayed frame, and how fast a big root opens.

    python benchmarks/viewer.py            # 1, 16, 64, 256 environments of a humanoid
    python benchmarks/viewer.py --quick

For each count of environments it writes a run of MuJoCo Playground's DM Control humanoid
(nq=28, 20 geoms) simulated with random controls, opens it in the viewer in grid layout with
every environment shown, connects a real websocket client (as a browser would: the bytes it
receives are counted), and plays frames at 30 per second. It prints the server-side
milliseconds per frame (MuJoCo kinematics of every shown environment plus the scene update),
the bytes sent per frame, and the frame rate that leaves. Then it writes a root with one run
of 1,000 captures and times opening it until the first client has the page's state.
"""

from __future__ import annotations

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
from trajscope.serve import Viewer


@dataclasses.dataclass(frozen=True)
class Args:
    quick: bool = False
    """Fewer frames per count."""
    envs: tuple[int, ...] = (1, 16, 64, 256)
    frames: int = 120
    """Frames played per count (40 with --quick)."""
    captures: int = 1000
    """Captures in the big root."""


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
                msg = self.ws.recv(timeout=1.0)
                self.bytes += len(msg)
                self.messages += 1
                self.last = time.monotonic()
        except Exception:  # noqa: BLE001 - closed or timed out
            pass

    def quiet(self, seconds: float = 0.5, timeout: float = 30.0) -> None:
        """Wait until nothing has arrived for ``seconds``."""
        end = time.monotonic() + timeout
        while time.monotonic() - self.last < seconds and time.monotonic() < end:
            time.sleep(0.05)

    def close(self) -> None:
        self._stop = True
        self.ws.close()


def bench_frames(model, root: Path, E: int, frames: int) -> dict[str, float]:
    T = 60
    with trajscope.RunWriter(root, name=f"humanoid-{E}", model=model, env_name="humanoid") as w:
        w.add_capture(step=0, **simulate(model, E=E, T=T))
    v = Viewer(str(root / f"humanoid-{E}"), port=_port(), poll_s=3600)
    try:
        v.scene.layout.value = "grid"
        v.scene.count.value = E
        v._reload()
        client = Client(v.port)
        client.quiet()
        b0 = client.bytes
        ms = []
        start = time.perf_counter()
        for i in range(frames):
            t0 = time.perf_counter()
            v.show_step(i % T)
            ms.append(1000 * (time.perf_counter() - t0))
            # Paced at 30 frames per second, as playback is: viser sends only the newest
            # pose of a node when several wait, so unpaced frames would not all be sent.
            time.sleep(max(0.0, start + (i + 1) / 30 - time.perf_counter()))
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


def main(args: Args) -> None:
    model = humanoid()
    frames = 40 if args.quick else args.frames
    with tempfile.TemporaryDirectory(prefix="trajscope-viewer-bench-") as tmp:
        rows = [bench_frames(model, Path(tmp), E, frames) for E in args.envs]
        big = bench_open(Path(tmp) / "root", args.captures)
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


if __name__ == "__main__":
    main(tyro.cli(Args))
