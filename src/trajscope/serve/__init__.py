"""The web viewer: a thin app (:class:`Viewer`) and its panels (:data:`PANELS`), each
keeping the contract of :class:`Panel`. Reads runs through the store; draws through the
scene and sim rooms; never imports capture, and JAX only to play a policy."""

from ._analysis import AnalysisPanel as AnalysisPanel
from ._app import TABS as TABS
from ._app import Viewer as Viewer
from ._app import find_runs as find_runs
from ._app import free_port as free_port
from ._app import serve as serve
from ._compare import ComparePanel as ComparePanel
from ._curve import TrainingCurvePanel as TrainingCurvePanel
from ._live import LivePanel as LivePanel
from ._nan import NanPanel as NanPanel
from ._panel import Panel as Panel
from ._panels import PANELS as PANELS
from ._pixels import PixelsPanel as PixelsPanel
from ._play import PlayPanel as PlayPanel
from ._plots import PlotsPanel as PlotsPanel
from ._replay import ReplayPanel as ReplayPanel
from ._saliency import SaliencyPanel as SaliencyPanel
from ._saliency import feature_map as feature_map
from ._saliency import saliency_figure as saliency_figure
from ._saliency import saliency_overlay as saliency_overlay
from ._saliency import step_ticks as step_ticks
from ._saliency import write_png as write_png
from ._scene import ScenePanel as ScenePanel
from ._shown import Shown as Shown
from ._view import View as View
