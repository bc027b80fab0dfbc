"""Fixtures of the host's unit tests: settings for a fast host, and one real trained bundle."""

from __future__ import annotations

from pathlib import Path

import pytest

from ktrdr.config import parse_strategy
from ktrdr.training.executor import TrainingExecutor, TrainingResult
from ktrdr_host.settings import HostSettings


@pytest.fixture(scope="session")
def tiny_result(sample_data_dir: Path, tiny_strategy_yaml: str) -> TrainingResult:
    """One real training of the tiny strategy (a couple of seconds), shared by the session."""
    executor = TrainingExecutor(sample_data_dir, device="cpu")
    return executor.run(parse_strategy(tiny_strategy_yaml), strategy_yaml=tiny_strategy_yaml)


@pytest.fixture
def host_settings(tmp_path: Path, sample_data_dir: Path) -> HostSettings:
    """A host on a free loopback port, CPU, quick heartbeats and quick delivery retries."""
    return HostSettings(
        address="127.0.0.1:0",
        data_dir=sample_data_dir,
        spool_dir=tmp_path / "spool",
        device="cpu",
        max_sessions=1,
        heartbeat_interval_s=0.2,
        delivery_initial_backoff_s=0.05,
        delivery_max_backoff_s=0.2,
        delivery_timeout_s=10,
        shutdown_grace_s=5,
        cancel_wait_s=2,
    )
