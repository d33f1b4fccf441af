"""The browser side of ``benchmarks/viewer.py``: a real headless Chromium (Debian's, with
SwiftShader's software WebGL: a lower bound for a laptop's GPU) on the viewer, measuring
playback the old way (the server poses every frame and pushes it) and the new way (each tab
plays the capture it was sent once), side by side in one run.

For each count of environments: the browser's frame intervals (requestAnimationFrame,
median and p90), the server process's CPU per second of playback, bytes per second the tab
receives while playing, bytes per capture, the time from choosing a capture to its first
frame, and scrub latency. Then 20 websocket tabs, one of them stalled, each sent a capture.
"""

from __future__ import annotations

import shutil
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

import trajscope
from trajscope.serve import ScenePanel, Viewer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-gl=angle",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]
STATE = "window.__trajscopePlayer && window.__trajscopePlayer.state()"


def tiled(base: dict[str, np.ndarray], E: int) -> dict[str, np.ndarray]:
    """``E`` environments out of the simulated ones: copy ``k`` of environment ``e`` starts
    ``37 k`` steps later (looping), so no two environments move alike."""
    n = base["qpos"].shape[1]
    T = base["qpos"].shape[0]
    out: dict[str, Any] = {}
    for key in ("qpos", "reward"):
        a = base[key]
        cols = [np.roll(a[:, e % n], -37 * (e // n), axis=0) for e in range(E)]
        out[key] = np.stack(cols, axis=1)
    out["metrics"] = {"height": out["reward"]}
    assert out["qpos"].shape[0] == T
    return out


def write_run(model: Any, root: Path, base: dict[str, np.ndarray], E: int, name: str) -> Path:
    """A run of two captures of ``E`` humanoids (the second is the one played; the first
    is where "choosing a capture" starts from)."""
    if not (root / name).exists():
        data = tiled(base, E)
        with trajscope.RunWriter(
            root, name=name, model=model, env_name="humanoid", config={"control_dt_s": 0.025}
        ) as w:
            w.add_capture(step=0, **data)
            w.add_capture(step=1, **data)
    return root / name


def _port() -> int:
    from viewer import _port as port

    return port()


def first_frame_s(page: Any, t_choose: float) -> float:
    """Seconds from ``t_choose`` (the page's clock) to the first frame of the recording
    opened after it: the server's pose of the shown step, or the tab's own, which came first."""
    page.wait_for_function(
        f"({STATE}).openedAt > {t_choose} && (({STATE}).firstPoseAt !== null || ({STATE}).firstDrawnAt !== null)",
        timeout=600_000,
        polling=200,
    )
    s = page.evaluate(STATE)
    firsts = [x for x in (s["firstPoseAt"], s["firstDrawnAt"]) if x is not None]
    return (min(firsts) - t_choose) / 1000


def _say(*what: Any) -> None:
    """Progress, on stderr (the results go to stdout)."""
    import sys

    print(time.strftime("%H:%M:%S"), *what, file=sys.stderr, flush=True)


def _wait(cond: Any, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


class Counter:
    """Bytes the page's websocket receives (Chromium's own count, through Playwright)."""

    def __init__(self, page: Any) -> None:
        self.bytes = 0
        self.lock = threading.Lock()
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))

    def _frame(self, payload: Any) -> None:
        with self.lock:
            self.bytes += len(payload)


def bench_envs(pw: Any, model: Any, root: Path, base: dict[str, np.ndarray], E: int, seconds: float) -> dict[str, Any]:
    """One count of environments: before (server pushes) and after (the tab plays)."""
    path = write_run(model, root, base, E, f"humanoid-{E}-{base['qpos'].shape[0]}")
    v = Viewer(str(path), port=_port(), poll_s=3600)
    out: dict[str, Any] = {"E": E, "T": int(base["qpos"].shape[0])}
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    try:
        sp = v.panel(ScenePanel)
        sp.layout.value = "grid"
        sp.count.value = E
        page = browser.new_page(viewport={"width": 960, "height": 600})
        counter = Counter(page)
        page.goto(v.url)
        _say(E, "envs: page opened")
        page.wait_for_function(f"({STATE}) && ({STATE}).steps > 0", timeout=600_000, polling=200)
        _say(E, "envs: the tab has the capture")
        # Choosing a capture (the older one, as the down arrow does) to its first frame.
        t_choose = page.evaluate("performance.now()")
        v.act(v.load_capture, 0)
        out["first_frame_s"] = first_frame_s(page, t_choose)
        _say(E, "envs: first frame", out["first_frame_s"])
        v.act(v.load_capture, 1)
        rec = v.browser.current
        t0 = time.monotonic()
        _wait(lambda: rec.complete, 3600)
        out["encode_s"] = time.monotonic() - t0
        page.wait_for_function(f"({STATE}).received === ({STATE}).blocks", timeout=600_000, polling=200)
        out["capture_bytes"] = rec.num_bytes
        envs = v.stage.envs
        geoms = len(envs.node_names())
        out["float32_bytes"] = out["T"] * E * geoms * 7 * 4
        out["full"], out["coarse"] = v.stage.drawn_in_full()
        _say(E, "envs: all blocks in the tab; playing from the server")

        # After: the tab plays by itself (space), the server hears its step 4 times a second.
        v.act(v.show_step, 0)
        page.wait_for_function(f"({STATE}).shown === 0", timeout=600_000, polling=200)
        page.keyboard.press("Space")
        page.wait_for_function(f"({STATE}).playing", timeout=60_000, polling=200)
        _say(E, "envs: the tab plays")
        time.sleep(0.5)
        page.evaluate("window.__trajscopePlayer.frames = []; window.__trajscopePlayer.applyMs = []")
        b0, c0, w0 = counter.bytes, time.process_time(), time.monotonic()
        time.sleep(seconds)
        page.wait_for_function("window.__trajscopePlayer.frames.length > 5", timeout=600_000, polling=200)
        wall = time.monotonic() - w0
        s = page.evaluate(STATE)
        iv = s["frameIntervals"]
        work = s.get("applyMs") or []
        out["after"] = {
            "apply_med": statistics.median(work) if work else float("nan"),
            "apply_p90": float(np.percentile(work, 90)) if work else float("nan"),
            "server_ms": 0.0,
            "cpu": (time.process_time() - c0) / wall,
            "bytes_s": (counter.bytes - b0) / wall,
            "raf_med": statistics.median(iv) if iv else float("nan"),
            "raf_p90": float(np.percentile(iv, 90)) if iv else float("nan"),
            "decoded_mb": s["decodedBytes"] / 1e6,
            "stored_mb": s["storedBytes"] / 1e6,
        }
        page.keyboard.press("Space")
        _say(E, "envs: scrubbing")
        # Scrub: a step anywhere (its block decoded or not), to the tab drawing it.
        out["scrub_ms"] = page.evaluate(
            """async (steps) => {
              const p = window.__trajscopePlayer, out = [];
              for (const t of steps) {
                p.playing = false;
                const t0 = performance.now();
                p.seek(t, false);
                while (p.shownT !== t) await new Promise((r) => requestAnimationFrame(r));
                out.push(performance.now() - t0);
              }
              return out;
            }""",
            [int(x) for x in np.random.default_rng(1).integers(0, out["T"], 12)],
        )
        # Before: the server poses every frame at 30 per second and pushes it; the tab draws it.
        _say(E, "envs: the server pushes every frame")
        v.act(v.play_tabs, False, True)  # the tabs hand the poses back to the server
        time.sleep(0.5)
        page.evaluate("window.__trajscopePlayer.frames = []")
        b0, c0, w0 = counter.bytes, time.process_time(), time.monotonic()
        ms = []
        frames = int(seconds * 30)
        start = time.perf_counter()
        shown = v.shown
        for i in range(frames):
            t1 = time.perf_counter()
            with v.lock:  # what the server did per frame before: MuJoCo's kinematics of every env, one scene update
                v.stage.pose(shown.state((i + 1) % out["T"]))
            ms.append(1000 * (time.perf_counter() - t1))
            time.sleep(max(0.0, start + (i + 1) / 30 - time.perf_counter()))
        wall = time.monotonic() - w0
        before_iv = page.evaluate(f"({STATE}).frameIntervals")
        out["before"] = {
            "server_ms": statistics.median(ms),
            "cpu": (time.process_time() - c0) / wall,
            "bytes_s": (counter.bytes - b0) / wall,
            "raf_med": statistics.median(before_iv) if before_iv else float("nan"),
            "raf_p90": float(np.percentile(before_iv, 90)) if before_iv else float("nan"),
        }

        _say(E, "envs: playing in the tab")
        page.close()
    finally:
        browser.close()
        v.close()
    return out


def bench_first_frame(pw: Any, model: Any, root: Path, base: dict[str, np.ndarray], E: int) -> dict[str, float]:
    """Opening a capture of ``E`` x ``T`` steps: from choosing it to its first frame in the tab."""
    path = write_run(model, root, base, E, f"humanoid-{E}-{base['qpos'].shape[0]}")
    v = Viewer(str(path), port=_port(), poll_s=3600)
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    try:
        page = browser.new_page(viewport={"width": 960, "height": 600})
        page.goto(v.url)
        page.wait_for_function(f"({STATE}) && ({STATE}).steps > 0", timeout=600_000, polling=200)
        t_choose = page.evaluate("performance.now()")
        w0 = time.monotonic()

        def grid() -> None:  # the grid of every env, chosen at once (the panel's controls follow)
            v.view.layout, v.view.count = "grid", E
            v.load_capture(0)

        v.act(grid)
        server_s = time.monotonic() - w0
        first = first_frame_s(page, t_choose)
        page.wait_for_function(f"({STATE}).firstDrawnAt !== null", timeout=600_000, polling=200)
        s2 = page.evaluate(STATE)
        return {
            "E": E,
            "T": int(base["qpos"].shape[0]),
            "server_s": server_s,
            "first_frame_s": first,
            "tab_plays_s": (s2["firstDrawnAt"] - t_choose) / 1000,
        }
    finally:
        browser.close()
        v.close()


def bench_tabs(
    model: Any, root: Path, base: dict[str, np.ndarray], *, tabs: int, stalled: int, E: int = 16
) -> dict[str, Any]:
    """``tabs`` websocket tabs that say they can play (as the page's player does), ``stalled``
    of them never reading again; a capture is chosen: when each reading tab has it all."""
    import msgspec

    from viewer import Client, StalledClient  # the websocket clients of the server-side benchmark

    path = write_run(model, root, base, E, f"humanoid-{E}-{base['qpos'].shape[0]}")
    v = Viewer(str(path), port=_port(), poll_s=3600)
    sp = v.panel(ScenePanel)
    sp.layout.value = "grid"
    sp.count.value = E
    ready = msgspec.msgpack.encode({"type": "TrajscopeReadyMessage", "page_width": 1280, "page_height": 800})
    # viser lists a client (and trajscope sends it recordings) once its first camera report
    # arrives, as a page's does on load.
    camera = msgspec.msgpack.encode(
        {
            "type": "ViewerCameraMessage",
            "wxyz": (1.0, 0.0, 0.0, 0.0),
            "position": (3.0, -3.0, 2.0),
            "fov": 1.0,
            "near": 0.01,
            "far": 1000.0,
            "image_height": 800,
            "image_width": 1280,
            "look_at": (0.0, 0.0, 0.0),
            "up_direction": (0.0, 0.0, 1.0),
        }
    )
    try:
        stuck = []
        for _ in range(stalled):
            c = StalledClient(v.port)
            c.sock.sendall(_ws_frame(camera) + _ws_frame(ready))
            stuck.append(c)
        readers = [Client(v.port) for _ in range(tabs - stalled)]
        for c in readers:
            c.ws.send(camera)
            c.ws.send(ready)
        _wait(lambda: v.browser.tabs >= tabs and len(v.server.get_clients()) >= tabs, 60)
        for c in readers:
            c.quiet(0.5)
        b0 = [c.bytes for c in readers]
        c0, t0 = time.process_time(), time.monotonic()
        v.act(v.load_capture, 0)
        rec = v.browser.current
        _wait(lambda: rec.complete, 600)
        need = rec.num_bytes
        done = [None] * len(readers)

        def all_in() -> bool:
            for i, c in enumerate(readers):
                if done[i] is None and c.bytes - b0[i] >= need:
                    done[i] = time.monotonic() - t0
            return all(d is not None for d in done)

        _wait(all_in, 600)
        cpu = (time.process_time() - c0) / max(time.monotonic() - t0, 1e-9)
        for c in readers:
            c.close()
        for c in stuck:
            c.close()
    finally:
        v.close()
    got = [d for d in done if d is not None]
    return {
        "tabs": tabs,
        "stalled": stalled,
        "bytes": need,
        "median_s": statistics.median(got) if got else float("nan"),
        "max_s": max(got) if got else float("nan"),
        "complete": len(got),
        "cpu": cpu,
    }


def _ws_frame(payload: bytes) -> bytes:
    """One masked binary websocket frame (a client's), for the stalled tab's single message."""
    import os
    import struct

    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x82]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def run(model: Any, root: Path, simulate: Any, *, envs: tuple[int, ...], steps: int, seconds: float, tabs: int) -> None:
    from playwright.sync_api import sync_playwright

    if CHROMIUM is None:
        print("browser side: Debian's chromium is not installed (scripts/setup.sh installs it); skipped")
        return
    base = simulate(model, E=64, T=steps)
    base_long = simulate(model, E=64, T=1000) if steps != 1000 else base
    with sync_playwright() as pw:
        rows = []
        for E in envs:
            rows.append(bench_envs(pw, model, root, base, E, seconds))
            _say(E, "envs:", {k: v for k, v in rows[-1].items() if k != "scrub_ms"}, "scrub ms", rows[-1]["scrub_ms"])
        first = [bench_first_frame(pw, model, root, base_long, E) for E in (256, 1024)]
    wire = bench_wire(model, root, base_long, 256)
    load = [bench_tabs(model, root, base_long, tabs=tabs, stalled=s) for s in (0, 1, 1, 0)]
    print()
    print(
        f"browser side: headless Chromium, SwiftShader software WebGL (a lower bound for a laptop GPU), "
        f"960x600; humanoids, grid, every env shown, {steps} steps, {seconds:.0f} s of playback each way"
    )
    head = (
        f"{'envs':>5} {'full/coarse':>11} | {'before: srv ms/f':>16} {'cpu %':>6} {'kB/s':>8} {'rAF med/p90 ms':>15}"
        f" | {'after: cpu %':>12} {'kB/s':>6} {'rAF med/p90 ms':>15} | {'MB/capture':>10} {'x f32':>6}"
        f" {'first s':>7} {'scrub med/max ms':>17} {'tab JS med/p90 ms':>18}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        b, a = r["before"], r["after"]
        print(
            f"{r['E']:>5} {r['full']:>5}/{r['coarse']:<5} | {b['server_ms']:>16.1f} {100 * b['cpu']:>6.1f}"
            f" {b['bytes_s'] / 1e3:>8.0f} {b['raf_med']:>7.1f}/{b['raf_p90']:<7.1f}"
            f" | {100 * a['cpu']:>12.1f} {a['bytes_s'] / 1e3:>6.1f} {a['raf_med']:>7.1f}/{a['raf_p90']:<7.1f}"
            f" | {r['capture_bytes'] / 1e6:>10.2f} {r['capture_bytes'] / r['float32_bytes']:>6.3f}"
            f" {r['first_frame_s']:>7.2f} {statistics.median(r['scrub_ms']):>8.1f}/{max(r['scrub_ms']):<8.1f}"
            f" {a.get('apply_med', float('nan')):>9.2f}/{a.get('apply_p90', float('nan')):<8.2f}"
        )
    for r in rows:
        print(
            f"  {r['E']} envs: all blocks encoded in {r['encode_s']:.1f} s; the tab holds"
            f" {r['after']['stored_mb']:.1f} MB"
            f" compressed, {r['after']['decoded_mb']:.1f} MB decoded"
        )
    print()
    for f in first:
        print(
            f"opening a capture of {f['E']} x {f['T']} steps: server done in {f['server_s']:.2f} s, first frame in the "
            f"tab {f['first_frame_s']:.2f} s, the tab playing it itself {f['tab_plays_s']:.2f} s after the choice"
        )
    print(
        f"on the wire, {wire['E']} humanoids x {wire['T']} steps: {wire['bytes'] / 1e6:.1f} MB against "
        f"{wire['f32'] / 1e6:.1f} MB of float32 poses ({wire['bytes'] / wire['f32']:.3f}x)"
    )
    print()
    print(f"{tabs} websocket tabs (the player's protocol), a capture of 16 humanoids x 1000 steps chosen:")
    head = f"{'stalled':>8} {'MB each':>8} {'median s':>9} {'max s':>7} {'complete':>9} {'server cpu %':>13}"
    print(head)
    print("-" * len(head))
    for r in load:
        print(
            f"{r['stalled']:>8} {r['bytes'] / 1e6:>8.2f} {r['median_s']:>9.2f} {r['max_s']:>7.2f}"
            f" {r['complete']:>5}/{r['tabs'] - r['stalled']:<3} {100 * r['cpu']:>13.1f}"
        )


def bench_wire(model: Any, root: Path, base: dict[str, np.ndarray], E: int) -> dict[str, float]:
    """The bytes of one capture's pose blocks (what each tab receives), encoded as the viewer does."""
    import viser

    from trajscope import scene

    path = write_run(model, root, base, E, f"humanoid-{E}-{base['qpos'].shape[0]}")
    qpos = trajscope.open_run(str(path)).capture(1).load("qpos")
    server = viser.ViserServer(host="127.0.0.1", port=_port(), verbose=False)
    try:
        envs = scene.EnvScene(server, model)
        envs.set_envs(E, None)
        total = sum(len(data) for _, data in envs.pose_blocks(qpos))
        geoms = len(envs.node_names())
    finally:
        server.stop()
    return {"E": E, "T": int(qpos.shape[0]), "bytes": total, "f32": qpos.shape[0] * E * geoms * 7 * 4}
