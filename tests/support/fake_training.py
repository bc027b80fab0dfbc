"""An in-thread training runner for backend tests: the worker's events and results, no worker.

``FakeTrainer`` implements the ``TrainingRunner`` protocol the backend drives
(``ProcessExecutor`` in production). It emits the executor's event sequence (the eleven
steps, one EPOCH event per epoch with the same metric names) and returns a
``TrainingResult`` whose bundle has the real metadata layout (a recorded training of the tiny
strategy, ``tests/data/bundles/tiny_rsi``) rewritten for the strategy it was given:
its YAML, model architecture, epochs, history and summary. The numbers are a deterministic
function of the learning rate and the architecture, so sweeps see better and worse trials
(a learning rate far from 0.005 is worse). Weights are numpy arrays of the right shapes,
encoded as safetensors without torch, so a backend test imports no torch.

What it does not do: read market data or really train. Tests of that run the real worker
(marked ``integration``).
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ktrdr.config.strategy import StrategyConfig
from ktrdr.errors import TrainingCancelled
from ktrdr.storage.bundle import METADATA_FILE, WEIGHTS_FILE, ModelBundle
from ktrdr.training.cancellation import CancellationToken
from ktrdr.training.fold_metrics import walk_forward_summary
from ktrdr.training.progress import STEP_NAMES, TOTAL_STEPS, ProgressCallback, ProgressEvent
from ktrdr.training.progress import ProgressKind as K
from ktrdr.training.result import TrainingResult
from tests.support.model_metadata import sample_walk_forward
from tests.support.timing import scaled

TEMPLATE = Path(__file__).resolve().parents[1] / "data" / "bundles" / "tiny_rsi" / METADATA_FILE
TRAIN_STEP = STEP_NAMES.index("train") + 1
# Where each step starts, in percent (the executor weights its steps the same way).
STEP_START = (0.0, 4.0, 8.0, 10.0, 13.0, 15.0, 16.0, 17.0, 92.0, 95.0, 99.0, 100.0)


@cache
def _template() -> dict[str, Any]:
    return json.loads(TEMPLATE.read_text())


class NumpyBundle(ModelBundle):
    """A bundle whose weights are numpy arrays: the same safetensors bytes, encoded without
    torch (``safetensors.numpy``). Read back, it is an ordinary ``ModelBundle``."""

    def _file_bytes(self) -> dict[str, bytes]:
        from safetensors.numpy import save as st_save

        meta = json.dumps(self.metadata, indent=2, allow_nan=True).encode()
        weights = {k: np.ascontiguousarray(v) for k, v in self.weights.items()}
        return {METADATA_FILE: meta, WEIGHTS_FILE: st_save(weights)}


def quality(config: StrategyConfig) -> float:
    """A made-up best validation loss: 0.6 at learning rate 0.005, worse further away."""
    lr = config.model.training.learning_rate
    width = sum(config.model.architecture.hidden_layers)
    return 0.6 + 0.3 * abs(math.log10(lr / 0.005)) + 0.001 * abs(width - 24)


# The validation period of a fake run: its bars, and its per-bar Sharpe ratio at quality 0.6.
FAKE_VAL_BARS = 500
FAKE_BEST_BAR_SHARPE = 0.12


def validation_statistics(best_val_loss: float) -> dict[str, float]:
    """The ``val_*`` trading summary a real run reports, made up: the better the validation
    loss, the higher the per-bar Sharpe ratio (0.12 at the best loss, 0.6)."""
    sharpe = FAKE_BEST_BAR_SHARPE - 0.2 * (best_val_loss - 0.6)
    return {
        "val_bars": float(FAKE_VAL_BARS),
        "val_return_strategy": sharpe * 0.5,
        "val_sharpe_strategy": sharpe * math.sqrt(252),
        "val_max_drawdown_strategy": 0.1,
        "val_bar_sharpe_strategy": sharpe,
        "val_skewness_strategy": -0.5,
        "val_kurtosis_strategy": 4.0,
    }


def fold_return(best_val_loss: float, fold: int) -> float:
    """A made-up walk-forward fold return: noise that differs per fold and per trial, plus a
    little for a better validation loss."""
    return 0.02 * math.sin(1.7 * fold + 10.0 * best_val_loss) - 0.05 * (best_val_loss - 0.6)


@dataclass
class FakeTrainer:
    """``TrainingRunner`` that trains nothing, in the caller's thread, in ``epoch_s`` per epoch.

    ``fail`` makes every run raise it after the first step (a library error, as the worker
    would report it). ``hold_from`` = n makes the n-th run (counting from 1) and every later
    one train until it is cancelled (a run surely mid-way when a test cancels it).
    """

    device_request: str = "cpu"
    epoch_s: float = 0.01
    fail: Exception | None = None
    hold_from: int | None = None
    runs: int = 0  # how many runs started
    _count: itertools.count[int] = field(default_factory=lambda: itertools.count(1), repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def run(
        self,
        strategy: StrategyConfig,
        progress: ProgressCallback | None = None,
        cancel: CancellationToken | None = None,
        *,
        strategy_yaml: str | None = None,
    ) -> TrainingResult:
        started = time.perf_counter()
        cancel = cancel or CancellationToken()
        with self._lock:
            number = self.runs = next(self._count)
        hold = self.hold_from is not None and number >= self.hold_from
        emit = progress or (lambda event: None)
        epochs = strategy.model.training.epochs
        best = quality(strategy)
        history: list[dict[str, float]] = []
        step_times: dict[str, float] = {}
        for step, name in enumerate(STEP_NAMES, start=1):
            cancel.raise_if_cancelled()
            t0 = time.perf_counter()
            emit(
                ProgressEvent(
                    K.STEP_STARTED,
                    step,
                    name,
                    percent=STEP_START[step - 1],
                    message=f"Step {step}: {name}",
                )
            )
            if step == 1 and self.fail is not None:
                raise self.fail
            if step == TRAIN_STEP:
                history = self._train(strategy, epochs, best, emit, cancel, hold)
            step_times[name] = time.perf_counter() - t0
            emit(
                ProgressEvent(
                    K.STEP_FINISHED,
                    step,
                    name,
                    percent=STEP_START[step],
                    metrics={"duration_s": step_times[name]},
                    message=f"Step {step}: {name} done",
                )
            )
        return self._result(strategy, strategy_yaml, history, step_times, started)

    def _train(self, cfg, epochs, best, emit, cancel, hold) -> list[dict[str, float]]:  # type: ignore[no-untyped-def]
        history = []
        lr = cfg.model.training.learning_rate
        span = STEP_START[TRAIN_STEP] - STEP_START[TRAIN_STEP - 1]
        for epoch in range(1, epochs + 1):
            if cancel.wait(self.epoch_s):
                raise TrainingCancelled(cancel.reason)
            val_loss = best * (1 + 0.5 / epoch)
            row = {
                "epoch": epoch,
                "train_loss": val_loss * 1.05,
                "train_accuracy": 0.55 + 0.1 * (1 - 1 / epoch),
                "learning_rate": lr,
                "val_loss": val_loss,
                "val_accuracy": 0.5 + 0.1 * (1 - 1 / epoch),
            }
            emit(ProgressEvent(
                K.EPOCH, TRAIN_STEP, "train", TOTAL_STEPS, epoch, epochs,
                percent=STEP_START[TRAIN_STEP - 1] + span * epoch / epochs,
                metrics={k: float(v) for k, v in row.items() if k != "epoch"},
                message=f"epoch {epoch}/{epochs}",
            ))  # fmt: skip
            history.append({**row, "duration_s": self.epoch_s})
            if hold:  # train on until cancelled (the deadline only bounds a broken test)
                if not cancel.wait(scaled(120)):
                    raise AssertionError("a held FakeTrainer run was never cancelled")
                raise TrainingCancelled(cancel.reason)
        return history

    def _result(self, cfg, strategy_yaml, history, step_times, started) -> TrainingResult:  # type: ignore[no-untyped-def]
        meta = copy.deepcopy(_template())
        arch = cfg.model.architecture
        n_features = len(meta["feature_names"])
        layers = [n_features, *arch.hidden_layers, 3]
        weights: dict[str, np.ndarray] = {}
        rng = np.random.default_rng(cfg.seed or 0)
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(layers)):
            weights[f"model.net.{3 * i}.weight"] = rng.normal(size=(fan_out, fan_in)).astype(
                np.float32
            )
            weights[f"model.net.{3 * i}.bias"] = np.zeros(fan_out, np.float32)
        weights["scaler.mean"] = np.zeros(n_features, np.float32)
        weights["scaler.scale"] = np.ones(n_features, np.float32)
        best_val = min((h["val_loss"] for h in history), default=quality(cfg))
        summary = dict(meta["metrics"]["summary"])
        summary.update(
            test_loss=best_val * 1.1,
            best_val_loss=best_val,
            epochs_run=float(len(history)),
            best_epoch=float(len(history)),
            **validation_statistics(best_val),
        )
        walk_forward = cfg.evaluation.walk_forward
        if walk_forward is not None:
            returns = tuple(fold_return(best_val, k) for k in range(1, walk_forward.folds + 1))
            meta["metrics"]["walk_forward"] = sample_walk_forward(returns)
            summary.update(walk_forward_summary(meta["metrics"]))
        meta["metrics"]["summary"] = summary
        meta["metrics"]["test"]["loss"] = summary["test_loss"]
        meta.update(
            strategy_name=cfg.name,
            strategy=cfg.model_dump(mode="json"),
            strategy_yaml=strategy_yaml,
            model={
                **meta["model"],
                "hidden_layers": list(arch.hidden_layers),
                "activation": arch.activation,
                "dropout": arch.dropout,
            },
            history=history,
            seed=cfg.seed or 0,
            step_times_s=step_times,
            created_at=datetime.now(UTC).isoformat(),
        )
        bundle = NumpyBundle(weights=weights, metadata=meta)  # type: ignore[arg-type]
        bundle.validate()
        return TrainingResult(
            bundle, meta["metrics"], summary, "cpu", time.perf_counter() - started, step_times
        )
