"""What the series are: cross-checked against TA-Lib and by hand, scale-free, well-formed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from ktrdr.errors import DataError
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


def _col(ohlcv: pd.DataFrame, name: str) -> np.ndarray:
    return ohlcv[name].to_numpy(dtype=np.float64)


@pytest.mark.parametrize("name", known_indicators())
def test_series_shares_the_index_and_is_float(name: str, ohlcv: pd.DataFrame) -> None:
    series = get_indicator(name).compute(ohlcv, {})
    assert series.index.equals(ohlcv.index)
    assert series.dtype == np.float64
    assert series.name == name


@pytest.mark.parametrize("name", known_indicators())
def test_series_is_scale_free(name: str, ohlcv: pd.DataFrame) -> None:
    """The same fuzzy sets must fit a symbol at 1.07 and one at 1100.

    A power of two keeps every floating-point rounding (and so TA-Lib's tie-breaks, e.g.
    ADX's +DM == -DM) identical; the remaining differences are pure arithmetic noise.
    """
    scaled = ohlcv.copy()
    scaled[["open", "high", "low", "close"]] *= 1024.0
    # KTRDR's default units for macd, atr and momentum are price units; percent is scale-free.
    spec = get_indicator(name)
    params = {"units": "percent"} if any(p.name == "units" for p in spec.params) else {}
    a = get_indicator(name).compute(ohlcv, params).to_numpy()
    b = get_indicator(name).compute(scaled, params).to_numpy()
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6, equal_nan=True)


def test_rsi_is_talib_rsi(ohlcv: pd.DataFrame) -> None:
    import talib

    ours = get_indicator("rsi").compute(ohlcv, {"period": 9}).to_numpy()
    np.testing.assert_allclose(ours, talib.RSI(_col(ohlcv, "close"), 9), equal_nan=True)


def test_rsi_bounds(ohlcv: pd.DataFrame) -> None:
    rsi = get_indicator("rsi").compute(ohlcv, {}).dropna()
    assert rsi.between(0, 100).all()


def test_moving_average_distance_by_hand(ohlcv: pd.DataFrame) -> None:
    hl2 = (ohlcv["high"] + ohlcv["low"]) / 2
    sma = hl2.rolling(10).mean()
    expected = 100 * (hl2 - sma) / sma
    params = {"period": 10, "source": "hl2", "units": "percent"}
    ours = get_indicator("sma").compute(ohlcv, params)
    np.testing.assert_allclose(ours.to_numpy(), expected.to_numpy(), atol=1e-9, equal_nan=True)


@pytest.mark.parametrize("name", ["sma", "ema", "wma", "dema", "tema", "trima", "kama"])
def test_moving_averages_default_to_ktrdr_units(name: str, ohlcv: pd.DataFrame) -> None:
    """KTRDR's fuzzy sets for moving averages are written for close / MA, around 1.0."""
    import talib

    close = _col(ohlcv, "close")
    function = getattr(talib, name.upper())
    expected = close / function(close, get_indicator(name).defaults["period"])
    ours = get_indicator(name).compute(ohlcv, {}).to_numpy()
    np.testing.assert_allclose(ours, expected, equal_nan=True)
    assert 0.97 < np.nanmedian(ours) < 1.03


def test_ohlc4_source(ohlcv: pd.DataFrame) -> None:
    import talib

    ohlc4 = ohlcv[["open", "high", "low", "close"]].mean(axis=1).to_numpy()
    ours = get_indicator("roc").compute(ohlcv, {"period": 3, "source": "ohlc4"}).to_numpy()
    np.testing.assert_allclose(ours, talib.ROC(ohlc4, 3), equal_nan=True)


def test_macd_lines_as_percent_of_price(ohlcv: pd.DataFrame) -> None:
    import talib

    close = _col(ohlcv, "close")
    line, signal, hist = talib.MACD(close, 8, 21, 5)
    macd = get_indicator("macd")
    params = {"fast_period": 8, "slow_period": 21, "signal_period": 5}
    for output, expected in (("macd", line), ("signal", signal), ("histogram", hist)):
        ours = macd.compute(ohlcv, {**params, "output": output, "units": "percent"}).to_numpy()
        np.testing.assert_allclose(ours, 100 * expected / close, equal_nan=True)
        raw = macd.compute(ohlcv, {**params, "output": output}).to_numpy()  # KTRDR's units
        np.testing.assert_allclose(raw, expected, equal_nan=True)


def test_bbands_percent_b(ohlcv: pd.DataFrame) -> None:
    close = ohlcv["close"]
    mid = close.rolling(20).mean()
    std = close.rolling(20).std(ddof=0)
    lower, upper = mid - 2.5 * std, mid + 2.5 * std
    expected = (close - lower) / (upper - lower)
    ours = get_indicator("bbands").compute(ohlcv, {"multiplier": 2.5})
    np.testing.assert_allclose(ours.to_numpy(), expected.to_numpy(), atol=1e-6, equal_nan=True)
    inside = ours.dropna()
    assert 0.4 < inside.mean() < 0.6


def test_bbands_flat_prices_sit_in_the_middle() -> None:
    import pandas as pd

    index = pd.date_range("2024-01-01", periods=40, freq="h", tz="UTC", name="timestamp")
    flat = pd.DataFrame(
        {"open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 10.0}, index=index
    )
    series = get_indicator("bbands").compute(flat, {"period": 5})
    assert series.iloc[:4].isna().all()
    assert (series.iloc[4:] == 0.5).all()


def test_atr_in_price_units_by_default_and_percent_on_request(ohlcv: pd.DataFrame) -> None:
    import talib

    high, low, close = _col(ohlcv, "high"), _col(ohlcv, "low"), _col(ohlcv, "close")
    atr = talib.ATR(high, low, close, 10)
    ours = get_indicator("atr").compute(ohlcv, {"period": 10}).to_numpy()
    np.testing.assert_allclose(ours, atr, equal_nan=True)  # KTRDR's units: price
    pct = get_indicator("atr").compute(ohlcv, {"period": 10, "units": "percent"}).to_numpy()
    np.testing.assert_allclose(pct, 100 * atr / close, equal_nan=True)
    natr = get_indicator("natr").compute(ohlcv, {"period": 10}).to_numpy()
    np.testing.assert_allclose(natr, talib.NATR(high, low, close, 10), equal_nan=True)


def test_stoch_k_and_d(ohlcv: pd.DataFrame) -> None:
    import talib

    high, low, close = _col(ohlcv, "high"), _col(ohlcv, "low"), _col(ohlcv, "close")
    sma = talib.MA_Type.SMA
    k, d = talib.STOCH(high, low, close, 9, 4, sma, 5, sma)
    stoch = get_indicator("stochastic")
    params = {"k_period": 9, "smooth_k": 4, "d_period": 5}
    np.testing.assert_allclose(stoch.compute(ohlcv, params).to_numpy(), k, equal_nan=True)
    np.testing.assert_allclose(
        stoch.compute(ohlcv, {**params, "output": "d"}).to_numpy(), d, equal_nan=True
    )


def test_williams_r_range(ohlcv: pd.DataFrame) -> None:
    wr = get_indicator("WilliamsR").compute(ohlcv, {}).dropna()
    assert wr.between(-100, 0).all()
    assert wr.min() < -95 and wr.max() > -5


def test_obv_balance_by_hand(ohlcv: pd.DataFrame) -> None:
    close, volume = ohlcv["close"], ohlcv["volume"]
    signed = np.sign(close.diff()).fillna(0) * volume
    expected = 100 * signed.rolling(12).sum() / volume.rolling(12).sum()
    expected.iloc[:12] = np.nan
    ours = get_indicator("obv").compute(ohlcv, {"period": 12})
    np.testing.assert_allclose(ours.to_numpy(), expected.to_numpy(), atol=1e-9, equal_nan=True)
    assert ours.dropna().between(-100, 100).all()


def test_obv_without_volume_is_zero(ohlcv: pd.DataFrame) -> None:
    no_volume = ohlcv.assign(volume=0.0)
    series = get_indicator("obv").compute(no_volume, {"period": 5})
    assert (series.iloc[5:] == 0).all()


def test_momentum_in_price_units_by_default_and_percent_on_request(ohlcv: pd.DataFrame) -> None:
    close = ohlcv["close"]
    diff = close - close.shift(7)
    ours = get_indicator("mom").compute(ohlcv, {"period": 7})
    np.testing.assert_allclose(ours.to_numpy(), diff.to_numpy(), atol=1e-9, equal_nan=True)
    pct = get_indicator("mom").compute(ohlcv, {"period": 7, "units": "percent"})
    expected = 100 * diff / close.shift(7)
    np.testing.assert_allclose(pct.to_numpy(), expected.to_numpy(), atol=1e-9, equal_nan=True)


def test_missing_column_is_a_data_error(ohlcv: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="volume"):
        get_indicator("mfi").compute(ohlcv.drop(columns="volume"), {})
    with pytest.raises(DataError, match="open"):
        get_indicator("sma").compute(ohlcv.drop(columns="open"), {"source": "ohlc4"})


def test_empty_frame_gives_empty_series(ohlcv: pd.DataFrame) -> None:
    series = get_indicator("rsi").compute(ohlcv.iloc[:0], {})
    assert len(series) == 0


def test_short_frame_is_all_nan(ohlcv: pd.DataFrame) -> None:
    series = get_indicator("macd").compute(ohlcv.iloc[:10], {})
    assert series.isna().all() and len(series) == 10
