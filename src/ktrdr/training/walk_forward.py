"""Walk-forward evaluation: one model per fold, each trained and evaluated as the single split's
model is (:mod:`ktrdr.training.fitting`: scaler fitted on the fold's training rows, the same
seed, early stopping on the fold's validation part), then the folds' test periods traded in
order as one out-of-sample run.

The folds lie before the test split (:mod:`ktrdr.training.folds`), so ``wf_*`` numbers never
read the test period: a sweep may select on them, and the final model's test numbers stay
out of sample. The fold models are evaluation only; the bundle keeps the single-split model.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ktrdr.config.strategy import StrategyConfig, WalkForwardConfig
from ktrdr.training.cancellation import CancellationToken
from ktrdr.training.dataset import Dataset
from ktrdr.training.evaluation import evaluate, majority_accuracy
from ktrdr.training.fitting import ScaledRows, build_model, build_trainer, predicted
from ktrdr.training.folds import fold_splits
from ktrdr.training.progress import (
    ProgressEvent,
    ProgressKind,
    ProgressReporter,
    step_base_percent,
    step_span_percent,
)
from ktrdr.training.split import Split
from ktrdr.training.trader_eval import trade_signals
from ktrdr.training.trainer import TRAIN_STEP

logger = logging.getLogger(__name__)

# The numbers each fold reports that get a mean and spread over the folds.
AGGREGATED = ("accuracy", "return", "sharpe", "max_drawdown")


class _FoldProgress:
    """Re-labels a fold trainer's events for the run's reporter: its epochs become progress
    (BATCH) events of step ``step``, so a sweep's pruner and the epoch display only ever see
    the final model's epochs, and the percent moves through fold ``number``'s share of the
    step."""

    def __init__(self, outer: ProgressReporter, step: int, number: int, folds: int) -> None:
        self.outer, self.step, self.number, self.folds = outer, step, number, folds

    def percent(self, fraction: float) -> float:
        share = (self.number - 1 + min(max(fraction, 0.0), 1.0)) / self.folds
        return step_base_percent(self.step) + step_span_percent(self.step) * share

    def __call__(self, event: ProgressEvent) -> None:
        base, span = step_base_percent(TRAIN_STEP), step_span_percent(TRAIN_STEP)
        label = f"walk-forward fold {self.number}/{self.folds}"
        self.outer.emit(
            dataclasses.replace(
                event,
                kind=ProgressKind.BATCH,
                step=self.step,
                step_name=label,
                percent=self.percent((event.percent - base) / span),
                message=f"{label}: epoch {event.epoch}/{event.total_epochs}",
            )
        )


def run_walk_forward(
    cfg: StrategyConfig,
    wf: WalkForwardConfig,
    dataset: Dataset,
    device: torch.device,
    seed: int,
    reporter: ProgressReporter,
    cancel: CancellationToken,
    step: int,
) -> dict[str, Any]:
    """Train and evaluate every fold (a cancel is honoured between and within folds)."""
    splits = fold_splits(dataset, cfg.training.data_split, wf)
    rows: list[dict[str, Any]] = []
    signals: list[np.ndarray] = []
    for number, split in enumerate(splits, start=1):
        cancel.raise_if_cancelled()
        progress = _FoldProgress(reporter, step, number, len(splits))
        b = split.info["boundaries"]
        reporter.emit(
            ProgressEvent(
                ProgressKind.STEP_STARTED,
                step=step,
                step_name=f"walk-forward fold {number}/{len(splits)}",
                percent=progress.percent(0.0),
                message=f"walk-forward fold {number}/{len(splits)}: train from "
                f"{b['train_start'][:10]}, test {b['test_start'][:10]} .. {b['test_end'][:10]}",
            )
        )
        row, fold_signals = _fold(cfg, dataset, split, device, seed, progress, reporter, cancel)
        rows.append(row)
        signals.append(fold_signals)
        logger.info(
            "walk-forward fold %d/%d: test accuracy %.4f, return %+.2f%%",
            number,
            len(splits),
            row["accuracy"],
            100 * row["return"],
        )
    return {
        "window": wf.window,
        "config": wf.model_dump(mode="json"),
        "period": "the development period before the test split; the folds' models are "
        "evaluation only, the bundle's model is the single-split model",
        "folds": rows,
        "aggregate": _aggregate(rows),
        "folds_beating_baselines": sum(1 for r in rows if r["beats_baselines"]),
        "stitched": _stitched(cfg, dataset, splits, signals),
    }


def _fold(
    cfg: StrategyConfig,
    dataset: Dataset,
    split: Split,
    device: torch.device,
    seed: int,
    progress: Callable[[ProgressEvent], None],
    outer: ProgressReporter,
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


__all__ = ["AGGREGATED", "run_walk_forward"]
