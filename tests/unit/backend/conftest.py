"""Fixtures of the backend tests (helpers live in ``backend_fakes``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from backend_fakes import RunningHost, start_backend, start_fake_host, stop_backend

from ktrdr.storage import ModelBundle


@pytest.fixture
async def fake_host() -> AsyncIterator[RunningHost]:
    host = await start_fake_host()
    yield host
    await host.server.stop(0)


@pytest.fixture
async def backend(tmp_path: Path, sample_data_dir: Path, tiny_strategy_yaml: str):
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "tiny_rsi.yaml").write_text(tiny_strategy_yaml)
    b = await start_backend(tmp_path, sample_data_dir)
    yield b
    await stop_backend(b)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, sample_data_dir, tiny_strategy_yaml) -> ModelBundle:
    from ktrdr.config import parse_strategy
    from ktrdr.training.executor import TrainingExecutor

    result = TrainingExecutor(sample_data_dir, device="cpu").run(
        parse_strategy(tiny_strategy_yaml), strategy_yaml=tiny_strategy_yaml
    )
    return result.bundle
