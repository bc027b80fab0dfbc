"""TrainingHost RPCs on an in-process grpc.aio host (ephemeral loopback port).

Real trainings of the tiny strategy where the behaviour depends on the executor (event order,
cancel timing, delivery); a ``QuietExecutor`` that reports one step and then stays silent
where a session only needs to exist (capacity, duplicates, heartbeats, shutdown). The host
trains its sessions in real worker processes (no stand-in runner on the host yet).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ktrdr.errors import DataError
from ktrdr.security.channels import aio_channel
from ktrdr.training.cancellation import CancellationToken
from ktrdr.training.progress import ProgressEvent, ProgressKind
from ktrdr.training.result import TrainingResult
from ktrdr.training.v1 import common_pb2, host_pb2, host_pb2_grpc
from ktrdr.transfer import grpc_options
from ktrdr_host.server import RunningHost, start_host
from ktrdr_host.settings import HostSettings
from ktrdr_host.spool import Spool
from tests.support.receiving_backend import RunningBackend, start_backend
from tests.support.timing import scaled

K = common_pb2
TERMINAL = {K.PROGRESS_KIND_COMPLETED, K.PROGRESS_KIND_FAILED, K.PROGRESS_KIND_CANCELLED}


class QuietExecutor:
    """Reports step 1, then stays silent until released (fails) or cancelled."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def run(
        self,
        config: object,
        progress: Callable[[ProgressEvent], None],
        cancel: CancellationToken,
        *,
        strategy_yaml: str | None = None,
    ) -> TrainingResult:
        progress(ProgressEvent(ProgressKind.STEP_STARTED, step=1, step_name="load data"))
        while not self.release.wait(0.01):
            cancel.raise_if_cancelled()
        raise DataError("the quiet executor was released: no model")


@dataclass
class Harness:
    host: RunningHost
    stub: host_pb2_grpc.TrainingHostStub
    channel: grpc.aio.Channel
    backend: RunningBackend
    spool: Path

    def request(self, yaml: str, session_id: str = "op-1", **fields: object):
        return host_pb2.StartTrainingRequest(
            session_id=session_id,
            strategy_yaml=yaml,
            results_target=self.backend.address,
            **fields,
        )

    async def session(self, session_id: str = "op-1") -> host_pb2.Session:
        answer = await self.stub.GetSession(
            host_pb2.GetSessionRequest(session_id=session_id), timeout=scaled(5)
        )
        return answer.session


async def make_harness(
    tmp_path: Path, settings: HostSettings, quiet: QuietExecutor | None = None
) -> AsyncIterator[Harness]:
    backend = await start_backend(tmp_path / "backend")
    factory = (lambda device: quiet) if quiet is not None else None
    host = await start_host(settings, executor_factory=factory)
    channel = aio_channel(host.address, options=grpc_options(), token=host.token)
    try:
        yield Harness(
            host, host_pb2_grpc.TrainingHostStub(channel), channel, backend, settings.spool_dir
        )
    finally:
        if quiet is not None:
            quiet.release.set()
        await channel.close()
        await host.shutdown()
        await backend.stop()


@pytest.fixture
async def harness(tmp_path: Path, host_settings: HostSettings) -> AsyncIterator[Harness]:
    async for h in make_harness(tmp_path, host_settings):
        yield h


@pytest.fixture
def quiet() -> QuietExecutor:
    return QuietExecutor()


@pytest.fixture
async def quiet_harness(
    tmp_path: Path, host_settings: HostSettings, quiet: QuietExecutor
) -> AsyncIterator[Harness]:
    async for h in make_harness(tmp_path, host_settings, quiet):
        yield h


