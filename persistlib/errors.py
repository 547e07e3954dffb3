"""Every error persistlib raises derives from :class:`PersistError`, and lives here.

Catch ``PersistError`` to handle them all; catch a subclass to handle one kind.
Each message says what went wrong *and* what to do about it. Errors about a bad
argument also derive from the matching built-in (``ValueError``, ``TypeError``,
``FileNotFoundError``, ...), so code written against those keeps working.

The classes are grouped by the layer that raises them: arguments, the registry,
gate and card (the core), ONNX, serving, monitoring, back ends, and the course's own helpers.
Warnings go through :func:`warn_caller`, so they point at the user's line.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

__all__ = [
    "PersistError",
    "InvalidArgumentError",
    "ArgumentTypeError",
    "MissingFileError",
    "InvalidVersionError",
    "VersionExistsError",
    "VersionNotFoundError",
    "LockTimeoutError",
    "RollbackError",
    "RegistryFileError",
    "StorageError",
    "RegistryWarning",
    "MissingMetricError",
    "GateRejected",
    "CardError",
    "IntegrityError",
    "CompatibilityError",
    "CompatibilityWarning",
    "UntrustedTypeError",
    "ArtefactLoadError",
    "OnnxError",
    "OnnxConversionError",
    "OnnxInputError",
    "OnnxAgreementError",
    "InvalidInputError",
    "UnservableModelError",
    "SwapError",
    "FollowError",
    "AuditError",
    "AuditUnavailableError",
    "AuditPathError",
    "HttpServerError",
    "ConsoleWaitError",
    "RetrainError",
    "DecisionLogError",
    "BackendUnavailableError",
    "BackendError",
    "TrackingServerError",
    "QuizError",
    "DemoError",
    "ExerciseError",
]


class PersistError(Exception):
    """Base class for every error raised by persistlib."""


# --------------------------------------------------------------------------- arguments


class InvalidArgumentError(PersistError, ValueError):
    """An argument has an allowed type but a wrong value (e.g. ``bump="huge"``)."""


class ArgumentTypeError(PersistError, TypeError):
    """An argument has the wrong type (e.g. a list where a dict of metrics is needed)."""


class MissingFileError(PersistError, FileNotFoundError):
    """A file that persistlib was asked to read is not there."""


# --------------------------------------------------------------------------- registry


class InvalidVersionError(PersistError, ValueError):
    """A version string is not ``MAJOR.MINOR.PATCH`` (e.g. ``"1.2.0"``)."""


class VersionExistsError(PersistError, FileExistsError):
    """A save asked for a version the registry already holds; nothing is overwritten."""


class VersionNotFoundError(PersistError, LookupError):
    """A version or alias that the registry does not hold."""


class LockTimeoutError(PersistError, TimeoutError):
    """Another process held the registry lock for too long."""


class RollbackError(PersistError):
    """An alias (or a server) has no earlier version to return to."""


class RegistryFileError(PersistError, ValueError):
    """One of the registry's own files (``aliases.json``, ``history.jsonl``, ``registry.json``) is damaged.

    The message names the file and how to repair it; versions that do not need
    the file (loading by version number) keep working.
    """


class StorageError(PersistError, OSError):
    """The disk refused a write or a read: full, read-only, or no permission. Nothing half-written is visible."""


class RegistryWarning(UserWarning):
    """Something in a registry folder was skipped (e.g. a stray file whose name is not a valid version)."""


# --------------------------------------------------------------------------- gate and card


class MissingMetricError(PersistError, ValueError):
    """The gate needs a metric that the candidate's metrics do not contain."""


class GateRejected(PersistError):
    """A model that failed its evaluation gate was offered for saving.

    ``report`` holds the :class:`~persistlib.gate.GateReport` that failed.
    """

    def __init__(self, message: str, report: Any = None):
        super().__init__(message)
        self.report = report


class CardError(PersistError, ValueError):
    """A model card (``*_meta.json``) or another registry file is malformed or incomplete."""


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


