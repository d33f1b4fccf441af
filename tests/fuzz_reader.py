"""Fuzzing the reader: mutated run directories through ``open_run``, ``trajscope info``'s
code and the viewer's loader.

Each case copies a valid seed run (written by ``RunWriter``: every array kind, both
codecs, images, float16 observations, a live chunk, a model) and damages it with one to
three mutations: truncated files, flipped bits, deleted files, files replaced by folders
or garbage, and manifest or run.json fields set to wrong types, other format versions,
escaping file names and huge declared shapes (10^12 values); and the attacks of
``tests/hostile.py``: symlinks out of the run or to devices, FIFOs, zlib bombs, JSON nested
100,000 deep, hostile text, 5,000-digit integers, NaN and infinities. Then it reads
everything a user or the viewer would read.

A case passes when every read either works or raises :class:`trajscope.store.FormatError`
naming a file of the run. It fails on any other exception ("unclear"), a
``MemoryError`` or an address-space limit hit ("memory"), more than ``--case-timeout``
seconds ("hang") or the worker process dying (a "crash", e.g. a segfault in MuJoCo).

Cases run in worker processes under an address-space limit (``--memory-mb``); a worker
that dies is replaced and its case recorded.

    python tests/fuzz_reader.py --cases 10000           # the long mode
    python tests/fuzz_reader.py --cases 500 --seed 1    # what tests/test_fuzz.py runs
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing as mp
import os
import random
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

HUGE = 10**12


# ------------------------------------------------------------------------ seed corpus


def write_corpus(folder: Path) -> list[Path]:
    """A few valid runs covering the format's variants; their folders."""
    sys.path.insert(0, str(Path(__file__).parent))
    import mujoco

    from conftest import XML, all_kinds, simulate
    from trajscope.store import RunWriter

    model = mujoco.MjModel.from_xml_string(XML)
    runs = []
    variants = {
        "zs": dict(),
        "npy": dict(compress=False),
        "f16": dict(obs_float16=True, delta=False),
    }
    for name, kw in variants.items():
        with RunWriter(folder, name=name, model=model, strict=True, env_name="fixture", **kw) as w:
            w.add_capture(step=10, **all_kinds(model, T=6, E=3, seed=1))
            sim = simulate(model, T=5, E=2, seed=2)
            pixels = np.random.default_rng(0).uniform(0, 1, (5, 2, 8, 8, 3)).astype(np.float32)
            w.add_capture(step=20, obs={"pixels/view": pixels, "state": sim["qvel"].astype(np.float32)}, **sim)
            w.add_capture(step=30, kind="live", **simulate(model, T=4, E=2, seed=3))
        runs.append(folder / name)
    return runs


# ------------------------------------------------------------------------ mutations

_VALUES = [None, -1, 0, 1.5, True, "x", "", [], {}, [HUGE], [HUGE, HUGE], 2**63, -(2**63), "../../run.json", "2.0"]


MUTATIONS = [
    *("truncate", "flip", "delete", "garbage", "folder", "json", "json", "json", "shape", "version", "npy"),
    *("symlink", "special", "bomb", "deep", "hostile", "number", "objects", "sparse", "empty_captures"),
]


def _files(run: Path) -> list[Path]:
    return sorted(p for p in run.rglob("*") if p.is_file() and not p.is_symlink())


def _json_files(run: Path) -> list[Path]:
    return [p for p in _files(run) if p.suffix == ".json"]


