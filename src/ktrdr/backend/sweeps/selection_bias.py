"""What selecting the best of a sweep's trials does to its numbers, said where it is seen.

- An objective on a test-period metric is refused unless the request allows it: a sweep that
  selects on the test period makes the winner's test numbers in-sample. An allowed one is
  marked (``SweepRecord.selected_on_test``; its trials' models get ``SELECTED_ON_TEST_TAG``).
- The deflated Sharpe ratio of the best trial (``ktrdr.research.selection``), from the
  validation-period statistics each trial's result carries (``val_*``, see
  ``ktrdr.training.trading.validation_summary``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING

import grpc

from ktrdr.backend.errors import RequestError
from ktrdr.echo import short_repr
from ktrdr.research.selection import DeflatedSharpe, SharpeSample, deflated_sharpe
from ktrdr.training.v1 import backend_pb2 as pb

if TYPE_CHECKING:  # the store imports this module (its migration marks old sweeps)
    from ktrdr.backend.sweeps.store import SweepRecord, TrialRecord

# Every metric a training reports on its test split or test period starts with this.
TEST_PREFIX = "test_"
SELECTED_ON_TEST_TAG = "selected-on-test"
# The trials' validation-period statistics the deflated Sharpe ratio reads.
BAR_SHARPE = "val_bar_sharpe_strategy"
SKEWNESS = "val_skewness_strategy"
KURTOSIS = "val_kurtosis_strategy"
BARS = "val_bars"
# The trials that were compared to choose the best: they count as the trials tried.
_COMPARED = (pb.TRIAL_STATUS_COMPLETED, pb.TRIAL_STATUS_PRUNED)


def reads_test_period(metric: str) -> bool:
    """Whether ``metric`` is computed on the test split or the test period."""
    return metric.strip().lower().startswith(TEST_PREFIX)


def check_objective(request: pb.CreateSweepRequest) -> None:
    """INVALID_ARGUMENT for a test-period objective the request does not allow."""
    if reads_test_period(request.objective) and not request.allow_test_objective:
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"objective {short_repr(request.objective)} is a test-period metric: selecting "
            "trials on the test set makes the best trial's test numbers in-sample (they no "
            "longer estimate how it does on new data). Use a validation metric such as "
            "val_loss, val_accuracy or val_sharpe_strategy; or set allow_test_objective "
            "(ktrdr sweep create --allow-test-objective) to select on it anyway, and the "
            f"sweep and its models are marked {SELECTED_ON_TEST_TAG}",
        )


def selected_on_test(request: pb.CreateSweepRequest) -> bool:
    return reads_test_period(request.objective)


def trial_tags(record: SweepRecord) -> list[str]:
    """The tags of a trial's model: its sweep, and the mark of a test-period objective."""
    tags = [f"sweep={record.id}"]
    if record.selected_on_test:
        tags.append(SELECTED_ON_TEST_TAG)
    return tags


def sweep_deflated_sharpe(
    record: SweepRecord, trials: Sequence[TrialRecord], best: TrialRecord | None
) -> DeflatedSharpe | None:
    """The DSR of ``best`` (the sweep's best trial) among ``trials``; None without a best.

    N counts the completed and pruned trials (every one that was compared); the variance is
    that of the completed trials' validation Sharpe ratios per bar.
    """
    if best is None:
        return None
    n_trials = max(1, sum(1 for t in trials if t.status in _COMPARED))
    sharpes = [
        t.metrics[BAR_SHARPE]
        for t in trials
        if t.status == pb.TRIAL_STATUS_COMPLETED
        and math.isfinite(t.metrics.get(BAR_SHARPE, math.nan))
    ]
    variance = statistics.variance(sharpes) if len(sharpes) >= 2 else None
    m = best.metrics
    bars = int(m.get(BARS, 0))
    if BAR_SHARPE not in m or SKEWNESS not in m or KURTOSIS not in m:
        reason = (
            "the best trial's validation returns do not vary (it never held a position?)"
            if BARS in m
            else "the best trial's result has no validation trading statistics (a split "
            "without a validation period, or a model from an older ktrdr)"
        )
        return DeflatedSharpe(None, n_trials, math.nan, math.nan, bars, reason)
    sample = SharpeSample(m[BAR_SHARPE], m[SKEWNESS], m[KURTOSIS], bars)
    return deflated_sharpe(sample, n_trials, variance)


def deflated_sharpe_to_proto(result: DeflatedSharpe, trial_number: int) -> pb.DeflatedSharpe:
    message = pb.DeflatedSharpe(
        reason=result.reason,
        n_trials=result.n_trials,
        trial_number=trial_number,
        observations=result.observations,
        description=result.describe(),
    )
    if result.probability is not None:
        message.probability = result.probability
    if math.isfinite(result.sharpe):
        message.sharpe = result.sharpe
    if math.isfinite(result.expected_max_sharpe):
        message.expected_max_sharpe = result.expected_max_sharpe
    return message


__all__ = [
    "SELECTED_ON_TEST_TAG",
    "check_objective",
    "deflated_sharpe_to_proto",
    "reads_test_period",
    "selected_on_test",
    "sweep_deflated_sharpe",
    "trial_tags",
]
