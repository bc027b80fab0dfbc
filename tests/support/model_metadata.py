"""A trained model's metadata as the backend stores it (made-up numbers, real trading metrics),
for the client, storage and transfer tests of every tier: ``sample_metadata()``, and the
``metadata`` fixture. A plugin (``pytest_plugins`` in ``tests/conftest.py``): it imports the
project only inside the functions."""

from __future__ import annotations

from typing import Any

import pytest


def sample_trading() -> dict[str, Any]:
    """Real trading metrics of a made-up test period (60 hourly bars, alternating signals)."""
    import numpy as np

    from ktrdr.training.trading import trading_metrics

    n = 60
    times = np.datetime64("2024-01-01T00", "ns") + np.arange(n) * np.timedelta64(1, "h")
    returns = 0.002 * np.sin(np.arange(n) / 3.0)
    signals = np.array([0, 1, 2] * (n // 3))
    return trading_metrics(["EURUSD"], np.zeros(n, int), times, returns, signals, 1)


def sample_walk_forward(returns: tuple[float, ...] = (0.02, -0.01, 0.03)) -> dict[str, Any]:
    """``metrics.walk_forward`` of a model with one fold per return (made-up fold rows, a real
    stitched trading run)."""
    import statistics

    rows: list[dict[str, Any]] = [
        {
            "fold": k,
            "train_start": "2024-01-01T00:00:00+00:00",
            "validation_start": f"2024-0{k + 1}-20T00:00:00+00:00",
            "test_start": f"2024-0{k + 2}-01T00:00:00+00:00",
            "test_end": f"2024-0{k + 2}-28T00:00:00+00:00",
            "bars": {"train": 100 * k, "validation": 20, "test": 50},
            "rows": {"train": 95 * k, "validation": 18, "test": 47},
            "excluded": {"purged": 2, "embargoed": 0},
            "accuracy": 0.5 + 0.01 * k,
            "majority_accuracy": 0.4,
            "return": r,
            "sharpe": 10 * r,
            "max_drawdown": 0.05,
            "trades": 7,
            "return_buy_and_hold": 0.0,
            "beats_baselines": r > 0,
            "best_baseline": "buy_and_hold",
            "best_epoch": 2,
            "epochs_run": 3,
        }
        for k, r in enumerate(returns, start=1)
    ]

    def stats(name: str) -> dict[str, float]:
        values = [float(r[name]) for r in rows]
        return {
            "mean": statistics.fmean(values),
            "std": statistics.stdev(values),
            "min": min(values),
            "max": max(values),
        }

    return {
        "window": "expanding",
        "config": {"folds": len(rows), "window": "expanding", "embargo_bars": 0},
        "folds": rows,
        "aggregate": {
            name: stats(name) for name in ("accuracy", "return", "sharpe", "max_drawdown")
        },
        "folds_beating_baselines": sum(1 for r in rows if r["beats_baselines"]),
        "stitched": sample_trading(),
    }


def sample_metadata(epochs: int = 3) -> dict[str, Any]:
    return {
        "strategy_name": "fake_rsi",
        "symbols": ["EURUSD"],
        "timeframes": ["1h"],
        "device": {"type": "cpu", "name": "CPU"},
        "seed": 7,
        "created_at": "2024-01-01T00:00:00+00:00",
        "labels": {"class_names": ["BUY", "HOLD", "SELL"]},
        "history": [
            {
                "epoch": e,
                "train_loss": 1.0 / e,
                "train_accuracy": 0.5 + 0.05 * e,
                "val_loss": 1.1 / e,
                "val_accuracy": 0.45 + 0.05 * e,
                "learning_rate": 0.01,
                "duration_s": 0.1,
            }
            for e in range(1, epochs + 1)
        ],
        "metrics": {
            "test": {
                "accuracy": 0.6,
                "loss": 0.8,
                "rows": 100,
                "confusion_matrix": [[30, 2, 8], [5, 10, 5], [10, 10, 20]],
                "per_class": {
                    n: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 10}
                    for n in ("BUY", "HOLD", "SELL")
                },
            },
            "trading": sample_trading(),
        },
        "fuzzy_coverage": {"warnings": ["fuzzy set rsi.oversold is active on 0.50% of bars"]},
    }


@pytest.fixture
def metadata() -> dict[str, Any]:
    return sample_metadata()
