"""Steps 9 and 10: test-split metrics and permutation feature importance."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ktrdr.labels import CLASS_NAMES
from ktrdr.training.cancellation import CancellationToken
from ktrdr.training.comparison import summary_numbers
from ktrdr.training.fold_metrics import walk_forward_summary
from ktrdr.training.trading import validation_summary
from ktrdr.training.trainer import Tensors, predict_logits

CLASSES = list(range(len(CLASS_NAMES)))


def label_distribution(y: np.ndarray) -> dict[str, int]:
    counts = np.bincount(y, minlength=len(CLASS_NAMES))
    return {name: int(counts[i]) for i, name in enumerate(CLASS_NAMES)}


def majority_accuracy(y_train: np.ndarray, y_test: np.ndarray) -> float:
    """Test accuracy of always predicting the most common training label (the naive floor:
    see :mod:`ktrdr.training.baselines` for baselines that mean something)."""
    if not len(y_test) or not len(y_train):
        return 0.0
    majority = int(np.bincount(y_train, minlength=len(CLASS_NAMES)).argmax())
    return float((y_test == majority).mean())


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Counts of (true, predicted) class pairs: rows are true classes, columns predicted."""
    n = len(CLASSES)
    pairs = np.asarray(y_true, dtype=np.int64) * n + np.asarray(y_pred, dtype=np.int64)
    return np.bincount(pairs, minlength=n * n).reshape(n, n)


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` with 0 where the denominator is 0 (``zero_division=0``)."""
    out = np.zeros(len(numerator), dtype=np.float64)
    nonzero = denominator != 0
    out[nonzero] = numerator[nonzero] / denominator[nonzero]
    return out


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """Accuracy, per-class and averaged precision/recall/F1, and the confusion matrix.

    The same numbers as scikit-learn's ``precision_recall_fscore_support`` and
    ``confusion_matrix`` with ``labels=CLASSES, zero_division=0`` (a test checks), from numpy
    alone: importing ``sklearn.metrics`` took over a second of every worker's start-up.
    """
    cm = confusion_matrix(y_true, y_pred)
    tp = np.diag(cm).astype(np.float64)
    pred_sum, true_sum = cm.sum(axis=0), cm.sum(axis=1)
    p, r = _divide(tp, pred_sum.astype(np.float64)), _divide(tp, true_sum.astype(np.float64))
    f = _divide(2.0 * tp, (true_sum + pred_sum).astype(np.float64))
    out: dict[str, Any] = {
        "accuracy": float((y_true == y_pred).mean()) if len(y_true) else 0.0,
        "per_class": {
            name: {
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f[i]),
                "support": int(true_sum[i]),
            }
            for i, name in enumerate(CLASS_NAMES)
        },
        "confusion_matrix": cm.tolist(),
    }
    weights = true_sum if true_sum.sum() else None  # no test rows: an unweighted mean
    for average, w in (("macro", None), ("weighted", weights)):
        out[average] = {
            key: float(np.nanmean(v) if w is None else np.average(v, weights=w))
            for key, v in (("precision", p), ("recall", r), ("f1", f))
        }
    return out


@torch.no_grad()
def evaluate(
    model: nn.Module, test: Tensors, loss_fn: nn.Module, symbols: list[str]
) -> dict[str, Any]:
    """Metrics on the test split, overall and per symbol (each row uses its own symbol)."""
    logits = predict_logits(model, test)
    y_true = test.y.cpu().numpy()
    y_pred = logits.argmax(dim=1).cpu().numpy()
    sym = test.symbol_idx.cpu().numpy()
    metrics = classification_metrics(y_true, y_pred)
    metrics["loss"] = float(loss_fn(logits, test.y).item()) if len(test) else 0.0
    metrics["rows"] = len(test)
    per_symbol: dict[str, Any] = {}
    for i, symbol in enumerate(symbols):
        mask = sym == i
        if not mask.any():
            continue
        mask_t = torch.from_numpy(mask).to(logits.device)
        sub = classification_metrics(y_true[mask], y_pred[mask])
        per_symbol[symbol] = {
            "rows": int(mask.sum()),
            "accuracy": sub["accuracy"],
            "f1_macro": sub["macro"]["f1"],
            "loss": float(loss_fn(logits[mask_t], test.y[mask_t]).item()),
        }
    metrics["per_symbol"] = per_symbol
    return metrics


# Test rows permutation importance shuffles at most (a seeded sample beyond that).
IMPORTANCE_MAX_ROWS = 20_000


@torch.no_grad()
def permutation_importance(
    model: nn.Module,
    test: Tensors,
    loss_fn: nn.Module,
    feature_names: list[str],
    *,
    seed: int,
    repeats: int = 3,
    cancel: CancellationToken | None = None,
    max_rows: int = IMPORTANCE_MAX_ROWS,
) -> list[dict[str, Any]]:
    """Mean increase of test loss (and drop of accuracy) when one feature is shuffled.

    Seeded, ``repeats`` shuffles per feature, ranked by loss increase (most important first).
    On at most ``max_rows`` test rows (a seeded sample of a larger test split, in order), so
    its cost stops growing with the data: the ranking of a few thousand rows is as stable as
    that of all of them, and importance no longer costs about an epoch at every size.
    """
    if len(test) == 0:
        return []
    if len(test) > max_rows > 0:
        rows = torch.randperm(len(test), generator=torch.Generator().manual_seed(seed))
        keep = rows[:max_rows].sort().values.to(test.x.device)
        test = Tensors(test.x[keep], test.y[keep], test.symbol_idx[keep])
    model.eval()
    base_logits = predict_logits(model, test)
    base_loss = float(loss_fn(base_logits, test.y).item())
    base_acc = float((base_logits.argmax(1) == test.y).float().mean().item())
    gen = torch.Generator().manual_seed(seed)
    results: list[dict[str, Any]] = []
    x = test.x.clone()
    for j, name in enumerate(feature_names):
        if cancel is not None:
            cancel.raise_if_cancelled()
        original = x[:, j].clone()
        loss_up, acc_down = [], []
        for _ in range(repeats):
            perm = torch.randperm(len(test), generator=gen).to(x.device)
            x[:, j] = original[perm]
            logits = predict_logits(model, Tensors(x, test.y, test.symbol_idx))
            loss_up.append(float(loss_fn(logits, test.y).item()) - base_loss)
            acc_down.append(base_acc - float((logits.argmax(1) == test.y).float().mean().item()))
        x[:, j] = original
        results.append(
            {
                "feature": name,
                "loss_increase": float(np.mean(loss_up)),
                "loss_increase_std": float(np.std(loss_up)),
                "accuracy_drop": float(np.mean(acc_down)),
            }
        )
    results.sort(key=lambda r: r["loss_increase"], reverse=True)
    for rank, row in enumerate(results, start=1):
        row["rank"] = rank
    return results


def summary_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The flat numbers a progress event or a listing shows."""
    test = metrics.get("test", {})
    out = {
        "test_accuracy": float(test.get("accuracy", 0.0)),
        "test_loss": float(test.get("loss", 0.0)),
        "test_f1_macro": float(test.get("macro", {}).get("f1", 0.0)),
        "test_f1_weighted": float(test.get("weighted", {}).get("f1", 0.0)),
        "test_precision_macro": float(test.get("macro", {}).get("precision", 0.0)),
        "test_recall_macro": float(test.get("macro", {}).get("recall", 0.0)),
    }
    if "majority_accuracy" in test:
        out["test_majority_accuracy"] = float(test["majority_accuracy"])
    overall = metrics.get("trading", {}).get("overall", {})
    for name in ("strategy", "buy_and_hold", "majority", "flat"):
        if name in overall:
            out[f"test_return_{name}"] = float(overall[name]["return"])
    if "strategy" in overall:
        out["test_sharpe_strategy"] = float(overall["strategy"]["sharpe"])
        out["test_max_drawdown_strategy"] = float(overall["strategy"]["max_drawdown"])
        out["test_trades_strategy"] = float(overall["strategy"]["trades"])
    out.update(validation_summary(metrics))
    out.update(walk_forward_summary(metrics))
    out.update(summary_numbers(metrics))
    training = metrics.get("training", {})
    for key in ("best_epoch", "epochs_run", "best_val_loss", "train_samples_per_s"):
        if training.get(key) is not None:
            out[key] = float(training[key])
    return out
