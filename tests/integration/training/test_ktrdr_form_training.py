"""A strategy in KTRDR's full v2 form (tests/data/strategies/ktrdr_v2_full.yaml) validates
with the expected notices and trains on the bundled data; step 3 records the fuzzy coverage
and logs its warnings."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from ktrdr.config import load_strategy, strategy_from_dict

KTRDR_FULL = Path(__file__).resolve().parents[2] / "data" / "strategies" / "ktrdr_v2_full.yaml"

EXPECTED_NOTICES = [
    "indicators: 'adx_14' (adx) cannot use 'source'; it is ignored",
    "indicators: 'macd_12_26_9' has no fuzzy sets; it is not computed and feeds nothing",
    "indicators: 'stoch_14' has no fuzzy sets; it is not computed and feeds nothing",
    "indicators: 'stoch_14' (stoch) cannot use 'source'; it is ignored",
    "indicators: 'bbands_20' has no fuzzy sets; it is not computed and feeds nothing",
    "deployment: KTRDR key, not used by training; ignored",
    "decisions: KTRDR key, not used by training; ignored",
    "orchestrator: KTRDR key, not used by training; ignored",
    "risk_management: KTRDR key, not used by training; ignored",
    "backtesting: KTRDR key, not used by training; ignored",
    "training_data.history_required: KTRDR key, not used by training; ignored",
    "model.symbol_embedding_dim: KTRDR key, not used by training; ignored",
    "model.architecture.output_activation: KTRDR key, not used by training; ignored",
    "training.method: KTRDR key, not used by training; ignored",
    "training.fitness_metrics: KTRDR key, not used by training; ignored",
]


def _full_dict() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(KTRDR_FULL.read_text()))


def test_full_form_validates_with_the_expected_notices() -> None:
    cfg = load_strategy(KTRDR_FULL)
    assert cfg.notices() == EXPECTED_NOTICES
    assert cfg.version == "2.0"
    assert [ind.id for ind in cfg.active_indicators] == ["rsi_14", "sma_20", "ema_50", "adx_14"]
    assert cfg.training_data.timeframes.resolved() == ["1h", "4h"]
    types = {
        (ind, name): s.type for ind, sets in cfg.fuzzy_sets.items() for name, s in sets.items()
    }
    assert types[("rsi_14", "neutral")] == "triangular"  # [a, b, c] shorthand
    assert types[("ema_50", "under")] == "trapezoidal"  # [a, b, c, d] shorthand
    assert types[("adx_14", "trending")] == "gaussian"


def test_full_form_trains_on_the_bundled_eurusd(run_training) -> None:
    result = run_training(load_strategy(KTRDR_FULL))
    meta = result.bundle.metadata
    assert meta["notices"] == EXPECTED_NOTICES
    assert meta["timeframes"] == ["1h", "4h"]
    assert "1h_rsi_14_oversold" in meta["feature_names"]
    assert "4h_adx_14_trending" in meta["feature_names"]
    assert not any("macd" in name for name in meta["feature_names"])
    assert meta["fuzzy_coverage"]["warnings"] == []
    assert len(meta["history"]) == 3
    assert 0.0 < result.summary["test_accuracy"] <= 1.0
    trading = meta["metrics"]["trading"]
    assert set(trading["overall"]) >= {"strategy", "buy_and_hold", "majority", "flat"}
    assert trading["verdict"]["text"]


def test_multi_symbol_shape_trains_on_eurusd_and_goog_daily(run_training) -> None:
    data = _full_dict()
    data["training_data"]["symbols"] = {"mode": "multi_symbol", "list": ["EURUSD", "GOOG"]}
    data["training_data"]["timeframes"] = {"mode": "single", "timeframe": "1d"}
    del data["training_data"]["start_date"], data["training_data"]["end_date"]
    data["model"]["training"]["epochs"] = 2
    data["training"]["labels"]["zigzag_threshold"] = 0.03
    result = run_training(strategy_from_dict(data, source="test"))
    meta = result.bundle.metadata
    assert meta["symbols"] == ["EURUSD", "GOOG"]
    assert {row["symbol"] for row in meta["fuzzy_coverage"]["rows"]} == {"EURUSD", "GOOG"}
    assert len(meta["history"]) == 2
    assert "overall" in meta["metrics"]["trading"]


def test_unit_trap_is_logged_and_recorded_by_step_3(run_training, caplog) -> None:
    data = _full_dict()
    data["indicators"][1]["units"] = "percent"  # sma_20's sets stay in KTRDR's ~1.0 units
    data["model"]["training"]["epochs"] = 1
    with caplog.at_level(logging.WARNING, logger="ktrdr.training.executor"):
        result = run_training(strategy_from_dict(data, source="test"))
    warnings = result.bundle.metadata["fuzzy_coverage"]["warnings"]
    assert any("sma_20.below is active on" in w for w in warnings)
    logged = [r.getMessage() for r in caplog.records if "fuzzy set" in r.getMessage()]
    assert any("ktrdr_v2_full: fuzzy set 1h sma_20.below is active on" in m for m in logged)


def test_tiny_training_records_coverage(tiny_result) -> None:
    coverage = tiny_result.bundle.metadata["fuzzy_coverage"]
    assert coverage["rare_set_share"] == pytest.approx(0.02)
    sets = {(r["indicator"], r["set"]) for r in coverage["rows"]}
    assert ("rsi", "oversold") in sets and ("macd", "(any)") in sets


def test_the_balanced_example_predicts_hold(example_strategies, sample_data_dir) -> None:
    """multi_symbol.yaml weighs the classes (`class_weights: balanced`): the rare HOLD class is
    predicted on the test period too, not only BUY and SELL. Ten of its 40 epochs (a quarter
    of the time; early stopping ended the 40 at 28 here): HOLD is predicted from the first."""
    from ktrdr.config import apply_overrides, load_strategy
    from ktrdr.config.field_overrides import set_fields
    from ktrdr.config.strategy import StrategyConfig
    from ktrdr.labels import CLASS_NAMES
    from ktrdr.training.executor import TrainingExecutor

    config = load_strategy(example_strategies / "multi_symbol.yaml")
    assert config.model.training.class_weights == "balanced"
    short = StrategyConfig.model_validate(
        set_fields(config.model_dump(), [("model.training.epochs", 10)])
    )
    result = TrainingExecutor(sample_data_dir, device="cpu").run(apply_overrides(short, seed=7))
    confusion = result.bundle.metadata["metrics"]["test"]["confusion_matrix"]  # rows: truth
    hold = CLASS_NAMES.index("HOLD")
    assert sum(row[hold] for row in confusion) > 0, confusion
