"""The one error type of the transfer code, carrying the gRPC status the caller should send."""

from __future__ import annotations

from ktrdr.service.errors import StatusError


class TransferError(StatusError):
    """A transfer was refused or failed. ``code`` is the gRPC status to report.

    The servers' error boundary answers it with that status and ``message``.
    """
