"""ModeSelector against real grpc.aio servers: healthy, NOT_SERVING, hanging, refused."""

from __future__ import annotations

import time

import pytest

from ktrdr.backend.execution.mode_selector import ModeSelector, ModeUnavailable
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import host_pb2
from tests.support.backend import FakeHost, refused_address, start_fake_host, start_hanging_server
from tests.support.timing import scaled

LOCAL, HOST, AUTO = pb.EXECUTION_MODE_LOCAL, pb.EXECUTION_MODE_HOST, pb.EXECUTION_MODE_AUTO


@pytest.fixture
async def gpu_host():
    host = await start_fake_host(FakeHost(device_type=host_pb2.DEVICE_TYPE_CUDA))
    yield host
    await host.server.stop(0)


def selector(*addresses: str, timeout_s: float = 1.0) -> ModeSelector:
    return ModeSelector(addresses, timeout_s=timeout_s)


async def test_local_is_always_local(fake_host):
    chosen = await selector(fake_host.address).select(LOCAL, False)
    assert chosen.mode == LOCAL and not chosen.probes
    assert chosen.reason.startswith("local")


async def test_host_mode_uses_a_healthy_host(fake_host):
    chosen = await selector(fake_host.address).select(HOST, False)
    assert (chosen.mode, chosen.host_address) == (HOST, fake_host.address)
    assert "healthy" in chosen.reason


async def test_host_mode_falls_back_when_the_host_refuses_connections(caplog):
    address = refused_address()
    start = time.monotonic()
    chosen = await selector(address, timeout_s=scaled(2.0)).select(HOST, False)
    elapsed = time.monotonic() - start
    assert chosen.mode == LOCAL
    assert address in chosen.reason and "not reachable" in chosen.reason
    assert "fell back to local" in caplog.text
    assert elapsed < scaled(1.0), f"a refused connection took {elapsed:.3f} s to detect"


async def test_host_mode_require_gpu_with_the_host_down_fails():
    address = refused_address()
    with pytest.raises(ModeUnavailable) as info:
        await selector(address).select(HOST, True)
    assert address in str(info.value) and "not reachable" in str(info.value)


async def test_host_mode_require_gpu_with_a_cpu_host_fails(fake_host):
    with pytest.raises(ModeUnavailable, match="no GPU"):
        await selector(fake_host.address).select(HOST, True)


async def test_auto_prefers_a_healthy_gpu_host(gpu_host):
    chosen = await selector(gpu_host.address).select(AUTO, False)
    assert (chosen.mode, chosen.host_address) == (HOST, gpu_host.address)
    assert "GPU" in chosen.reason


async def test_auto_runs_locally_beside_a_cpu_only_host(fake_host):
    chosen = await selector(fake_host.address).select(AUTO, False)
    assert chosen.mode == LOCAL and "no GPU" in chosen.reason


async def test_auto_require_gpu_with_a_cpu_only_host_fails(fake_host):
    with pytest.raises(ModeUnavailable, match=r"no GPU \(cpu only\)"):
        await selector(fake_host.address).select(AUTO, True)


async def test_not_serving_host_is_skipped(fake_host):
    await fake_host.set_serving(False)
    chosen = await selector(fake_host.address).select(HOST, False)
    assert chosen.mode == LOCAL and "NOT_SERVING" in chosen.reason


async def test_first_healthy_host_with_free_capacity_wins(fake_host):
    busy = await start_fake_host(FakeHost(max_sessions=1, active_sessions=1))
    down = refused_address()
    try:
        chosen = await selector(down, busy.address, fake_host.address).select(HOST, False)
    finally:
        await busy.server.stop(0)
    assert chosen.host_address == fake_host.address
    assert [p.healthy for p in chosen.probes] == [False, True, True]
    assert not chosen.probes[1].free


async def test_hanging_host_is_given_up_within_the_deadline():
    server, address = await start_hanging_server()
    try:
        start = time.monotonic()
        chosen = await selector(address, timeout_s=0.5).select(HOST, False)
        elapsed = time.monotonic() - start
    finally:
        await server.stop(0)
    assert chosen.mode == LOCAL and "no answer within 0.5 s" in chosen.reason
    assert 0.4 < elapsed < 0.5 + scaled(0.5)
