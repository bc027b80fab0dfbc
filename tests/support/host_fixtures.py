"""Shared fixtures of the host, backend and security tests of every tier: settings for a fast
host, one fake-trained result and its bundle. A plugin (``pytest_plugins`` in
``tests/conftest.py``): it imports the project only inside the fixtures."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ktrdr.storage import ModelBundle
    from ktrdr.training.result import TrainingResult
    from ktrdr_host.settings import HostSettings


@pytest.fixture(scope="session")
def tiny_result(tiny_strategy_yaml: str) -> TrainingResult:
    """A training result of the tiny strategy as the executor shapes it (``FakeTrainer``: no
    torch). ``tests/integration/training`` has its own: a real training."""
    from ktrdr.config import parse_strategy
    from tests.support.fake_training import FakeTrainer

    config = parse_strategy(tiny_strategy_yaml)
    return FakeTrainer(epoch_s=0).run(config, strategy_yaml=tiny_strategy_yaml)


@pytest.fixture
def host_settings(tmp_path: Path, sample_data_dir: Path) -> HostSettings:
    """A host on a free loopback port, CPU, quick heartbeats and quick delivery retries."""
    from ktrdr_host.settings import HostSettings

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
        # the training stack is imported with the first session, not at start: most of these
        # hosts never train in a worker (test_host_preload.py asks for the default)
        worker_preload="first-run",
    )


@pytest.fixture(scope="session")
def tiny_bundle(tiny_result: TrainingResult) -> ModelBundle:
    """The bundle of ``tiny_result``: the tiny strategy's model as a training makes it."""
    return tiny_result.bundle
