"""The backend's request errors: a gRPC status code and a message a person can act on."""

from __future__ import annotations

import grpc

from ktrdr.service.errors import StatusError


class RequestError(StatusError):
    """A request the backend refuses; the servicer aborts the RPC with ``code``/``message``."""


def not_found(operation_id: str) -> RequestError:
    return RequestError(
        grpc.StatusCode.NOT_FOUND,
        f"no operation {operation_id!r} on this backend (ListOperations shows the known ones)",
    )
