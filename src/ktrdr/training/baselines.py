"""Baselines a model must beat, scored on exactly the rows the model is scored on.

Three signal rules besides the model (buy-and-hold and flat, which ignore the data, are in
:mod:`ktrdr.training.trading`):

- **majority** (the *naive floor*): always the most common training label. Any model that
  learnt anything beats it; beating it says little.
- **logistic**: multinomial logistic regression on the same scaled feature matrix the model
  sees (plus a one-hot of the symbol when there are several, as the model has a symbol
  embedding), fitted on the training rows only. L2 penalty ``LOGISTIC_L2`` on the weights (not
  the intercepts); Nesterov-accelerated gradient descent from zero weights with step
  ``1 / L`` (``L`` the gradient's Lipschitz bound ``0.5 * sigma_max(X)^2 / n + l2``), at most
  ``LOGISTIC_MAX_ITER`` iterations, stopping once the gradient's largest entry is below
  ``LOGISTIC_TOL``. Deterministic: with more than ``LOGISTIC_MAX_ROWS`` training rows it fits
  on a sample of that many drawn with the run's seed, otherwise nothing is random.
- **persistence**: the swing in progress continues. A causal ZigZag with the labels' own
  threshold ``h`` follows each symbol's closes: before the first swing it tracks the running
  high and low since the first bar; the direction turns *up* when a close is at least
  ``low * (1 + h)`` and *down* when a close is at most ``high * (1 - h)``; afterwards, in an up
  swing the running high follows new highs and a close at or below ``high * (1 - h)`` turns
  the direction down (the running low starts there), and symmetrically for a down swing. The
  rule says BUY while the direction is up, SELL while it is down, HOLD before the first swing.
  It uses only closes up to and including the bar (no look-ahead): it is what the labels
  would be if swings never reversed, i.e. the information in "the move since the last
  turning point".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ktrdr.labels import BUY, CLASS_NAMES, HOLD, SELL

if TYPE_CHECKING:
    import pandas as pd

LOGISTIC_L2 = 1e-3
LOGISTIC_MAX_ITER = 2000
LOGISTIC_TOL = 1e-5
LOGISTIC_MAX_ROWS = 50_000

DEFINITIONS = {
    "majority": "always the most common training label (the naive floor)",
    "logistic": "multinomial logistic regression on the model's scaled features, fitted on "
    "the training rows",
    "persistence": "the current swing continues: BUY/SELL by the direction of a causal ZigZag "
    "with the labels' threshold, HOLD before the first swing",
    "buy_and_hold": "always long",
    "flat": "never in the market",
}


@dataclass(frozen=True)
class LogisticModel:
    """Fitted weights (features x classes) and intercepts, with how the fit ended."""

    weights: np.ndarray
    intercept: np.ndarray
    iterations: int
    converged: bool
    gradient_max: float  # largest entry of the penalised loss's gradient at the end

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray((x @ self.weights + self.intercept).argmax(axis=1), dtype=np.int64)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    n_classes: int = len(CLASS_NAMES),
    l2: float = LOGISTIC_L2,
    max_iter: int = LOGISTIC_MAX_ITER,
    tol: float = LOGISTIC_TOL,
    max_rows: int = LOGISTIC_MAX_ROWS,
) -> LogisticModel:
    """Multinomial logistic regression (see the module docstring for the exact fit)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if len(y) > max_rows > 0:
        keep = np.sort(np.random.default_rng(seed).choice(len(y), max_rows, replace=False))
        x, y = x[keep], y[keep]
    n, f = x.shape
    onehot = np.zeros((n, n_classes))
    onehot[np.arange(n), y] = 1.0
    xb = np.hstack([x, np.ones((n, 1))])  # last row of theta: the intercepts (not penalised)
    penalty = np.ones((f + 1, 1))
    penalty[-1] = 0.0
    sigma = np.linalg.norm(xb, 2) if n else 0.0
    step = 1.0 / (0.5 * sigma**2 / max(n, 1) + l2 + 1e-12)
    theta = np.zeros((f + 1, n_classes))
    previous = theta
    converged = False
    iterations = 0
    largest = float("inf")

    def gradient(t: np.ndarray) -> np.ndarray:
        p = _softmax(xb @ t)
        return np.asarray(xb.T @ (p - onehot) / max(n, 1) + l2 * penalty * t)

    for iterations in range(1, max_iter + 1):
        momentum = theta + (iterations - 1) / (iterations + 2) * (theta - previous)
        g = gradient(momentum)
        previous, theta = theta, momentum - step * g
        largest = float(np.abs(gradient(theta)).max())
        if largest < tol:
            converged = True
            break
    return LogisticModel(theta[:-1], theta[-1], iterations, converged, largest)


