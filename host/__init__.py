"""KTRDR training host: runs the TrainingExecutor behind the TrainingHost gRPC service.

``ktrdr host serve`` (or ``python -m host``) starts it; settings come from ``KTRDR_HOST_*``
environment variables (see ``host.settings.HostSettings``). Importing this package is cheap:
the server parts (gRPC, torch) load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from host.settings import HostSettings

if TYPE_CHECKING:
    from host.delivery import DeliveryState, ResultSender
    from host.server import RunningHost, serve, start_host
    from host.servicer import TrainingHostServicer
    from host.sessions import Session, SessionRegistry
    from host.spool import Spool, SpoolEntry

_LAZY = {
    "DeliveryState": "host.delivery",
    "ResultSender": "host.delivery",
    "RunningHost": "host.server",
    "serve": "host.server",
    "start_host": "host.server",
    "TrainingHostServicer": "host.servicer",
    "Session": "host.sessions",
    "SessionRegistry": "host.sessions",
    "Spool": "host.spool",
    "SpoolEntry": "host.spool",
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
    raise AttributeError(f"module 'host' has no attribute {name!r}")
