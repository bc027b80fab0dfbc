"""Fakes for backend tests: scripted training hosts on loopback ports, an in-process backend.

``start_backend`` trains local runs with ``FakeTrainer`` (in a thread, the worker's events and
results) unless a test asks for the real worker process with ``real_worker=True``.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ktrdr.backend import BackendApp, BackendSettings
from ktrdr.security.channels import aio_channel
from ktrdr.security.tokens import read_token_file
from ktrdr.service.convert import simple_event
from ktrdr.training.progress import ProgressKind
from ktrdr.training.v1 import backend_pb2_grpc, common_pb2, host_pb2, host_pb2_grpc
from ktrdr.worker.entry import TrainingRunner
from tests.support.fake_training import FakeTrainer

HOST_SERVICE = "ktrdr.training.v1.TrainingHost"


@dataclass
class FakeHost(host_pb2_grpc.TrainingHostServicer):
    """A TrainingHost that reports the capabilities it is given and accepts sessions."""

    device_type: host_pb2.DeviceType = host_pb2.DEVICE_TYPE_CPU
    max_sessions: int = 1
    active_sessions: int = 0
    started: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    # The upload credential each StartTraining carried, and the bundle (sha256, size) a test
    # makes the fake announce as finished in GetSession.
    credentials: dict[str, str] = field(default_factory=dict)
    announced: dict[str, tuple[str, int]] = field(default_factory=dict)

    async def GetCapabilities(self, request, context):  # type: ignore[no-untyped-def]
        return host_pb2.GetCapabilitiesResponse(
            device_type=self.device_type,
            device_name="fake",
            max_sessions=self.max_sessions,
            active_sessions=self.active_sessions,
            accepting=True,
        )

    async def StartTraining(self, request, context):  # type: ignore[no-untyped-def]
        self.started.append(request.session_id)
        self.credentials[request.session_id] = request.upload_credential
        event = simple_event(ProgressKind.ACCEPTED, "fake host accepted")
        event.sequence = 1
        yield host_pb2.StartTrainingResponse(event=event, state=host_pb2.SESSION_STATE_RUNNING)
        await asyncio.Event().wait()  # trains forever; the model comes via SubmitResults

    async def GetSession(self, request, context):  # type: ignore[no-untyped-def]
        if request.session_id in self.announced:
            sha256, size = self.announced[request.session_id]
            return host_pb2.GetSessionResponse(
                session=host_pb2.Session(
                    session_id=request.session_id,
                    state=host_pb2.SESSION_STATE_COMPLETED,
                    result=common_pb2.ResultSummary(bundle_sha256=sha256, bundle_size_bytes=size),
                )
            )
        return host_pb2.GetSessionResponse(
            session=host_pb2.Session(
                session_id=request.session_id, state=host_pb2.SESSION_STATE_RUNNING
            )
        )

    async def CancelTraining(self, request, context):  # type: ignore[no-untyped-def]
        self.cancelled.append(request.session_id)
        return host_pb2.CancelTrainingResponse(state=host_pb2.SESSION_STATE_CANCELLED)


@dataclass
class RunningHost:
    address: str
    fake: FakeHost
    health: health.aio.HealthServicer
    server: grpc.aio.Server

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        await self.health.set(HOST_SERVICE, status)


async def start_fake_host(fake: FakeHost | None = None, *, serving: bool = True) -> RunningHost:
    fake = fake or FakeHost()
    server = grpc.aio.server()
    host_pb2_grpc.add_TrainingHostServicer_to_server(fake, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    host = RunningHost(f"127.0.0.1:{port}", fake, health_servicer, server)
    await host.set_serving(serving)
    return host


async def start_hanging_server() -> tuple[grpc.aio.Server, str]:
    """Accepts connections and calls, never answers."""

    async def never(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await asyncio.Event().wait()
        return b""

    handler = grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health",
        {"Check": grpc.unary_unary_rpc_method_handler(never)},
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


def refused_address() -> str:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"127.0.0.1:{port}"


@dataclass
class Backend:
    app: BackendApp
    stub: backend_pb2_grpc.BackendStub
    channel: grpc.aio.Channel
    settings: BackendSettings
    fake: FakeHost | None = None  # the fake host behind it, when a test sets one
    trainer: FakeTrainer | None = None  # what trains its local runs (None: worker processes)


async def start_backend(
    tmp: Path,
    sample_data_dir: Path,
    *,
    real_worker: bool = False,
    trainer: FakeTrainer | None = None,
    **settings: object,
) -> Backend:
    """A backend in this process on a free loopback port. Local runs train with ``trainer``
    (a fresh ``FakeTrainer`` by default) or, with ``real_worker``, in worker processes."""
    values: dict[str, object] = {
        "address": "127.0.0.1:0",
        "data_dir": tmp,
        "market_data_dir": sample_data_dir,
        "strategies_dir": tmp / "strategies",
        "default_mode": "local",
        "health_check_timeout_s": 1.0,
        "device": "cpu",
        "grace_s": 0.5,
        **settings,
    }
    config = BackendSettings(**values)  # type: ignore[arg-type]
    if real_worker:
        app = BackendApp(config)
    else:
        trainer = trainer or FakeTrainer()

        def runner(market_data_dir: Path, device: str) -> TrainingRunner:
            return trainer

        app = BackendApp(config, runner_factory=runner)
    port = await app.start()
    token = read_token_file(config.data_dir / "admin.token")  # written at first start
    channel = aio_channel(f"127.0.0.1:{port}", token=token)
    stub = backend_pb2_grpc.BackendStub(channel)
    return Backend(app, stub, channel, config, trainer=None if real_worker else trainer)


async def stop_backend(backend: Backend) -> None:
    await backend.channel.close()
    await backend.app.stop()
