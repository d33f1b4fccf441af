"""The ``analysis/`` part of a run: written whole, arrays first and the document last
(atomically), so a reader sees the old analysis or the new one."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from .. import analyse
from . import _documents, _fs, _npy, _schema
from ._errors import FormatError
from ._reader import Capture, Run


def write_analysis(
    run: str | os.PathLike[str],
    analysis: Mapping[str, Any],
    arrays: Mapping[str, np.ndarray],
    *,
    captures_analysed: Sequence[str] = (),
) -> None:
    """Store an analysis of a run (a JSON-able document and named arrays) in its
    ``analysis/`` folder, replacing any earlier one. Raises ``OSError`` when the run
    directory cannot be written."""
    fs, path = _fs.resolve(run)
    adir = _fs.join(path, _schema.ANALYSIS_DIR)
    _fs.makedirs(fs, adir)
    entries = []
    for i, (key, a) in enumerate(arrays.items()):
        a = np.asarray(a)
        data = _npy.encode(a)
        fname = f"array.{i:03d}.npy"
        _fs.write_file(fs, _fs.join(adir, fname), data)
        entries.append(
            {"key": key, "file": fname, "shape": list(a.shape), "dtype": str(a.dtype), "nbytes": len(data),
             "crc32": _npy.crc32(data)}
        )  # fmt: skip
    doc = _documents.build_analysis(analysis=analysis, arrays=entries, captures_analysed=list(captures_analysed))
    _fs.write_atomic(fs, _fs.join(path, _schema.ANALYSIS_FILE), _documents.dumps(doc, indent=1))


def read_analysis(fs: Any, run_path: str) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """The stored analysis (its document and arrays), or None when the run has none."""
    p = _fs.join(run_path, _schema.ANALYSIS_FILE)
    root = os.path.realpath(run_path) if _fs.is_local(fs) else run_path
    try:
        data = _fs.read(fs, p, root=root, limit=_fs.max_json_bytes())
    except FileNotFoundError:
        return None
    except OSError as e:
        raise FormatError(p, f"cannot be read ({e.strerror or e})") from None
    doc = _documents.parse_analysis(p, data)
    arrays = {}
    total = 0
    for e in doc["arrays"]:
        ap = _fs.join(run_path, _schema.ANALYSIS_DIR, e["file"])
        total += e["nbytes"]
        if total > _fs.max_capture_bytes():
            raise FormatError(ap, "the analysis is larger than this reader's ceiling ($TRAJSCOPE_MAX_CAPTURE_MB)")
        try:
            blob = _fs.read(fs, ap, root=root, limit=e["nbytes"], expect_size=e["nbytes"])
        except FileNotFoundError:
            raise FormatError(ap, "analysis array file is missing") from None
        except OSError as err:
            raise FormatError(ap, f"cannot be read ({err.strerror or err})") from None
        arrays[str(e["key"])] = _npy.decode(ap, blob, expect_crc=e.get("crc32"))
    return doc, arrays


class _Loader:
    """A capture's arrays by name, from the run at ``url``: picklable (a URL and an id),
    so the analyses' workers on other processes or machines open the run themselves and
    read straight from its filesystem or object store."""

    _runs: ClassVar[dict[str, Run]] = {}
    """Runs opened in this process, by URL (a worker opens each run once)."""

    def __init__(self, url: str, capture_id: str, group: str | None = None) -> None:
        self.url, self.capture_id, self.group = url, capture_id, group

    def _capture(self) -> Capture:
        run = self._runs.get(self.url)
        if run is None or self.capture_id not in {c.id for c in run.captures}:
            run = self._runs[self.url] = Run(self.url)
        return run.capture(self.capture_id)

    def __call__(self, name: str | None = None) -> Any:
        cap = self._capture()
        return cap.group(self.group) if self.group is not None else cap.load(str(name))


def capture_sources(run: Any) -> list[analyse.CaptureSource]:
    """The evaluation captures of a :class:`Run` as the analyses take them: loaded one at a
    time, when needed, by loaders that pickle as the run's URL and the capture's id."""
    out = []
    for info in run.captures:
        if info.kind != "eval":
            continue
        cap = run.capture(info)
        per_step = tuple(n for n in cap.names() if cap.entry(n)["layout"] == "time_env")
        out.append(
            analyse.CaptureSource(
                index=info.index,
                step=info.step,
                names=per_step,
                load=_Loader(run.url, info.id),
                reset_frame=info.reset_frame,
                image_names=tuple(f"obs/{k}" for k in cap.image_keys()),
                buffer=_Loader(run.url, info.id, "buffer") if cap.keys("buffer") else None,
            )
        )
    return out


def analyse_run(
    run: Any,
    cfg: analyse.AnalysisConfig | None = None,
    *,
    write: bool = True,
    progress: Any = None,
    executor: Any = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Analyse a :class:`Run`'s evaluation captures and (with ``write``) store the result in
    its ``analysis/``. Without a ``cfg``, the discount and reward scaling are the run's own
    (``discounting`` and ``reward_scaling`` of its stored training config, as brax's PPO
    names them), else 0.99 and 1. ``executor``: run the per-capture work on a distributed
    engine (a Dask client's ``get_executor()``; see :func:`trajscope.analyse.analyse`)."""
    if cfg is None:
        conf = run.metadata.get("config") or {}
        cfg = analyse.AnalysisConfig(
            gamma=float(conf.get("discounting") or 0.99), reward_scaling=float(conf.get("reward_scaling") or 1.0)
        )
    doc, arrays = analyse.analyse(capture_sources(run), cfg, progress=progress, executor=executor)
    if write:
        write_analysis(run.url, doc, arrays, captures_analysed=[c.id for c in run.captures if c.kind == "eval"])
    return doc, arrays


def capture_policy(run: Run, cap: Capture) -> analyse.Policy:
    """The networks of the checkpoint a capture evaluated, rebuilt from ``run.json``'s
    ``network`` and the capture's ``params`` (needs JAX and brax). Raises
    :class:`trajscope.analyse.PolicyUnavailable` saying why when they cannot be."""
    if not cap.keys("params"):
        raise analyse.PolicyUnavailable(f"capture {cap.info.id} stores no network parameters")
    return analyse.load_policy(run.metadata.get("network"), cap.group("params"))


def capture_saliency(
    cap: Capture, env: int, policy: analyse.Policy, *, target: str = "policy", method: str = "gradient"
) -> dict[str, np.ndarray]:
    """Saliency of every step of one environment, by observation key (``obs`` for a plain
    array observation, as the store names it), each scaled to the episode's largest value
    (0..1)."""
    obs = cap.obs(env=env)
    if obs is None:
        raise ValueError("this capture stores no observations")
    baseline = None
    if method == "perturbation":  # each feature's mean over the capture
        every = cap.obs()
        assert every is not None
        baseline = (
            {k: np.nanmean(v, axis=(0, 1)) for k, v in every.items()}
            if isinstance(every, dict)
            else np.nanmean(every, axis=(0, 1))
        )
    fn = policy.apply if target == "policy" else policy.value_apply
    assert fn is not None

    def out(p: Any, o: Any) -> Any:
        return fn(p, o)

    result = analyse.saliency(out, policy.params, obs, method=method, baseline=baseline)
    result = result if isinstance(result, dict) else {"obs": result}
    scaled = {}
    for k, v in result.items():
        v = np.where(np.isfinite(v), v, 0.0)
        top = float(v.max()) if v.size else 0.0
        scaled[k] = (v / top if top > 0 else v).astype(np.float32)
    return scaled
