"""trajscope: see what your JAX reinforcement-learning agent does while it trains."""

from __future__ import annotations

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


def show(run: object, **kwargs: object) -> object:
    """Display the viewer of a run in a Jupyter notebook (see :func:`trajscope.notebook.show`)."""
    from .notebook import show as _show

    return _show(run, **kwargs)  # type: ignore[arg-type]