def mutate(run: Path, rng: random.Random) -> list[str]:
    """Damage ``run`` in place with one to three mutations; what was done."""
    done = []
    for _ in range(rng.randint(1, 3)):
        files = _files(run)
        if not files:
            break
        kind = rng.choice(MUTATIONS)
        f = rng.choice(files)
        if kind in HOSTILE_KINDS:
            what = HOSTILE_KINDS[kind](run, f, rng)
            if what:
                done.append(f"{kind}:{what} {f.relative_to(run)}")
            continue
        if kind == "truncate":
            data = f.read_bytes()
            n = rng.randint(0, max(0, len(data) - 1))
            f.write_bytes(data[:n])
        elif kind == "flip":
            data = bytearray(f.read_bytes())
            for _ in range(rng.randint(1, 8)):
                if data:
                    data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            f.write_bytes(bytes(data))
        elif kind == "delete":
            target = f if rng.random() < 0.7 else f.parent
            if target == run:
                target = f
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        elif kind == "garbage":
            f.write_bytes(rng.randbytes(rng.choice([0, 1, 16, 4096])))
        elif kind == "folder":
            f.unlink()
            f.mkdir()
        elif kind in ("json", "shape", "version"):
            jf = _json_files(run)
            if not jf:
                continue
            f = rng.choice(jf)
            try:
                doc = json.loads(f.read_bytes())
            except (ValueError, RecursionError):
                continue
            if not isinstance(doc, dict):
                continue
            if kind == "version":
                doc["format_version"] = rng.choice(["2.0", "1.99", "0.1", "abc", 1, None, "1", "1.5.3"])
            elif kind == "shape" and isinstance(doc.get("arrays"), list) and doc["arrays"]:
                e = rng.choice(doc["arrays"])
                field = rng.choice(["shape", "stored_shape", "nbytes", "chunks", "dtype", "stored_dtype", "file"])
                e[field] = rng.choice(
                    {
                        "shape": [[HUGE], [HUGE, 3], [6, 3, HUGE], [6, HUGE], [-1, 3], [], "x"],
                        "stored_shape": [[HUGE], [3, 6, HUGE], [HUGE, 6]],
                        "nbytes": [HUGE, -1, 0, 1],
                        "chunks": [[0, HUGE], [0, 5, 3], [0], [0, -1], None, [0, 1, 2, 3, 4, 5, 6, 7]],
                        "dtype": ["O", "V1000000000", "<U1000000", "float128", "S0", "complex128", "x"],
                        "stored_dtype": ["O", "V1000000000", "<f2", "uint8", "bool"],
                        "file": ["../../run.json", "/etc/passwd", "..", "a/b", "capture.json", "qpos.zs"],
                    }[field]
                )
            else:
                path = _json_path(doc, rng)
                if path:
                    parent, key = path[-1]
                    if rng.random() < 0.3 and isinstance(parent, dict):
                        del parent[key]
                    else:
                        parent[key] = rng.choice(_VALUES)
            f.write_text(json.dumps(doc))
            kind = f"{kind}:{f.name}"
        elif kind == "npy":
            npys = [p for p in files if p.suffix == ".npy"]
            if not npys:
                continue
            f = rng.choice(npys)
            data = f.read_bytes()
            head = data[:128].replace(b"'shape': (", b"'shape': (1000000000000, ", 1)
            f.write_bytes(head + data[128:])
        done.append(f"{kind} {f.relative_to(run)}")
    return done


# ------------------------------------------------------------------------ hostile mutations
# The attacks of tests/hostile.py, applied at random places: a file replaced by a symlink
# (to a device, to a file outside the run, to a folder), by a FIFO, by a zlib bomb; JSON
# nested past any parser's stack, or holding hostile text, 5,000-digit integers, NaN and
# infinities where numbers belong.


def _symlink(run, f, rng):
    outside = run.parent / "outside.json"
    outside.write_text('{"secret": 1}')
    target = rng.choice(["/dev/zero", "/dev/urandom", str(outside), "/etc", str(run / "..")])
    f.unlink()
    f.symlink_to(target)
    return target


def _special(run, f, rng):
    f.unlink()
    os.mkfifo(f)
    return "fifo"


