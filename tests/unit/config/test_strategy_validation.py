"""The strategy schema: what it accepts, and every rejection with its `field.path: problem`."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from ktrdr.config import StrategyConfig, strategy_from_dict
from ktrdr.errors import StrategyConfigError


class Replace:
    """A change that replaces a mapping instead of merging into it."""

    def __init__(self, value: Any) -> None:
        self.value = value


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` merged in recursively (a value of None deletes the key)."""
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, Replace):
            out[key] = copy.deepcopy(value.value)
        elif value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


@pytest.fixture
def make_config(valid_dict: dict[str, Any]) -> Callable[..., StrategyConfig]:
    """The valid strategy with changes merged in."""

    def make(**changes: Any) -> StrategyConfig:
        return strategy_from_dict(merged(valid_dict, changes), source="test")

    return make


@pytest.fixture
def errors_of(valid_dict: dict[str, Any]) -> Callable[[dict[str, Any]], list[str]]:
    """The error lines the valid strategy with changes merged in is rejected with."""

    def errors(changes: dict[str, Any]) -> list[str]:
        with pytest.raises(StrategyConfigError) as info:
            strategy_from_dict(merged(valid_dict, changes), source="test")
        return info.value.errors

    return errors


def test_valid_strategy_is_accepted_and_normalized(make_config):
    cfg = make_config()
    assert cfg.training_data.symbols.resolved() == ["EURUSD"]
    assert cfg.training_data.timeframes.resolved() == ["1h"]
    assert cfg.training_data.timeframes.base() == "1h"
    assert [ind.id for ind in cfg.indicators] == ["rsi", "macd"]
    assert cfg.indicators[0].params == {"period": 14, "source": "close"}
    assert str(cfg.training_data.end_date) == "2017-12-31"
    assert cfg.seed == 7


def test_ktrdr_keys_are_accepted_at_every_level_with_a_notice(make_config):
    cfg = make_config(
        deployment={"target": "paper"},
        decisions={"confidence_threshold": 0.6},
        training_data={"history_required": 200},
        model={"architecture": {"output_activation": "softmax"}},
        training={"method": "supervised", "fitness_metrics": {"primary": "sharpe"}},
    )
    assert cfg.model.architecture.hidden_layers == [16, 8]
    assert len(cfg.notices()) == 6


def test_numeric_version_from_yaml_is_text(make_config):
    assert make_config(version=2.0).version == "2.0"


def test_multi_symbol_list_form(make_config):
    cfg = make_config(
        training_data={"symbols": {"mode": "multi_symbol", "list": ["eurusd", "Goog"]}}
    )
    assert cfg.training_data.symbols.resolved() == ["EURUSD", "GOOG"]


def test_multi_timeframe_resolves_base_first_then_finer_to_coarser(make_config):
    cfg = make_config(
        training_data={
            "timeframes": {
                "mode": "multi_timeframe",
                "list": ["1D", "1h", "4h", "15m"],
                "base_timeframe": "1H",
            }
        }
    )
    assert cfg.training_data.timeframes.resolved() == ["1h", "15m", "4h", "1d"]
    assert cfg.training_data.timeframes.base() == "1h"


def test_single_mode_ignores_a_stray_list(make_config):
    cfg = make_config(training_data={"timeframes": {"list": ["4h", "1d"]}})
    assert cfg.training_data.timeframes.resolved() == ["1h"]


def test_fuzzy_set_keys_match_indicator_ids_case_insensitively(make_config, valid_dict):
    fuzzy = dict(valid_dict["fuzzy_sets"])
    fuzzy["RSI"] = fuzzy.pop("rsi")
    cfg = make_config(fuzzy_sets=Replace(fuzzy))
    assert set(cfg.fuzzy_sets) == {"rsi", "macd"}


def test_two_indicators_of_one_kind_with_distinct_feature_ids(make_config, valid_dict):
    sets = valid_dict["fuzzy_sets"]["rsi"]
    cfg = make_config(
        indicators=[
            {"name": "rsi", "period": 7, "feature_id": "rsi_fast"},
            {"name": "RSI", "period": 21, "feature_id": "rsi_slow"},
        ],
        fuzzy_sets=Replace({"rsi_fast": sets, "rsi_slow": sets}),
    )
    assert [ind.id for ind in cfg.indicators] == ["rsi_fast", "rsi_slow"]


