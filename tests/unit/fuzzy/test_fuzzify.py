"""fuzzify: one column per set, named prefix_set, in the YAML's order."""

from __future__ import annotations

import numpy as np
import pytest


def _sets() -> dict[str, object]:
    from ktrdr.config.strategy import FuzzySetConfig

    # Declared order is deliberately not alphabetical.
    return {
        "overbought": FuzzySetConfig(type="triangular", parameters=[65, 100, 100]),
        "neutral": FuzzySetConfig(type="gaussian", parameters=[50, 10]),
        "oversold": FuzzySetConfig(type="trapezoidal", parameters=[0, 0, 20, 35]),
    }


def test_columns_follow_the_declared_order_with_prefix() -> None:
    import pandas as pd

    from ktrdr.fuzzy import fuzzify

    index = pd.date_range("2024-01-01", periods=5, freq="h", tz="UTC", name="timestamp")
    values = pd.Series([np.nan, 10.0, 50.0, 82.5, 100.0], index=index)
    frame = fuzzify(values, _sets(), "rsi")  # type: ignore[arg-type]
    assert list(frame.columns) == ["rsi_overbought", "rsi_neutral", "rsi_oversold"]
    assert frame.index.equals(index)
    assert (frame.dtypes == np.float64).all()
    assert frame.iloc[0].isna().all()
    np.testing.assert_allclose(frame["rsi_overbought"].iloc[1:], [0, 0, 0.5, 1])
    np.testing.assert_allclose(frame["rsi_oversold"].iloc[1:], [1, 0, 0, 0])
    np.testing.assert_allclose(frame["rsi_neutral"].iloc[2], 1.0)


def test_no_sets_gives_no_columns() -> None:
    import pandas as pd

    from ktrdr.fuzzy import fuzzify

    values = pd.Series([1.0, 2.0])
    frame = fuzzify(values, {}, "x")
    assert frame.shape == (2, 0)
    assert frame.index.equals(values.index)


def test_invalid_set_raises() -> None:
    import pandas as pd

    from ktrdr.fuzzy import fuzzify

    class _Set:
        type = "triangular"
        parameters = (30.0, 20.0, 35.0)

    with pytest.raises(ValueError, match="a <= b <= c"):
        fuzzify(pd.Series([1.0]), {"bad": _Set()}, "rsi")
