"""A stored model reproduces its metrics and scores new data."""

from __future__ import annotations

from pathlib import Path

import pytest

from ktrdr.data import read_ohlcv_file
from ktrdr.errors import DataError
from ktrdr.storage import ModelStorage
from ktrdr.training.predictor import Predictor


def test_loaded_model_reproduces_stored_test_metrics(
    tiny_result, tmp_path: Path, sample_data_dir: Path
):
    stored = ModelStorage(tmp_path).save(tiny_result.bundle)
    predictor = Predictor.load(stored.path)
    again = predictor.evaluate_test_split(sample_data_dir)
    assert again == tiny_result.metrics["test"]


def test_predict_new_bars(tiny_result, tmp_path: Path, sample_data_dir: Path):
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
