"""Fixtures of the security tests (the backend helpers live in ``tests.support.backend``)."""

from __future__ import annotations

import pytest

from ktrdr.training.result import TrainingResult
from tests.support.fake_training import FakeTrainer


@pytest.fixture(scope="session")
def tiny_result(tiny_strategy_yaml: str) -> TrainingResult:
    """A training result of the tiny strategy as the executor shapes it (no torch)."""
    from ktrdr.config import parse_strategy

    config = parse_strategy(tiny_strategy_yaml)
    return FakeTrainer(epoch_s=0).run(config, strategy_yaml=tiny_strategy_yaml)
