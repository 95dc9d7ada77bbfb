"""Exceptions raised by urbankit.

Every error a user can trigger with bad input derives from :class:`UrbankitError`, so a
chapter or script can catch them all; messages name the file, site or variable involved
and say what was expected.
"""
from __future__ import annotations


class UrbankitError(Exception):
    """Base class of all urbankit errors."""


class ConfigError(UrbankitError, ValueError):
    """A profile, option or argument has an invalid value."""


class SceneValidationError(UrbankitError, ValueError):
    """A scene (xarray.Dataset) does not follow the urbankit scene schema.

    Attributes ``site``, ``variable`` and ``problem`` hold the parts of the message.
    """

    def __init__(self, site: str | None, variable: str | None, problem: str):
        self.site = site
        self.variable = variable
        self.problem = problem
        where = f"site {site!r}" if site else "scene"
        if variable:
            where += f", variable {variable!r}"
        super().__init__(f"{where}: {problem}")

    def __reduce__(self):
        # rebuilt from its parts, so the error survives pickling (e.g. from a dask worker)
        return (self.__class__, (self.site, self.variable, self.problem))


class DataFormatError(UrbankitError, ValueError):
    """A file on disk is missing, truncated or not in the layout a reader expects."""


class DownloadError(UrbankitError, RuntimeError):
    """A download failed (offline, HTTP error, checksum mismatch, unsafe archive)."""


class BookError(UrbankitError, RuntimeError):
    """Executing or building the book failed."""


class UrbankitWarning(UserWarning):
    """A condition the user should know about that does not stop the call (e.g. cache disabled)."""
