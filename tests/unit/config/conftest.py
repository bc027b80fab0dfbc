from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

VALID: dict[str, Any] = {
    "name": "rsi_macd_test",
    "description": "A small strategy for the config tests",
    "version": "2.0",
    "training_data": {
        "symbols": {"mode": "single", "symbol": "eurusd"},
        "timeframes": {"mode": "single", "timeframe": "1H"},
        "start_date": "2017-05-01",
        "end_date": "2017-12-31",
    },
    "indicators": [
        {"name": "rsi", "period": 14, "source": "close"},
        {"name": "macd", "fast_period": 12, "slow_period": 26, "signal_period": 9},
    ],
    "fuzzy_sets": {
        "rsi": {
            "oversold": {"type": "triangular", "parameters": [0, 0, 30]},
            "overbought": {"type": "triangular", "parameters": [70, 100, 100]},
        },
        "macd": {"negative": {"type": "gaussian", "parameters": [-0.001, 0.001]}},
    },
    "model": {
        "type": "mlp",
        "architecture": {"hidden_layers": [16, 8], "activation": "relu", "dropout": 0.1},
        "features": {"lookback_periods": 2, "include_price_context": True},
        "training": {"learning_rate": 0.01, "batch_size": 32, "epochs": 5},
    },
    "training": {
        "labels": {"source": "zigzag", "zigzag_threshold": 0.01, "label_lookahead": 10},
        "data_split": {"train": 0.7, "validation": 0.15, "test": 0.15},
    },
    "seed": 7,
}


@pytest.fixture
def valid_dict() -> dict[str, Any]:
    return copy.deepcopy(VALID)


@pytest.fixture
def valid_yaml() -> str:
    """The valid strategy as KTRDR writes it, with extra sections the schema ignores."""
    extra = {"deployment": {"target_symbols": {"mode": "universal"}}, "decisions": {"x": 1}}
    return "# a comment\n" + yaml.safe_dump({**VALID, **extra}, sort_keys=False)
