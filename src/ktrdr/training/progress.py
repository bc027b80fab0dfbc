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
TRAIN_STEP = STEP_NAMES.index("train") + 1
EVALUATE_STEP = STEP_NAMES.index("evaluate") + 1  # where walk-forward folds train


@dataclass(frozen=True)
class ProgressScale:
    """Where each step's work lies on the run's 0-100 percent scale.

    A walk-forward run trains one model per fold besides the final one, in the evaluate step
    after that step's own evaluation. ``fold_shares`` weighs each fold's training against the
    final model's (its training rows over the final model's, at most 1): training time grows
    with the rows, the epochs being capped alike. Before the rows are known a run uses
    :meth:`estimate` (every fold as large as the final training), which no fold exceeds, so
    switching to :meth:`for_rows` before the build-model step only moves the percent forward.
    """

    fold_shares: tuple[float, ...] = ()

    @classmethod
    def estimate(cls, folds: int) -> ProgressScale:
        """``folds`` folds, each counted as one more final training (an upper bound)."""
        return cls((1.0,) * folds)

    @classmethod
    def for_rows(cls, final_rows: int, fold_rows: list[int]) -> ProgressScale:
        """Each fold weighted by its training rows over the final model's (at most 1)."""
        return cls(tuple(min(1.0, rows / max(final_rows, 1)) for rows in fold_rows))

    @property
    def folds(self) -> int:
        return len(self.fold_shares)

    @property
    def weights(self) -> tuple[float, ...]:
        extra = sum(self.fold_shares) * _STEP_WEIGHTS[TRAIN_STEP - 1]
        return tuple(
            w + extra if step == EVALUATE_STEP else w
            for step, w in enumerate(_STEP_WEIGHTS, start=1)
        )

    def _percent(self, done: float) -> float:
        """Percent for ``done`` weights of work: sums taken in the same order everywhere, so
        a step's end is exactly the next step's start."""
        return 100.0 * done / sum(self.weights)

    def base(self, step: int) -> float:
        """Percent of the run completed when ``step`` (1-based) starts."""
        return self._percent(sum(self.weights[: max(0, step - 1)]))

    def span(self, step: int) -> float:
        """Percent of the run that ``step`` (1-based) accounts for."""
        return self._percent(self.weights[step - 1])

    def within(self, step: int, fraction: float) -> float:
        """Percent at ``fraction`` (clamped to 0..1) of ``step``'s own work."""
        if fraction >= 1.0:
            return self.base(step + 1)
        weights = self.weights
        return self._percent(sum(weights[: step - 1]) + weights[step - 1] * max(fraction, 0.0))

    def folds_done(self, done: float) -> float:
        """Percent when ``done`` folds (0..folds; a fraction for the one under way) are
        trained, the folds taken in order: the folds' share ends the evaluate step."""
        total = sum(self.fold_shares)
        done = min(max(done, 0.0), float(self.folds))
        if total <= 0 or done >= self.folds:
            return self.base(EVALUATE_STEP + 1)
        whole = int(done)
        trained = sum(self.fold_shares[:whole]) + (done - whole) * self.fold_shares[whole]
        own = _STEP_WEIGHTS[EVALUATE_STEP - 1]
        folds = self.weights[EVALUATE_STEP - 1] - own
        before = sum(self.weights[: EVALUATE_STEP - 1])
        return self._percent(before + own + folds * trained / total)


DEFAULT_SCALE = ProgressScale()


def step_base_percent(step: int) -> float:
    """Percent of the run completed when ``step`` (1-based) starts (a run without folds)."""
    return DEFAULT_SCALE.base(step)


def step_span_percent(step: int) -> float:
    """Percent of the run that ``step`` (1-based) accounts for (a run without folds)."""
    return DEFAULT_SCALE.span(step)


class ProgressReporter:
    """Dispatches events to one callback: safe, thread-safe, batch events rate-limited."""

    def __init__(
        self,
        callback: ProgressCallback | None,
        *,
        max_batch_events_per_s: float = 4.0,
        clock: Callable[[], float] = time.monotonic,
        scale: ProgressScale = DEFAULT_SCALE,
    ) -> None:
        self._callback = callback
        self.scale = scale  # the run's percent scale: what the trainer places its events on
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