async def wait_for(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def read_rest(call) -> list:
    """The remaining responses of a stream already read with ``read()``."""
    out = []
    while (response := await call.read()) is not grpc.aio.EOF:
        out.append(response)
    return out


async def refused(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in call:
            pass
    return info.value


# -- a full session --------------------------------------------------------------------------
async def test_full_training_streams_progress_and_delivers(
    harness: Harness, tiny_strategy_yaml: str
) -> None:
    responses = [
        r
        async for r in harness.stub.StartTraining(
            harness.request(tiny_strategy_yaml), timeout=scaled(300)
        )
    ]
    events = [r.event for r in responses]
    kinds = [e.kind for e in events]
    assert kinds[0] == K.PROGRESS_KIND_ACCEPTED
    assert "on cpu" in events[0].message
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert [k for k in kinds if k in TERMINAL] == [K.PROGRESS_KIND_COMPLETED]
    assert kinds[-1] == K.PROGRESS_KIND_COMPLETED
    started = [e.step for e in events if e.kind == K.PROGRESS_KIND_STEP_STARTED]
    assert started == list(range(1, 12))
    assert [e.epoch for e in events if e.kind == K.PROGRESS_KIND_EPOCH] == [1, 2, 3, 4]
    assert responses[0].state == host_pb2.SESSION_STATE_RUNNING
    assert responses[-1].state == host_pb2.SESSION_STATE_COMPLETED

    result = events[-1].result
    assert result.delivery.status == K.DELIVERY_STATUS_PENDING  # spooled, not yet sent
    assert result.delivery.attempts == 0
    assert result.metrics["test_accuracy"] >= 0
    assert result.device == "cpu"

    await wait_for(lambda: "op-1" in harness.backend.backend.models)
    session = await harness.session()
    await wait_for(lambda: not Spool(harness.spool).entries())
    session = await harness.session()
    assert session.state == host_pb2.SESSION_STATE_COMPLETED
    assert session.result.delivery.status == K.DELIVERY_STATUS_DELIVERED
    assert session.result.delivery.model.strategy_name == "tiny_rsi"
    assert session.result.delivery.model.version == 1
    assert session.last_event.kind == K.PROGRESS_KIND_COMPLETED
    assert session.HasField("finished_time")
    sha, _ = harness.backend.backend.models["op-1"]
    assert sha == result.bundle_sha256
    assert os.listdir(harness.backend.backend.incoming) == []

    # Cancelling a finished session says what it reached; nothing changes.
    answer = await harness.stub.CancelTraining(
        host_pb2.CancelTrainingRequest(session_id="op-1"), timeout=scaled(5)
    )
    assert answer.state == host_pb2.SESSION_STATE_COMPLETED
    listed = await harness.stub.ListSessions(host_pb2.ListSessionsRequest(), timeout=scaled(5))
    assert [s.session_id for s in listed.sessions] == ["op-1"]


async def test_dropped_stream_does_not_stop_training_and_watch_reattaches(
    harness: Harness, tiny_strategy_yaml: str
) -> None:
    call = harness.stub.StartTraining(harness.request(tiny_strategy_yaml), timeout=scaled(300))
    seen = []
    async for response in call:
        seen.append(response.event)
        if len(seen) == 3:
            break
    call.cancel()  # the client goes away
    await asyncio.sleep(0.1)
    session = await harness.session()
    assert session.state == host_pb2.SESSION_STATE_RUNNING

    watched = [
        r
        async for r in harness.stub.WatchSession(
            host_pb2.WatchSessionRequest(session_id="op-1"), timeout=scaled(300)
        )
    ]
    sequences = [r.event.sequence for r in watched]
    assert sequences[0] >= seen[-1].sequence  # the current state first
    assert sequences == sorted(sequences)
    assert watched[-1].event.kind == K.PROGRESS_KIND_COMPLETED
    assert watched[-1].state == host_pb2.SESSION_STATE_COMPLETED
    assert [r for r in watched if r.event.kind in TERMINAL] == [watched[-1]]

    # A finished session: the terminal event at once, then the end of the stream.
    again = [
        r
        async for r in harness.stub.WatchSession(
            host_pb2.WatchSessionRequest(session_id="op-1"), timeout=scaled(5)
        )
    ]
    assert [r.event.kind for r in again] == [K.PROGRESS_KIND_COMPLETED]


# -- refusals --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"session_id": ""}, "session_id: must not be empty"),
        ({"strategy_yaml": "name: [oops"}, "strategy_yaml: YAML syntax error"),
        ({"results_target": ""}, "results_target: required"),
    ],
)
async def test_invalid_requests_are_refused_before_streaming(
    harness: Harness, tiny_strategy_yaml: str, change: dict, text: str
) -> None:
    request = harness.request(tiny_strategy_yaml)
    for field, value in change.items():
        setattr(request, field, value)
    error = await refused(harness.stub.StartTraining(request, timeout=scaled(10)))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert text in (error.details() or "")
    listed = await harness.stub.ListSessions(host_pb2.ListSessionsRequest(), timeout=scaled(5))
    assert list(listed.sessions) == []