# (changes merged into the valid strategy, the expected error line)
REJECTIONS: list[tuple[str, dict[str, Any], str]] = [
    (
        "unknown indicator",
        {"indicators": [{"name": "rsi"}, {"name": "macd"}, {"name": "foo"}]},
        "indicators[2].name: unknown indicator 'foo'; known: adx, ",
    ),
    (
        "indicator without name",
        {"indicators": [{"period": 3}, {"name": "macd"}]},
        "indicators[0].name: required",
    ),
    (
        "unknown indicator parameter",
        {"indicators": [{"name": "rsi", "perod": 14}, {"name": "macd"}]},
        "indicators[0]: unknown parameter 'perod' for rsi; allowed: period, source",
    ),
    (
        "duplicate indicator ids",
        {"indicators": [{"name": "rsi"}, {"name": "macd"}, {"name": "rsi", "period": 7}]},
        "indicators[2]: duplicate indicator id 'rsi' (also indicators[0])",
    ),
    (
        "fuzzy sets for an undeclared indicator",
        {"fuzzy_sets": {"sma": {"near": {"type": "gaussian", "parameters": [0, 1]}}}},
        "fuzzy_sets.sma: fuzzy sets for undeclared indicator 'sma'; "
        "declared indicator ids: rsi, macd",
    ),
    (
        "no indicator with fuzzy sets (one without is a notice, KTRDR allowed it)",
        {"fuzzy_sets": Replace({})},
        "fuzzy_sets: no indicator has fuzzy sets; there are no features",
    ),
    (
        "bad triangle",
        {"fuzzy_sets": {"rsi": {"oversold": {"type": "triangular", "parameters": [30, 20, 35]}}}},
        "fuzzy_sets.rsi.oversold.parameters: triangular needs a <= b <= c, got [30, 20, 35]",
    ),
    (
        "unknown fuzzy set type",
        {"fuzzy_sets": {"rsi": {"low": {"type": "bell", "parameters": [1, 2, 3]}}}},
        "fuzzy_sets.rsi.low.type: must be one of 'triangular', 'trapezoidal' or 'gaussian'",
    ),
    (
        "data split not summing to 1",
        {"training": {"data_split": {"train": 0.6, "validation": 0.1, "test": 0.1}}},
        "training.data_split: train + validation + test must sum to 1, got 0.8",
    ),
    (
        "negative split part",
        {"training": {"data_split": {"train": 0.9, "validation": -0.05, "test": 0.15}}},
        "training.data_split.validation: must be >= 0",
    ),
    (
        "zero test split",
        {"training": {"data_split": {"train": 0.8, "validation": 0.2, "test": 0}}},
        "training.data_split.test: must be > 0",
    ),
    (
        "single symbol mode without symbol",
        {"training_data": {"symbols": {"mode": "single", "symbol": None}}},
        "training_data.symbols: mode 'single' needs 'symbol'",
    ),
    (
        "empty symbol list",
        {"training_data": {"symbols": {"mode": "multi_symbol", "list": []}}},
        "training_data.symbols: mode 'multi_symbol' needs a non-empty 'list'",
    ),
    (
        "bad symbol",
        {"training_data": {"symbols": {"mode": "multi_symbol", "list": ["EURUSD", "../x"]}}},
        "training_data.symbols.list[1]: invalid symbol '../x'",
    ),
    (
        "duplicate symbols",
        {"training_data": {"symbols": {"mode": "multi_symbol", "list": ["eurusd", "EURUSD"]}}},
        "training_data.symbols: duplicate symbol(s) in 'list': EURUSD",
    ),
    (
        "single timeframe mode without timeframe",
        {"training_data": {"timeframes": {"mode": "single", "timeframe": None}}},
        "training_data.timeframes: mode 'single' needs 'timeframe'",
    ),
    (
        "empty timeframe list",
        {"training_data": {"timeframes": {"mode": "multi_timeframe", "list": []}}},
        "training_data.timeframes: mode 'multi_timeframe' needs a non-empty 'list'",
    ),
    (
        "multi timeframe without base",
        {"training_data": {"timeframes": {"mode": "multi_timeframe", "list": ["1h", "4h"]}}},
        "training_data.timeframes: mode 'multi_timeframe' needs 'base_timeframe'",
    ),
    (
        "base timeframe not in list",
        {
            "training_data": {
                "timeframes": {
                    "mode": "multi_timeframe",
                    "list": ["1h", "4h"],
                    "base_timeframe": "1d",
                }
            }
        },
        "training_data.timeframes: base_timeframe '1d' is not in 'list' (1h, 4h)",
    ),
    (
        "unknown timeframe",
        {"training_data": {"timeframes": {"mode": "single", "timeframe": "3h"}}},
        "training_data.timeframes.timeframe: unknown timeframe '3h'; known: 1m, 5m",
    ),
    (
        "start after end",
        {"training_data": {"start_date": "2018-01-01", "end_date": "2017-01-01"}},
        "training_data.end_date: 2017-01-01 is before start_date 2018-01-01",
    ),
    (
        "bad date",
        {"training_data": {"start_date": "2017-13-01"}},
        "training_data.start_date: ",
    ),
    (
        "negative learning rate",
        {"model": {"training": {"learning_rate": -0.1}}},
        "model.training.learning_rate: must be > 0, got -0.1",
    ),
    ("zero epochs", {"model": {"training": {"epochs": 0}}}, "model.training.epochs: must be > 0"),
    (
        "zero batch size",
        {"model": {"training": {"batch_size": 0}}},
        "model.training.batch_size: must be > 0",
    ),
    (
        "dropout of 1",
        {"model": {"architecture": {"dropout": 1.0}}},
        "model.architecture.dropout: must be < 1, got 1.0",
    ),
    (
        "negative dropout",
        {"model": {"architecture": {"dropout": -0.1}}},
        "model.architecture.dropout: must be >= 0",
    ),
    (
        "negative lookback",
        {"model": {"features": {"lookback_periods": -1}}},
        "model.features.lookback_periods: must be >= 0",
    ),
    (
        "zero zigzag threshold",
        {"training": {"labels": {"zigzag_threshold": 0}}},
        "training.labels.zigzag_threshold: must be > 0",
    ),
    (
        "negative label lookahead (0 is KTRDR's tail and allowed)",
        {"training": {"labels": {"label_lookahead": -1}}},
        "training.labels.label_lookahead: must be >= 0",
    ),
    (
        "empty hidden layers",
        {"model": {"architecture": {"hidden_layers": []}}},
        "model.architecture.hidden_layers: must not be empty",
    ),
    (
        "non-positive hidden layer",
        {"model": {"architecture": {"hidden_layers": [16, 0]}}},
        "model.architecture.hidden_layers[1]: must be > 0",
    ),
    (
        "unknown activation",
        {"model": {"architecture": {"activation": "gelu"}}},
        "model.architecture.activation: must be one of 'relu', 'tanh', 'sigmoid' or "
        "'leaky_relu', got 'gelu'",
    ),
    (
        "non-numeric epochs",
        {"model": {"training": {"epochs": "many"}}},
        "model.training.epochs: must be a valid integer",
    ),
    ("missing name", {"name": None}, "name: required"),
    ("empty name", {"name": ""}, "name: must not be empty"),
    ("no indicators", {"indicators": []}, "indicators: must not be empty"),
    ("missing training_data", {"training_data": None}, "training_data: required"),
]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [pytest.param(c, e, id=i) for i, c, e in REJECTIONS],
)
def test_rejections_name_the_field_and_the_problem(errors_of, changes, expected):
    errors = errors_of(changes)
    assert any(line.startswith(expected) for line in errors), errors


