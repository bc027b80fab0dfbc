"""One typed progress event and the one helper that dispatches it.

The executor never calls the user's callback directly: it goes through ``ProgressReporter``,
which rate-limits batch events and makes sure a failing callback cannot crash training.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# The metrics every EPOCH event carries (val_* only when there is a validation split): what a
# sweep's pruner can watch.
EPOCH_METRICS = ("train_loss", "train_accuracy", "learning_rate", "val_loss", "val_accuracy")

logger = logging.getLogger(__name__)


class ProgressKind(enum.StrEnum):
    """What a progress event reports. The services add ACCEPTED and HEARTBEAT themselves."""

    ACCEPTED = "accepted"
    STEP_STARTED = "step_started"
    STEP_FINISHED = "step_finished"
    EPOCH = "epoch"
    BATCH = "batch"
    HEARTBEAT = "heartbeat"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (ProgressKind.COMPLETED, ProgressKind.FAILED, ProgressKind.CANCELLED)


# The executor's numbered steps, in order. Progress percentages are weighted by these.
STEP_NAMES: tuple[str, ...] = (
    "load data",
    "indicators",
    "fuzzy memberships",
    "features",
    "labels",
    "split",
    "build model",
    "train",
    "evaluate",
    "feature importance",
    "package bundle",
)
TOTAL_STEPS = len(STEP_NAMES)


@dataclass(frozen=True)
class ProgressEvent:
    """One progress report. Counters are 0 when they do not apply to the event's kind."""

    kind: ProgressKind
    step: int = 0
    step_name: str = ""
    total_steps: int = TOTAL_STEPS
    epoch: int = 0
    total_epochs: int = 0
    batch: int = 0
    total_batches: int = 0
    percent: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    message: str = ""
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "step": self.step,
            "step_name": self.step_name,
            "total_steps": self.total_steps,
            "epoch": self.epoch,
            "total_epochs": self.total_epochs,
            "batch": self.batch,
            "total_batches": self.total_batches,
            "percent": self.percent,
            "metrics": dict(self.metrics),
            "message": self.message,
            "timestamp": self.timestamp.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProgressEvent:
        return cls(
            kind=ProgressKind(data["kind"]),
            step=int(data.get("step", 0)),
            step_name=str(data.get("step_name", "")),
            total_steps=int(data.get("total_steps", TOTAL_STEPS)),
            epoch=int(data.get("epoch", 0)),
            total_epochs=int(data.get("total_epochs", 0)),
            batch=int(data.get("batch", 0)),
            total_batches=int(data.get("total_batches", 0)),
            percent=float(data.get("percent", 0.0)),
            metrics={k: float(v) for k, v in dict(data.get("metrics", {})).items()},
            message=str(data.get("message", "")),
            timestamp=datetime.fromisoformat(data["timestamp"])
            if data.get("timestamp")
            else datetime.now(UTC),
        )


ProgressCallback = Callable[[ProgressEvent], None]

# Share of the whole run attributed to each step, for the percent field (train dominates).
_STEP_WEIGHTS: tuple[float, ...] = (4, 4, 2, 3, 2, 1, 1, 75, 3, 4, 1)


def step_base_percent(step: int) -> float:
    """Percent of the run completed when ``step`` (1-based) starts."""
    total = sum(_STEP_WEIGHTS)
    return 100.0 * sum(_STEP_WEIGHTS[: max(0, step - 1)]) / total


def step_span_percent(step: int) -> float:
    """Percent of the run that ``step`` (1-based) accounts for."""
    return 100.0 * _STEP_WEIGHTS[step - 1] / sum(_STEP_WEIGHTS)


class ProgressReporter:
    """Dispatches events to one callback: safe, thread-safe, batch events rate-limited."""

    def __init__(
        self,
        callback: ProgressCallback | None,
        *,
        max_batch_events_per_s: float = 4.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._callback = callback
        self._min_batch_interval = 1.0 / max_batch_events_per_s if max_batch_events_per_s else 0
        self._clock = clock
        self._last_batch_emit = float("-inf")
        self._lock = threading.Lock()
        self._warned = False

    @property
    def min_batch_interval(self) -> float:
        """Seconds between two batch events (callers may skip building events sooner)."""
        return self._min_batch_interval

    def emit(self, event: ProgressEvent) -> None:
        """Send ``event`` to the callback; batch events beyond the rate limit are dropped."""
        if self._callback is None:
            return
        if event.kind is ProgressKind.BATCH:
            now = self._clock()
            with self._lock:
                if now - self._last_batch_emit < self._min_batch_interval:
                    return
                self._last_batch_emit = now
        try:
            self._callback(event)
        except Exception:  # a broken callback must never crash training
            if not self._warned:
                logger.warning("progress callback raised; training continues", exc_info=True)
                self._warned = True
