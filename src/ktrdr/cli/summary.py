"""The summary of a finished training, one format for ``ktrdr train --local`` and remote runs.

Built from the model's metadata (plain dicts: no pandas, so a client-only install prints it).
"""

from __future__ import annotations

from typing import Any


def run_summary(
    strategy: str,
    *,
    device: str,
    where: str,
    duration_s: float,
    metadata: dict[str, Any] | None,
    placement: str = "",
    metrics: dict[str, float] | None = None,
) -> str:
    """The lines ``ktrdr train`` prints once a run completed (before "model saved: ...").

    ``where``: "in this process", "locally in the backend", "on host ADDR"...; ``placement``:
    the backend's reason for it (remote runs); ``metrics``: the operation's headline numbers,
    shown when the model's metadata cannot be read.
    """
    lines = [f"\n{strategy}: trained on {device or '?'} {where} in {duration_s:.1f} s"]
    if placement:
        lines.append(f"  {placement}")
    all_metrics = (metadata or {}).get("metrics", {})
    test = all_metrics.get("test")
    leading = comparison_summary(all_metrics)
    lines += leading
    if test:
        lines += [
            f"  test rows      {test.get('rows', '?')}",
            f"  test accuracy  {test.get('accuracy', float('nan')):.4f}",
            f"  test loss      {test.get('loss', float('nan')):.4f}",
        ]
        if "macro" in test and "weighted" in test:
            lines.append(
                f"  macro F1       {test['macro']['f1']:.4f}   "
                f"weighted F1 {test['weighted']['f1']:.4f}"
            )
        for name, row in test.get("per_class", {}).items():
            lines.append(
                f"  {name:<5} precision {row['precision']:.3f} recall {row['recall']:.3f} "
                f"f1 {row['f1']:.3f} support {row['support']}"
            )
        if not leading:
            lines.append(
                f"  majority-class accuracy {test.get('majority_accuracy', 0.0):.4f} "
                "(the naive floor, not a baseline that means much)"
            )
    else:
        lines += [
            f"  {name:<22} {number(value)}" for name, value in sorted((metrics or {}).items())
        ]
    if metadata is not None and not leading:
        lines.append(trading_summary(all_metrics.get("trading", {})))
    lines += walk_forward_summary(all_metrics)
    if metadata is not None:
        stopped = early_stop_summary(metadata)
        if stopped:
            lines.append(stopped)
    return "\n".join(lines)


def number(value: float) -> str:
    """``0.6123``; whole numbers (epochs, rows) as ``9``, never ``9.0000``; small values with
    4 significant digits (``0.0001234``)."""
    if float(value).is_integer():
        return str(int(value))
    if abs(value) < 0.01:  # a learning rate: its significant digits, not 0.0001
        return f"{value:.4g}"
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:.0f}"


def early_stop_summary(metadata: dict[str, Any]) -> str | None:
    """ "stopped early at epoch 15: no val_loss improvement for 5 epochs; kept epoch 10", or
    None when the run trained every epoch."""
    training = metadata.get("metrics", {}).get("training", {})
    if not training.get("stopped_early"):
        return None
    stopping = (
        metadata.get("strategy", {}).get("model", {}).get("training", {}).get("early_stopping")
    ) or {}
    patience = stopping.get("patience")
    why = f"no val_loss improvement for {patience} epochs" if patience else "no improvement"
    return (
        f"  stopped early at epoch {training.get('epochs_run')}: {why}; "
        f"kept epoch {training.get('best_epoch')}"
    )


def trading_summary(trading: dict[str, Any]) -> str:
    """The test period traded: strategy and baselines, overall (``ktrdr train``, models show)."""
    overall = trading.get("overall")
    if not overall:
        return "  trading: not recorded"
    lines = [
        f"  trading on the test period ({overall.get('bars', 0)} bars, "
        f"{trading.get('cost_bps', 0):g} bps per trade; {trading.get('position_rule', '')}):"
    ]
    sizing = trading.get("position_sizing", "equity_fraction")  # older models: the only one
    rule = trading.get("sizing_rule", "whole equity in the position, re-invested every bar")
    lines.append(
        f"  position sizing {sizing} ({rule}); costs {trading.get('cost_bps', 0):g} bps per "
        "unit of position change, in every return"
    )
    for name in ("strategy", "buy_and_hold", "majority", "flat"):
        row = overall.get(name)
        if not row:
            continue
        lines.append(
            f"    {name:<13} return {row['return']:+8.2%}  sharpe {row['sharpe']:6.2f}  "
            f"max drawdown {row['max_drawdown']:6.2%}  trades {row['trades']:4d}  "
            f"hit rate {row['hit_rate']:.2f}"
        )
    lines.append(f"  verdict: {trading.get('verdict', {}).get('text', 'not recorded')}")
    return "\n".join(lines)


TRADING_ROWS = {  # the rules of the trading table, in order, as they are labelled
    "strategy": "strategy",
    "buy_and_hold": "buy_and_hold",
    "logistic": "logistic",
    "persistence": "persistence",
    "majority": "majority (naive floor)",
    "flat": "flat",
}


def _interval(row: dict[str, Any] | None, fmt: str) -> str:
    if not row:
        return ""
    return f" [{row['low']:{fmt}}, {row['high']:{fmt}}]"


