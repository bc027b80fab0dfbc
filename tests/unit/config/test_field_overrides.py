"""Changing strategy fields by path: the paths, the values, and what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from ktrdr.config import load_strategy, parse_strategy_with_fields
from ktrdr.config.field_overrides import (
    MAX_FIELD_OVERRIDES,
    load_value,
    parse_assignment,
    parse_field_path,
    set_fields,
)
from ktrdr.errors import StrategyConfigError


@pytest.fixture
def rsi_single(example_strategies: Path) -> str:
    return (example_strategies / "rsi_single.yaml").read_text()


def test_paths_are_the_yamls_own() -> None:
    assert parse_field_path("model.training.learning_rate") == (
        "model",
        "training",
        "learning_rate",
    )
    assert parse_field_path("indicators[0].period") == ("indicators", 0, "period")
    assert parse_field_path("fuzzy_sets.rsi.oversold.parameters[2]") == (
        "fuzzy_sets",
        "rsi",
        "oversold",
        "parameters",
        2,
    )


@pytest.mark.parametrize(
    "path", ["", "model..x", ".model", "indicators[-1]", "indicators[x]", "a b", "x" * 201]
)
def test_malformed_paths_are_refused(path: str) -> None:
    with pytest.raises(ValueError):
        parse_field_path(path)


def test_values_are_yaml_read_safely() -> None:
    assert load_value("0.01") == 0.01
    assert load_value("[64, 32]") == [64, 32]
    assert load_value("ema") == "ema"
    assert load_value('{"type": "gaussian", "parameters": [0.5, 0.2]}') == {
        "type": "gaussian",
        "parameters": [0.5, 0.2],
    }
    with pytest.raises(ValueError, match="anchors are not allowed"):
        load_value("[&a 1, *a]")
    with pytest.raises(ValueError, match="longer than"):
        load_value("1" * 5000)
    with pytest.raises(ValueError, match="PATH=VALUE"):
        parse_assignment("model.training.epochs")


def test_fields_change_the_validated_strategy(rsi_single: str) -> None:
    sets = [
        parse_assignment(text)
        for text in (
            "model.training.learning_rate=0.01",
            "indicators[0].period=10",
            "model.architecture.hidden_layers=[64, 32]",
            "fuzzy_sets.rsi.oversold.parameters=[0, 0, 30]",
            "model.training.early_stopping.patience=9",
        )
    ]
    text, config = parse_strategy_with_fields(rsi_single, sets, "rsi_single.yaml")
    assert config.model.training.learning_rate == 0.01
    assert config.indicators[0].params["period"] == 10
    assert config.model.architecture.hidden_layers == [64, 32]
    assert config.fuzzy_sets["rsi"]["oversold"].parameters == [0.0, 0.0, 30.0]
    assert config.model.training.early_stopping.patience == 9
    # the text returned is the strategy as trained: reading it back gives the same config
    assert parse_strategy_with_fields(text, [], "again")[1] == config


def test_a_missing_block_is_created_and_later_overrides_win(rsi_single: str) -> None:
    data = {"model": {"training": {}}}
    out = set_fields(data, [("model.training.early_stopping.patience", 3)])
    assert out == {"model": {"training": {"early_stopping": {"patience": 3}}}}
    assert data == {"model": {"training": {}}}  # the input is left alone
    sets = [("model.training.epochs", 5), ("model.training.epochs", 7)]
    assert parse_strategy_with_fields(rsi_single, sets)[1].model.training.epochs == 7


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("model.training.learnig_rate=0.01", "model.training.learnig_rate: unknown key"),
        ("indicators[7].period=3", "indicators[7].period: indicators has 3 entries, no position 7"),
        ("model.training.epochs=-1", "model.training.epochs: must be > 0"),
        ("indicators[0].period=abc", "rsi.period must be an integer, got 'abc'"),
        ("name.first=x", "name.first: name is text, not a mapping"),
        ("nothing[0]=1", "nothing[0]: nothing does not exist (no position 0)"),
    ],
)
def test_bad_overrides_are_named_by_their_path(
    rsi_single: str, assignment: str, message: str
) -> None:
    with pytest.raises(StrategyConfigError) as info:
        parse_strategy_with_fields(rsi_single, [parse_assignment(assignment)])
    assert any(message in error for error in info.value.errors), info.value.errors


def test_too_many_overrides_are_refused(rsi_single: str) -> None:
    sets = [("seed", i) for i in range(MAX_FIELD_OVERRIDES + 1)]
    with pytest.raises(StrategyConfigError, match=f"at most {MAX_FIELD_OVERRIDES}"):
        parse_strategy_with_fields(rsi_single, sets)


def test_load_strategy_takes_overrides(example_strategies: Path) -> None:
    config = load_strategy(
        example_strategies / "rsi_single.yaml", field_overrides=[("model.training.epochs", 3)]
    )
    assert config.model.training.epochs == 3
