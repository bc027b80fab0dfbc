"""Walk-forward evaluation: one model per fold, each trained and evaluated as the single split's
model is (:mod:`ktrdr.training.fitting`: scaler fitted on the fold's training rows, the same
seed, early stopping on the fold's validation part), then the folds' test periods traded in
order as one out-of-sample run.

The folds lie before the test split (:mod:`ktrdr.training.folds`), so ``wf_*`` numbers never
read the test period: a sweep may select on them, and the final model's test numbers stay
out of sample. The fold models are evaluation only; the bundle keeps the single-split model.

The folds are independent: a *fold map* trains them (:class:`FoldMap`). The library's is
:func:`sequential_folds`, one after another in this process; a caller that has a cluster
gives the executor one that trains each fold elsewhere (the host's Ray mode does), from the
same picklable :class:`FoldWork` and with the same result.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from ktrdr.config.strategy import StrategyConfig
from ktrdr.training.cancellation import CancellationToken
from ktrdr.training.dataset import Dataset
from ktrdr.training.evaluation import evaluate, majority_accuracy
from ktrdr.training.fitting import ScaledRows, build_model, build_trainer, predicted
from ktrdr.training.folds import fold_splits
from ktrdr.training.progress import (
    DEFAULT_SCALE,
    EVALUATE_STEP,
    TRAIN_STEP,
    ProgressEvent,
    ProgressKind,
    ProgressReporter,
)
from ktrdr.training.split import Split
from ktrdr.training.trader_eval import trade_signals

logger = logging.getLogger(__name__)

# The numbers each fold reports that get a mean and spread over the folds.
AGGREGATED = ("accuracy", "return", "sharpe", "max_drawdown")


@dataclass(frozen=True)
class FoldResult:
    """One fold's table row and its model's signal on every row of the fold's test."""

    row: dict[str, Any]
    signals: np.ndarray
    ran_on: dict[str, Any] = dataclasses.field(default_factory=dict)  # a map's own record


@dataclass(frozen=True)
class FoldWork:
    """Everything the folds train on, picklable: a fold map may ship it to other processes
    once and train any fold there, with the same result as here (the same seed per fold)."""

    cfg: StrategyConfig
    dataset: Dataset
    splits: list[Split]
    device: str  # a torch device name
    seed: int

    @property
    def folds(self) -> int:
        return len(self.splits)

    def label(self, number: int) -> str:
        return f"walk-forward fold {number}/{self.folds}"

    def dates(self, number: int) -> str:
        b = self.splits[number - 1].info["boundaries"]
        return (
            f"train from {b['train_start'][:10]}, "
            f"test {b['test_start'][:10]} .. {b['test_end'][:10]}"
        )

    def train(
        self,
        number: int,
        progress: Callable[[ProgressEvent], None] | None,
        cancel: CancellationToken,
    ) -> FoldResult:
        """Train and evaluate fold ``number`` (1-based); ``progress`` hears its trainer."""
        cancel.raise_if_cancelled()
        row, signals = _fold(
            self.cfg,
            self.dataset,
            self.splits[number - 1],
            torch.device(self.device),
            self.seed,
            progress,
            cancel,
        )
        return FoldResult(row, signals)


class FoldEvents:
    """A fold map's progress: each fold's start (with its dates) and end (with its numbers)
    as step events of the evaluate step, a fold's epochs as progress (BATCH) events, so a
    sweep's pruner and the epoch display only ever see the final model's epochs. ``done`` is
    how many folds are trained (a fraction for one under way): it places the percent."""

    def __init__(self, outer: ProgressReporter, work: FoldWork) -> None:
        self.outer, self.work = outer, work
        self.scale = outer.scale

    def _emit(self, kind: ProgressKind, number: int, done: float, message: str, **kw: Any) -> None:
        self.outer.emit(
            ProgressEvent(
                kind,
                step=EVALUATE_STEP,
                step_name=self.work.label(number),
                percent=self.scale.folds_done(done),
                message=f"{self.work.label(number)}: {message}",
                **kw,
            )
        )

    def started(self, number: int, done: float, where: str = "") -> None:
        self._emit(ProgressKind.STEP_STARTED, number, done, self.work.dates(number) + where)

    def finished(self, number: int, done: float, result: FoldResult) -> None:
        row = result.row
        logger.info(
            "%s: test accuracy %.4f, return %+.2f%%",
            self.work.label(number),
            row["accuracy"],
            100 * row["return"],
        )
        self._emit(
            ProgressKind.STEP_FINISHED,
            number,
            done,
            f"done ({done:g} of {self.work.folds}): test accuracy {row['accuracy']:.4f}, "
            f"return {100 * row['return']:+.2f}%",
            metrics={"accuracy": float(row["accuracy"]), "return": float(row["return"])},
        )

    def trainer(self, number: int) -> Callable[[ProgressEvent], None]:
        """A fold trainer's events (on the default scale's train step) re-labelled."""
        base, span = DEFAULT_SCALE.base(TRAIN_STEP), DEFAULT_SCALE.span(TRAIN_STEP)

        def relay(event: ProgressEvent) -> None:
            fraction = min(max((event.percent - base) / span, 0.0), 1.0)
            label = self.work.label(number)
            self.outer.emit(
                dataclasses.replace(
                    event,
                    kind=ProgressKind.BATCH,
                    step=EVALUATE_STEP,
                    step_name=label,
                    percent=self.scale.folds_done(number - 1 + fraction),
                    message=f"{label}: epoch {event.epoch}/{event.total_epochs}",
                )
            )

        return relay