def logistic_design(x_scaled: np.ndarray, symbol_idx: np.ndarray, n_symbols: int) -> np.ndarray:
    """The logistic baseline's inputs: the scaled features, plus a symbol one-hot (>1 symbol)."""
    if n_symbols <= 1:
        return np.asarray(x_scaled, dtype=np.float64)
    onehot = np.zeros((len(symbol_idx), n_symbols))
    onehot[np.arange(len(symbol_idx)), symbol_idx] = 1.0
    return np.hstack([np.asarray(x_scaled, dtype=np.float64), onehot])


def persistence_signals(close: np.ndarray, threshold: float) -> np.ndarray:
    """BUY/SELL/HOLD per bar by the causal swing direction (see the module docstring)."""
    prices = np.asarray(close, dtype=np.float64)
    out = np.full(len(prices), HOLD, dtype=np.int64)
    up, down = 1.0 + threshold, 1.0 - threshold
    direction = 0
    high = low = prices[0] if len(prices) else 0.0
    for i, p in enumerate(prices):
        if direction == 0:
            high, low = max(high, p), min(low, p)
            if p >= low * up:
                direction, high = 1, p
            elif p <= high * down:
                direction, low = -1, p
        elif direction == 1:
            if p > high:
                high = p
            elif p <= high * down:
                direction, low = -1, p
        else:
            if p < low:
                low = p
            elif p >= low * up:
                direction, high = 1, p
        out[i] = BUY if direction == 1 else SELL if direction == -1 else HOLD
    return out


def persistence_for_rows(
    closes: Mapping[str, pd.Series],
    symbols: list[str],
    symbol_idx: np.ndarray,
    timestamps: np.ndarray,
    threshold: float,
) -> np.ndarray:
    """The persistence rule at every dataset row, run over each symbol's full close series
    (so rows after the first swing of the data, not of the split, have a direction)."""
    out = np.full(len(symbol_idx), HOLD, dtype=np.int64)
    for i, symbol in enumerate(symbols):
        rows = np.flatnonzero(symbol_idx == i)
        if not len(rows):
            continue
        close = closes[symbol]
        signals = persistence_signals(close.to_numpy(dtype=np.float64), threshold)
        times = close.index.tz_convert("UTC").tz_localize(None).to_numpy(dtype="datetime64[ns]")
        at = np.searchsorted(times, timestamps[rows])
        if np.any(at >= len(times)) or np.any(
            times[np.minimum(at, len(times) - 1)] != timestamps[rows]
        ):
            raise ValueError(f"{symbol}: dataset rows without a bar in the close series")
        out[rows] = signals[at]
    return out


def majority_label(y_train: np.ndarray) -> int:
    return int(np.bincount(y_train, minlength=len(CLASS_NAMES)).argmax())


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float((np.asarray(y_true) == np.asarray(y_pred)).mean()) if len(y_true) else 0.0


def best_baseline(accuracies: Mapping[str, float]) -> str:
    """The baseline with the highest accuracy (ties: the first in ``DEFINITIONS`` order)."""
    order = [name for name in DEFINITIONS if name in accuracies]
    return max(order, key=lambda name: (accuracies[name], -order.index(name)))


def accuracy_table(
    y_true: np.ndarray, model: np.ndarray, baselines: Mapping[str, np.ndarray]
) -> dict[str, Any]:
    """Accuracy of the model and of each baseline's predictions on the same rows."""
    scores = {name: accuracy(y_true, pred) for name, pred in baselines.items()}
    best = best_baseline(scores) if scores else ""
    mine = accuracy(y_true, model)
    return {
        "rows": len(y_true),
        "model": mine,
        **scores,
        "best_baseline": best,
        "model_minus_best": mine - scores[best] if best else 0.0,
    }


__all__ = [
    "DEFINITIONS",
    "LogisticModel",
    "accuracy_table",
    "best_baseline",
    "fit_logistic",
    "logistic_design",
    "majority_label",
    "persistence_for_rows",
    "persistence_signals",
]
