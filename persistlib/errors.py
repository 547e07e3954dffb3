"""Every error persistlib raises derives from :class:`PersistError`.

Catch ``PersistError`` to handle them all; catch a subclass to handle one kind.
Each message says what went wrong *and* what to do about it.
"""

from __future__ import annotations

__all__ = [
    "PersistError",
    "InvalidVersionError",
    "VersionExistsError",
    "VersionNotFoundError",
    "MissingMetricError",
    "GateRejected",
    "CardError",
    "IntegrityError",
    "CompatibilityError",
    "CompatibilityWarning",
    "UntrustedTypeError",
    "LockTimeoutError",
    "RollbackError",
    "InvalidArgumentError",
    "ArgumentTypeError",
    "MissingFileError",
]


class PersistError(Exception):
    """Base class for every error raised by persistlib."""


class InvalidVersionError(PersistError, ValueError):
    """A version string is not ``MAJOR.MINOR.PATCH`` (e.g. ``"1.2.0"``)."""


class VersionExistsError(PersistError, FileExistsError):
    """A save asked for a version the registry already holds; nothing is overwritten."""


class VersionNotFoundError(PersistError, LookupError):
    """A version or alias that the registry does not hold."""


class MissingMetricError(PersistError, ValueError):
    """The gate needs a metric that the candidate's metrics do not contain."""


class GateRejected(PersistError):
    """A model that failed its evaluation gate was offered for saving."""

    def __init__(self, message: str, report=None):
        super().__init__(message)
        self.report = report


class CardError(PersistError, ValueError):
    """A model card (``*_meta.json``) is malformed or incomplete."""


class IntegrityError(PersistError):
    """An artefact is missing, or its bytes do not match what its card recorded.

    Also raised when a signed registry meets an unsigned or wrongly signed card.
    """


class CompatibilityError(PersistError):
    """The running environment differs from the one the model was saved in."""


class CompatibilityWarning(UserWarning):
    """A small (patch-level) difference between the saving and loading environment."""


class UntrustedTypeError(PersistError):
    """A skops file holds a type that was not reviewed and trusted at save time."""


class LockTimeoutError(PersistError, TimeoutError):
    """Another process held the registry lock for too long."""


class RollbackError(PersistError):
    """An alias has no earlier version to return to."""


class InvalidArgumentError(PersistError, ValueError):
    """An argument has an allowed type but a wrong value (e.g. ``bump="huge"``)."""


class ArgumentTypeError(PersistError, TypeError):
    """An argument has the wrong type (e.g. a list where a dict of metrics is needed)."""


class MissingFileError(PersistError, FileNotFoundError):
    """A file that persistlib was asked to read is not there."""
