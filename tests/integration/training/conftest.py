from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ktrdr.config import strategy_from_dict
from ktrdr.config.strategy import StrategyConfig
from ktrdr.training.result import TrainingResult


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@pytest.fixture
def make_strategy(tiny_strategy_dict: dict[str, Any]) -> Callable[..., StrategyConfig]:
    """The tiny strategy with nested changes merged in."""

    def make(**changes: Any) -> StrategyConfig:
        return strategy_from_dict(_merge(tiny_strategy_dict, changes), source="test")

    return make


@pytest.fixture
def run_training(sample_data_dir: Path) -> Callable[..., TrainingResult]:
    def run(config: StrategyConfig, **kwargs: Any) -> TrainingResult:
        from ktrdr.training.executor import TrainingExecutor

        return TrainingExecutor(sample_data_dir, device="cpu").run(config, **kwargs)

    return run


@pytest.fixture(scope="session")
def tiny_result(sample_data_dir: Path, tiny_strategy_yaml: str) -> TrainingResult:
    """One trained tiny model shared by the read-only tests."""
    from ktrdr.config import parse_strategy
    from ktrdr.training.executor import TrainingExecutor

    config = parse_strategy(tiny_strategy_yaml)
    return TrainingExecutor(sample_data_dir, device="cpu").run(
        config, strategy_yaml=tiny_strategy_yaml
    )