async def test_invalid_strategy_lists_every_field(
    harness: Harness, tiny_strategy_yaml: str
) -> None:
    bad = tiny_strategy_yaml.replace("epochs: 4", "epochs: 0").replace("period: 14", "period: -3")
    error = await refused(harness.stub.StartTraining(harness.request(bad), timeout=scaled(10)))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "strategy_yaml.model.training.epochs" in (error.details() or "")


async def test_duplicate_and_over_capacity(quiet_harness: Harness, tiny_strategy_yaml: str) -> None:
    h = quiet_harness
    first = h.stub.StartTraining(h.request(tiny_strategy_yaml, "op-1"), timeout=scaled(300))
    accepted = await first.read()
    assert accepted.event.kind == K.PROGRESS_KIND_ACCEPTED

    error = await refused(
        h.stub.StartTraining(h.request(tiny_strategy_yaml, "op-1"), timeout=scaled(5))
    )
    assert error.code() is grpc.StatusCode.ALREADY_EXISTS
    assert "already running" in (error.details() or "")

    error = await refused(
        h.stub.StartTraining(h.request(tiny_strategy_yaml, "op-2"), timeout=scaled(5))
    )
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "1 of 1 session(s) running (op-1)" in (error.details() or "")

    caps = await h.stub.GetCapabilities(host_pb2.GetCapabilitiesRequest(), timeout=scaled(5))
    assert (caps.active_sessions, caps.max_sessions, caps.accepting) == (1, 1, True)

    answer = await h.stub.CancelTraining(
        host_pb2.CancelTrainingRequest(session_id="op-1", reason="test over"), timeout=scaled(5)
    )
    assert answer.state == host_pb2.SESSION_STATE_CANCELLED
    assert answer.session.error.code == "CANCELLED"
    assert answer.session.error.message == "test over"
    rest = await read_rest(first)
    assert rest[-1].event.kind == K.PROGRESS_KIND_CANCELLED
    # A finished (cancelled) id may be used again.
    again = h.stub.StartTraining(h.request(tiny_strategy_yaml, "op-1"), timeout=scaled(300))
    assert (await again.read()).event.kind == K.PROGRESS_KIND_ACCEPTED
    again.cancel()


@pytest.mark.parametrize("rpc", ["WatchSession", "GetSession", "CancelTraining"])
async def test_unknown_session_is_not_found(harness: Harness, rpc: str) -> None:
    request = {
        "WatchSession": host_pb2.WatchSessionRequest,
        "GetSession": host_pb2.GetSessionRequest,
        "CancelTraining": host_pb2.CancelTrainingRequest,
    }[rpc](session_id="nope")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        call = getattr(harness.stub, rpc)(request, timeout=scaled(5))
        if rpc == "WatchSession":
            async for _ in call:
                pass
        else:
            await call
    assert info.value.code() is grpc.StatusCode.NOT_FOUND
    assert "no session 'nope'" in (info.value.details() or "")


# -- heartbeats and cancellation -------------------------------------------------------------
async def test_heartbeats_during_quiet_phases(
    quiet_harness: Harness, tiny_strategy_yaml: str
) -> None:
    call = quiet_harness.stub.StartTraining(
        quiet_harness.request(tiny_strategy_yaml), timeout=scaled(300)
    )
    beats: list[float] = []
    async for response in call:
        if response.event.kind == K.PROGRESS_KIND_HEARTBEAT:
            beats.append(time.monotonic())
            if len(beats) == 4:
                break
    call.cancel()
    gaps = [b - a for a, b in itertools.pairwise(beats)]
    assert all(gap < 0.6 for gap in gaps), gaps  # interval 0.2 s in these settings


