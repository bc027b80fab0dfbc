"""Choosing where a training runs: locally, or on a training host.

Each configured host is probed with the standard ``grpc.health.v1`` ``Check`` (service
``ktrdr.training.v1.TrainingHost``) and ``TrainingHost.GetCapabilities`` (GPU, free session
slots), both within one deadline. Calls use ``wait_for_ready=False`` on a fresh channel, so a
refused connection fails at once instead of waiting for the deadline; a host that accepts the
connection but never answers is given up on when the deadline passes. All hosts are probed
concurrently; the first in configured order that qualifies wins.

Rules (``require_gpu`` always needs a GPU; a request never changes the default):
- local: always local (with ``require_gpu`` only if this backend has a GPU).
- host: the first healthy host with free capacity; none -> with ``require_gpu``
  FAILED_PRECONDITION naming each host and what its check saw, without it local, with the
  reason stored on the operation and a warning logged.
- auto: the first healthy, free host with a GPU; none -> FAILED_PRECONDITION with
  ``require_gpu``, local without it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ktrdr.security.channels import TokenSource, aio_channel
from ktrdr.security.tls import ClientTLS
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import host_pb2, host_pb2_grpc
from ktrdr.transfer import grpc_options

logger = logging.getLogger(__name__)

HOST_SERVICE = "ktrdr.training.v1.TrainingHost"
MODE_NAMES: dict[int, str] = {
    pb.EXECUTION_MODE_AUTO: "auto",
    pb.EXECUTION_MODE_LOCAL: "local",
    pb.EXECUTION_MODE_HOST: "host",
}
MODES_BY_NAME = {name: mode for mode, name in MODE_NAMES.items()}
_GPU_TYPES = (host_pb2.DEVICE_TYPE_CUDA, host_pb2.DEVICE_TYPE_MPS)


class ModeUnavailable(Exception):
    """The request cannot run where it must (gRPC FAILED_PRECONDITION)."""


@dataclass(frozen=True)
class HostProbe:
    """What one host's health check and capabilities call saw."""

    address: str
    healthy: bool
    detail: str
    has_gpu: bool = False
    free: bool = False
    elapsed_s: float = 0.0

    def describe(self) -> str:
        return f"host {self.address}: {self.detail}"


@dataclass(frozen=True)
class Selection:
    """Where to run: ``mode`` is LOCAL or HOST; ``reason`` is stored on the operation."""

    mode: int
    reason: str
    host_address: str = ""
    probes: tuple[HostProbe, ...] = ()


@dataclass(frozen=True)
class HostConnection:
    """How the backend reaches its hosts: message limits, TLS, and the token it presents."""

    max_message_bytes: int = 8 << 20
    tls: ClientTLS | None = None
    token: TokenSource | None = None

    def channel(self, address: str) -> grpc.aio.Channel:
        return host_channel(address, self.max_message_bytes, tls=self.tls, token=self.token)


def host_channel(
    address: str,
    max_message_bytes: int,
    *,
    tls: ClientTLS | None = None,
    token: TokenSource | None = None,
) -> grpc.aio.Channel:
    """A channel to a host with explicit limits and its own connection (no shared backoff)."""
    options: list[tuple[str, int | str]] = [
        *grpc_options(max_message_bytes),
        ("grpc.use_local_subchannel_pool", 1),
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 2000),
    ]
    return aio_channel(address, options=options, tls=tls, token=token)


def _rpc_problem(error: grpc.aio.AioRpcError, timeout_s: float) -> str:
    code = error.code()
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"no answer within {timeout_s:g} s (the host accepts connections but hangs)"
    if code == grpc.StatusCode.UNAVAILABLE:
        return f"not reachable (UNAVAILABLE: {error.details()})"
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return "does not implement the health or TrainingHost service (UNIMPLEMENTED)"
    if code == grpc.StatusCode.NOT_FOUND:
        return f"does not serve {HOST_SERVICE} (health NOT_FOUND)"
    return f"{code.name}: {error.details()}"


def _local_gpu() -> bool:
    import torch

    return bool(torch.cuda.is_available())


