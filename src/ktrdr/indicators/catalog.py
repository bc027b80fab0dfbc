"""The indicators KTRDR strategies may declare, each computed with TA-Lib.

Every indicator yields ONE series for its fuzzy sets, chosen to be scale-free wherever the raw
TA-Lib output depends on the price level (so one set of fuzzy sets fits every symbol of a
multi-symbol strategy). ``README.md`` in this folder has the table.

Warm-up: TA-Lib's own lookback for the given parameters (``talib.abstract``), plus whatever the
transformation adds (only ``obv`` adds nothing beyond ``period``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ktrdr.indicators.spec import (
    PRICE_SOURCES,
    ComputeFn,
    IndicatorSpec,
    LookbackFn,
    ParamSpec,
    column,
    source_prices,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# numpy and TA-Lib are imported inside the functions that compute: the services validate
# strategies against this catalogue without loading either (only a training computes).

MAX_PERIOD = 100_000  # TA-Lib's own upper bound for periods


@lru_cache(maxsize=1024)
def _cached_lookback(function: str, items: tuple[tuple[str, Any], ...]) -> int:
    from talib import abstract

    func = abstract.Function(function)  # type: ignore[attr-defined]
    func.set_parameters(dict(items))
    return int(func.lookback)


def talib_lookback(function: str, **kwargs: Any) -> int:
    """Bars TA-Lib's ``function`` consumes before its first output for these parameters."""
    return _cached_lookback(function, tuple(sorted(kwargs.items())))


def _period(default: int, minimum: int = 1, name: str = "period", doc: str = "") -> ParamSpec:
    return ParamSpec(
        name,
        "int",
        default,
        minimum=minimum,
        maximum=MAX_PERIOD,
        doc=doc or "bars in the window",
    )


def _source(default: str = "close") -> ParamSpec:
    return ParamSpec(
        "source",
        "choice",
        default,
        choices=PRICE_SOURCES,
        doc="price series the indicator reads (open, high, low, close, volume, hl2, hlc3, ohlc4)",
    )


def _pct_of(values: np.ndarray, base: np.ndarray) -> np.ndarray:
    return 100.0 * values / base


def _shift(values: np.ndarray, periods: int) -> np.ndarray:
    import numpy as np

    out = np.full_like(values, np.nan)
    if periods < len(values):
        out[periods:] = values[: len(values) - periods]
    return out


# --- moving averages: percent distance of the source from its average --------------------


def _moving_average(
    name: str, function: str, default: int, aliases: tuple[str, ...]
) -> IndicatorSpec:
    def compute(ohlcv: pd.DataFrame, p: dict[str, Any]) -> np.ndarray:
        import numpy as np
        import talib

        ta_fn = getattr(talib, function)

        src = source_prices(ohlcv, p["source"])
        average = ta_fn(src, timeperiod=p["period"])
        if p["units"] == "ratio":
            return np.asarray(src / average)
        return _pct_of(src - average, average)

    def lookback(p: dict[str, Any]) -> int:
        return talib_lookback(function, timeperiod=p["period"])

    return IndicatorSpec(
        name=name,
        aliases=aliases,
        params=(
            _period(default),
            _source(),
            ParamSpec(
                "units",
                "choice",
                "ratio",
                choices=("ratio", "percent"),
                doc="ratio: source / average (KTRDR's, around 1.0); percent: percent distance",
            ),
        ),
        series_doc=(
            f"`units: ratio` (default, KTRDR's): source / {function} over `period` bars, "
            f"around 1.0 (1.02 = 2 % above); `units: percent`: 100 * (source - {function}) / "
            f"{function}, around 0"
        ),
        columns=(),
        compute_fn=compute,
        lookback_fn=lookback,
    )


# --- single-series oscillators on a source -------------------------------------------------


