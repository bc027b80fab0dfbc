"""The block bootstrap: its rules, and coverage of a known parameter on simulated AR(1) data."""

from __future__ import annotations

import math

import numpy as np
import pytest


def test_block_length_rule() -> None:
    from ktrdr.training.bootstrap import block_length, mean_run_length

    assert mean_run_length(np.array([0, 0, 1, 1, 1, 2])) == 2.0
    assert block_length(1000) == 10  # ceil(1000 ** (1/3))
    assert block_length(1000, np.repeat([0, 1], 500)) == 500  # one run of 500 each: cap n // 2
    assert block_length(1000, np.repeat(np.arange(40) % 3, 25)) == 25
    assert block_length(1) == 1


def test_circular_blocks_wrap_around() -> None:
    from ktrdr.training.bootstrap import circular_indices

    idx = circular_indices(np.random.default_rng(0), 5, 3, 20)
    assert idx.shape == (20, 5)
    assert np.all((idx[:, 1] - idx[:, 0]) % 5 == 1) and np.all((idx[:, 2] - idx[:, 1]) % 5 == 1)


def test_resamples_are_seeded_and_bounded() -> None:
    from ktrdr.training.bootstrap import RESAMPLES, bootstrap, mean_of, resample_count

    x = np.random.default_rng(0).normal(size=300)
    a = bootstrap({"x": x}, {"m": mean_of("x")}, block=7, seed=1)
    b = bootstrap({"x": x}, {"m": mean_of("x")}, block=7, seed=1)
    assert a == b and a["resamples"] == RESAMPLES and a["m"]["low"] < x.mean() < a["m"]["high"]
    assert resample_count(10**9) >= 200 and resample_count(10**9) * 10**9 > 0


def test_interval_covers_the_mean_of_ar1_data_at_the_stated_rate() -> None:
    """AR(1) with phi 0.5 around a known mean: the 95 % interval must contain it in 95 % of
    samples, give or take 3 binomial standard errors of the coverage estimate."""
    from ktrdr.training.bootstrap import LEVEL, block_length, bootstrap, mean_of

    rng = np.random.default_rng(2024)
    samples, n, phi, mu = 300, 400, 0.5, 1.0
    covered = 0
    for k in range(samples):
        noise = rng.normal(size=n + 50)
        x = np.zeros(n + 50)
        for t in range(1, n + 50):
            x[t] = phi * x[t - 1] + noise[t]
        series = mu + x[50:]
        found = bootstrap({"x": series}, {"m": mean_of("x")}, block=block_length(n), seed=k)
        covered += found["m"]["low"] <= mu <= found["m"]["high"]
    rate = covered / samples
    se = math.sqrt(LEVEL * (1 - LEVEL) / samples)
    assert abs(rate - LEVEL) <= 3 * se, f"coverage {rate:.3f}, want {LEVEL} +- {3 * se:.3f}"


def test_sharpe_and_total_return_match_the_trading_metrics() -> None:
    from ktrdr.training.bootstrap import sharpe, total_return
    from ktrdr.training.trading import performance

    r = np.random.default_rng(5).normal(0.001, 0.01, 250)
    reported = performance(r, [], 1.0)
    assert float(sharpe(r, 250.0)) == pytest.approx(reported["sharpe"], rel=1e-12)
    assert float(total_return(r)) == pytest.approx(reported["return"], rel=1e-12)
    assert float(sharpe(np.zeros(5), 250.0)) == 0.0


def test_short_period_caveat_rule() -> None:
    from ktrdr.training.comparison import short_period

    assert short_period(47.0, 746)["caveat"]  # a month and a half of hourly bars
    assert "47 days (746 bars)" in short_period(47.0, 746)["text"]
    assert short_period(6.0, 1700)["caveat"]  # six days of 5-minute bars
    assert short_period(200.0, 50)["caveat"]  # long enough, but 50 bars
    assert not short_period(91.0, 100)["caveat"] and short_period(91.0, 100)["text"] == ""


def _uncertainty(low: float, high: float) -> dict:
    diff = {"estimate": (low + high) / 2, "low": low, "high": high}
    return {
        "best_trading_baseline": "buy_and_hold",
        "trading": {"return_minus_buy_and_hold": diff},
        "accuracy": {"model_minus_logistic": {"estimate": 0.01, "low": -0.02, "high": 0.04}},
    }


def test_verdict_needs_the_interval_above_zero() -> None:
    from ktrdr.training.comparison import verdict

    overall = {"strategy": {"return": 0.10}, "buy_and_hold": {"return": 0.04}}
    accuracy = {"model": 0.61, "logistic": 0.60, "best_baseline": "logistic"}
    yes = verdict(overall, _uncertainty(0.01, 0.11), accuracy)
    assert yes["edge"] and yes["text"].startswith("edge over buy_and_hold: strategy +10.00%")
    no = verdict(overall, _uncertainty(-0.02, 0.14), accuracy)
    assert not no["edge"] and no["text"].startswith("no edge over buy_and_hold")
    assert "95% interval -2.00% to +14.00%" in no["text"]
    assert "accuracy 0.6100 vs logistic 0.6000" in no["accuracy_text"]
