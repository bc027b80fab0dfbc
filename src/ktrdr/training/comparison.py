"""Step 9's comparison: the model against its baselines on the same rows, with intervals.

What it adds to a run's metrics:

- ``baselines``: accuracy of the model and of each baseline (:mod:`ktrdr.training.baselines`)
  on the validation and on the test rows, and the trading result of the logistic and
  persistence rules over the test period (buy-and-hold, majority and flat are already in
  ``trading``), all with the same costs and position rule;
- ``uncertainty``: 95 % circular block bootstrap intervals (:mod:`ktrdr.training.bootstrap`)
  of the test accuracy, of the model's accuracy minus each baseline's, of the strategy's
  total return and Sharpe, and of its return minus each trading baseline's; plus
  ``short_period``, the caveat on annualised figures;
- ``verdict``: "edge" only when the strategy's test-period return beats the best trading
  baseline's (the highest total return among buy_and_hold, flat, majority, logistic,
  persistence) and the 95 % interval of the difference lies above zero; otherwise "no edge
  over <that baseline>". The best baseline is picked on the test period itself, which can
  only make an edge harder to claim.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ktrdr.config.strategy import StrategyConfig
from ktrdr.labels import BUY, HOLD
from ktrdr.training import bootstrap as bs
from ktrdr.training.baselines import (
    DEFINITIONS,
    LOGISTIC_TOL,
    accuracy_table,
    fit_logistic,
    logistic_design,
    majority_label,
    persistence_for_rows,
)
from ktrdr.training.dataset import Dataset
from ktrdr.training.portfolio import portfolio_series
from ktrdr.training.split import Split
from ktrdr.training.trading import BASELINES

if TYPE_CHECKING:
    import pandas as pd

ACCURACY_BASELINES = ("majority", "logistic", "persistence")
TRADING_BASELINES = (*BASELINES, "logistic", "persistence")
# Annualised figures (Sharpe) of a test period shorter than this are flagged, not hidden.
SHORT_PERIOD_DAYS = 91.0  # about three months of calendar time
SHORT_PERIOD_BARS = 100


@dataclass(frozen=True)
class ModelSignals:
    """The model's predicted class at the validation, test and test-period rows."""

    validation: np.ndarray
    test: np.ndarray
    test_period: np.ndarray


def short_period(days: float, bars: int) -> dict[str, Any]:
    """Whether an annualised figure of a period of ``days`` and ``bars`` means anything."""
    short = days < SHORT_PERIOD_DAYS or bars < SHORT_PERIOD_BARS
    text = (
        f"annualised from only {days:.0f} days ({bars} bars): too short to mean much "
        f"(flagged under {SHORT_PERIOD_DAYS:.0f} days or {SHORT_PERIOD_BARS} bars)"
        if short
        else ""
    )
    return {"caveat": short, "days": days, "bars": bars, "text": text}


def compare(
    dataset: Dataset,
    split: Split,
    x_scaled: np.ndarray,
    closes: Mapping[str, pd.Series],
    cfg: StrategyConfig,
    model: ModelSignals,
    trading: Mapping[str, Any],
    *,
    seed: int,
) -> dict[str, Any]:
    """``baselines``, ``uncertainty`` and ``verdict`` (see the module docstring)."""
    # Here rather than at the top: the verdict and the caveat rule need no PyTorch.
    from ktrdr.training.trader_eval import trade_signals

    n_symbols = len(dataset.symbols)
    design = logistic_design(x_scaled, dataset.symbol_idx, n_symbols)
    logistic = fit_logistic(design[split.train], dataset.y[split.train], seed=seed)
    threshold = cfg.training.labels.zigzag_threshold
    persistence = persistence_for_rows(
        closes, dataset.symbols, dataset.symbol_idx, dataset.timestamps, threshold
    )
    majority = majority_label(dataset.y[split.train])

    def rules(rows: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "majority": np.full(len(rows), majority, dtype=np.int64),
            "logistic": logistic.predict(design[rows]),
            "persistence": persistence[rows],
        }

    test_rules = rules(split.test)
    baselines: dict[str, Any] = {
        "definitions": {name: DEFINITIONS[name] for name in TRADING_BASELINES},
        "logistic_fit": {
            "iterations": logistic.iterations,
            "converged": logistic.converged,
            "gradient_max": logistic.gradient_max,
            "tolerance": LOGISTIC_TOL,
        },
        "test": accuracy_table(dataset.y[split.test], model.test, test_rules),
    }
    if len(split.validation):
        baselines["validation"] = accuracy_table(
            dataset.y[split.validation], model.validation, rules(split.validation)
        )
    period_rules = rules(split.test_period)
    baselines["trading"] = {
        name: trade_signals(period_rules[name], dataset, split, cfg)["overall"]["strategy"]
        for name in ("logistic", "persistence")
    }
    overall = {**trading["overall"], **baselines["trading"]}
    uncertainty = {
        "accuracy": _accuracy_intervals(dataset.y[split.test], model.test, test_rules, seed),
        **_trading_intervals(dataset, split, cfg, model.test_period, period_rules, overall, seed),
    }
    return {
        "baselines": baselines,
        "uncertainty": uncertainty,
        "verdict": verdict(overall, uncertainty, baselines["test"]),
    }


def _accuracy_intervals(
    y: np.ndarray, model: np.ndarray, rules: Mapping[str, np.ndarray], seed: int
) -> dict[str, Any]:
    series = {"model": (model == y).astype(np.float64)}
    series.update({name: (pred == y).astype(np.float64) for name, pred in rules.items()})
    stats = {"model": bs.mean_of("model")}
    stats.update({f"model_minus_{n}": bs.difference_of_means("model", n) for n in rules})
    return bs.bootstrap(series, stats, block=bs.block_length(len(y), y), seed=seed)