class ModeSelector:
    """``select(requested, require_gpu)`` -> ``Selection`` or ``ModeUnavailable``."""

    def __init__(
        self,
        host_addresses: Sequence[str],
        *,
        timeout_s: float = 2.0,
        max_message_bytes: int = 8 << 20,
        connection: HostConnection | None = None,
    ) -> None:
        self.host_addresses = list(host_addresses)
        self.timeout_s = timeout_s
        self.connection = connection or HostConnection(max_message_bytes)

    async def probe(self, address: str) -> HostProbe:
        """Health check, then capabilities, both within ``timeout_s`` in all."""
        start = time.monotonic()
        deadline = start + self.timeout_s

        def remaining() -> float:
            return max(0.001, deadline - time.monotonic())

        def done(healthy: bool, detail: str, **kw: bool) -> HostProbe:
            return HostProbe(address, healthy, detail, elapsed_s=time.monotonic() - start, **kw)

        channel = self.connection.channel(address)
        try:
            try:
                health = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=HOST_SERVICE),
                    timeout=remaining(),
                    wait_for_ready=False,
                )
            except grpc.aio.AioRpcError as exc:
                return done(False, _rpc_problem(exc, self.timeout_s))
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(health.status)
            if health.status != health_pb2.HealthCheckResponse.SERVING:
                return done(False, f"health check says {status}")
            try:
                caps = await host_pb2_grpc.TrainingHostStub(channel).GetCapabilities(
                    host_pb2.GetCapabilitiesRequest(), timeout=remaining(), wait_for_ready=False
                )
            except grpc.aio.AioRpcError as exc:
                return done(False, f"SERVING, but GetCapabilities failed: {_rpc_problem(exc, 0)}")
        finally:
            await channel.close()
        has_gpu = caps.device_type in _GPU_TYPES
        device = host_pb2.DeviceType.Name(caps.device_type).removeprefix("DEVICE_TYPE_").lower()
        free = caps.accepting and caps.active_sessions < caps.max_sessions
        capacity = f"{caps.active_sessions}/{caps.max_sessions} sessions"
        if not caps.accepting:
            capacity += ", not accepting new sessions"
        gpu = f"GPU {device} ({caps.device_name})" if has_gpu else f"no GPU ({device} only)"
        return done(True, f"SERVING, {gpu}, {capacity}", has_gpu=has_gpu, free=free)

    async def probe_all(self) -> tuple[HostProbe, ...]:
        return tuple(await asyncio.gather(*(self.probe(a) for a in self.host_addresses)))

    async def select(
        self, requested: int, require_gpu: bool, *, default: bool = False
    ) -> Selection:
        """Choose a mode for a request; ``default`` says ``requested`` is the default mode."""
        name = MODE_NAMES.get(requested)
        if name is None:
            raise ValueError(f"execution mode {requested} is not AUTO, LOCAL or HOST")
        origin = f"{name} (the default mode)" if default else name
        if requested == pb.EXECUTION_MODE_LOCAL:
            return self._local(f"{origin}: runs in the backend's process", require_gpu)
        if not self.host_addresses:
            if require_gpu:
                raise ModeUnavailable(
                    f"{origin} with require_gpu: no training host is configured "
                    "(set KTRDR_BACKEND_HOST_ADDRESSES or pass --host-address)"
                )
            return Selection(pb.EXECUTION_MODE_LOCAL, f"{origin}: local, no host configured")
        probes = await self.probe_all()
        seen = "; ".join(p.describe() for p in probes)
        want_gpu = require_gpu or requested == pb.EXECUTION_MODE_AUTO
        for p in probes:
            if p.healthy and p.free and (p.has_gpu or not want_gpu):
                what = "healthy, idle and has a GPU" if p.has_gpu else "healthy and idle"
                return Selection(
                    pb.EXECUTION_MODE_HOST,
                    f"{origin}: host {p.address} is {what}",
                    p.address,
                    probes,
                )
        if require_gpu:
            raise ModeUnavailable(
                f"{origin} with require_gpu: no healthy training host with a GPU and a free "
                f"session slot ({seen})"
            )
        if requested == pb.EXECUTION_MODE_HOST:
            reason = f"{origin}: fell back to local, no healthy host with a free slot ({seen})"
            logger.warning("%s", reason)
        else:
            reason = f"{origin}: local, no healthy idle host with a GPU ({seen})"
        return Selection(pb.EXECUTION_MODE_LOCAL, reason, "", probes)

    def _local(self, reason: str, require_gpu: bool) -> Selection:
        if require_gpu and not _local_gpu():
            raise ModeUnavailable(
                f"{reason}, but require_gpu is set and this backend has no GPU; "
                "use host or auto mode with a GPU host"
            )
        return Selection(pb.EXECUTION_MODE_LOCAL, reason)


__all__ = [
    "HOST_SERVICE",
    "MODES_BY_NAME",
    "MODE_NAMES",
    "HostConnection",
    "HostProbe",
    "ModeSelector",
    "ModeUnavailable",
    "Selection",
    "host_channel",
]