async def cancel_after(
    harness: Harness, yaml: str, when: Callable[[common_pb2.ProgressEvent], bool]
) -> tuple[float, list[host_pb2.StartTrainingResponse], host_pb2.CancelTrainingResponse]:
    call = harness.stub.StartTraining(harness.request(yaml), timeout=scaled(300))
    responses = []
    async for response in call:
        responses.append(response)
        if when(response.event):
            break
    started = time.monotonic()
    answer = await harness.stub.CancelTraining(
        host_pb2.CancelTrainingRequest(session_id="op-1"), timeout=scaled(10)
    )
    elapsed = time.monotonic() - started
    responses += [r async for r in call]
    return elapsed, responses, answer


async def test_cancel_during_data_loading(harness: Harness, tiny_strategy_yaml: str) -> None:
    elapsed, responses, answer = await cancel_after(
        harness, tiny_strategy_yaml, lambda e: e.kind == K.PROGRESS_KIND_ACCEPTED
    )
    assert answer.state == host_pb2.SESSION_STATE_CANCELLED
    assert elapsed < scaled(2.0)
    assert responses[-1].event.kind == K.PROGRESS_KIND_CANCELLED
    assert responses[-1].event.error.code == "CANCELLED"
    assert not any(r.event.kind == K.PROGRESS_KIND_EPOCH for r in responses)
    assert Spool(harness.spool).entries() == []
    assert harness.backend.backend.calls == 0


async def test_cancel_during_training(harness: Harness, tiny_strategy_yaml: str) -> None:
    long = tiny_strategy_yaml.replace("epochs: 4", "epochs: 400")
    elapsed, responses, answer = await cancel_after(
        harness, long, lambda e: e.kind == K.PROGRESS_KIND_EPOCH
    )
    assert answer.state == host_pb2.SESSION_STATE_CANCELLED
    assert elapsed < scaled(2.0)
    kinds = [r.event.kind for r in responses]
    assert [k for k in kinds if k in TERMINAL] == [K.PROGRESS_KIND_CANCELLED]
    assert answer.session.error.code == "CANCELLED"
    await asyncio.sleep(0.2)
    assert Spool(harness.spool).entries() == []
    assert harness.backend.backend.calls == 0  # nothing delivered


# -- capabilities, restart, shutdown, retention ----------------------------------------------
async def test_capabilities(harness: Harness) -> None:
    import torch

    import ktrdr

    caps = await harness.stub.GetCapabilities(host_pb2.GetCapabilitiesRequest(), timeout=scaled(5))
    assert caps.device_type == host_pb2.DEVICE_TYPE_CPU
    assert caps.device_name
    assert caps.accelerator_memory_bytes == 0
    assert caps.ktrdr_version == ktrdr.__version__
    assert caps.torch_version == torch.__version__
    assert (caps.max_sessions, caps.active_sessions, caps.accepting) == (1, 0, True)


async def test_restart_resends_the_spool(
    tmp_path: Path, host_settings: HostSettings, tiny_result: TrainingResult
) -> None:
    backend = await start_backend(tmp_path / "backend")
    try:
        entry = Spool(host_settings.spool_dir).put(
            tiny_result.bundle,
            session_id="op-7",
            results_target=backend.address,
            device="cpu",
            duration_s=1.0,
            metrics={"test_accuracy": 0.5},
            summary={"model_type": "mlp"},
        )
        host = await start_host(host_settings)
        try:
            await wait_for(lambda: "op-7" in backend.backend.models)
            async with aio_channel(host.address, options=grpc_options(), token=host.token) as ch:
                stub = host_pb2_grpc.TrainingHostStub(ch)
                answer = await stub.GetSession(
                    host_pb2.GetSessionRequest(session_id="op-7"), timeout=scaled(5)
                )
                assert answer.session.state == host_pb2.SESSION_STATE_COMPLETED
                assert answer.session.result.bundle_sha256 == entry.sha256
                # DELIVERED is recorded just after the spool entry is deleted (in a thread): wait
                # for the status itself, not for the file to go.
                deadline = time.monotonic() + scaled(10)
                while answer.session.result.delivery.status != K.DELIVERY_STATUS_DELIVERED:
                    assert time.monotonic() < deadline, "the delivery was not recorded in time"
                    await asyncio.sleep(0.02)
                    answer = await stub.GetSession(
                        host_pb2.GetSessionRequest(session_id="op-7"), timeout=scaled(5)
                    )
                assert not entry.archive.exists()
        finally:
            await host.shutdown()
    finally:
        await backend.stop()


