"""Fixtures of the backend tests that start servers: a fake host, and backends on loopback
(helpers live in ``tests.support.backend``; ``tiny_bundle`` in ``tests.support.host_fixtures``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.backend import RunningHost, start_backend, start_fake_host, stop_backend


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
