"""KTRDR training host: runs the TrainingExecutor behind the TrainingHost gRPC service.

``ktrdr host serve`` (or ``python -m ktrdr_host``) starts it; settings come from ``KTRDR_HOST_*``
environment variables (see ``ktrdr_host.settings.HostSettings``). Importing this package is cheap:
the server parts (gRPC, torch) load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ktrdr_host.settings import HostSettings

if TYPE_CHECKING:
    from ktrdr_host.delivery import DeliveryState, ResultSender
    from ktrdr_host.server import RunningHost, serve, start_host
    from ktrdr_host.servicer import TrainingHostServicer
    from ktrdr_host.sessions import Session, SessionRegistry
    from ktrdr_host.spool import Spool, SpoolEntry

_LAZY = {
    "DeliveryState": "ktrdr_host.delivery",
    "ResultSender": "ktrdr_host.delivery",
    "RunningHost": "ktrdr_host.server",
    "serve": "ktrdr_host.server",
    "start_host": "ktrdr_host.server",
    "TrainingHostServicer": "ktrdr_host.servicer",
    "Session": "ktrdr_host.sessions",
    "SessionRegistry": "ktrdr_host.sessions",
    "Spool": "ktrdr_host.spool",
    "SpoolEntry": "ktrdr_host.spool",
}

__all__ = [
    "DeliveryState",
    "HostSettings",
    "ResultSender",
    "RunningHost",
    "Session",
    "SessionRegistry",
    "Spool",
    "SpoolEntry",
    "TrainingHostServicer",
    "serve",
    "start_host",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ktrdr_host' has no attribute {name!r}")