def _trading_intervals(
    dataset: Dataset,
    split: Split,
    cfg: StrategyConfig,
    model: np.ndarray,
    rules: Mapping[str, np.ndarray],
    overall: Mapping[str, Any],
    seed: int,
) -> dict[str, Any]:
    period = split.test_period
    signals = {
        "strategy": model,
        **rules,
        "buy_and_hold": np.full(len(period), BUY),
        "flat": np.full(len(period), HOLD),
    }
    series = {}
    exposure = times = np.zeros(0)
    for name, rule in signals.items():
        made = portfolio_series(
            len(dataset.symbols),
            dataset.symbol_idx[period],
            dataset.timestamps[period],
            dataset.next_return[period],
            rule,
            cost_bps=cfg.evaluation.cost_bps,
            allow_short=cfg.evaluation.allow_short,
            sizing=cfg.evaluation.position_sizing,
        )
        series[name] = made.returns
        if name == "strategy":
            exposure, times = made.exposure, made.times
    days = float((times.max() - times.min()) / np.timedelta64(1, "D")) if len(times) > 1 else 0.0
    bars_per_year = len(times) / (days / 365.25) if days > 0 else 0.0
    stats: dict[str, Any] = {
        "strategy_return": (
            lambda d: bs.total_return(d["strategy"]),
            lambda d: float(bs.total_return(d["strategy"])),
        ),
        "strategy_sharpe": (
            lambda d: bs.sharpe(d["strategy"], bars_per_year),
            lambda d: float(bs.sharpe(d["strategy"], bars_per_year)),
        ),
    }
    for name in TRADING_BASELINES:
        if name in series:
            stats[f"return_minus_{name}"] = _return_difference(name)
    result = bs.bootstrap(
        series, stats, block=bs.block_length(len(times), np.sign(exposure)), seed=seed
    )
    best = max(TRADING_BASELINES, key=lambda n: overall[n]["return"])
    return {
        "trading": result,
        "best_trading_baseline": best,
        "short_period": short_period(days, len(times)),
    }


def _return_difference(name: str) -> tuple[Any, Any]:
    return (
        lambda d: bs.total_return(d["strategy"]) - bs.total_return(d[name]),
        lambda d: float(bs.total_return(d["strategy"]) - bs.total_return(d[name])),
    )


def verdict(
    overall: Mapping[str, Any], uncertainty: Mapping[str, Any], accuracy: Mapping[str, Any]
) -> dict[str, Any]:
    """The verdict in the module docstring, with its numbers, and the accuracy comparison."""
    best = uncertainty["best_trading_baseline"]
    mine, theirs = overall["strategy"]["return"], overall[best]["return"]
    diff = uncertainty["trading"][f"return_minus_{best}"]
    edge = mine > theirs and diff["low"] > 0
    numbers = (
        f"strategy {mine:+.2%} vs {best} {theirs:+.2%}, difference {diff['estimate']:+.2%} "
        f"(95% interval {diff['low']:+.2%} to {diff['high']:+.2%})"
    )
    acc_best = accuracy["best_baseline"]
    acc = uncertainty["accuracy"][f"model_minus_{acc_best}"]
    return {
        "edge": bool(edge),
        "best_baseline": best,
        "return_difference": diff,
        "text": f"{'edge' if edge else 'no edge'} over {best}: {numbers}",
        "accuracy_best_baseline": acc_best,
        "accuracy_text": (
            f"accuracy {accuracy['model']:.4f} vs {acc_best} {accuracy[acc_best]:.4f}, "
            f"difference {acc['estimate']:+.4f} (95% interval {acc['low']:+.4f} to "
            f"{acc['high']:+.4f})"
        ),
    }


def summary_numbers(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The flat numbers of the comparison for listings, sweeps and the registry."""
    out: dict[str, float] = {}
    baselines = metrics.get("baselines") or {}
    for part, prefix in (("validation", "val"), ("test", "test")):
        table = baselines.get(part)
        if not table:
            continue
        if part == "validation":
            out["val_accuracy"] = float(table["model"])
        for name in ACCURACY_BASELINES:
            if name in table:
                out[f"{prefix}_accuracy_{name}"] = float(table[name])
        out[f"{prefix}_accuracy_edge"] = float(table["model_minus_best"])
    for name, row in (baselines.get("trading") or {}).items():
        out[f"test_return_{name}"] = float(row["return"])
    uncertainty = metrics.get("uncertainty") or {}
    acc = (uncertainty.get("accuracy") or {}).get("model")
    if acc:
        out["test_accuracy_low"], out["test_accuracy_high"] = acc["low"], acc["high"]
    ret = (uncertainty.get("trading") or {}).get("strategy_return")
    if ret:
        out["test_return_strategy_low"] = ret["low"]
        out["test_return_strategy_high"] = ret["high"]
    found = metrics.get("verdict")
    if found:
        diff = found["return_difference"]
        out["test_return_edge"] = float(diff["estimate"])
        out["test_return_edge_low"] = float(diff["low"])
        out["test_edge"] = 1.0 if found["edge"] else 0.0
    return out


__all__ = [
    "ACCURACY_BASELINES",
    "SHORT_PERIOD_BARS",
    "SHORT_PERIOD_DAYS",
    "TRADING_BASELINES",
    "ModelSignals",
    "compare",
    "short_period",
    "summary_numbers",
    "verdict",
]
