"""The feature matrix equals the plain pandas formulation of it, bit for bit.

The pipeline writes every column once into a preallocated float32 matrix and tracks NaN rows
per source column; the reference below builds the same thing the obvious way (a frame per
indicator, ``shift`` for lags, ``concat``, ``notna``, ``astype``). Same values, same names,
same kept rows: on the example strategies, and on data whose gaps make the kept rows
non-contiguous.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from ktrdr.config import load_strategy
from ktrdr.config.strategy import StrategyConfig
from ktrdr.fuzzy import membership

if TYPE_CHECKING:
    import pandas as pd


def reference_features(config: StrategyConfig, data: dict) -> dict[str, pd.DataFrame]:
    import pandas as pd

    from ktrdr.data import align_to_base
    from ktrdr.features import compute_indicators, price_context
    from ktrdr.features.pipeline import timeframe_prefixes

    prefixes = timeframe_prefixes(config)
    tds = config.training_data.timeframes
    base_tf = tds.base()
    indicators = compute_indicators(config, data)
    out = {}
    for symbol, per_tf in indicators.items():
        members = {}
        for tf, series in per_tf.items():
            parts = []
            for ind in config.active_indicators:
                values = series[ind.id].to_numpy(dtype="float64")
                parts.append(
                    pd.DataFrame(
                        {
                            f"{prefixes[tf]}{ind.id}_{name}": membership(
                                s.type, s.parameters, values
                            )
                            for name, s in config.fuzzy_sets[ind.id].items()
                        },
                        index=series[ind.id].index,
                    )
                )
            members[tf] = pd.concat(parts, axis=1)
        base_index = data[symbol][base_tf].index
        aligned = [members[base_tf]] + [
            align_to_base(members[tf], tf, base_index, base_tf)
            for tf in tds.resolved()
            if tf != base_tf
        ]
        joined = pd.concat(aligned, axis=1)
        columns = [joined]
        lags = config.model.features.lookback_periods
        if lags:
            columns.append(
                pd.DataFrame(
                    {
                        f"{name}_lag{k}": joined[name].shift(k)
                        for k in range(1, lags + 1)
                        for name in joined.columns
                    }
                )
            )
        if config.model.features.include_price_context:
            columns.append(price_context(data[symbol][base_tf]))
        frame = pd.concat(columns, axis=1)
        out[symbol] = frame[frame.notna().all(axis=1)].astype(np.float32)
    return out


def assert_same(config: StrategyConfig, data: dict) -> None:
    from ktrdr.features import build_symbol_features

    built = build_symbol_features(config, data)
    expected = reference_features(config, data)
    assert built.keys() == expected.keys()
    for symbol, features in built.items():
        frame = features.frame
        assert list(frame.columns) == list(expected[symbol].columns)
        assert frame.index.equals(expected[symbol].index)
        assert (frame.dtypes == np.float32).all()
        assert np.array_equal(frame.to_numpy(), expected[symbol].to_numpy())
        assert features.dropped_warmup_rows == len(
            data[symbol][config.training_data.timeframes.base()]
        ) - len(frame)


@pytest.mark.parametrize("name", ["rsi_single", "multi_timeframe", "multi_symbol"])
def test_examples_equal_the_plain_pandas_matrix(
    name: str, example_strategies: Path, sample_data_dir: Path
) -> None:
    from ktrdr.data import load_market_data

    config = load_strategy(example_strategies / f"{name}.yaml")
    tds = config.training_data
    data = load_market_data(sample_data_dir, tds.symbols.resolved(), tds.timeframes.resolved())
    assert_same(config, data)


def test_flat_prices_zero_ranges_and_zero_volumes_match(example_strategies: Path) -> None:
    import pandas as pd

    config = load_strategy(example_strategies / "rsi_single.yaml")
    rng = np.random.default_rng(3)
    n = 3000
    close = 1.1 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    close[1500:1504] = close[1499]  # a flat stretch: zero ranges, RSI of no change
    bars = pd.DataFrame(
        {
            "open": close,
            "high": close * 1.001,
            "low": close * 0.999,
            "close": close,
            "volume": rng.integers(0, 5, n).astype(float),  # zero volumes: NaN volume means
        },
        index=pd.date_range("2024-01-01", periods=n, freq="1h"),
    )
    bars.loc[bars.index[2000:2003], "high"] = bars["low"].iloc[2000:2003]  # zero-width bars
    data = {"EURUSD": {"1h": bars}}
    assert_same(config, data)


def test_interior_nan_rows_are_dropped_with_their_lags(
    example_strategies: Path, monkeypatch
) -> None:
    """An indicator with NaN in the middle (not only its warm-up) keeps the rows around it."""
    import pandas as pd

    from ktrdr.features import build_symbol_features

    config = load_strategy(example_strategies / "rsi_single.yaml")
    import ktrdr.features.pipeline as pipeline

    real = pipeline.compute_indicator

    def with_hole(ind, ohlcv):
        series = real(ind, ohlcv)
        if ind.id == "rsi":
            series = series.copy()
            series.iloc[700:705] = np.nan
        return series

    monkeypatch.setattr(pipeline, "compute_indicator", with_hole)
    rng = np.random.default_rng(5)
    close = 1.1 * np.exp(np.cumsum(rng.normal(0, 1e-3, 1200)))
    bars = pd.DataFrame(
        {
            "open": close,
            "high": close * 1.001,
            "low": close * 0.999,
            "close": close,
            "volume": np.full(1200, 100.0),
        },
        index=pd.date_range("2024-01-01", periods=1200, freq="1h"),
    )
    built = build_symbol_features(config, {"EURUSD": {"1h": bars}})["EURUSD"].frame
    lags = config.model.features.lookback_periods
    hole = bars.index[700 : 705 + lags]
    assert not built.index.isin(hole).any()
    assert bars.index[705 + lags : 720].isin(built.index).all()
    expected = reference_features(config, {"EURUSD": {"1h": bars}})["EURUSD"]
    assert np.array_equal(built.to_numpy(), expected.to_numpy())
