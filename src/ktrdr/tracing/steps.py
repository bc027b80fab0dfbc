"""A span per executor step, made from the executor's own progress events.

The ``TrainingExecutor`` reports ``STEP_STARTED``/``STEP_FINISHED`` for each of its numbered
steps; ``StepSpans`` wraps the run's progress callback and turns each pair into a span named
as the executor names the step ("Step 8: train"), so the executor itself knows nothing of
tracing. Imported only while tracing is on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ktrdr.tracing import otel
from ktrdr.training.progress import ProgressKind

if TYPE_CHECKING:
    from ktrdr.training.progress import ProgressCallback, ProgressEvent


class StepSpans:
    """A progress callback: opens and closes step spans, then passes every event on."""

    def __init__(self, progress: ProgressCallback | None) -> None:
        self.progress = progress
        self._open: Any = None  # the step's span while it runs

    def __call__(self, event: ProgressEvent) -> None:
        if event.kind is ProgressKind.STEP_STARTED:
            self.close("the next step started first")
            self._open = otel.start_span(
                f"Step {event.step}: {event.step_name}",
                {"ktrdr.step": event.step, "ktrdr.step_name": event.step_name},
            )
        elif event.kind is ProgressKind.STEP_FINISHED and self._open is not None:
            self._open.end()
            self._open = None
        if self.progress is not None:
            self.progress(event)

    def close(self, error: str) -> None:
        """End a step the run left (it failed or was cancelled in the middle), as an error."""
        if self._open is not None:
            otel.end_span(self._open, error)
            self._open = None


__all__ = ["StepSpans"]