class ArtefactLoadError(PersistError):
    """Verified bytes that could not become a model again; the original error is the ``__cause__``.

    Usually code the model needs is missing here (a function defined in a notebook's
    ``__main__``, an uninstalled package or codec), or the library versions differ.
    """


# --------------------------------------------------------------------------- ONNX


class OnnxError(PersistError):
    """An ONNX file cannot be opened or cannot answer (damaged, not ours, no probabilities)."""


class OnnxConversionError(OnnxError):
    """skl2onnx could not convert the model (an unsupported estimator or custom code)."""


class OnnxInputError(OnnxError, ValueError):
    """Rows given to an ONNX model do not have the shape or columns it was exported with."""


class OnnxAgreementError(OnnxError):
    """The ONNX model's labels disagree with the original model's on too many rows."""


# --------------------------------------------------------------------------- serving


class InvalidInputError(PersistError, ValueError):
    """A prediction request whose rows are not what the model needs."""


class UnservableModelError(PersistError):
    """A saved model that the server cannot serve as it is (a problem of the model, not of a request)."""


class SwapError(PersistError):
    """A server refused to swap to another version; the old model keeps serving."""


class FollowError(SwapError):
    """An alias follower could not read its alias or swap to where it moved; the old model keeps serving."""


class AuditError(PersistError):
    """The audit log cannot answer: an unknown request, a closed log, or an unusable file."""


class AuditUnavailableError(AuditError):
    """A fail-closed server refused a prediction because it could not be audited (HTTP 503)."""


class ConsoleWaitError(PersistError):
    """``HotSwapConsole.wait()`` did not see the requests it waited for: the load was not running, was
    stopped, ended, or the server hangs (the message says which)."""


class HttpServerError(PersistError):
    """The HTTP server could not start or stop in time."""


class AuditPathError(AuditError, InvalidArgumentError):
    """An audit log path that cannot hold a log: a folder, a NUL character, or a folder that cannot be created.

    An :class:`AuditError` (like every audit problem) and an :class:`InvalidArgumentError`
    (a bad argument, so also a ``ValueError``).
    """


# --------------------------------------------------------------------------- monitoring


class RetrainError(PersistError):
    """The retrain loop left production as it was instead of changing it halfway.

    Raised when a cycle saved its candidate but could not promote or swap it in,
    and when an alarm fired but production had moved since the loop promoted
    (someone else is in charge now). ``saved_version`` is the version written to
    the registry but not promoted (``None`` for an alarm); ``production_version``
    is the version still serving. The original error, if any, is the ``__cause__``.
    """

    def __init__(self, message: str, *, saved_version: str | None = None, production_version: str | None = None):
        super().__init__(message)
        self.saved_version = saved_version
        self.production_version = production_version


class DecisionLogError(PersistError, ValueError):
    """The retrain loop's decision log (``retrain_log.jsonl``) has a line that is not a JSON object."""


# --------------------------------------------------------------------------- back ends


class BackendUnavailableError(PersistError, ImportError):
    """An optional back end's package (MLflow) is missing or broken; the message names the ``pip install``."""


class BackendError(PersistError):
    """An optional back end (an MLflow tracking store or server) refused a request or could not be reached."""


class TrackingServerError(BackendError):
    """A local MLflow tracking server could not start, answer or stop in time."""


# --------------------------------------------------------------------------- the course


class QuizError(PersistError, ValueError):
    """A quiz file is malformed, or an answer does not fit its question."""


class DemoError(PersistError):
    """A teaching demonstration could not run (e.g. its training script failed)."""


class ExerciseError(PersistError):
    """An exercise id that does not exist, or an answer whose type cannot be checked (the message shows the shape)."""


# --------------------------------------------------------------------------- warnings

_PACKAGE = os.path.dirname(__file__) + os.sep


def warn_caller(message: str, category: type[Warning]) -> None:
    """Warn with ``message``, located at the first line outside persistlib: the user's call.

    A fixed ``stacklevel`` is right for one path only: the same warning can come from
    ``registry.load()``, ``card.check_environment()`` or an MLflow registry, at different
    depths. This one walks up to the caller's frame, whatever the depth.
    """
    frame, level = sys._getframe(0), 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
