"""What the host's sessions and deliveries tell its metrics: a no-op unless metrics are on.

``SessionRegistry``, ``Session`` and ``ResultSender`` call these at their transitions;
``HostEvents`` does nothing. ``ktrdr_host.metrics.HostMetrics`` overrides them with
Prometheus counters and histograms. Standard library only.
"""

from __future__ import annotations

from collections.abc import Callable

from ktrdr.training.progress import ProgressEvent


class HostEvents:
    """The host's transitions, as its metrics see them (every method returns at once)."""

    def session_started(self) -> None:
        """A session was admitted and starts training."""

    def session_finished(self, outcome: str) -> None:
        """It ended: ``completed`` (model spooled), ``failed`` or ``cancelled``."""

    def run_observer(self) -> Callable[[ProgressEvent], None] | None:
        """What sees one run's library events in its thread (None: nothing)."""
        return None

    def upload_attempt(self, outcome: str, sent_bytes: int, seconds: float) -> None:
        """One SubmitResults attempt ended: ``delivered``, ``retry`` or ``failed``."""


NO_EVENTS = HostEvents()

__all__ = ["NO_EVENTS", "HostEvents"]
