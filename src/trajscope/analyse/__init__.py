"""Analyses of captured rollouts: arrays in, arrays out, and "analyse a run" end to end
(:func:`analyse_run` reads a run through the store and writes its ``analysis/``). numpy
and the store only (openTSNE and umap-learn for those maps; JAX and brax for saliency and
rebuilt policies: each imported when asked for).

    from trajscope import analyse
    analyse.episode_returns(reward, done)        # (T, E) -> (E,)

A capture's summary (:func:`summarize`, episode returns and lengths) is the store's: it
writes one with every capture; it is re-exported here.
"""

from ..store import episode_lengths as episode_lengths
from ..store import episode_returns as episode_returns
from ..store import first_nonfinite as first_nonfinite
from ..store import summarize as summarize
from ._policy import Policy as Policy
from ._policy import PolicyUnavailable as PolicyUnavailable
from ._policy import load_policy as load_policy
from ._run import ANALYSIS_VERSION as ANALYSIS_VERSION
from ._run import METHODS as METHODS
from ._run import AnalysisConfig as AnalysisConfig
from ._run import CaptureSource as CaptureSource
from ._run import analyse as analyse
from ._run import extend as extend
from ._runs import analyse_run as analyse_run
from ._runs import capture_policy as capture_policy
from ._runs import capture_saliency as capture_saliency
from ._runs import capture_sources as capture_sources
from ._saliency import SALIENCY_METHODS as SALIENCY_METHODS
from ._saliency import saliency as saliency
from ._stats import PCA as PCA
from ._stats import Standardizer as Standardizer
from ._stats import js_divergence as js_divergence
from ._stats import kmeans as kmeans
from ._stats import returns_to_go as returns_to_go
from ._stats import shift_test as shift_test
from ._stats import sign_flip_p as sign_flip_p
from ._stats import silhouette as silhouette
from ._stats import td_errors as td_errors
from ._stats import unit_counts as unit_counts
from ._stats import value_summary as value_summary
