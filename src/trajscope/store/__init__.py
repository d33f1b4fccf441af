"""The run-directory format: schema, writer, reader. numpy and fsspec only, never JAX.

Writing: :class:`RunWriter`. Reading: :func:`open_run` (a :class:`Run` of
:class:`Capture`), :func:`list_runs`. The live stream's switch: :meth:`Run.switch_live`,
or :func:`write_live_control` / :func:`read_live_control` on a run folder or URL.
"""

from ._analysis import analyse_run as analyse_run
from ._analysis import capture_policy as capture_policy
from ._analysis import capture_saliency as capture_saliency
from ._analysis import capture_sources as capture_sources
from ._analysis import write_analysis as write_analysis
from ._documents import LiveControl as LiveControl
from ._documents import LiveStatus as LiveStatus
from ._errors import FormatError as FormatError
from ._errors import TrajscopeWarning as TrajscopeWarning
from ._errors import UnsupportedVersionError as UnsupportedVersionError
from ._errors import warn as warn
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
from ._schema import FORMAT_VERSION as FORMAT_VERSION
from ._schema import VIDEOS_DIR as VIDEOS_DIR
from ._writer import RunConflict as RunConflict
from ._writer import RunWriter as RunWriter
from ._writer import WriterStats as WriterStats
from ._writer import new_run_name as new_run_name
