"""The backend: the Backend gRPC service users talk to.

It owns training operations (SQLite), the model store and strategy status; picks an execution
mode per request (``ModeSelector``, with the standard gRPC health check on hosts); runs the
training library in-process (``LocalRunner``) or drives a training host (``HostRunner``); and
receives models from hosts with ``SubmitResults`` (``ResultsIntake``).
"""

from ktrdr.backend.execution.mode_selector import (
    HostProbe,
    ModeSelector,
    ModeUnavailable,
    Selection,
)
from ktrdr.backend.server import BackendApp, serve
from ktrdr.backend.settings import BackendSettings
from ktrdr.backend.store import Store

__all__ = [
    "BackendApp",
    "BackendSettings",
    "HostProbe",
    "ModeSelector",
    "ModeUnavailable",
    "Selection",
    "Store",
    "serve",
]
