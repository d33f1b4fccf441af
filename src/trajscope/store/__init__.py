"""The store: writing and reading run directories (the format itself is the format room,
:mod:`trajscope.format`). numpy, fsspec and msgspec only, never JAX.

Writing: :class:`RunWriter`. Reading: :func:`open_run` (a :class:`Run` of
:class:`Capture`), :func:`list_runs`. The live stream's switch: :meth:`Run.switch_live`,
or :func:`write_live_control` / :func:`read_live_control` on a run folder or URL.
"""

from ..format.documents import LiveControl as LiveControl
from ..format.documents import LiveStatus as LiveStatus
from ..format.errors import FormatError as FormatError
from ..format.errors import TrajscopeWarning as TrajscopeWarning
from ..format.errors import UnsupportedVersionError as UnsupportedVersionError
from ..format.errors import warn as warn
from ..format.schema import FORMAT_VERSION as FORMAT_VERSION
from ..format.schema import VIDEOS_DIR as VIDEOS_DIR
from ..format.summary import episode_lengths as episode_lengths
from ..format.summary import episode_returns as episode_returns
from ..format.summary import first_nonfinite as first_nonfinite
from ..format.summary import summarize as summarize
from ._analysis import StoredAnalysis as StoredAnalysis
from ._analysis import write_analysis as write_analysis
from ._fs import default_root as default_root
from ._live import read_live_control as read_live_control
from ._live import write_live_control as write_live_control
from ._reader import Capture as Capture
from ._reader import CaptureInfo as CaptureInfo
from ._reader import CaptureProblem as CaptureProblem
from ._reader import Run as Run
from ._reader import RunListing as RunListing
from ._reader import check_allocation as check_allocation
from ._reader import list_runs as list_runs
from ._reader import open_run as open_run
from ._reader import run_folders as run_folders
from ._writer import RunConflict as RunConflict
from ._writer import RunWriter as RunWriter
from ._writer import WriterStats as WriterStats
from ._writer import new_run_name as new_run_name
