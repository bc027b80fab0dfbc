"""The backend's request errors: a gRPC status code and a message a person can act on."""

from __future__ import annotations

import grpc


class RequestError(Exception):
    """A request the backend refuses; the servicer aborts the RPC with ``code``/``message``."""

    def __init__(self, code: grpc.StatusCode, message: str, details: list[str] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or []

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


def not_found(operation_id: str) -> RequestError:
    return RequestError(
        grpc.StatusCode.NOT_FOUND,
        f"no operation {operation_id!r} on this backend (ListOperations shows the known ones)",
    )