class FoldMap(Protocol):
    """Trains every fold of ``work`` and returns the results in fold order; honours
    ``cancel`` (raises ``TrainingCancelled``) and reports through ``events``. The executor
    runs :func:`sequential_folds` unless its caller gives another (a cluster's)."""

    def __call__(
        self, work: FoldWork, events: FoldEvents, cancel: CancellationToken
    ) -> list[FoldResult]: ...


def sequential_folds(
    work: FoldWork, events: FoldEvents, cancel: CancellationToken
) -> list[FoldResult]:
    """One fold after another in this process (a cancel is honoured between and within)."""
    results = []
    for number in range(1, work.folds + 1):
        cancel.raise_if_cancelled()
        events.started(number, number - 1)
        results.append(work.train(number, events.trainer(number), cancel))
        events.finished(number, number, results[-1])
    return results


def walk_forward_folds(cfg: StrategyConfig, dataset: Dataset) -> list[Split]:
    """The strategy's walk-forward folds (none without ``evaluation.walk_forward``); a
    DataError naming the numbers when they do not fit the data."""
    wf = cfg.evaluation.walk_forward
    return fold_splits(dataset, cfg.training.data_split, wf) if wf is not None else []


def run_walk_forward(
    cfg: StrategyConfig,
    dataset: Dataset,
    splits: list[Split],
    device: torch.device,
    seed: int,
    reporter: ProgressReporter,
    cancel: CancellationToken,
    fold_map: FoldMap = sequential_folds,
) -> dict[str, Any]:
    """Train and evaluate every fold (``splits``: :func:`walk_forward_folds`) through
    ``fold_map``, then aggregate and stitch."""
    wf = cfg.evaluation.walk_forward
    assert wf is not None, "a strategy with walk-forward folds"
    work = FoldWork(cfg, dataset, splits, str(device), seed)
    results = fold_map(work, FoldEvents(reporter, work), cancel)
    rows = [r.row for r in results]
    out = {
        "window": wf.window,
        "config": wf.model_dump(mode="json"),
        "period": "the development period before the test split; the folds' models are "
        "evaluation only, the bundle's model is the single-split model",
        "folds": rows,
        "aggregate": _aggregate(rows),
        "folds_beating_baselines": sum(1 for r in rows if r["beats_baselines"]),
        "stitched": _stitched(cfg, dataset, splits, [r.signals for r in results]),
    }
    if any(r.ran_on for r in results):
        out["ran_on"] = [r.ran_on for r in results]
    return out


def _fold(
    cfg: StrategyConfig,
    dataset: Dataset,
    split: Split,
    device: torch.device,
    seed: int,
    progress: Callable[[ProgressEvent], None] | None,
    cancel: CancellationToken,
) -> tuple[dict[str, Any], np.ndarray]:
    scaled = ScaledRows(cfg, dataset, split, device)
    model, _ = build_model(cfg, dataset, device, seed)
    reporter = ProgressReporter(progress, max_batch_events_per_s=0)  # the outer one limits
    trainer = build_trainer(cfg, model, dataset.y[split.train], seed, reporter, cancel)
    val = scaled.part(split.validation)
    outcome = trainer.fit(scaled.part(split.train), val if len(val) else None)
    cancel.raise_if_cancelled()
    scores = evaluate(model, scaled.part(split.test), trainer.loss_fn, dataset.symbols)
    fold_signals = predicted(model, scaled.part(split.test_period))
    trading = trade_signals(fold_signals, dataset, split, cfg)
    overall = trading["overall"]
    strategy = overall["strategy"]
    info = split.info
    row = {
        "fold": info["fold"],
        **{f"{k}": v for k, v in info["boundaries"].items()},
        "bars": info["bars"],
        "rows": info["rows"],
        "excluded": info["excluded"],
        "accuracy": float(scores["accuracy"]),
        "majority_accuracy": majority_accuracy(dataset.y[split.train], dataset.y[split.test]),
        "return": float(strategy["return"]),
        "sharpe": float(strategy["sharpe"]),
        "max_drawdown": float(strategy["max_drawdown"]),
        "trades": int(strategy["trades"]),
        "return_buy_and_hold": float(overall["buy_and_hold"]["return"]),
        "beats_baselines": bool(trading["verdict"]["beats_baselines"]),
        "best_baseline": trading["verdict"]["best_baseline"],
        "best_epoch": outcome.best_epoch,
        "epochs_run": len(outcome.history),
    }
    return row, fold_signals


def _aggregate(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean, sample standard deviation, min and max of each fold number over the folds."""
    out: dict[str, dict[str, float]] = {}
    for name in AGGREGATED:
        values = [float(r[name]) for r in rows]
        out[name] = {
            "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values),
            "max": max(values),
        }
    return out


def _stitched(
    cfg: StrategyConfig, dataset: Dataset, splits: list[Split], signals: list[np.ndarray]
) -> dict[str, Any]:
    """The folds' test periods, in order, traded as one out-of-sample run (each bar with the
    signal of the fold whose test it is in); its ``majority`` baseline is the last fold's."""
    period = np.concatenate([s.test_period for s in splits])
    stitched = Split(splits[-1].train, splits[-1].validation, period, test_period=period)
    return trade_signals(np.concatenate(signals), dataset, stitched, cfg)


__all__ = [
    "AGGREGATED",
    "FoldEvents",
    "FoldMap",
    "FoldResult",
    "FoldWork",
    "run_walk_forward",
    "sequential_folds",
    "walk_forward_folds",
]
