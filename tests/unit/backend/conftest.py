"""Fixtures of the backend tests (helpers live in ``tests.support.backend``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ktrdr.storage import ModelBundle
from tests.support.backend import RunningHost, start_backend, start_fake_host, stop_backend
from tests.support.fake_training import FakeTrainer


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


@pytest.fixture
async def host_backend(
    request: pytest.FixtureRequest, tmp_path: Path, sample_data_dir: Path, fake_host: RunningHost
):
    """A backend driving the fake host, which delivers nothing unless a test does; settings
    from the test module's ``HOST_BACKEND_SETTINGS``, if it has them."""
    settings = getattr(request.module, "HOST_BACKEND_SETTINGS", {})
    b = await start_backend(
        tmp_path, sample_data_dir, host_addresses=[fake_host.address], **settings
    )
    b.fake = fake_host.fake
    yield b
    await stop_backend(b)


@pytest.fixture(scope="session")
def tiny_bundle(tiny_strategy_yaml) -> ModelBundle:
    """A bundle of the tiny strategy as a training makes it (``FakeTrainer``: no torch)."""
    from ktrdr.config import parse_strategy

    config = parse_strategy(tiny_strategy_yaml)
    return FakeTrainer(epoch_s=0).run(config, strategy_yaml=tiny_strategy_yaml).bundle
