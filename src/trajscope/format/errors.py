"""Errors and warnings of the store."""

from __future__ import annotations

import sys
import warnings


class FormatError(ValueError):
    """A run directory, capture or array file is damaged or not in the expected format.

    ``path`` names the file; the message says what is wrong with it.
    """

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class UnsupportedVersionError(FormatError):
    """The file was written in a format major version this reader does not know."""


class TrajscopeWarning(UserWarning):
    """A capture could not be written or served; training continues."""


def warn(message: str, *, strict: bool = False) -> None:
    """Warn with :class:`TrajscopeWarning`, even where a warnings filter turns warnings into
    errors (``-W error``, pytest's ``filterwarnings = error``): such an error must not
    reach training or kill a writer thread, so it is printed to stderr instead. With
    ``strict`` (tests) it raises."""
    try:
        warnings.warn(message, TrajscopeWarning, stacklevel=3)
    except Exception:
        if strict:
            raise
        print(f"TrajscopeWarning: {message}", file=sys.stderr)
