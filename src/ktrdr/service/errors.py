"""The one error type of the service edge: a gRPC status code and an actionable message.

The transfer code, the host and the backend raise subclasses of ``StatusError``; the
servers' one error boundary (``ktrdr.service.error_boundary``) answers it with its code,
message and trailing metadata.
"""

from __future__ import annotations

import grpc


class StatusError(Exception):
    """A request that is refused or failed, with the status to answer and why."""

    def __init__(
        self, code: grpc.StatusCode, message: str, details: list[str] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = list(details or [])
        # sent with the status, e.g. SubmitResults' retry hint (``ktrdr.transfer.refusals``)
        self.trailing_metadata: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"
