"""The library's one exception hierarchy.

Every error the training library raises on purpose is a ``TrainingError``. The services map
these to gRPC status codes in exactly one function each; the CLI prints ``str(error)``.
"""

from __future__ import annotations


class TrainingError(Exception):
    """Base class of every error the training library raises deliberately."""


class StrategyConfigError(TrainingError):
    """The strategy YAML is invalid. ``errors`` lists every problem as ``path: message``."""

    def __init__(self, errors: list[str] | str) -> None:
        self.errors: list[str] = [errors] if isinstance(errors, str) else list(errors)
        super().__init__("; ".join(self.errors))

    def __reduce__(self) -> tuple[type, tuple[list[str]]]:  # crosses process boundaries whole
        return (type(self), (self.errors,))


class DataError(TrainingError):
    """Market data is missing or invalid (the message names the file and the first bad row)."""


class DeviceError(TrainingError):
    """The requested compute device is not available."""


class TrainingCancelled(TrainingError):
    """The run was cancelled through its ``CancellationToken``; no bundle was produced."""


class BundleError(TrainingError):
    """A model bundle is malformed, incomplete or does not match what was expected."""


class StorageError(TrainingError):
    """A model could not be stored or found (bad names, missing versions, I/O errors)."""


class WorkerDied(TrainingError):
    """The process a training ran in ended without an answer (killed, out of memory)."""


__all__ = [
    "BundleError",
    "DataError",
    "DeviceError",
    "StorageError",
    "StrategyConfigError",
    "TrainingCancelled",
    "TrainingError",
    "WorkerDied",
]