def comparison_summary(metrics: dict[str, Any]) -> list[str]:
    """The verdict, then the test period traded by the model and every baseline with the
    model's 95 % intervals, then accuracy against the baselines; empty for a model trained
    before baselines were recorded (its summary keeps the old layout)."""
    found, trading = metrics.get("verdict"), metrics.get("trading") or {}
    uncertainty, baselines = metrics.get("uncertainty") or {}, metrics.get("baselines") or {}
    overall = {**trading.get("overall", {}), **baselines.get("trading", {})}
    if not found or "strategy" not in overall:
        return []
    intervals = uncertainty.get("trading", {})
    period = uncertainty.get("short_period", {})
    days = f", {period['days']:.0f} days" if "days" in period else ""
    lines = [
        f"  verdict: {found['text']}",
        f"  trading on the test period ({overall.get('bars', 0)} bars{days}, "
        f"{trading.get('cost_bps', 0):g} bps per trade; {trading.get('position_rule', '')}):",
    ]
    for name, label in TRADING_ROWS.items():
        row = overall.get(name)
        if not row:
            continue
        mine = name == "strategy"
        lines.append(
            f"    {label:<22} return {row['return']:+8.2%}"
            + (_interval(intervals.get("strategy_return"), "+.2%") if mine else "")
            + f"  sharpe {row['sharpe']:6.2f}"
            + (_interval(intervals.get("strategy_sharpe"), "+.2f") if mine else "")
            + f"  max drawdown {row['max_drawdown']:6.2%}  trades {row['trades']:4d}"
        )
        if mine and period.get("caveat"):
            lines.append(f"      sharpe caveat: {period['text']}")
    accuracy = uncertainty.get("accuracy", {})
    test = baselines.get("test", {})
    if test and "model" in accuracy:
        others = ", ".join(
            f"{name} {test[name]:.4f}" + (" (naive floor)" if name == "majority" else "")
            for name in ("logistic", "persistence", "majority")
            if name in test
        )
        lines += [
            f"  test accuracy {test['model']:.4f}{_interval(accuracy['model'], '.4f')} on "
            f"{test['rows']} rows; baselines on the same rows: {others}",
            f"  {found['accuracy_text']}",
        ]
    if intervals:
        lines.append(
            f"  intervals: 95% {intervals.get('method', '')}, blocks of "
            f"{accuracy.get('block_length', '?')} rows / {intervals.get('block_length', '?')} "
            f"bars, {intervals.get('resamples', '?')} resamples"
        )
    return lines


def walk_forward_summary(metrics: dict[str, Any]) -> list[str]:
    """The walk-forward fold table, the folds' mean and spread and the stitched out-of-sample
    run (``ktrdr train``, models show); empty without walk-forward folds."""
    wf = metrics.get("walk_forward")
    if not wf:
        return []
    folds = wf.get("folds", [])
    config = wf.get("config", {})
    lines = [
        f"  walk-forward: {len(folds)} folds, {wf.get('window', '?')} window, embargo "
        f"{config.get('embargo_bars', 0)} bars; every fold before the test period (its models "
        "are evaluation only; the saved model is the single-split one above)",
        f"    {'fold':<4} {'train from':<10} {'test from':<10} {'test to':<10} {'bars':>6} "
        f"{'accuracy':>8} {'return':>8} {'sharpe':>7} {'drawdown':>8}  vs baselines",
    ]
    for row in folds:
        verdict = "beats" if row.get("beats_baselines") else f"no edge ({row.get('best_baseline')})"
        lines.append(
            f"    {row['fold']:<4} {str(row['train_start'])[:10]:<10} "
            f"{str(row['test_start'])[:10]:<10} {str(row['test_end'])[:10]:<10} "
            f"{row['bars']['test']:>6} {row['accuracy']:>8.4f} {row['return']:>+8.2%} "
            f"{row['sharpe']:>7.2f} {row['max_drawdown']:>8.2%}  {verdict}"
        )
    agg = wf.get("aggregate", {})
    if agg:
        lines.append(
            "    mean +- std: "
            + "  ".join(
                f"{name} {agg[name]['mean']:{fmt}} +- {agg[name]['std']:{fmt.lstrip('+')}}"
                for name, fmt in (
                    ("accuracy", ".4f"),
                    ("return", "+.2%"),
                    ("sharpe", "+.2f"),
                    ("max_drawdown", ".2%"),
                )
                if name in agg
            )
        )
    overall = wf.get("stitched", {}).get("overall", {})
    if "strategy" in overall:
        mine, hold = overall["strategy"], overall.get("buy_and_hold", {})
        lines.append(
            f"    stitched out-of-sample ({overall.get('bars', 0)} bars): return "
            f"{mine['return']:+.2%}  sharpe {mine['sharpe']:.2f}  max drawdown "
            f"{mine['max_drawdown']:.2%}; buy and hold {hold.get('return', float('nan')):+.2%}; "
            f"folds beating every baseline: {wf.get('folds_beating_baselines', 0)}/{len(folds)}"
        )
    return lines


__all__ = [
    "comparison_summary",
    "early_stop_summary",
    "number",
    "run_summary",
    "trading_summary",
    "walk_forward_summary",
]
