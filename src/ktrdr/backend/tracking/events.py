"""What the backend's lifecycle tells its metrics: one narrow interface, a no-op by default.

``Operations``, ``LiveOperation``, ``ResultsIntake``, the model downloads and the sweeps call
these methods at their transitions; ``BackendEvents`` does nothing (metrics off: a method call
per transition, nothing kept). ``ktrdr.backend.tracking.metrics.BackendMetrics`` overrides them
with Prometheus counters and histograms. Counts of what is active now are not kept here: the
metrics read them from the operations themselves when scraped, so they cannot drift.

Standard library only; no Prometheus import.
"""

from __future__ import annotations


class BackendEvents:
    """The backend's transitions, as its metrics see them (every method returns at once)."""

    def operation_created(self, mode: int) -> None:
        """An operation was recorded (PENDING) in ``mode`` (an ``ExecutionMode`` value)."""

    def operation_running(self, mode: int, created_us: int) -> None:
        """It left the queue and runs (created ``created_us``, microseconds since the epoch)."""

    def operation_finished(self, mode: int, status: int, created_us: int) -> None:
        """It reached the terminal ``status`` (an ``OperationStatus`` value)."""

    def upload_finished(self, outcome: str, raw_bytes: int, seconds: float) -> None:
        """A SubmitResults stream ended: ``stored``, ``duplicate`` or ``refused``."""

    def download_finished(self, outcome: str, sent_bytes: int) -> None:
        """A DownloadModel stream ended (``complete`` or ``incomplete``) after sending bytes."""

    def trial_changed(self, state: str) -> None:
        """A sweep trial ``started`` or ended (``completed``, ``pruned``, ``failed``, ...)."""


NO_EVENTS = BackendEvents()

__all__ = ["NO_EVENTS", "BackendEvents"]
