"""The run-directory format: schema, writer, reader. numpy and fsspec only, never JAX."""

from ._errors import FormatError as FormatError
from ._errors import TrajscopeWarning as TrajscopeWarning
from ._errors import UnsupportedVersionError as UnsupportedVersionError
from ._fs import default_root as default_root
from ._live import LEASE_S as LIVE_LEASE_S  # noqa: F401
from ._live import RENEW_S as LIVE_RENEW_S  # noqa: F401
from ._live import LiveControl as LiveControl
from ._live import LiveStatus as LiveStatus
from ._live import read_control as read_live_control  # noqa: F401
from ._live import write_control as write_live_control  # noqa: F401
from ._reader import Capture as Capture
from ._reader import CaptureInfo as CaptureInfo
from ._reader import CaptureProblem as CaptureProblem
from ._reader import Run as Run
from ._reader import RunListing as RunListing
from ._reader import list_runs as list_runs
from ._reader import open_run as open_run
from ._schema import FORMAT_VERSION as FORMAT_VERSION
from ._writer import RunWriter as RunWriter
from ._writer import WriterStats as WriterStats