def _source_oscillator(
    name: str,
    function: str,
    default: int,
    minimum: int,
    aliases: tuple[str, ...],
    series_doc: str,
) -> IndicatorSpec:
    def compute(ohlcv: pd.DataFrame, p: dict[str, Any]) -> np.ndarray:
        import numpy as np
        import talib

        ta_fn = getattr(talib, function)

        return np.asarray(ta_fn(source_prices(ohlcv, p["source"]), timeperiod=p["period"]))

    def lookback(p: dict[str, Any]) -> int:
        return talib_lookback(function, timeperiod=p["period"])

    return IndicatorSpec(
        name=name,
        aliases=aliases,
        params=(_period(default, minimum), _source()),
        series_doc=series_doc,
        columns=(),
        compute_fn=compute,
        lookback_fn=lookback,
    )


# --- oscillators on high/low/close (and volume) ----------------------------------------------


def _bar_oscillator(
    name: str,
    function: str,
    default: int,
    minimum: int,
    aliases: tuple[str, ...],
    series_doc: str,
    columns: tuple[str, ...] = ("high", "low", "close"),
) -> IndicatorSpec:
    def compute(ohlcv: pd.DataFrame, p: dict[str, Any]) -> np.ndarray:
        import numpy as np
        import talib

        ta_fn = getattr(talib, function)

        arrays = [column(ohlcv, c) for c in columns]
        return np.asarray(ta_fn(*arrays, timeperiod=p["period"]))

    def lookback(p: dict[str, Any]) -> int:
        return talib_lookback(function, timeperiod=p["period"])

    return IndicatorSpec(
        name=name,
        aliases=aliases,
        params=(_period(default, minimum),),
        series_doc=series_doc,
        columns=columns,
        compute_fn=compute,
        lookback_fn=lookback,
    )


# --- indicators with their own shape ----------------------------------------------------------


def _macd() -> IndicatorSpec:
    outputs = ("macd", "signal", "histogram")

    def compute(ohlcv: pd.DataFrame, p: dict[str, Any]) -> np.ndarray:
        import numpy as np
        import talib

        src = source_prices(ohlcv, p["source"])
        lines = talib.MACD(
            src,
            fastperiod=p["fast_period"],
            slowperiod=p["slow_period"],
            signalperiod=p["signal_period"],
        )
        line = np.asarray(lines[outputs.index(p["output"])])
        return line if p["units"] == "price" else _pct_of(line, src)

    def lookback(p: dict[str, Any]) -> int:
        return talib_lookback(
            "MACD",
            fastperiod=p["fast_period"],
            slowperiod=p["slow_period"],
            signalperiod=p["signal_period"],
        )

    def cross_check(p: dict[str, Any]) -> list[str]:
        if p["fast_period"] >= p["slow_period"]:
            return [
                f"fast_period ({p['fast_period']}) must be less than "
                f"slow_period ({p['slow_period']})"
            ]
        return []

    return IndicatorSpec(
        name="macd",
        aliases=("moving_average_convergence_divergence",),
        params=(
            _period(12, 2, "fast_period", "bars of the fast EMA"),
            _period(26, 2, "slow_period", "bars of the slow EMA"),
            _period(9, 1, "signal_period", "bars of the signal EMA"),
            _source(),
            ParamSpec(
                "output",
                "choice",
                "macd",
                choices=outputs,
                doc="which line feeds the fuzzy sets",
            ),
            ParamSpec(
                "units",
                "choice",
                "price",
                choices=("price", "percent"),
                doc="price: the raw line (KTRDR's); percent: 100 * line / source",
            ),
        ),
        series_doc=(
            "the chosen MACD line (`output`: macd (default), signal or histogram); "
            "`units: price` (default, KTRDR's) the raw line in price units, `units: percent` "
            "100 * line / source (scale-free). TA-Lib starts all three lines together, so "
            "with output=macd `signal_period` only moves the first valid bar"
        ),
        columns=(),
        compute_fn=compute,
        lookback_fn=lookback,
        cross_check=cross_check,
    )


