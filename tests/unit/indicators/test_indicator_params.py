"""Parameter checks, resolution and warm-up of every indicator."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from ktrdr.errors import StrategyConfigError
from ktrdr.indicators import get_indicator, known_indicators

if TYPE_CHECKING:
    import pandas as pd


@pytest.fixture(scope="module")
def ohlcv(sample_data_dir: Path) -> pd.DataFrame:
    """The bundled EURUSD 1h sample, read with plain pandas."""
    import pandas as pd

    frame = pd.read_csv(sample_data_dir / "EURUSD_1h.csv")
    frame.index = pd.DatetimeIndex(
        pd.to_datetime(frame.pop("timestamp"), utc=True), name="timestamp"
    )
    return frame.astype("float64")


def test_unknown_parameter_message_names_the_allowed_ones() -> None:
    assert get_indicator("rsi").check_params({"perod": 14}) == [
        "unknown parameter 'perod' for rsi; allowed: period, source"
    ]


@pytest.mark.parametrize(
    ("name", "params", "fragment"),
    [
        ("rsi", {"period": 1}, "rsi.period must be >= 2, got 1"),
        ("rsi", {"period": 0}, "must be >= 2"),
        ("sma", {"period": 0}, "sma.period must be >= 1, got 0"),
        ("rsi", {"period": 14.5}, "must be an integer"),
        ("rsi", {"period": "14"}, "must be an integer"),
        ("rsi", {"period": True}, "must be an integer"),
        ("rsi", {"period": None}, "must be an integer"),
        ("rsi", {"period": 10**7}, "must be <= 100000"),
        ("rsi", {"source": "typical"}, "must be one of open, high, low, close"),
        ("bbands", {"std_dev": 0}, "std_dev must be >="),
        ("bbands", {"multiplier": -1.0}, "multiplier must be >="),
        ("bbands", {"std_dev": float("nan")}, "must be finite"),
        ("bbands", {"std_dev": 2, "multiplier": 2}, "same parameter"),
        ("macd", {"fast_period": 26, "slow_period": 12}, "fast_period (26) must be less than"),
        ("macd", {"fast_period": 12, "slow_period": 12}, "must be less than slow_period"),
        ("macd", {"fast_period": 1}, "fast_period must be >= 2"),
        ("macd", {"output": "line"}, "must be one of macd, signal, histogram"),
        ("stoch", {"output": "j"}, "must be one of k, d"),
        ("ultosc", {"short_period": 20}, "short_period < medium_period < long_period"),
        ("atr", {"source": "close"}, "unknown parameter 'source' for atr; allowed: period, units"),
    ],
)
def test_bad_parameters_are_reported(name: str, params: dict[str, Any], fragment: str) -> None:
    problems = get_indicator(name).check_params(params)
    assert problems, f"{name} accepted {params}"
    assert any(fragment in p for p in problems), problems
    with pytest.raises(StrategyConfigError):
        get_indicator(name).resolve_params(params)


def test_every_problem_is_reported_at_once() -> None:
    problems = get_indicator("rsi").check_params({"perod": 14, "period": 1, "src": "close"})
    assert len(problems) == 3


def test_resolve_params_fills_defaults_maps_aliases_and_normalizes() -> None:
    bb = get_indicator("bbands")
    assert bb.resolve_params({"multiplier": 2.5, "period": 10.0, "source": "HLC3"}) == {
        "period": 10,
        "std_dev": 2.5,
        "source": "hlc3",
    }
    resolved = bb.resolve_params({"period": 10.0})
    assert isinstance(resolved["period"], int)
    assert get_indicator("stoch").resolve_params({"slowing": 5})["smooth_k"] == 5
    assert get_indicator("rsi").resolve_params({}) == {"period": 14, "source": "close"}


def test_alias_parameter_gives_the_same_series(ohlcv: pd.DataFrame) -> None:
    import pandas as pd

    bb = get_indicator("bbands")
    a = bb.compute(ohlcv, {"multiplier": 1.5})
    b = bb.compute(ohlcv, {"std_dev": 1.5})
    pd.testing.assert_series_equal(a, b)


def _first_valid(series: pd.Series) -> int:
    valid = np.flatnonzero(series.notna().to_numpy())
    return int(valid[0]) if valid.size else len(series)


NON_DEFAULT: dict[str, dict[str, Any]] = {
    "macd": {"fast_period": 5, "slow_period": 35, "signal_period": 4, "output": "histogram"},
    "stoch": {"k_period": 9, "d_period": 5, "smooth_k": 2, "output": "d"},
    "ultosc": {"short_period": 3, "medium_period": 9, "long_period": 40},
    "bbands": {"period": 7, "std_dev": 1.0},
}


@pytest.mark.parametrize("name", known_indicators())
def test_warmup_matches_first_valid_value_on_real_data(name: str, ohlcv: pd.DataFrame) -> None:
    spec = get_indicator(name)
    for params in ({}, NON_DEFAULT.get(name, {"period": 5}), NON_DEFAULT.get(name, {"period": 33})):
        series = spec.compute(ohlcv, params)
        warmup = spec.warmup(params)
        assert _first_valid(series) == warmup, (name, params)
        # NaN only during the warm-up: every later bar is valid and finite.
        assert np.isfinite(series.to_numpy()[warmup:]).all(), (name, params)


def _alternative(value: Any, choices: tuple[str, ...]) -> Any:
    if choices:
        return next(c for c in choices if c != value and c != "volume")
    if isinstance(value, int):
        return value + 3
    return value * 1.5


CASES = [
    (name, param.name, _alternative(param.default, param.choices))
    for name in known_indicators()
    for param in get_indicator(name).params
]


@pytest.mark.parametrize(("name", "param", "value"), CASES)
def test_every_parameter_changes_the_output(
    name: str, param: str, value: Any, ohlcv: pd.DataFrame
) -> None:
    spec = get_indicator(name)
    baseline = spec.compute(ohlcv, {})
    changed = spec.compute(ohlcv, {param: value})
    assert not baseline.equals(changed), f"{name}.{param}={value!r} changed nothing"


def test_rsi_7_and_rsi_14_give_different_series(ohlcv: pd.DataFrame) -> None:
    rsi = get_indicator("rsi")
    rsi7 = rsi.compute(ohlcv, {"period": 7})
    rsi14 = rsi.compute(ohlcv, {"period": 14})
    assert rsi.warmup({"period": 7}) == 7
    assert rsi.warmup({"period": 14}) == 14
    both = rsi7.notna() & rsi14.notna()
    assert both.sum() > 4000
    difference = (rsi7[both] - rsi14[both]).abs()
    assert difference.mean() > 1.0  # RSI points, not rounding noise
    assert rsi7[both].std() > rsi14[both].std()  # the shorter RSI swings more
