"""Finding indicators: names, aliases, unknown names, the documented series."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ktrdr.indicators import IndicatorSpec, compute_indicator, get_indicator, known_indicators

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


REQUIRED = [
    "rsi", "sma", "ema", "macd", "bbands", "atr", "stoch", "adx", "cci",
    "williams_r", "obv", "mfi", "roc", "momentum",
]  # fmt: skip


def test_required_indicators_are_known() -> None:
    known = known_indicators()
    assert set(REQUIRED) <= set(known)
    assert len(known) >= len(REQUIRED) + 4
    assert known == sorted(known)


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("RSI", "rsi"),
        ("rsi", "rsi"),
        ("BollingerBands", "bbands"),
        ("bollinger_bands", "bbands"),
        ("Bollinger-Bands", "bbands"),
        ("BBANDS", "bbands"),
        ("MACD", "macd"),
        ("Stochastic", "stoch"),
        ("STOCH", "stoch"),
        ("WilliamsR", "williams_r"),
        ("williams_r", "williams_r"),
        ("WILLR", "williams_r"),
        ("ATR", "atr"),
        ("NATR", "natr"),
        ("Momentum", "momentum"),
        ("MOM", "momentum"),
        ("OBV", "obv"),
        ("MFI", "mfi"),
        ("ROC", "roc"),
        ("ADX", "adx"),
        ("CCI", "cci"),
        ("SMA", "sma"),
        ("EMA", "ema"),
        ("Ultimate Oscillator", "ultosc"),
        ("ultimate_oscillator", "ultosc"),
        ("SimpleMovingAverage", "sma"),
    ],
)
def test_names_and_aliases_are_case_and_separator_insensitive(given: str, canonical: str) -> None:
    assert get_indicator(given).name == canonical


def test_unknown_name_raises_key_error_listing_known_names() -> None:
    with pytest.raises(KeyError) as excinfo:
        get_indicator("supertrend")
    message = str(excinfo.value)
    assert "supertrend" in message
    for name in known_indicators():
        assert name in message


@pytest.mark.parametrize("name", known_indicators())
def test_every_indicator_documents_its_series(name: str) -> None:
    spec = get_indicator(name)
    assert isinstance(spec, IndicatorSpec)
    assert spec.name == name
    assert len(spec.series_doc) > 10
    assert set(spec.defaults) == {p.name for p in spec.params}
    assert spec.check_params({}) == []
    assert spec.resolve_params({}) == spec.defaults


def test_readme_table_lists_every_indicator() -> None:
    import ktrdr.indicators

    text = (Path(ktrdr.indicators.__file__).parent / "README.md").read_text(encoding="utf-8")
    for name in known_indicators():
        assert f"| `{name}` |" in text


@dataclass
class _Declared:
    """Stand-in with IndicatorConfig's surface (name, id, params)."""

    name: str
    feature_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return (self.feature_id or self.name).lower()

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.extra)


def test_compute_indicator_uses_params_and_names_series_by_id(ohlcv: pd.DataFrame) -> None:
    import pandas as pd

    declared = _Declared("RSI", "rsi_fast", {"period": 7})
    series = compute_indicator(declared, ohlcv)  # type: ignore[arg-type]
    assert series.name == "rsi_fast"
    expected = get_indicator("rsi").compute(ohlcv, {"period": 7})
    pd.testing.assert_series_equal(series, expected, check_names=False)


def test_compute_indicator_with_real_indicator_config(ohlcv: pd.DataFrame) -> None:
    import pandas as pd

    try:
        from ktrdr.config.strategy import IndicatorConfig
    except Exception as exc:  # the schema module belongs to another helper
        pytest.skip(f"ktrdr.config.strategy not importable yet: {exc}")
    declared = IndicatorConfig(name="BollingerBands", period=10, multiplier=1.5)  # type: ignore[call-arg]
    series = compute_indicator(declared, ohlcv)
    assert series.name == "bollingerbands"
    expected = get_indicator("bbands").compute(ohlcv, {"period": 10, "std_dev": 1.5})
    pd.testing.assert_series_equal(series, expected, check_names=False)
