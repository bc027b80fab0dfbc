"""A stored model reproduces its metrics and scores new data."""

from __future__ import annotations

from pathlib import Path

import pytest

from ktrdr.errors import DataError
from ktrdr.storage import ModelStorage


def test_loaded_model_reproduces_stored_test_metrics(
    tiny_result, tmp_path: Path, sample_data_dir: Path
):
    from ktrdr.training.predictor import Predictor

    stored = ModelStorage(tmp_path).save(tiny_result.bundle)
    predictor = Predictor.load(stored.path)
    again = predictor.evaluate_test_split(sample_data_dir)
    assert again == tiny_result.metrics["test"]


def test_predict_new_bars(tiny_result, tmp_path: Path, sample_data_dir: Path):
    from ktrdr.data import read_ohlcv_file
    from ktrdr.training.predictor import Predictor

    stored = ModelStorage(tmp_path).save(tiny_result.bundle)
    predictor = Predictor.load(stored.path)
    bars = read_ohlcv_file(sample_data_dir / "EURUSD_1h.csv").iloc[-300:]
    signals = predictor.predict("EURUSD", {"1h": bars})
    assert list(signals.columns) == ["signal", "prob_buy", "prob_hold", "prob_sell"]
    assert set(signals["signal"]) <= {"BUY", "HOLD", "SELL"}
    assert signals[["prob_buy", "prob_hold", "prob_sell"]].sum(axis=1).round(5).eq(1).all()
    assert len(signals) == 300 - 34
    with pytest.raises(DataError, match="too few bars"):
        predictor.predict("EURUSD", {"1h": bars.iloc[:20]})


def test_predict_refuses_other_symbols_and_timeframes(
    tiny_result, tmp_path: Path, sample_data_dir: Path
):
    import pandas as pd

    from ktrdr.data import read_ohlcv_file
    from ktrdr.training.predictor import Predictor

    stored = ModelStorage(tmp_path).save(tiny_result.bundle)
    predictor = Predictor.load(stored.path)
    goog = read_ohlcv_file(sample_data_dir / "GOOG_1d.csv")
    with pytest.raises(DataError, match=r"not GOOG.*trained on 1h bars"):
        predictor.check_data("GOOG", goog)
    warnings = predictor.check_data("GOOG", goog, allow_mismatch=True)
    assert any("not GOOG" in w for w in warnings)
    eurusd = read_ohlcv_file(sample_data_dir / "EURUSD_1h.csv")
    lines = predictor.check_data("EURUSD", eurusd.iloc[-300:])
    span = tiny_result.bundle.metadata["data"]["EURUSD"]["1h"]
    test_start = tiny_result.bundle.metadata["split"]["boundaries"]["test_start"]
    assert eurusd.index[-300] >= pd.Timestamp(test_start)  # the last 300 bars: test period
    assert span["last"][:10] == f"{eurusd.index[-1]:%Y-%m-%d}"
    assert lines == [
        f"300 bars: 300 out-of-sample (test period, {test_start[:10]} .. {span['last'][:10]})"
    ]
    bad = eurusd.iloc[-50:].copy()
    bad.iloc[10, bad.columns.get_loc("close")] = 0.0
    with pytest.raises(DataError, match="non-positive"):
        predictor.check_data("EURUSD", bad)
