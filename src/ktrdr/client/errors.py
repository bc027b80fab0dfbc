"""Exceptions of the client: one base class, a gRPC error and a failed operation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import grpc

from ktrdr.security.diagnose import explain_token, explain_unavailable
from ktrdr.security.tls import ClientTLS

if TYPE_CHECKING:
    from ktrdr.client.results import TrainingResult


class KtrdrClientError(Exception):
    """Base class of every error the client raises."""


class KtrdrServiceError(KtrdrClientError):
    """A gRPC call failed: ``code`` is the gRPC status, ``message`` the server's explanation."""

    def __init__(self, code: grpc.StatusCode, message: str, *, address: str = "") -> None:
        self.code = code
        self.message = message
        self.address = address
        super().__init__(f"{code.name}: {message}")


class MissingExtraError(KtrdrClientError, ImportError):
    """A call needs an optional package this installation lacks; the message is one line
    naming the extra that brings it (and the plain data to use instead, where there is some)."""


def require_module(module: str, what: str, *, extra: str = "notebook", instead: str = "") -> Any:
    """``module`` imported, or ``MissingExtraError``: ``{what} needs {module} ... pip install
    'ktrdr[{extra}]'`` (``instead``: what works without it)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != module.split(".")[0]:
            raise
        hint = f"; without it, {instead}" if instead else ""
        raise MissingExtraError(
            f"{what} needs {module}, which this installation lacks: "
            f"pip install 'ktrdr[{extra}]'{hint}"
        ) from None


class OperationFailedError(KtrdrClientError):
    """A training operation ended FAILED or CANCELLED; ``result`` holds the operation."""

    def __init__(self, result: TrainingResult) -> None:
        self.result = result
        super().__init__(
            f"operation {result.operation_id} {result.status.lower()}: "
            f"{result.error_message or 'no reason given'}"
        )


def service_error(
    exc: grpc.RpcError, address: str = "", tls: ClientTLS | None = None
) -> KtrdrServiceError:
    """The ``KtrdrServiceError`` for a failed call, with a readable message for UNAVAILABLE
    (a TLS mistake named with the setting to change, see ``ktrdr.security.diagnose``) and
    UNAUTHENTICATED. ``tls``: the channel's settings, when known."""
    code_fn = getattr(exc, "code", None)
    details_fn = getattr(exc, "details", None)
    code = code_fn() if callable(code_fn) else grpc.StatusCode.UNKNOWN
    message = (details_fn() if callable(details_fn) else None) or str(exc)
    cause = (
        explain_unavailable(message, address, tls)
        if code is grpc.StatusCode.UNAVAILABLE and address
        else None
    )
    if cause is not None:
        message = f"cannot connect to {address}: {cause}"
    elif code is grpc.StatusCode.UNAVAILABLE and address and "Connection refused" in message:
        message = f"cannot reach {address}: connection refused; is the service running there?"
    elif code is grpc.StatusCode.UNAVAILABLE and address:
        message = f"cannot reach {address} ({message}); is the service running?"
    elif code is grpc.StatusCode.DEADLINE_EXCEEDED and address:
        message = f"{address} did not answer in time ({message})"
    elif code is grpc.StatusCode.UNAUTHENTICATED and "requires a bearer token" in message:
        message = (
            f"{message}. On the backend's machine the first admin token is in "
            "DATA_DIR/admin.token (.ktrdr/backend/admin.token by default)"
        )
    elif code is grpc.StatusCode.UNAUTHENTICATED:
        message = explain_token(message)
    return KtrdrServiceError(code, message, address=address)


@contextmanager
def translate_errors(address: str = "", tls: ClientTLS | None = None) -> Iterator[None]:
    """Turn ``grpc.RpcError`` raised inside the block into ``KtrdrServiceError``."""
    try:
        yield
    except grpc.RpcError as exc:
        raise service_error(exc, address, tls) from None


__all__ = [
    "KtrdrClientError",
    "KtrdrServiceError",
    "MissingExtraError",
    "OperationFailedError",
    "require_module",
    "service_error",
    "translate_errors",
]
