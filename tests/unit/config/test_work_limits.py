"""Upper bounds on training work (ktrdr.config.limits): messages, defaults, true model size."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ktrdr.config import load_strategy, parse_strategy, strategy_from_dict
from ktrdr.config.limits import (
    WorkLimits,
    check_work_limits,
    embedding_dim,
    feature_count,
    parameter_count,
)

EXAMPLES = sorted((Path(__file__).parents[3] / "examples" / "strategies").glob("*.yaml"))


def with_model(valid_dict: dict, section: str, **values: object):
    valid_dict["model"].setdefault(section, {}).update(values)
    return strategy_from_dict(valid_dict)


@pytest.mark.parametrize(
    ("section", "values", "expected"),
    [
        (
            "training",
            {"epochs": 1_000_000_000},
            "model.training.epochs: at most 10000, got 1000000000",
        ),
        (
            "training",
            {"batch_size": 10**12},
            "model.training.batch_size: at most 65536, got 1000000000000",
        ),
        (
            "features",
            {"lookback_periods": 10_000_000},
            "model.features.lookback_periods: at most 1000, got 10000000",
        ),
        (
            "architecture",
            {"hidden_layers": [4096] * 1000},
            "model.architecture.hidden_layers: at most 16 layers, got 1000",
        ),
        (
            "architecture",
            {"hidden_layers": [100_000, 100_000]},
            "model.architecture.hidden_layers[0]: at most 8192 units, got 100000",
        ),
        (
            "architecture",
            {"hidden_layers": [8192] * 3},
            "model.architecture: at most 50000000 parameters (weights and biases for 16 input",
        ),
    ],
)
def test_each_bound_names_its_field(valid_dict, section, values, expected):
    problems = check_work_limits(with_model(valid_dict, section, **values))
    assert problems and problems[0].startswith(expected), problems


def test_every_wide_layer_problem_is_listed_up_to_three(valid_dict):
    problems = check_work_limits(with_model(valid_dict, "architecture", hidden_layers=[9000] * 5))
    assert [p.split(":")[0] for p in problems] == [
        f"model.architecture.hidden_layers[{i}]" for i in range(3)
    ]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_real_strategies_are_far_below_the_defaults(path):
    config = load_strategy(path)
    assert check_work_limits(config) == []
    tight = WorkLimits(max_epochs=1, max_layers=1, max_layer_width=1, max_parameters=1)
    assert len(check_work_limits(config, tight)) >= 3


def test_limits_are_configurable(valid_dict):
    config = strategy_from_dict(valid_dict)
    assert check_work_limits(config, WorkLimits(max_epochs=4)) == [
        "model.training.epochs: at most 4, got 5"
    ]
    assert check_work_limits(config, WorkLimits(max_epochs=5)) == []
    with pytest.raises(ValueError, match="max_layers must be a positive integer"):
        WorkLimits(max_layers=0)
    assert dataclasses.is_dataclass(WorkLimits) and WorkLimits.__dataclass_params__.frozen


def test_parameter_count_is_the_real_model_size(example_strategies, sample_data_dir):
    """feature_count equals the pipeline's columns; parameter_count equals torch's count."""
    from ktrdr.data import load_market_data
    from ktrdr.features.pipeline import build_symbol_features
    from ktrdr.models.mlp import MLPClassifier, MLPSpec, embedding_dim_for

    for path in EXAMPLES:
        config = load_strategy(path)
        symbols = config.training_data.symbols.resolved()
        data = load_market_data(
            sample_data_dir, symbols, config.training_data.timeframes.resolved()
        )
        features = build_symbol_features(config, data)
        n_features = feature_count(config)
        assert {f.frame.shape[1] for f in features.values()} == {n_features}, path.stem
        assert embedding_dim(len(symbols)) == embedding_dim_for(len(symbols))
        model = MLPClassifier(
            MLPSpec(
                n_features=n_features,
                hidden_layers=list(config.model.architecture.hidden_layers),
                activation=config.model.architecture.activation,
                dropout=0.0,
                n_symbols=len(symbols),
                embedding_dim=embedding_dim_for(len(symbols)),
            )
        )
        torch_count = sum(p.numel() for p in model.parameters())
        hidden = config.model.architecture.hidden_layers
        assert parameter_count(n_features, hidden, len(symbols)) == torch_count, path.stem


def test_parse_strategy_alone_does_not_apply_limits(tiny_strategy_yaml):
    """Local use may train anything; the services apply the limits (and the CLI reports)."""
    big = parse_strategy(tiny_strategy_yaml.replace("epochs: 4", "epochs: 20000"))
    assert big.model.training.epochs == 20000
