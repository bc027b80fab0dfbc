"""The one error type of the transfer code, carrying the gRPC status the caller should send."""

from __future__ import annotations

import grpc


class TransferError(Exception):
    """A transfer was refused or failed. ``code`` is the gRPC status to report.

    The servicer turns it into ``await context.abort(error.code, error.message)``.
    """

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"