def _bbands() -> IndicatorSpec:
    def compute(ohlcv: pd.DataFrame, p: dict[str, Any]) -> np.ndarray:
        import numpy as np
        import talib

        src = source_prices(ohlcv, p["source"])
        upper, _middle, lower = talib.BBANDS(
            src,
            timeperiod=p["period"],
            nbdevup=p["std_dev"],
            nbdevdn=p["std_dev"],
            matype=talib.MA_Type.SMA,
        )
        width = np.asarray(upper) - np.asarray(lower)
        position = np.where(width > 0, (src - np.asarray(lower)) / width, 0.5)
        return np.where(np.isnan(width), np.nan, position)

    def lookback(p: dict[str, Any]) -> int:
        return talib_lookback("BBANDS", timeperiod=p["period"], nbdevup=p["std_dev"])

    return IndicatorSpec(
        name="bbands",
        aliases=("bollinger_bands", "bollinger", "bb"),
        params=(
            _period(20, 2),
            ParamSpec(
                "std_dev",
                "float",
                2.0,
                minimum=1e-6,
                maximum=100.0,
                aliases=("multiplier",),
                doc="band width in standard deviations (alias: multiplier)",
            ),
            _source(),
        ),
        series_doc=(
            "%B, the position of the source inside the bands: (source - lower) / "
            "(upper - lower); 0 = lower band, 0.5 = middle, 1 = upper band (can leave 0..1; "
            "0.5 when the bands have zero width)"
        ),
        columns=(),
        compute_fn=compute,
        lookback_fn=lookback,
    )


def _atr(name: str = "atr") -> IndicatorSpec:
    """``atr`` in KTRDR's units (price) by default; ``natr`` is the same ATR as percent of the
    close (TA-Lib's NATR), whatever ``units`` says."""
    normalized = name == "natr"

    def compute(ohlcv: pd.DataFrame, p: dict[str, Any]) -> np.ndarray:
        import numpy as np
        import talib

        close = column(ohlcv, "close")
        atr = talib.ATR(column(ohlcv, "high"), column(ohlcv, "low"), close, timeperiod=p["period"])
        if normalized or p["units"] == "percent":
            return _pct_of(np.asarray(atr), close)
        return np.asarray(atr)

    def lookback(p: dict[str, Any]) -> int:
        return talib_lookback("ATR", timeperiod=p["period"])

    if normalized:
        return IndicatorSpec(
            name="natr",
            aliases=("normalized_average_true_range",),
            params=(_period(14),),
            series_doc="ATR as percent of the close: 100 * ATR / close (TA-Lib's NATR)",
            columns=("high", "low", "close"),
            compute_fn=compute,
            lookback_fn=lookback,
        )
    return IndicatorSpec(
        name="atr",
        aliases=("average_true_range",),
        params=(
            _period(14),
            ParamSpec(
                "units",
                "choice",
                "price",
                choices=("price", "percent"),
                doc="price: ATR in price units (KTRDR's); percent: 100 * ATR / close",
            ),
        ),
        series_doc=(
            "`units: price` (default, KTRDR's): ATR in price units (TA-Lib's Wilder smoothing; "
            "KTRDR averaged the true range with a simple mean, so early values differ slightly); "
            "`units: percent`: 100 * ATR / close (scale-free, as `natr`)"
        ),
        columns=("high", "low", "close"),
        compute_fn=compute,
        lookback_fn=lookback,
    )


