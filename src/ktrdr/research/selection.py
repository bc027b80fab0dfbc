"""The probabilistic and the deflated Sharpe ratio of the best of several trials.

Bailey, D. H. and López de Prado, M. (2014), "The Deflated Sharpe Ratio: Correcting for
Selection Bias, Backtest Overfitting and Non-Normality", Journal of Portfolio Management
40 (5), 94-107 (SSRN 2460551).

- **Probabilistic Sharpe ratio** (PSR): the probability that the true Sharpe ratio exceeds a
  benchmark ``SR*``, given the estimate ``SR`` from ``T`` returns with skewness ``g3`` and
  (non-excess) kurtosis ``g4``:
  ``PSR = Phi((SR - SR*) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2))``.
- **Expected maximum Sharpe ratio** of ``N`` independent trials without skill whose Sharpe
  ratios vary with variance ``V``:
  ``SR0 = sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))``
  (``gamma`` the Euler-Mascheroni constant).
- **Deflated Sharpe ratio** (DSR): the PSR of the best trial against ``SR* = SR0``: the
  probability that its Sharpe ratio is real rather than the luck of picking the best of N.

Every Sharpe ratio here is per observation (not annualised): ``SR``, ``V`` and ``T`` must be
of the same frequency. ``N`` should count the independent trials; the trials of a sweep are
not independent, so counting them all overstates ``N`` and understates the DSR (the
conservative side).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

EULER_GAMMA = 0.5772156649015329
# Fewer returns than this and the sample skewness and kurtosis the PSR's standard error uses
# mean little (their standard errors are about sqrt(6/T) and sqrt(24/T): 0.45 and 0.9 at 30).
MIN_OBSERVATIONS = 30

_NORMAL = NormalDist()


@dataclass(frozen=True)
class SharpeSample:
    """One return series summarised: per-observation Sharpe ratio and the moments the PSR
    needs. ``sharpe`` is NaN when the returns do not vary."""

    sharpe: float  # mean / standard deviation (ddof 1), per observation
    skewness: float  # third standardised moment
    kurtosis: float  # fourth standardised moment, not excess (3 for a normal distribution)
    observations: int


def sharpe_sample(returns: Sequence[float]) -> SharpeSample:
    """The Sharpe ratio, skewness and kurtosis of ``returns`` (moments about the mean,
    divided by the population variance's powers, as in the paper)."""
    n = len(returns)
    if n < 2:
        return SharpeSample(math.nan, math.nan, math.nan, n)
    mean = math.fsum(returns) / n
    deviations = [r - mean for r in returns]
    m2 = math.fsum(d * d for d in deviations) / n
    if m2 <= 0.0:
        return SharpeSample(math.nan, math.nan, math.nan, n)
    m3 = math.fsum(d**3 for d in deviations) / n
    m4 = math.fsum(d**4 for d in deviations) / n
    std = math.sqrt(m2 * n / (n - 1))
    return SharpeSample(mean / std, m3 / m2**1.5, m4 / m2**2, n)


def expected_max_sharpe(n_trials: int, variance: float) -> float:
    """``SR0``: the expected largest Sharpe ratio of ``n_trials`` independent trials whose
    true Sharpe ratio is 0 and whose estimates vary with ``variance`` (0 for one trial:
    nothing was selected)."""
    if n_trials < 1:
        raise ValueError(f"n_trials must be at least 1, got {n_trials}")
    if not variance >= 0.0:
        raise ValueError(f"variance must be >= 0, got {variance}")
    if n_trials == 1 or variance == 0.0:
        return 0.0
    quantiles = (1.0 - EULER_GAMMA) * _NORMAL.inv_cdf(1.0 - 1.0 / n_trials)
    quantiles += EULER_GAMMA * _NORMAL.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return math.sqrt(variance) * quantiles


def probabilistic_sharpe(
    sharpe: float, benchmark: float, observations: int, skewness: float, kurtosis: float
) -> float:
    """PSR: the probability that the true Sharpe ratio exceeds ``benchmark``. ValueError when
    there is no standard error (fewer than 2 observations, or moments that make it
    imaginary)."""
    if observations < 2:
        raise ValueError(f"at least 2 observations needed, got {observations}")
    spread = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if not spread > 0.0:
        raise ValueError(
            f"skewness {skewness:.3g} and kurtosis {kurtosis:.3g} give the Sharpe ratio "
            f"{sharpe:.3g} no standard error"
        )
    z = (sharpe - benchmark) * math.sqrt(observations - 1) / math.sqrt(spread)
    return _NORMAL.cdf(z)


@dataclass(frozen=True)
class DeflatedSharpe:
    """The DSR of a selection, or why there is none (``probability`` None, ``reason`` set)."""

    probability: float | None
    n_trials: int
    sharpe: float  # the best trial's, per observation
    expected_max_sharpe: float  # SR0, per observation
    observations: int
    reason: str = ""  # why there is no probability, or a note on how it was computed

    @property
    def available(self) -> bool:
        return self.probability is not None

    def describe(self) -> str:
        """One line for people."""
        trials = f"{self.n_trials} trial{'s' if self.n_trials != 1 else ''}"
        if self.probability is None:
            return f"deflated Sharpe ratio: not available ({self.reason})"
        text = (
            f"deflated Sharpe ratio {self.probability:.3f}: probability the best trial's "
            f"Sharpe is real given {trials} (its Sharpe {self.sharpe:.4f} per bar over "
            f"{self.observations} bars; the best of {trials} without skill would reach "
            f"{self.expected_max_sharpe:.4f})"
        )
        return f"{text}; {self.reason}" if self.reason else text


def deflated_sharpe(
    best: SharpeSample,
    n_trials: int,
    sharpe_variance: float | None,
    *,
    min_observations: int = MIN_OBSERVATIONS,
) -> DeflatedSharpe:
    """The DSR of ``best``, selected from ``n_trials`` trials whose Sharpe ratios have
    ``sharpe_variance`` (None when fewer than two trials reported one)."""
    if n_trials < 1:
        raise ValueError(f"n_trials must be at least 1, got {n_trials}")

    def missing(reason: str, sr0: float = math.nan) -> DeflatedSharpe:
        return DeflatedSharpe(None, n_trials, best.sharpe, sr0, best.observations, reason)

    if best.observations < min_observations:
        return missing(
            f"the best trial has {best.observations} returns; at least {min_observations} "
            "are needed for its skewness and kurtosis to mean anything"
        )
    if not math.isfinite(best.sharpe):
        return missing("the best trial's returns do not vary (it never held a position?)")
    note = ""
    if n_trials == 1:
        note = "one trial: nothing was selected, so this is the probability its Sharpe is above 0"
    elif sharpe_variance is None or not math.isfinite(sharpe_variance):
        return missing("the Sharpe ratios of at least 2 trials are needed to see how they vary")
    elif sharpe_variance == 0.0:
        note = "the trials' Sharpe ratios do not vary, so selecting among them adds nothing"
    sr0 = expected_max_sharpe(n_trials, sharpe_variance or 0.0)
    try:
        p = probabilistic_sharpe(best.sharpe, sr0, best.observations, best.skewness, best.kurtosis)
    except ValueError as exc:
        return missing(str(exc), sr0)
    return DeflatedSharpe(p, n_trials, best.sharpe, sr0, best.observations, note)


__all__ = [
    "EULER_GAMMA",
    "MIN_OBSERVATIONS",
    "DeflatedSharpe",
    "SharpeSample",
    "deflated_sharpe",
    "expected_max_sharpe",
    "probabilistic_sharpe",
    "sharpe_sample",
]
