"""Errors and warnings of the store."""

from __future__ import annotations


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