def _stoch() -> IndicatorSpec:
    def compute(ohlcv: pd.DataFrame, p: dict[str, Any]) -> np.ndarray:
        import numpy as np
        import talib

        slow_k, slow_d = talib.STOCH(
            column(ohlcv, "high"),
            column(ohlcv, "low"),
            column(ohlcv, "close"),
            fastk_period=p["k_period"],
            slowk_period=p["smooth_k"],
            slowk_matype=talib.MA_Type.SMA,
            slowd_period=p["d_period"],
            slowd_matype=talib.MA_Type.SMA,
        )
        return np.asarray(slow_k if p["output"] == "k" else slow_d)

    def lookback(p: dict[str, Any]) -> int:
        return talib_lookback(
            "STOCH",
            fastk_period=p["k_period"],
            slowk_period=p["smooth_k"],
            slowd_period=p["d_period"],
        )

    return IndicatorSpec(
        name="stoch",
        aliases=("stochastic", "stochastic_oscillator"),
        params=(
            _period(14, 1, "k_period", "bars of the raw %K high/low window"),
            _period(3, 1, "d_period", "bars of the %D average of slow %K"),
            ParamSpec(
                "smooth_k",
                "int",
                3,
                minimum=1,
                maximum=MAX_PERIOD,
                aliases=("slowing",),
                doc="bars smoothing raw %K into slow %K (alias: slowing)",
            ),
            ParamSpec("output", "choice", "k", choices=("k", "d"), doc="slow %K or %D"),
        ),
        series_doc=(
            "slow %K, 0..100 (`output: d` gives %D instead). TA-Lib starts %K and %D "
            "together, so with output=k `d_period` only moves the first valid bar"
        ),
        columns=("high", "low", "close"),
        compute_fn=compute,
        lookback_fn=lookback,
    )


def _obv() -> IndicatorSpec:
    def compute(ohlcv: pd.DataFrame, p: dict[str, Any]) -> np.ndarray:
        import numpy as np
        import talib

        period = p["period"]
        volume = column(ohlcv, "volume")
        obv = np.asarray(talib.OBV(source_prices(ohlcv, p["source"]), volume))
        change = obv - _shift(obv, period)
        cumulative = np.concatenate(([0.0], np.cumsum(volume)))
        traded = np.full_like(volume, np.nan)
        if period < len(volume):
            traded[period:] = cumulative[period + 1 :] - cumulative[1 : len(volume) - period + 1]
        balance = np.where(traded > 0, 100.0 * change / traded, 0.0)
        return np.where(np.isnan(change) | np.isnan(traded), np.nan, balance)

    def lookback(p: dict[str, Any]) -> int:
        return int(p["period"])

    return IndicatorSpec(
        name="obv",
        aliases=("on_balance_volume",),
        params=(_period(20), _source()),
        series_doc=(
            "OBV change over `period` bars as percent of the volume traded in those bars: "
            "100 * (OBV[t] - OBV[t-period]) / sum(volume[t-period+1..t]), -100..100 "
            "(+100 = every bar closed up, 0 when no volume traded)"
        ),
        columns=("volume",),
        compute_fn=compute,
        lookback_fn=lookback,
    )


def _momentum() -> IndicatorSpec:
    def compute(ohlcv: pd.DataFrame, p: dict[str, Any]) -> np.ndarray:
        import numpy as np
        import talib

        src = source_prices(ohlcv, p["source"])
        mom = np.asarray(talib.MOM(src, timeperiod=p["period"]))
        return mom if p["units"] == "price" else _pct_of(mom, _shift(src, p["period"]))

    def lookback(p: dict[str, Any]) -> int:
        return talib_lookback("MOM", timeperiod=p["period"])

    return IndicatorSpec(
        name="momentum",
        aliases=("mom",),
        params=(
            _period(10),
            _source(),
            ParamSpec(
                "units",
                "choice",
                "price",
                choices=("price", "percent"),
                doc="price: source[t] - source[t-period] (KTRDR's); percent: that change in %",
            ),
        ),
        series_doc=(
            "`units: price` (default, KTRDR's): source[t] - source[t-period] in price units; "
            "`units: percent`: 100 * (source[t] - source[t-period]) / source[t-period] "
            "(numerically ROC)"
        ),
        columns=(),
        compute_fn=compute,
        lookback_fn=lookback,
    )


