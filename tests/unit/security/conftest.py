"""The security tests start real backends with the backend tests' helpers."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backend"))

import pytest

from ktrdr.training.executor import TrainingResult


@pytest.fixture(scope="session")
def tiny_result(sample_data_dir: Path, tiny_strategy_yaml: str) -> TrainingResult:
    """One real training of the tiny strategy, shared by the session."""
    from ktrdr.config import parse_strategy
    from ktrdr.training.executor import TrainingExecutor

    executor = TrainingExecutor(sample_data_dir, device="cpu")
    return executor.run(parse_strategy(tiny_strategy_yaml), strategy_yaml=tiny_strategy_yaml)
