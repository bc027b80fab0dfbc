"""The probability of backtest overfitting (CSCV, Bailey, Borwein, López de Prado & Zhu):
small matrices worked by hand, and pure noise against its known value."""

from __future__ import annotations

import math
import random
from statistics import fmean

import pytest

from ktrdr.research.overfitting import backtest_overfitting


def columns(*trials: list[float]) -> list[list[float]]:
    """A T x N matrix from one list of returns per trial."""
    return [list(row) for row in zip(*trials, strict=True)]


def test_three_trials_four_blocks_by_hand():
    """One period per block, performance = the mean (equal blocks: the sum orders the same).

    Block sums of A, B, C over each in-sample half J and its complement:

    J      in sample (A, B, C)  winner  out of sample (A, B, C)  its rank  logit
    {0,1}  ( 4,  2, -3)         A       ( 1, -1, -5)             3 of 3    ln 3
    {0,2}  ( 0, -1, -3)         A       ( 5,  2, -5)             3         ln 3
    {0,3}  ( 3,  4, -4)         B       ( 2, -3, -4)             2         0
    {1,2}  ( 2, -3, -4)         A       ( 3,  4, -4)             2         0
    {1,3}  ( 5,  2, -5)         A       ( 0, -1, -3)             3         ln 3
    {2,3}  ( 1, -1, -5)         A       ( 4,  2, -3)             3         ln 3

    w = rank / (N + 1) = 3/4 or 2/4; two logits are 0 (at the median: overfit), so PBO = 2/6.
    """
    a, b, c = [1.0, 3.0, -1.0, 2.0], [2.0, 0.0, -3.0, 2.0], [-1.0, -2.0, -2.0, -3.0]
    result = backtest_overfitting(columns(a, b, c), 4, metric=fmean)
    ln3 = math.log(3)
    assert result.logits == pytest.approx((ln3, ln3, 0.0, 0.0, ln3, ln3))
    assert result.probability == pytest.approx(1 / 3)
    assert (result.blocks, result.trials) == (4, 3)


def test_a_trial_that_loses_out_of_sample_wherever_it_wins_in_sample():
    """Two blocks: A is better in the first, B in the second; whichever wins in sample is
    last out of sample (w = 1/3), so every logit is ln(1/2) and PBO is 1."""
    a, b = [3.0, 1.0, -1.0, 0.0], [0.0, 1.0, 2.0, 1.0]
    result = backtest_overfitting(columns(a, b), 2, metric=fmean)
    assert result.logits == pytest.approx((math.log(0.5), math.log(0.5)))
    assert result.probability == 1.0


def test_an_always_best_trial_is_never_overfit():
    """B is A's noise shifted up: the same spread, a higher mean, so a higher Sharpe ratio on
    every half; it wins in sample and is first of 2 out of sample: w = 2/3, logit ln 2."""
    rng = random.Random(7)
    noise = [rng.gauss(0.0, 0.01) for _ in range(80)]
    result = backtest_overfitting(columns(noise, [x + 0.005 for x in noise]), 8)
    assert len(result.logits) == math.comb(8, 4)
    assert result.logits == pytest.approx((math.log(2),) * 70)
    assert result.probability == 0.0


def test_pure_noise_is_overfit_half_the_time():
    """Returns independent of the trial: the in-sample winner's out-of-sample rank is uniform
    on 1..N, so with N even each combination's logit is <= 0 with probability exactly 1/2.
    The first combination of each of R independent simulations is one fair coin: its mean
    has standard error sqrt(0.25 / R); a simulation's PBO averages correlated coins, whose
    mean has standard error at most sqrt(0.25 / R) too. Both within 4 standard errors."""
    rng = random.Random(20240601)
    simulations, trials, blocks, per_block = 400, 10, 4, 10
    firsts, pbos = [], []
    for _ in range(simulations):
        matrix = [[rng.gauss(0.0, 1.0) for _ in range(trials)] for _ in range(blocks * per_block)]
        result = backtest_overfitting(matrix, blocks)
        firsts.append(1.0 if result.logits[0] <= 0 else 0.0)
        pbos.append(result.probability)
    tolerance = 4 * math.sqrt(0.25 / simulations)
    assert fmean(firsts) == pytest.approx(0.5, abs=tolerance)
    assert fmean(pbos) == pytest.approx(0.5, abs=tolerance)


@pytest.mark.parametrize(
    ("matrix", "blocks", "expected"),
    [
        ([[0.1], [0.2]], 2, "at least 2 trials"),
        ([[0.1, 0.2], [0.3]], 2, "one return per trial"),
        ([[0.1, 0.2]] * 6, 3, "even"),
        ([[0.1, 0.2]] * 7, 2, "do not split into 2 equal blocks"),
        ([[0.1, 0.2]] * 2, 4, "do not split into 4 equal blocks"),
    ],
)
def test_matrices_cscv_cannot_split_are_refused(matrix, blocks, expected):
    with pytest.raises(ValueError, match=expected):
        backtest_overfitting(matrix, blocks)


def test_the_default_sharpe_ratio_is_that_of_the_concatenated_halves():
    """The default metric sums per block; it must equal the Sharpe ratio of each half's
    returns put together."""
    from ktrdr.research.selection import sharpe_sample

    rng = random.Random(3)
    matrix = [[rng.gauss(0.001 * n, 0.01) for n in range(5)] for _ in range(60)]
    fast = backtest_overfitting(matrix, 6)
    slow = backtest_overfitting(matrix, 6, metric=lambda xs: sharpe_sample(xs).sharpe)
    assert fast.logits == pytest.approx(slow.logits)
    assert fast.probability == slow.probability