def test_every_problem_is_reported_at_once(errors_of):
    errors = errors_of(
        {
            "indicators": [{"name": "rsi", "perod": 3}, {"name": "macd"}, {"name": "foo"}],
            "fuzzy_sets": Replace({"sma": {"x": {"type": "gaussian", "parameters": [0, 1]}}}),
            "model": {"training": {"learning_rate": -1}},
            "training": {"data_split": {"train": 0.5, "validation": 0.1, "test": 0.1}},
            "training_data": {"symbols": {"mode": "multi_symbol", "list": []}},
        }
    )
    expected_prefixes = [
        "training_data.symbols: ",
        "indicators[0]: unknown parameter 'perod'",
        "indicators[2].name: unknown indicator 'foo'",
        "model.training.learning_rate: ",
        "training.data_split: ",
        # cross-checks still run although field errors stopped pydantic early
        "fuzzy_sets.sma: fuzzy sets for undeclared indicator",
    ]
    for prefix in expected_prefixes:
        assert any(line.startswith(prefix) for line in errors), (prefix, errors)


def test_error_message_joins_all_lines():
    with pytest.raises(StrategyConfigError) as info:
        strategy_from_dict({"name": "x"}, source="test")
    assert "training_data: required" in str(info.value)
    assert len(info.value.errors) >= 3


def test_non_mapping_strategy_is_rejected():
    with pytest.raises(StrategyConfigError, match="must be a mapping"):
        strategy_from_dict(["name"], source="test")


def test_model_validate_alone_also_validates(valid_dict):
    valid_dict["indicators"][0]["perod"] = 3
    with pytest.raises(ValueError, match="unknown parameter 'perod'"):
        StrategyConfig.model_validate(valid_dict)
