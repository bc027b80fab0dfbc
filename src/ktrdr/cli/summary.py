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
    test = (metadata or {}).get("metrics", {}).get("test")
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
        lines.append(
            f"  majority-class accuracy {test.get('majority_accuracy', 0.0):.4f} (baseline)"
        )
    else:
        lines += [
            f"  {name:<22} {number(value)}" for name, value in sorted((metrics or {}).items())
        ]
    if metadata is not None:
        lines.append(trading_summary(metadata.get("metrics", {}).get("trading", {})))
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


__all__ = ["early_stop_summary", "number", "run_summary", "trading_summary"]
