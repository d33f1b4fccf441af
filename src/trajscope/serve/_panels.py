"""The viewer's panels, in the order their folders stand on the page and their hooks run
(:mod:`._panel` says what a panel is). A new panel: one file, one line here."""

from __future__ import annotations

from ._analysis import AnalysisPanel
from ._compare import ComparePanel
from ._curve import TrainingCurvePanel
from ._live import LivePanel
from ._nan import NanPanel
from ._pixels import PixelsPanel
from ._play import PlayPanel
from ._plots import PlotsPanel
from ._replay import ReplayPanel
from ._saliency import SaliencyPanel
from ._scene import ScenePanel

PANELS: list[type] = [
    ReplayPanel,
    ScenePanel,
    PlotsPanel,
    PixelsPanel,
    SaliencyPanel,
    NanPanel,
    PlayPanel,
    AnalysisPanel,
    LivePanel,
    TrainingCurvePanel,
    ComparePanel,
]
