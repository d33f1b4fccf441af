"""Analysing a stored run end to end: its evaluation captures as the analyses take them
(loaded lazily, by loaders that pickle as the run's URL so remote workers read the store
themselves), the analysis of a run written into its ``analysis/``, and a checkpoint's
networks and saliency rebuilt from a capture."""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np

from .. import store
from ..format.training import ReturnSettings
from ..store import Capture, FormatError, Run
from ._policy import Policy, PolicyUnavailable, load_policy
from ._run import AnalysisConfig, CaptureSource, analyse, extend
from ._saliency import saliency


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


def capture_sources(run: Any) -> list[CaptureSource]:
    """The evaluation captures of a :class:`Run` as the analyses take them: loaded one at a
    time, when needed, by loaders that pickle as the run's URL and the capture's id."""
    out = []
    for info in run.captures:
        if info.kind != "eval":
            continue
        try:
            cap = run.capture(info)
        except FormatError as e:  # its manifest is damaged: listed in run.problems now
            warnings.warn(f"capture {info.id} left out: {e}", stacklevel=2)
            continue
        per_step = tuple(n for n in cap.names() if cap.entry(n)["layout"] == "time_env")
        out.append(
            CaptureSource(
                index=info.index,
                step=info.step,
                names=per_step,
                load=_Loader(run.url, info.id),
                reset_frame=info.reset_frame,
                image_names=tuple(f"obs/{k}" for k in cap.image_keys()),
                buffer=_Loader(run.url, info.id, "buffer") if cap.keys("buffer") else None,
                starts=dict(info.attrs.get("starts")) if isinstance(info.attrs.get("starts"), dict) else None,
            )
        )
    return out


def analyse_run(
    run: Any,
    cfg: AnalysisConfig | None = None,
    *,
    write: bool = True,
    progress: Any = None,
    executor: Any = None,
    assumed: str | None = None,
    refit: bool = True,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Analyse a :class:`Run`'s evaluation captures and (with ``write``) store the result in
    its ``analysis/``. Without a ``cfg``, the discount and reward scaling are the run's own
    (``discounting`` and ``reward_scaling`` as the recorder or the stored training config
    records them), else 0.99 and 1, and then the result says so (``doc["assumed"]``).
    ``executor``: run the per-capture work on a distributed engine (a Dask client's
    ``get_executor()``; see :func:`trajscope.analyse.analyse`). ``assumed``: what the
    caller's ``cfg`` assumed, stored as ``doc["assumed"]``. ``refit=False``: place captures
    newer than the stored analysis into its map instead of fitting it again (the live map;
    :func:`extend`), when the stored analysis allows it."""
    note = assumed
    if cfg is None:
        settings = ReturnSettings.of_run(run.metadata)
        cfg = AnalysisConfig(gamma=settings.gamma, reward_scaling=settings.reward_scaling)
        note = settings.note()
    sources = capture_sources(run)
    extended = None
    if not refit:
        stored = run.analysis()
        if stored is not None:
            extended = extend(sources, cfg, stored.result, stored.arrays, progress=progress)
    doc, arrays = extended or analyse(sources, cfg, progress=progress, executor=executor)
    if note is not None:
        doc["assumed"] = note
    if write:
        store.write_analysis(run.url, doc, arrays, captures_analysed=[c.id for c in run.captures if c.kind == "eval"])
    return doc, arrays


def capture_policy(run: Run, cap: Capture) -> Policy:
    """The networks of the checkpoint a capture evaluated, rebuilt from ``run.json``'s
    ``network`` and the capture's ``params`` (needs JAX and brax). Raises
    :class:`trajscope.PolicyUnavailable` saying why when they cannot be."""
    if not cap.keys("params"):
        raise PolicyUnavailable(f"capture {cap.info.id} stores no network parameters")
    return load_policy(run.metadata.get("network"), cap.group("params"))


def capture_saliency(
    cap: Capture, env: int, policy: Policy, *, target: str = "policy", method: str = "gradient"
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

    result = saliency(out, policy.params, obs, method=method, baseline=baseline)
    result = result if isinstance(result, dict) else {"obs": result}
    scaled = {}
    for k, v in result.items():
        v = np.where(np.isfinite(v), v, 0.0)
        top = float(v.max()) if v.size else 0.0
        scaled[k] = (v / top if top > 0 else v).astype(np.float32)
    return scaled