async def test_shutdown_drains(
    tmp_path: Path, host_settings: HostSettings, quiet: QuietExecutor, tiny_strategy_yaml: str
) -> None:
    settings = host_settings.model_copy(update={"shutdown_grace_s": 0.5})
    host = await start_host(settings, executor_factory=lambda device: quiet)
    async with aio_channel(host.address, options=grpc_options(), token=host.token) as ch:
        stub = host_pb2_grpc.TrainingHostStub(ch)
        health = health_pb2_grpc.HealthStub(ch)
        request = host_pb2.StartTrainingRequest(
            session_id="op-1", strategy_yaml=tiny_strategy_yaml, results_target="127.0.0.1:9"
        )
        call = stub.StartTraining(request, timeout=scaled(300))
        await call.read()
        check = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=scaled(5))
        assert check.status == health_pb2.HealthCheckResponse.SERVING

        stopping = asyncio.create_task(host.shutdown())
        await asyncio.sleep(0.1)
        for service in ("", "ktrdr.training.v1.TrainingHost"):
            check = await health.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=scaled(5)
            )
            assert check.status == health_pb2.HealthCheckResponse.NOT_SERVING
        request.session_id = "op-2"
        error = await refused(stub.StartTraining(request, timeout=scaled(5)))
        assert error.code() is grpc.StatusCode.UNAVAILABLE
        assert "shutting down" in (error.details() or "")
        rest = await read_rest(call)  # cancelled once the grace period is over
        assert rest[-1].event.kind == K.PROGRESS_KIND_CANCELLED
        assert "shutting down" in rest[-1].event.error.message
        await asyncio.wait_for(stopping, scaled(10))


async def test_finished_sessions_expire_after_the_ttl(
    tmp_path: Path, host_settings: HostSettings, quiet: QuietExecutor, tiny_strategy_yaml: str
) -> None:
    settings = host_settings.model_copy(update={"finished_session_ttl_s": 0.3})
    async for h in make_harness(tmp_path, settings, quiet):
        call = h.stub.StartTraining(h.request(tiny_strategy_yaml), timeout=scaled(300))
        await call.read()
        quiet.release.set()
        rest = await read_rest(call)
        assert rest[-1].event.kind == K.PROGRESS_KIND_FAILED
        assert rest[-1].event.error.code == "FAILED_PRECONDITION"  # DataError
        listed = await h.stub.ListSessions(
            host_pb2.ListSessionsRequest(states=[host_pb2.SESSION_STATE_FAILED]), timeout=scaled(5)
        )
        assert [s.session_id for s in listed.sessions] == ["op-1"]
        await asyncio.sleep(0.4)
        listed = await h.stub.ListSessions(host_pb2.ListSessionsRequest(), timeout=scaled(5))
        assert list(listed.sessions) == []


async def test_a_killed_session_worker_fails_the_session_and_leaves_no_process(
    harness: Harness, tiny_strategy_yaml: str
) -> None:
    long = tiny_strategy_yaml.replace("epochs: 4", "epochs: 400")
    call = harness.stub.StartTraining(harness.request(long), timeout=scaled(300))
    async for response in call:
        if response.event.kind == K.PROGRESS_KIND_EPOCH:
            break
    session = harness.host.registry.get("op-1")
    assert session.run is not None
    pid = session.run.executor.last_pid  # type: ignore[attr-defined]
    assert pid not in (0, os.getpid())
    os.kill(pid, 9)
    rest = [r async for r in call]
    assert rest[-1].event.kind == K.PROGRESS_KIND_FAILED
    assert rest[-1].event.error.code == "ABORTED"
    assert f"(pid {pid}) died" in rest[-1].event.error.message
    assert (await harness.session()).state == host_pb2.SESSION_STATE_FAILED
    await wait_for(lambda: not os.path.exists(f"/proc/{pid}"))
    assert Spool(harness.spool).entries() == []
