"""The deflated Sharpe ratio against the worked example of Bailey & López de Prado (2014),
and its edge cases: one trial, trials that do not vary, too few returns."""

from __future__ import annotations

import math

import pytest

from ktrdr.research.selection import (
    MIN_OBSERVATIONS,
    SharpeSample,
    deflated_sharpe,
    expected_max_sharpe,
    probabilistic_sharpe,
    sharpe_sample,
)

# The paper's numerical example (section "A numerical example", J. Portfolio Management 40 (5),
# 2014; SSRN 2460551): N = 100 trials whose annualised Sharpe ratios have variance 1/2, the best
# with an annualised Sharpe ratio of 2.5 over T = 1250 daily returns (5 years of 250 days),
# skewness -3 and kurtosis 10. In daily units: SR = 2.5 / sqrt(250) = 0.1581 and
# V = 0.5 / 250. The paper gives SR0 = 0.1132 (daily) and DSR = 0.9004.
DAYS = 250
PAPER_BEST = SharpeSample(2.5 / math.sqrt(DAYS), -3.0, 10.0, 1250)
PAPER_VARIANCE = 0.5 / DAYS
# half a unit of the last digit the paper prints
PRINTED = 5e-5


def test_the_papers_numerical_example():
    sr0 = expected_max_sharpe(100, PAPER_VARIANCE)
    assert sr0 == pytest.approx(0.1132, abs=PRINTED)
    result = deflated_sharpe(PAPER_BEST, 100, PAPER_VARIANCE)
    assert result.probability == pytest.approx(0.9004, abs=PRINTED)
    assert result.expected_max_sharpe == sr0 and result.n_trials == 100
    assert result.reason == ""
    # below the 95 % the investor in the example asks for
    assert result.probability < 0.95
    assert "probability the best trial's Sharpe is real given 100 trials" in result.describe()


def test_more_trials_raise_the_bar():
    bars = [expected_max_sharpe(n, PAPER_VARIANCE) for n in (2, 10, 100, 1000)]
    assert bars == sorted(bars) and bars[0] > 0
    dsr = [deflated_sharpe(PAPER_BEST, n, PAPER_VARIANCE).probability for n in (2, 10, 100, 1000)]
    assert dsr == sorted(dsr, reverse=True)


def test_the_psr_is_one_half_at_the_benchmark_and_normal_moments_simplify_it():
    assert probabilistic_sharpe(0.1, 0.1, 500, -1.0, 7.0) == pytest.approx(0.5)
    # skewness 0, kurtosis 3: z = SR sqrt(T - 1) / sqrt(1 + SR^2 / 2)
    z = 0.1 * math.sqrt(99) / math.sqrt(1 + 0.01 / 2)
    expected = 0.5 * (1 + math.erf(z / math.sqrt(2)))
    assert probabilistic_sharpe(0.1, 0.0, 100, 0.0, 3.0) == pytest.approx(expected)


def test_one_trial_is_compared_with_zero_and_says_so():
    result = deflated_sharpe(PAPER_BEST, 1, None)
    assert result.expected_max_sharpe == 0.0
    assert result.probability == pytest.approx(
        probabilistic_sharpe(PAPER_BEST.sharpe, 0.0, 1250, -3.0, 10.0)
    )
    assert "one trial" in result.reason


def test_trials_that_do_not_vary_add_no_selection_bias():
    result = deflated_sharpe(PAPER_BEST, 20, 0.0)
    assert result.expected_max_sharpe == 0.0
    assert result.probability == pytest.approx(deflated_sharpe(PAPER_BEST, 1, None).probability)
    assert "do not vary" in result.reason


@pytest.mark.parametrize(
    ("best", "n_trials", "variance", "expected"),
    [
        (SharpeSample(0.2, 0.0, 3.0, MIN_OBSERVATIONS - 1), 5, 0.01, "at least 30"),
        (SharpeSample(math.nan, math.nan, math.nan, 400), 5, 0.01, "do not vary"),
        (SharpeSample(0.2, 0.0, 3.0, 400), 5, None, "at least 2 trials"),
        # 1 - g3 SR + (g4 - 1)/4 SR^2 = 1 - 10 * 0.5 + 0.5 * 0.25 < 0
        (SharpeSample(0.5, 10.0, 3.0, 400), 5, 0.01, "no standard error"),
    ],
)
def test_no_number_without_the_data_for_one(best, n_trials, variance, expected):
    result = deflated_sharpe(best, n_trials, variance)
    assert result.probability is None and not result.available
    assert expected in result.reason
    assert result.describe().startswith("deflated Sharpe ratio: not available (")


def test_the_moments_of_a_small_series_by_hand():
    # 1, 2, 3, 4: mean 2.5, deviations +-1.5 and +-0.5, population variance 1.25,
    # sample std sqrt(5/3), third moment 0, fourth moment (2 * 1.5^4 + 2 * 0.5^4) / 4 = 2.5625
    sample = sharpe_sample([1.0, 2.0, 3.0, 4.0])
    assert sample.sharpe == pytest.approx(2.5 / math.sqrt(5 / 3))
    assert sample.skewness == pytest.approx(0.0, abs=1e-12)
    assert sample.kurtosis == pytest.approx(2.5625 / 1.25**2)
    assert sample.observations == 4
    assert math.isnan(sharpe_sample([0.01] * 10).sharpe)
    assert math.isnan(sharpe_sample([0.01]).sharpe)


def test_nonsense_arguments_are_errors():
    with pytest.raises(ValueError, match="n_trials"):
        expected_max_sharpe(0, 0.1)
    with pytest.raises(ValueError, match="variance"):
        expected_max_sharpe(3, -0.1)
    with pytest.raises(ValueError, match="n_trials"):
        deflated_sharpe(PAPER_BEST, 0, 0.1)
