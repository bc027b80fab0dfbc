"""The ``TrainingExecutor``: strategy + market data -> trained, evaluated model bundle.

Synchronous and unaware of gRPC or of where it runs: the backend calls it in a worker thread
for local runs, the host calls it for remote ones. It reports progress through one callback,
stops when its cancellation token is set, and returns a bundle; saving it is the caller's job.
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

import ktrdr
from ktrdr.config.strategy import StrategyConfig
from ktrdr.data import check_enough_bars, load_market_data
from ktrdr.features import assemble_features, compute_indicators, compute_memberships
from ktrdr.fuzzy.coverage import fuzzy_coverage
from ktrdr.indicators import get_indicator
from ktrdr.labels import CLASS_NAMES
from ktrdr.models import MLPClassifier, MLPSpec
from ktrdr.storage.bundle import (
    FORMAT_VERSION,
    MODEL_PREFIX,
    SCALER_MEAN,
    SCALER_SCALE,
    ModelBundle,
)
from ktrdr.training.cancellation import CancellationToken
from ktrdr.training.comparison import ModelSignals, compare
from ktrdr.training.dataset import Scaler, build_dataset, compute_labels
from ktrdr.training.device import DeviceInfo, resolve_device
from ktrdr.training.evaluation import (
    evaluate,
    label_distribution,
    majority_accuracy,
    permutation_importance,
    summary_metrics,
)
from ktrdr.training.fitting import (
    ScaledRows,
    build_model,
    build_trainer,
    predicted,
)
from ktrdr.training.progress import (
    STEP_NAMES,
    ProgressCallback,
    ProgressEvent,
    ProgressKind,
    ProgressReporter,
    ProgressScale,
)
from ktrdr.training.result import TrainingResult
from ktrdr.training.split import chronological_split
from ktrdr.training.trader_eval import trade_period, trade_signals
from ktrdr.training.walk_forward import (
    FoldMap,
    run_walk_forward,
    sequential_folds,
    walk_forward_folds,
)

logger = logging.getLogger(__name__)

IMPORTANCE_REPEATS = 3
PRICE_CONTEXT_WARMUP = 21


def library_versions() -> dict[str, str]:
    import talib

    return {
        "ktrdr": ktrdr.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "talib": str(getattr(talib, "__version__", "unknown")),
        "python": platform.python_version(),
    }


def warmup_bars(config: StrategyConfig) -> int:
    """Bars a series needs before the first complete feature row."""
    indicator_warmup = max(
        (get_indicator(ind.name).warmup(ind.params) for ind in config.active_indicators),
        default=0,
    )
    context = PRICE_CONTEXT_WARMUP if config.model.features.include_price_context else 0
    return max(indicator_warmup, context) + config.model.features.lookback_periods + 1


class TrainingExecutor:
    """Runs the numbered steps of a training; one instance may run many trainings."""

    def __init__(
        self,
        data_dir: Path | str,
        *,
        device: str = "auto",
        max_batch_events_per_s: float = 4.0,
        importance_repeats: int = IMPORTANCE_REPEATS,
        fold_map: FoldMap = sequential_folds,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.fold_map = fold_map  # how walk-forward folds are trained (a cluster may give one)
        self.device_request = device
        self.max_batch_events_per_s = max_batch_events_per_s
        self.importance_repeats = importance_repeats

    def run(
        self,
        strategy: StrategyConfig,
        progress: ProgressCallback | None = None,
        cancel: CancellationToken | None = None,
        *,
        strategy_yaml: str | None = None,
    ) -> TrainingResult:
        """Train and evaluate ``strategy``; raises ``TrainingCancelled`` or ``TrainingError``."""
        run = _Run(self, strategy, progress, cancel or CancellationToken(), strategy_yaml)
        return run.execute()


class _Run:
    """State of one execution (kept off the executor so runs never share anything)."""

    def __init__(
        self,
        executor: TrainingExecutor,
        config: StrategyConfig,
        progress: ProgressCallback | None,
        cancel: CancellationToken,
        strategy_yaml: str | None,
    ) -> None:
        self.ex = executor
        self.config = config
        wf = config.evaluation.walk_forward
        self.reporter = ProgressReporter(
            progress,
            max_batch_events_per_s=executor.max_batch_events_per_s,
            scale=ProgressScale.estimate(wf.folds if wf is not None else 0),
        )
        self.cancel = cancel
        self.strategy_yaml = strategy_yaml
        self.step_times: dict[str, float] = {}

    @contextmanager
    def step(self, number: int) -> Iterator[None]:
        """Check cancellation, log and report a step's start and end, time it."""
        self.cancel.raise_if_cancelled()
        name = STEP_NAMES[number - 1]
        logger.info("Step %d: %s", number, name)
        self.reporter.emit(
            ProgressEvent(
                ProgressKind.STEP_STARTED,
                step=number,
                step_name=name,
                percent=self.reporter.scale.base(number),
                message=f"Step {number}: {name}",
            )
        )
        started = time.perf_counter()
        yield
        elapsed = time.perf_counter() - started
        self.step_times[name] = elapsed
        logger.debug("Step %d (%s) took %.3f s", number, name, elapsed)
        self.reporter.emit(
            ProgressEvent(
                ProgressKind.STEP_FINISHED,
                step=number,
                step_name=name,
                percent=self.reporter.scale.within(number, 1.0),
                metrics={"duration_s": elapsed},
                message=f"Step {number}: {name} done in {elapsed:.2f} s",
            )
        )

    def execute(self) -> TrainingResult:
        cfg = self.config
        started = time.perf_counter()
        seed, _ = cfg.training_seed
        device = resolve_device(self.ex.device_request)
        symbols = cfg.training_data.symbols.resolved()
        timeframes = cfg.training_data.timeframes.resolved()
        logger.info(
            "training %s on %s (%s) with seed %d",
            cfg.name,
            ", ".join(symbols),
            ", ".join(timeframes),
            seed,
        )

        for notice in cfg.notices():
            logger.warning("strategy %s: %s", cfg.name, notice)
        with self.step(1):
            td = cfg.training_data
            data = load_market_data(
                self.ex.data_dir, symbols, timeframes, td.start_date, td.end_date, td.date_format
            )
            needed = warmup_bars(cfg)
            for symbol, frames in data.items():
                for tf, frame in frames.items():
                    check_enough_bars(frame, needed, f"{symbol} {tf}")
        with self.step(2):
            indicators = compute_indicators(cfg, data)
        with self.step(3):
            memberships = compute_memberships(cfg, indicators)
            self.coverage = fuzzy_coverage(cfg, indicators)
            for warning in self.coverage.warnings:
                logger.warning("strategy %s: %s", cfg.name, warning)
        with self.step(4):
            features = assemble_features(cfg, memberships, data)
        with self.step(5):
            labels = compute_labels(cfg, data, features)
            dataset = build_dataset(symbols, features, labels)
        with self.step(6):
            split = chronological_split(dataset, cfg.training.data_split)
            logger.info(
                "split at %s (validation) and %s (test): rows %s; excluded %s",
                split.info["boundaries"]["validation_start"],
                split.info["boundaries"]["test_start"],
                split.info["rows"],
                split.info["excluded"],
            )
            folds = walk_forward_folds(cfg, dataset)
            if folds:  # the percent weighs each fold's training by its rows from now on
                rows = [len(f.train) for f in folds]
                self.reporter.scale = ProgressScale.for_rows(len(split.train), rows)
            scaled = ScaledRows(cfg, dataset, split, device.device)
            scaler, x, part = scaled.scaler, scaled.x, scaled.part
            train, val, test = part(split.train), part(split.validation), part(split.test)
        with self.step(7):
            model, spec = build_model(cfg, dataset, device.device, seed)
            y_train = dataset.y[split.train]
            trainer = build_trainer(cfg, model, y_train, seed, self.reporter, self.cancel)
        with self.step(8):
            outcome = trainer.fit(train, val if len(val) else None)
        with self.step(9):
            test_metrics = evaluate(model, test, trainer.loss_fn, symbols)
            test_metrics["majority_accuracy"] = majority_accuracy(
                dataset.y[split.train], dataset.y[split.test]
            )
            signals = ModelSignals(
                *(
                    predicted(model, part(rows))
                    for rows in (split.validation, split.test, split.test_period)
                )
            )
            trading = trade_signals(signals.test_period, dataset, split, cfg)
            # The validation period traded too: what a sweep may select on (and judge with the
            # deflated Sharpe ratio) without touching the test period.
            valid = split.validation_period
            val_trading = (
                trade_period(model, part(valid), dataset, split, cfg, valid) if len(valid) else None
            )
            base_tf = cfg.training_data.timeframes.base()
            comparison = compare(
                dataset,
                split,
                x,
                {symbol: data[symbol][base_tf]["close"] for symbol in symbols},
                cfg,
                signals,
                trading,
                seed=seed,
            )
            walk_forward = (
                run_walk_forward(
                    cfg,
                    dataset,
                    folds,
                    device.device,
                    seed,
                    self.reporter,
                    self.cancel,
                    self.ex.fold_map,
                )
                if folds
                else None
            )
        with self.step(10):
            importance = permutation_importance(
                model,
                test,
                trainer.loss_fn,
                dataset.feature_names,
                seed=seed,
                repeats=self.ex.importance_repeats,
                cancel=self.cancel,
            )
        with self.step(11):
            best = outcome.history[outcome.best_epoch - 1] if outcome.best_epoch else None
            metrics: dict[str, Any] = {
                "test": test_metrics,
                "training": {
                    "best_epoch": outcome.best_epoch,
                    "epochs_run": len(outcome.history),
                    "stopped_early": outcome.stopped_early,
                    "best_val_loss": best.val_loss if best else None,
                    "train_samples_per_s": outcome.train_samples_per_s,
                },
                "label_distribution": {
                    name: label_distribution(dataset.y[rows])
                    for name, rows in (
                        ("train", split.train),
                        ("validation", split.validation),
                        ("test", split.test),
                    )
                },
                "feature_importance": importance,
                "trading": trading,
                **comparison,
            }
            if val_trading is not None:
                metrics["validation_trading"] = val_trading
            if walk_forward is not None:
                metrics["walk_forward"] = walk_forward
            metrics["summary"] = summary_metrics(metrics)
            bundle = self._package(
                model,
                spec,
                scaler,
                dataset.feature_names,
                data,
                split,
                metrics,
                outcome.history,
                seed,
                device,
            )
        duration = time.perf_counter() - started
        logger.info(
            "training %s finished in %.1f s: test accuracy %.4f",
            cfg.name,
            duration,
            metrics["summary"]["test_accuracy"],
        )
        return TrainingResult(
            bundle, metrics, metrics["summary"], device.type, duration, dict(self.step_times)
        )

    def _package(
        self,
        model: MLPClassifier,
        spec: MLPSpec,
        scaler: Scaler,
        feature_names: list[str],
        data: Any,
        split: Any,
        metrics: dict[str, Any],
        history: list[Any],
        seed: int,
        device: DeviceInfo,
    ) -> ModelBundle:
        cfg = self.config
        weights = {
            f"{MODEL_PREFIX}{k}": v.detach().cpu().clone() for k, v in model.state_dict().items()
        }
        weights[SCALER_MEAN] = torch.from_numpy(scaler.mean.copy())
        weights[SCALER_SCALE] = torch.from_numpy(scaler.scale.copy())
        td = cfg.training_data
        metadata: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "strategy_name": cfg.name,
            "strategy": cfg.model_dump(mode="json"),
            "strategy_yaml": self.strategy_yaml,
            "symbols": td.symbols.resolved(),
            "timeframes": td.timeframes.resolved(),
            "base_timeframe": td.timeframes.base(),
            "date_range": {
                "start_date": td.start_date.isoformat() if td.start_date else None,
                "end_date": td.end_date.isoformat() if td.end_date else None,
            },
            "data": {
                symbol: {
                    tf: {
                        "bars": len(frame),
                        "first": frame.index[0].isoformat(),
                        "last": frame.index[-1].isoformat(),
                    }
                    for tf, frame in frames.items()
                }
                for symbol, frames in data.items()
            },
            "notices": cfg.notices(),
            "fuzzy_coverage": self.coverage.to_dict(),
            "feature_names": feature_names,
            "scaler": {"type": "standard" if scaler.enabled else "none", "fitted_on": "train"},
            "model": spec.to_dict(),
            "labels": {
                "source": cfg.training.labels.source,
                "zigzag_threshold": cfg.training.labels.zigzag_threshold,
                "label_lookahead": cfg.training.labels.label_lookahead,
                "class_names": list(CLASS_NAMES),
            },
            "split": {
                "ratios": cfg.training.data_split.model_dump(mode="json"),
                **split.info,
            },
            "metrics": metrics,
            "history": [h.to_dict() for h in history],
            "seed": seed,
            "device": {"type": device.type, "name": device.name},
            "versions": library_versions(),
            "step_times_s": dict(self.step_times),
            "created_at": datetime.now(UTC).isoformat(),
        }
        bundle = ModelBundle(weights=weights, metadata=metadata)
        bundle.validate()
        return bundle