def _ultosc() -> IndicatorSpec:
    def compute(ohlcv: pd.DataFrame, p: dict[str, Any]) -> np.ndarray:
        import numpy as np
        import talib

        return np.asarray(
            talib.ULTOSC(
                column(ohlcv, "high"),
                column(ohlcv, "low"),
                column(ohlcv, "close"),
                timeperiod1=p["short_period"],
                timeperiod2=p["medium_period"],
                timeperiod3=p["long_period"],
            )
        )

    def lookback(p: dict[str, Any]) -> int:
        return talib_lookback(
            "ULTOSC",
            timeperiod1=p["short_period"],
            timeperiod2=p["medium_period"],
            timeperiod3=p["long_period"],
        )

    def cross_check(p: dict[str, Any]) -> list[str]:
        if not p["short_period"] < p["medium_period"] < p["long_period"]:
            return [
                "needs short_period < medium_period < long_period, got "
                f"{p['short_period']}, {p['medium_period']}, {p['long_period']}"
            ]
        return []

    return IndicatorSpec(
        name="ultosc",
        aliases=("ultimate_oscillator",),
        params=(
            ParamSpec("short_period", "int", 7, 1, MAX_PERIOD, aliases=("period1",)),
            ParamSpec("medium_period", "int", 14, 1, MAX_PERIOD, aliases=("period2",)),
            ParamSpec("long_period", "int", 28, 1, MAX_PERIOD, aliases=("period3",)),
        ),
        series_doc="Ultimate Oscillator, 0..100",
        columns=("high", "low", "close"),
        compute_fn=compute,
        lookback_fn=lookback,
        cross_check=cross_check,
    )


def build_catalog() -> tuple[IndicatorSpec, ...]:
    """Every indicator the registry knows, canonical names first in each entry."""
    return (
        _moving_average("sma", "SMA", 20, ("simple_moving_average", "ma")),
        _moving_average("ema", "EMA", 20, ("exponential_moving_average",)),
        _moving_average("wma", "WMA", 20, ("weighted_moving_average",)),
        _moving_average("dema", "DEMA", 20, ("double_exponential_moving_average",)),
        _moving_average("tema", "TEMA", 20, ("triple_exponential_moving_average",)),
        _moving_average("trima", "TRIMA", 20, ("triangular_moving_average",)),
        _moving_average("kama", "KAMA", 10, ("kaufman_adaptive_moving_average",)),
        _source_oscillator(
            "rsi",
            "RSI",
            14,
            2,
            ("relative_strength_index",),
            "RSI, 0..100",
        ),
        _source_oscillator(
            "roc",
            "ROC",
            10,
            1,
            ("rate_of_change",),
            "rate of change in percent: 100 * (source[t] / source[t-period] - 1)",
        ),
        _source_oscillator(
            "cmo",
            "CMO",
            14,
            2,
            ("chande_momentum_oscillator",),
            "Chande Momentum Oscillator, -100..100",
        ),
        _source_oscillator(
            "trix",
            "TRIX",
            15,
            1,
            ("triple_exponential_average",),
            "TRIX: one-bar rate of change of a triple EMA, in percent",
        ),
        _bar_oscillator(
            "adx",
            "ADX",
            14,
            2,
            ("average_directional_index", "average_directional_movement_index"),
            "ADX, trend strength 0..100",
        ),
        _bar_oscillator(
            "cci",
            "CCI",
            20,
            2,
            ("commodity_channel_index",),
            "CCI, unbounded, mostly -200..200 (already scale-free)",
        ),
        _bar_oscillator(
            "williams_r",
            "WILLR",
            14,
            2,
            ("willr", "williams_percent_r"),
            "Williams %R, -100 (at the low of the window) .. 0 (at the high)",
        ),
        _bar_oscillator(
            "mfi",
            "MFI",
            14,
            2,
            ("money_flow_index",),
            "Money Flow Index, 0..100",
            columns=("high", "low", "close", "volume"),
        ),
        _bar_oscillator(
            "aroonosc",
            "AROONOSC",
            14,
            2,
            ("aroon_oscillator",),
            "Aroon oscillator, -100..100",
            columns=("high", "low"),
        ),
        _macd(),
        _bbands(),
        _atr(),
        _atr("natr"),
        _stoch(),
        _obv(),
        _momentum(),
        _ultosc(),
    )


__all__ = ["MAX_PERIOD", "ComputeFn", "LookbackFn", "build_catalog", "talib_lookback"]
