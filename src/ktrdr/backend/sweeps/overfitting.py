"""The probability of backtest overfitting (PBO) of a sweep, from its trials' walk-forward folds.

The matrix CSCV splits (:func:`ktrdr.research.overfitting.backtest_overfitting`) has one row
per fold and one column per completed trial: each fold's test-period return
(``wf_fold_return_<k>``, see :func:`ktrdr.training.folds.walk_forward_summary`). Every fold is
one block (S = the number of folds; the first fold is left out when that number is odd, the
oldest being the least like the period that follows), and a half is judged by its mean fold
return. The folds lie before the test split, so PBO, like the ``wf_*`` objectives, never reads
the test period.

A sweep whose trials have no folds gets a ``BacktestOverfitting`` with a reason, never nothing.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ktrdr.research.overfitting import backtest_overfitting
from ktrdr.training.fold_metrics import FOLD_RETURN
from ktrdr.training.v1 import backend_pb2 as pb

if TYPE_CHECKING:
    from ktrdr.backend.sweeps.store import TrialRecord

METRIC = FOLD_RETURN.rstrip("_")


@dataclass(frozen=True)
class SweepOverfitting:
    """PBO of a sweep (``probability`` None when it cannot be computed: ``reason`` says why)."""

    probability: float | None
    reason: str
    n_trials: int
    n_folds: int
    combinations: int

    def describe(self) -> str:
        if self.probability is None:
            return f"probability of backtest overfitting: not available ({self.reason})"
        note = f"; {self.reason}" if self.reason else ""
        return (
            f"probability of backtest overfitting {self.probability:.2f}: share of "
            f"{self.combinations} fold splits where the trial best on half the folds is at or "
            f"below the median on the other half ({self.n_trials} trials, {self.n_folds} "
            f"walk-forward folds, mean fold return{note})"
        )


def _fold_returns(metrics: dict[str, float]) -> list[float]:
    """The trial's per-fold returns in fold order; empty without walk-forward folds."""
    count = int(metrics.get("wf_folds", 0))
    values = [metrics.get(f"{FOLD_RETURN}{k}", math.nan) for k in range(1, count + 1)]
    return values if count and all(math.isfinite(v) for v in values) else []


def sweep_overfitting(trials: Sequence[TrialRecord]) -> SweepOverfitting | None:
    """PBO over the completed trials; None while none completed."""
    done = [t for t in trials if t.status == pb.TRIAL_STATUS_COMPLETED]
    if not done:
        return None
    folds = [_fold_returns(t.metrics) for t in done]
    with_folds = [f for f in folds if f]
    if not with_folds:
        return SweepOverfitting(
            None,
            "the trials have no walk-forward folds; set evaluation.walk_forward.folds in the "
            "strategy (or --set evaluation.walk_forward.folds=4) to get it",
            len(done),
            0,
            0,
        )
    counts = {len(f) for f in with_folds}
    if len(with_folds) != len(folds) or len(counts) > 1:
        return SweepOverfitting(
            None,
            f"the trials' folds differ ({len(folds) - len(with_folds)} of {len(folds)} "
            f"without folds; fold counts {sorted(counts)}): PBO needs every trial on the "
            "same folds",
            len(done),
            0,
            0,
        )
    n_folds = counts.pop()
    dropped = n_folds % 2
    blocks = n_folds - dropped
    if len(done) < 2 or blocks < 2:
        return SweepOverfitting(
            None,
            f"needs at least 2 completed trials and 2 folds (has {len(done)} and {n_folds})",
            len(done),
            n_folds,
            0,
        )
    matrix = [[f[k] for f in with_folds] for k in range(dropped, n_folds)]
    result = backtest_overfitting(matrix, blocks, metric=statistics.fmean)
    reason = "the first fold left out so the folds split in halves" if dropped else ""
    return SweepOverfitting(result.probability, reason, len(done), blocks, len(result.logits))


def overfitting_to_proto(result: SweepOverfitting) -> pb.BacktestOverfitting:
    message = pb.BacktestOverfitting(
        reason=result.reason,
        n_trials=result.n_trials,
        n_folds=result.n_folds,
        combinations=result.combinations,
        metric=METRIC,
        description=result.describe(),
    )
    if result.probability is not None:
        message.probability = result.probability
    return message


__all__ = ["METRIC", "SweepOverfitting", "overfitting_to_proto", "sweep_overfitting"]
