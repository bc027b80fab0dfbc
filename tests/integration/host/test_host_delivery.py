"""ResultSender against a real in-process Backend (SubmitResults via receive_results).

Host-specific delivery behaviour: delete only after the acknowledgement, retry transient
failures (receiver down, damaged or cut streams) with backoff, stop for good on refusals and
keep the model in ``failed/``; the receiver never keeps temporary files.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
from pathlib import Path

import grpc
import pytest

from ktrdr.training.result import TrainingResult
from ktrdr.training.v1 import common_pb2
from ktrdr_host.delivery import DeliveryState, ResultSender
from ktrdr_host.settings import HostSettings
from ktrdr_host.spool import Spool, SpoolEntry
from tests.support.receiving_backend import (
    RunningBackend,
    corrupt_first_chunk,
    start_backend,
    truncate_after_first_chunk,
)
from tests.support.timing import async_wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spool_one(spool: Spool, result: TrainingResult, target: str) -> SpoolEntry:
    return spool.put(
        result.bundle,
        session_id="op-1",
        results_target=target,
        device="cpu",
        duration_s=result.duration_s,
        metrics={"test_accuracy": 0.5},
        summary={
            "model_type": "mlp",
            "feature_count": 5,
            "seed": 7,
            "created_time": "2026-01-01T00:00:00+00:00",
        },
    )


async def settle(state: DeliveryState, timeout: float = 10) -> None:
    await asyncio.wait_for(state.settled.wait(), timeout)


@pytest.fixture
async def backend(tmp_path: Path):
    running = await start_backend(tmp_path / "backend")
    yield running
    await running.stop()


async def test_delivered_then_removed_from_the_spool(
    host_settings: HostSettings, tiny_result: TrainingResult, backend: RunningBackend
) -> None:
    spool = Spool(host_settings.spool_dir)
    entry = spool_one(spool, tiny_result, backend.address)
    state = ResultSender(spool, host_settings).submit(entry)
    await settle(state)
    assert state.status == common_pb2.DELIVERY_STATUS_DELIVERED
    assert state.attempts == 1
    assert state.model is not None and state.model.strategy_name == "tiny_rsi"
    sha, stored = backend.backend.models["op-1"]
    assert sha == entry.sha256
    assert stored.stat().st_size == entry.size_bytes
    assert spool.entries() == []
    assert not entry.archive.exists()
    assert os.listdir(backend.backend.incoming) == []
    proto = state.to_proto()
    assert proto.status == common_pb2.DELIVERY_STATUS_DELIVERED
    assert proto.model.version == 1 and proto.HasField("last_attempt_time")


async def test_receiver_down_at_first_then_up(
    tmp_path: Path, host_settings: HostSettings, tiny_result: TrainingResult
) -> None:
    port = free_port()
    spool = Spool(host_settings.spool_dir)
    entry = spool_one(spool, tiny_result, f"127.0.0.1:{port}")
    state = ResultSender(spool, host_settings).submit(entry)
    await async_wait_until(
        lambda: state.attempts >= 2 and state.next_attempt_time is not None, 10, "two attempts"
    )
    assert state.status == common_pb2.DELIVERY_STATUS_PENDING
    assert state.last_error.startswith("UNAVAILABLE")
    assert state.to_proto().HasField("next_attempt_time")
    assert entry.archive.exists()  # kept until acknowledged
    running = await start_backend(tmp_path / "late", port=port)
    try:
        await settle(state)
        assert state.status == common_pb2.DELIVERY_STATUS_DELIVERED
        assert state.attempts >= 3
        assert spool.entries() == []
    finally:
        await running.stop()


@pytest.mark.parametrize("fault", [corrupt_first_chunk, truncate_after_first_chunk])
async def test_damaged_stream_is_retried(
    fault, host_settings: HostSettings, tiny_result: TrainingResult, backend: RunningBackend
) -> None:
    backend.backend.faults.append(fault)
    spool = Spool(host_settings.spool_dir)
    entry = spool_one(spool, tiny_result, backend.address)
    state = ResultSender(spool, host_settings).submit(entry)
    await settle(state)
    assert state.status == common_pb2.DELIVERY_STATUS_DELIVERED
    assert state.attempts == 2
    # a cut stream can surface as the client library's INTERNAL: the host then asks the
    # backend once more (a probe) for its real answer
    assert backend.backend.calls in (2, 3)
    assert os.listdir(backend.backend.incoming) == []


async def test_oversized_bundle_is_retried_until_the_limit_is_raised(
    tmp_path: Path, host_settings: HostSettings, tiny_result: TrainingResult
) -> None:
    # Small chunks: the backend refuses at the header while chunks are still being written,
    # which grpc.aio may report as INTERNAL (grpc/grpc#36066); the sender's probe finds the
    # real code. RESOURCE_EXHAUSTED is fixable (an operator raises the limit): never parked.
    small = await start_backend(tmp_path / "small", max_raw_bytes=1024)
    settings = host_settings.model_copy(update={"chunk_size": 512})
    try:
        spool = Spool(settings.spool_dir)
        entry = spool_one(spool, tiny_result, small.address)
        state = ResultSender(spool, settings).submit(entry)
        await wait_until(lambda: state.attempts >= 3)
        assert state.status == common_pb2.DELIVERY_STATUS_PENDING
        assert "RESOURCE_EXHAUSTED" in state.last_error
        assert os.listdir(small.backend.incoming) == []
        assert [e.session_id for e in spool.entries()] == ["op-1"]  # kept, not parked
        small.backend.max_raw_bytes = 64 << 20  # the operator raises the limit
        await settle(state)
        assert state.status == common_pb2.DELIVERY_STATUS_DELIVERED
    finally:
        await small.stop()


async def wait_until(check, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize(
    "code",
    [grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT],
)
async def test_refusals_are_permanent(
    code: grpc.StatusCode,
    host_settings: HostSettings,
    tiny_result: TrainingResult,
    backend: RunningBackend,
) -> None:
    backend.backend.refuse = code
    spool = Spool(host_settings.spool_dir)
    state = ResultSender(spool, host_settings).submit(
        spool_one(spool, tiny_result, backend.address)
    )
    await settle(state)
    assert state.status == common_pb2.DELIVERY_STATUS_FAILED
    assert state.last_error.startswith(f"refused by {backend.address}: {code.name}")
    assert state.attempts == 1  # plus, at most, one header-only probe (see delivery.py)


async def test_damaged_spool_file_fails_instead_of_looping(
    host_settings: HostSettings, tiny_result: TrainingResult, backend: RunningBackend
) -> None:
    spool = Spool(host_settings.spool_dir)
    entry = spool_one(spool, tiny_result, backend.address)
    data = bytearray(entry.archive.read_bytes())
    data[-200] ^= 0xFF
    entry.archive.write_bytes(bytes(data))
    state = ResultSender(spool, host_settings).submit(entry)
    await settle(state)
    assert state.status == common_pb2.DELIVERY_STATUS_FAILED
    assert "the spooled archive is damaged" in state.last_error
    assert backend.backend.models == {}


async def test_stop_keeps_the_model_in_the_spool(
    host_settings: HostSettings, tiny_result: TrainingResult
) -> None:
    spool = Spool(host_settings.spool_dir)
    entry = spool_one(spool, tiny_result, f"127.0.0.1:{free_port()}")
    sender = ResultSender(spool, host_settings)
    state = sender.submit(entry)
    await asyncio.sleep(0.2)
    await sender.stop()
    assert state.status == common_pb2.DELIVERY_STATUS_PENDING
    assert [e.session_id for e in spool.entries()] == ["op-1"]


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,  # unmarked: the interceptor's wrong-role answer
        grpc.StatusCode.INTERNAL,
    ],
)
async def test_refusals_not_marked_final_are_retried(
    code: grpc.StatusCode,
    host_settings: HostSettings,
    tiny_result: TrainingResult,
    backend: RunningBackend,
) -> None:
    backend.backend.refusals = [(code, False, None)] * 3
    spool = Spool(host_settings.spool_dir)
    state = ResultSender(spool, host_settings).submit(
        spool_one(spool, tiny_result, backend.address)
    )
    await settle(state)
    assert state.status == common_pb2.DELIVERY_STATUS_DELIVERED
    assert backend.backend.calls >= 4  # three refusals (some to probes), then delivered
    assert list(spool.failed_directory.iterdir()) == []


async def test_retry_after_hint_is_honoured(
    host_settings: HostSettings, tiny_result: TrainingResult, backend: RunningBackend
) -> None:
    # backoff is at most 0.05 s here; the hint asks for 0.3 s. Refused twice: a refusal that
    # reaches the host as the client library's INTERNAL (answered mid-write, under load) is
    # probed at once, and the probe's answer carries the hint too.
    refusal = (grpc.StatusCode.RESOURCE_EXHAUSTED, False, 0.3)
    backend.backend.refusals = [refusal, refusal]
    spool = Spool(host_settings.spool_dir)
    state = ResultSender(spool, host_settings).submit(
        spool_one(spool, tiny_result, backend.address)
    )
    await settle(state)
    assert state.status == common_pb2.DELIVERY_STATUS_DELIVERED
    # the hint, not the 0.05 s backoff, before the call after a refusal that carried it (the
    # second refusal may arrive as INTERNAL, be probed at once, and the probe deliver)
    times = backend.backend.call_times
    assert max(b - a for a, b in itertools.pairwise(times)) >= 0.3, times
