"""trajscope: see what your JAX reinforcement-learning agent does while it trains."""

from .store import FORMAT_VERSION as FORMAT_VERSION
from .store import Capture as Capture
from .store import CaptureInfo as CaptureInfo
from .store import FormatError as FormatError
from .store import Run as Run
from .store import RunWriter as RunWriter
from .store import TrajscopeWarning as TrajscopeWarning
from .store import UnsupportedVersionError as UnsupportedVersionError
from .store import list_runs as list_runs
from .store import open_run as open_run

__version__ = "0.1.0"
