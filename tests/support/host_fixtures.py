"""The host's shared fixtures (settings for a fast host, one trained bundle), used by the
host tests of every tier: ``from tests.support.host_fixtures import host_settings, ...``."""

from __future__ import annotations

from pathlib import Path

import pytest

from ktrdr.config import parse_strategy
from ktrdr.training.result import TrainingResult
from ktrdr_host.settings import HostSettings
from tests.support.fake_training import FakeTrainer


@pytest.fixture(scope="session")
def tiny_result(tiny_strategy_yaml: str) -> TrainingResult:
    """A training result of the tiny strategy as the executor shapes it (no torch)."""
    config = parse_strategy(tiny_strategy_yaml)
    return FakeTrainer(epoch_s=0).run(config, strategy_yaml=tiny_strategy_yaml)


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
        delivery_initial_backoff_s=0.01,
        delivery_max_backoff_s=0.05,
        delivery_timeout_s=10,
        shutdown_grace_s=5,
        cancel_wait_s=2,
    )