def _bomb(run, f, rng):
    import zlib

    z = zlib.compressobj(1)
    n = rng.choice([2**24, 2**27])
    f.write_bytes(b"".join(z.compress(bytes(2**22)) for _ in range(n // 2**22)) + z.flush())
    return str(n)


def _objects(run, f, rng):
    """A JSON document given an object bomb: up to millions of ``{}`` in a free-form field."""
    jf = _json_files(run)
    if not jf:
        return None
    f = rng.choice(jf)
    n = rng.choice([1_000, 150_000, 2_000_000])
    text = f.read_bytes().decode("utf-8", "surrogateescape").rstrip()
    if text.endswith("}"):
        field = rng.choice(["attrs", "config", "summary", "analysis"])
        f.write_bytes(
            (text[:-1] + f', "{field}": {{"x": [' + ",".join(["{}"] * n) + "]}}").encode("utf-8", "surrogateescape")
        )
    return str(n)


def _sparse(run, f, rng):
    """A file made a sparse one, of up to just under the JSON ceiling (64 MiB by default)."""
    with open(f, "r+b") as fh:
        fh.truncate(rng.choice([2**20, 64 * 2**20 - 1]))
    return "sparse"


def _empty_captures(run, f, rng):
    """Many capture folders without a manifest, as a crashed writer leaves them."""
    cdir = run / "captures"
    if not cdir.is_dir():
        return None
    n = rng.choice([10, 2_000])
    for i in range(n):
        (cdir / f"{10**9 + i:012d}-eval-{i:08x}").mkdir(exist_ok=True)
    return str(n)


def _deep(run, f, rng):
    jf = _json_files(run)
    if not jf:
        return None
    f = rng.choice(jf)
    depth = rng.choice([40, 900, 100_000])
    nest = "[" * depth + "]" * depth
    text = f.read_bytes().decode("utf-8", "surrogateescape")
    if text.rstrip().endswith("}"):
        text = text.rstrip()[:-1] + f', "{rng.choice(["attrs", "config", "summary", "zz"])}": {nest}}}'
        f.write_bytes(text.encode("utf-8", "surrogateescape"))
    return str(depth)


def _hostile_value(rng):
    return rng.choice(
        [
            "<img src=x onerror=alert(1)>",
            "x\u0000y",
            "\u001b]0;title\u0007",
            "9" * 5000,
            "NaN",
            "-Infinity",
            "1e999",
            '"' + "A" * 100_000 + '"',
        ]
    )


def _hostile_json(run, f, rng, numbers=False):
    import re

    jf = _json_files(run)
    if not jf:
        return None
    f = rng.choice(jf)
    text = f.read_bytes().decode("utf-8", "surrogateescape")
    pattern = r"(?<=: )(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)" if numbers else r'(?<=: )("(?:[^"\\]|\\.)*")'
    hits = list(re.finditer(pattern, text))
    if not hits:
        return None
    m = rng.choice(hits)
    value = _hostile_value(rng)
    if not numbers and not value.startswith('"') and not value[0].isdigit():
        value = json.dumps(value)
    f.write_bytes((text[: m.start()] + value + text[m.end() :]).encode("utf-8", "surrogateescape"))
    return value[:20]


HOSTILE_KINDS = {
    "symlink": _symlink,
    "special": _special,
    "bomb": _bomb,
    "deep": _deep,
    "hostile": _hostile_json,
    "number": lambda run, f, rng: _hostile_json(run, f, rng, numbers=True),
    "objects": _objects,
    "sparse": _sparse,
    "empty_captures": _empty_captures,
}


def _json_path(doc, rng):
    """A random (container, key) chain down into a JSON document."""
    path = []
    node = doc
    for _ in range(4):
        if isinstance(node, dict) and node:
            key = rng.choice(list(node))
        elif isinstance(node, list) and node:
            key = rng.randrange(len(node))
        else:
            break
        path.append((node, key))
        node = node[key]
        if rng.random() < 0.4:
            break
    return path


# ------------------------------------------------------------------------ reading


def read_everything(run_path: Path) -> None:
    """What ``trajscope info --checksums`` and the viewer do with a run."""
    from trajscope import cli
    from trajscope.serve import _shown
    from trajscope.store import open_run

    run = open_run(run_path)
    problems = run.problems + run.check(checksums=True)
    json.dumps(cli.info_json(run, problems))
    for chunk in run.live_chunks():
        _read_capture(run.capture(chunk), _shown)
    for info in run.captures:
        _read_capture(run.capture(info), _shown)
    run.videos()
    run.analysis()
    try:
        run.load_model()
    except Exception as e:
        from trajscope.store import FormatError

        if not isinstance(e, FormatError):
            raise


def _read_capture(cap, _shown) -> None:
    from trajscope.store import FormatError

    for name in cap.names():
        for env in (None, 0):
            try:
                cap.load(name, env=env)
            except FormatError:
                pass
            except ValueError as e:
                if "is not per environment" not in str(e):
                    raise
    try:
        E = cap.info.num_envs
        _shown.Shown.load(cap, list(range(min(E, 4))), 0)
    except FormatError:
        pass


def classify(run_path: Path) -> tuple[str, str]:
    """``("ok" | "format_error" | "unclear" | "memory", detail)``."""
    from trajscope.store import FormatError

    try:
        read_everything(run_path)
        return "ok", ""
    except FormatError as e:
        if not e.path or str(run_path) not in str(e.path):
            return "unclear", f"FormatError without a file of the run: {e}"
        return "format_error", f"{e.path.rsplit('/', 1)[-1]}: {e.problem}"[:160]
    except MemoryError:
        return "memory", traceback.format_exc(limit=-3)
    except Exception as e:  # noqa: BLE001 - what the fuzzer looks for
        return "unclear", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=-4)}"


# ------------------------------------------------------------------------ workers


class _Timeout(Exception):
    pass


def _alarm(*_):
    raise _Timeout


def _worker(jobs, results, seeds: list[str], scratch: str, memory_mb: int, case_timeout: float) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2**20, memory_mb * 2**20))
    signal.signal(signal.SIGALRM, _alarm)
    os.environ["TRAJSCOPE_CACHE"] = "off"
    while True:
        job = jobs.get()
        if job is None:
            return
        case, seed = job
        rng = random.Random(seed * 1_000_003 + case)
        src = Path(rng.choice(seeds))
        dst = Path(scratch) / f"case{case}" / src.name
        shutil.copytree(src, dst)
        what = mutate(dst, rng)
        results.put(("start", case, what))
        t0 = time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, case_timeout)
        try:
            outcome, detail = classify(dst)
        except _Timeout:
            outcome, detail = "hang", f"over {case_timeout} s"
        except MemoryError:
            outcome, detail = "memory", "MemoryError"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        results.put(("done", case, outcome, detail, what, time.monotonic() - t0, rss))
        shutil.rmtree(dst.parent, ignore_errors=True)


