"""``classification_metrics`` (numpy only) gives scikit-learn's numbers, bit for bit."""

from __future__ import annotations

import itertools

import numpy as np
import pytest


def sklearn_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    from ktrdr.labels import CLASS_NAMES
    from ktrdr.training.evaluation import CLASSES

    metrics = pytest.importorskip("sklearn.metrics")  # imported here: collection stays light
    p, r, f, s = metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=CLASSES, zero_division=0
    )
    out: dict = {
        "accuracy": float((y_true == y_pred).mean()),
        "per_class": {
            name: {
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f[i]),
                "support": int(s[i]),
            }
            for i, name in enumerate(CLASS_NAMES)
        },
        "confusion_matrix": metrics.confusion_matrix(y_true, y_pred, labels=CLASSES).tolist(),
    }
    for average in ("macro", "weighted"):
        pa, ra, fa, _ = metrics.precision_recall_fscore_support(
            y_true, y_pred, labels=CLASSES, average=average, zero_division=0
        )
        out[average] = {"precision": float(pa), "recall": float(ra), "f1": float(fa)}
    return out


def test_same_numbers_as_sklearn() -> None:
    from ktrdr.training.evaluation import classification_metrics

    rng = np.random.default_rng(0)
    # every choice of classes present in the truth and in the predictions (absent ones give
    # zero divisions), twice: a few rows, then up to 300
    present = [c for n in (1, 2, 3) for c in itertools.combinations(range(3), n)]
    cases = itertools.product((4, 300), present, present)
    for high, truth, predicted in cases:
        size = int(rng.integers(1, high))
        y_true = rng.choice(truth, size=size).astype(np.int64)
        y_pred = rng.choice(predicted, size=size).astype(np.int64)
        assert classification_metrics(y_true, y_pred) == sklearn_metrics(y_true, y_pred)


def test_no_rows_gives_zeros() -> None:
    from ktrdr.training.evaluation import classification_metrics

    empty = np.array([], dtype=np.int64)
    out = classification_metrics(empty, empty)
    assert out["accuracy"] == 0.0
    assert out["macro"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert out["weighted"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert out["confusion_matrix"] == [[0, 0, 0]] * 3
