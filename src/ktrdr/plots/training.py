"""Training curves (loss and accuracy per epoch, train and validation), the confusion matrix
the test period's equity curve (strategy vs buy-and-hold) and the walk-forward folds'
out-of-sample one, drawn from a model's
``metadata.json``.

Figures are built with ``matplotlib.figure.Figure`` and rendered by the Agg canvas, so
nothing here touches pyplot's global state or needs a display. Each ``plot_*`` function
draws on an ``Axes`` the caller owns (a notebook can pass its own).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

_TRAIN = "#1f77b4"
_VAL = "#ff7f0e"


def _history(metadata: dict[str, Any]) -> list[dict[str, Any]]:
    return [row for row in metadata.get("history", []) if "epoch" in row]


def _best_epoch(metadata: dict[str, Any]) -> int | None:
    best = metadata.get("metrics", {}).get("training", {}).get("best_epoch")
    return int(best) if best else None


def _curve(
    ax: Axes, history: list[dict[str, Any]], metric: str, title: str, best: int | None = None
) -> None:
    epochs = [row["epoch"] for row in history]
    for split, color in (("train", _TRAIN), ("val", _VAL)):
        key = f"{split}_{metric}"
        values = [float("nan") if row.get(key) is None else float(row[key]) for row in history]
        if any(v == v for v in values):  # not all NaN
            label = "train" if split == "train" else "validation"
            ax.plot(epochs, values, marker="o", markersize=3, color=color, label=label)
    if best is not None and history:
        # the bundle holds this epoch's weights (early stopping restores the best one)
        ax.axvline(best, color="grey", linestyle="--", linewidth=1, label=f"kept: epoch {best}")
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    if history:
        ax.legend()
        if len(epochs) <= 12:
            ax.set_xticks(epochs)
        else:  # whole epochs only, never 2.5, 7.5, ...
            from matplotlib.ticker import MaxNLocator

            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        ax.text(0.5, 0.5, "no epoch history", ha="center", va="center", transform=ax.transAxes)


def plot_loss(ax: Axes, metadata: dict[str, Any]) -> None:
    """Train and validation loss per epoch."""
    _curve(ax, _history(metadata), "loss", "Loss", _best_epoch(metadata))


def plot_accuracy(ax: Axes, metadata: dict[str, Any]) -> None:
    """Train and validation accuracy per epoch."""
    _curve(ax, _history(metadata), "accuracy", "Accuracy", _best_epoch(metadata))


def plot_confusion_matrix(ax: Axes, metadata: dict[str, Any]) -> None:
    """The test split's confusion matrix: rows are true classes, columns predictions."""
    test = metadata.get("metrics", {}).get("test", {})
    matrix = test.get("confusion_matrix")
    names = list(metadata.get("labels", {}).get("class_names", []))
    if not matrix:
        ax.text(0.5, 0.5, "no confusion matrix", ha="center", va="center")
        ax.set_axis_off()
        return
    if len(names) != len(matrix):
        names = [str(i) for i in range(len(matrix))]
    peak = max((max(row) for row in matrix), default=0) or 1
    ax.imshow(matrix, cmap="Blues", vmin=0, vmax=peak)
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            color = "white" if count > peak * 0.6 else "black"
            ax.text(j, i, str(count), ha="center", va="center", color=color)
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = test.get("accuracy")
    suffix = f" (accuracy {accuracy:.3f})" if isinstance(accuracy, int | float) else ""
    ax.set_title(f"Test confusion matrix{suffix}")


def plot_equity(ax: Axes, metadata: dict[str, Any]) -> None:
    """Equity (1.0 at the start, costs included) of the strategy's signals traded over the
    test period, against buy-and-hold and staying flat (``metrics.trading.equity_curve``)."""
    _equity(ax, metadata.get("metrics", {}).get("trading", {}), "Test period equity")


def plot_walk_forward_equity(ax: Axes, metadata: dict[str, Any]) -> None:
    """The walk-forward folds' test periods traded in order as one out-of-sample run
    (``metrics.walk_forward.stitched``), against buy-and-hold and staying flat."""
    wf = metadata.get("metrics", {}).get("walk_forward") or {}
    folds = len(wf.get("folds", []))
    _equity(ax, wf.get("stitched", {}), f"Walk-forward out-of-sample equity ({folds} folds)")


def _equity(ax: Axes, trading: dict[str, Any], title: str) -> None:
    curve = trading.get("equity_curve") or {}
    times = curve.get("times") or []
    if not times:
        ax.text(0.5, 0.5, "no trading metrics", ha="center", va="center")
        ax.set_axis_off()
        return
    x = np.array(times, dtype="datetime64[s]")
    overall = trading.get("overall", {})
    for name, color, label in (
        ("strategy", _TRAIN, "strategy"),
        ("buy_and_hold", "grey", "buy and hold"),
    ):
        if curve.get(name):
            result = overall.get(name, {}).get("return")
            shown = f" ({result:+.1%})" if isinstance(result, int | float) else ""
            ax.plot(x, curve[name], color=color, label=f"{label}{shown}")
    ax.axhline(1.0, color="black", linestyle=":", linewidth=1, label="flat")
    verdict = trading.get("verdict", {})
    beats = verdict.get("beats_baselines")
    suffix = "" if beats is None else (": beats baselines" if beats else ": no better")
    ax.set_title(f"{title}{suffix}")
    ax.set_ylabel("equity")
    ax.grid(alpha=0.3)
    ax.legend()
    for tick in ax.get_xticklabels():
        tick.set_rotation(30)


def training_figure(metadata: dict[str, Any]) -> Figure:
    """One figure: loss, accuracy, confusion matrix and test equity side by side (and the
    walk-forward out-of-sample equity when the model has folds)."""
    walk_forward = bool(metadata.get("metrics", {}).get("walk_forward"))
    panels = 5 if walk_forward else 4
    figure = Figure(figsize=(5 * panels, 4.6), layout="constrained")
    axes = figure.subplots(1, panels)
    plot_loss(axes[0], metadata)
    plot_accuracy(axes[1], metadata)
    plot_confusion_matrix(axes[2], metadata)
    plot_equity(axes[3], metadata)
    if walk_forward:
        plot_walk_forward_equity(axes[4], metadata)
    name = metadata.get("strategy_name", "model")
    combo = "/".join(
        [",".join(metadata.get("symbols", [])), ",".join(metadata.get("timeframes", []))]
    )
    device = metadata.get("device", "")
    if isinstance(device, dict):
        device = device.get("name") or device.get("type") or ""
    epochs = len(_history(metadata))
    figure.suptitle(f"{name}   {combo}   {epochs} epochs on {device or 'unknown device'}")
    return figure


def save_training_plot(metadata: dict[str, Any], path: Path | str, *, dpi: int = 110) -> Path:
    """Write ``training_figure(metadata)`` as an image (format from the suffix, e.g. PNG)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure = training_figure(metadata)
    FigureCanvasAgg(figure)
    figure.savefig(out, dpi=dpi)
    return out


__all__ = [
    "plot_accuracy",
    "plot_confusion_matrix",
    "plot_equity",
    "plot_loss",
    "plot_walk_forward_equity",
    "save_training_plot",
    "training_figure",
]