def run_fuzz(
    cases: int, *, seed: int = 0, workers: int = 2, memory_mb: int = 3072, case_timeout: float = 20.0, log=print
) -> dict:
    """Run ``cases`` mutated runs; a report of outcomes and failures."""
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="trajscope-fuzz-") as tmp:
        seeds = [str(p) for p in write_corpus(Path(tmp) / "seeds")]
        jobs, results = ctx.Queue(), ctx.Queue()
        for case in range(cases):
            jobs.put((case, seed))

        def start():
            p = ctx.Process(target=_worker, args=(jobs, results, seeds, tmp, memory_mb, case_timeout), daemon=True)
            p.start()
            return p

        procs = [start() for _ in range(workers)]
        for _ in procs:
            jobs.put(None)
        counts: collections.Counter = collections.Counter()
        errors: collections.Counter = collections.Counter()
        failures: list[dict] = []
        running: dict[int, list[str]] = {}
        finished = 0
        max_rss = 0
        slowest = 0.0
        t0 = time.monotonic()
        while finished < cases:
            try:
                msg = results.get(timeout=1.0)
            except Exception:  # noqa: BLE001 - queue.Empty: check the workers
                dead = [p for p in procs if not p.is_alive() and p.exitcode not in (0, None)]
                for p in dead:
                    procs.remove(p)
                    # The worker died on one of its cases: which one cannot be told apart from
                    # the other worker's, so every unfinished case is recorded as suspect.
                    for case, what in list(running.items()):
                        crash = {"case": case, "outcome": "crash", "detail": f"exit {p.exitcode}", "what": what}
                        failures.append(crash)
                        counts["crash"] += 1
                        finished += 1
                        running.pop(case)
                    new = start()
                    procs.append(new)
                    jobs.put(None)
                if not procs or all(not p.is_alive() for p in procs):
                    break
                continue
            if msg[0] == "start":
                running[msg[1]] = msg[2]
                continue
            _, case, outcome, detail, what, seconds, rss = msg
            running.pop(case, None)
            finished += 1
            counts[outcome] += 1
            max_rss = max(max_rss, rss)
            slowest = max(slowest, seconds)
            if outcome == "format_error":
                errors[detail.split(":", 1)[1].strip()[:60] if ":" in detail else detail] += 1
            if outcome not in ("ok", "format_error"):
                failures.append({"case": case, "outcome": outcome, "detail": detail, "what": what})
                log(f"case {case}: {outcome}: {what}\n  {detail}")
            if finished % 500 == 0:
                log(f"{finished}/{cases} cases, {dict(counts)}, {time.monotonic() - t0:.0f} s")
        for p in procs:
            p.join(5)
            p.kill()
    return {
        "cases": finished,
        "outcomes": dict(counts),
        "failures": failures,
        "seconds": time.monotonic() - t0,
        "max_rss_mb": max_rss,
        "slowest_case_s": slowest,
        "top_errors": errors.most_common(12),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--memory-mb", type=int, default=3072)
    ap.add_argument("--case-timeout", type=float, default=20.0)
    args = ap.parse_args()
    report = run_fuzz(
        args.cases, seed=args.seed, workers=args.workers, memory_mb=args.memory_mb, case_timeout=args.case_timeout
    )
    print(json.dumps({k: v for k, v in report.items() if k != "failures"}, indent=1))
    print(f"failures: {len(report['failures'])}")
    sys.exit(1 if report["failures"] else 0)


if __name__ == "__main__":
    main()
