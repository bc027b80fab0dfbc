"""Cooperative cancellation: a token the caller sets and the executor checks."""

from __future__ import annotations

import threading

from ktrdr.errors import TrainingCancelled


class CancellationToken:
    """Thread-safe flag. The executor checks it between steps and every few batches."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._reason = ""

    def cancel(self, reason: str = "cancelled by request") -> None:
        """Ask the run to stop. Idempotent; the first reason wins."""
        if not self._event.is_set():
            self._reason = reason
            self._event.set()

    def is_cancelled(self) -> bool:
        return self._event.is_set()

    @property
    def reason(self) -> str:
        return self._reason

    def raise_if_cancelled(self) -> None:
        """Raise ``TrainingCancelled`` if ``cancel()`` was called."""
        if self._event.is_set():
            raise TrainingCancelled(self._reason or "cancelled")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until cancelled or ``timeout`` seconds pass; returns whether cancelled."""
        return self._event.wait(timeout)
