"""Choosing where a training runs: locally, or on a training host.

Each configured host is probed with the standard ``grpc.health.v1`` ``Check`` (service
``ktrdr.training.v1.TrainingHost``) and ``TrainingHost.GetCapabilities`` (GPU, session slots),
both within one deadline. Calls use ``wait_for_ready=False`` on a fresh channel, so a refused
connection fails at once instead of waiting for the deadline; a host that accepts the
connection but never answers is given up on when the deadline passes. All hosts are probed
concurrently; among those that qualify, ``placement.choose`` takes the least loaded (its
reported sessions or this backend's own count of what it placed there, whichever is larger),
then the one listed first.

Rules (``require_gpu`` always needs a GPU; a request never changes the default):
- local: always local (with ``require_gpu`` only if this backend has a GPU).
- host: the least loaded healthy host with a free slot (with a GPU for ``require_gpu``).
  Every such host busy, or other host operations already waiting: the request is *queued*
  (it stays PENDING in the host queue; it never trains locally because hosts are busy).
  No healthy host at all: with ``require_gpu`` FAILED_PRECONDITION naming each host and what
  its check saw, without it local (``fallback``), with the reason stored on the operation and
  a warning logged. No host known at all while hosts may register themselves (the
  ``HostRegistry``): the request is queued until one registers.
- auto: the least loaded healthy GPU host with a free slot while nothing waits in the host
  queue; otherwise FAILED_PRECONDITION with ``require_gpu``, local without it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ktrdr.backend.execution.placement import HostLedger, HostSlots, choose, placed_reason
from ktrdr.backend.execution.registry import HostRegistry
from ktrdr.security.channels import TokenSource, aio_channel
from ktrdr.security.diagnose import BACKEND_TO_HOST, explain_unavailable
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
NO_HOST_YET = "no host registered yet"


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
    max_sessions: int = 0
    active_sessions: int = 0
    accepting: bool = False
    ledger_mark: int = 0  # the ledger when the host's answer came (see placement.HostSlots)
    # Unreachable because of a setting (TLS on one side only, an unknown CA, no client
    # certificate): waiting or another try cannot help, so host mode refuses, never falls back.
    misconfigured: bool = False

    def describe(self) -> str:
        return f"host {self.address}: {self.detail}"

    def slots(self, preference: int, ledger: HostLedger) -> HostSlots:
        """This probe's capacity, with what this backend placed on the host."""
        return HostSlots(
            address=self.address,
            preference=preference,
            healthy=self.healthy,
            has_gpu=self.has_gpu,
            accepting=self.accepting,
            max_sessions=self.max_sessions,
            reported=self.active_sessions,
            placed=ledger.count(self.address),
            placed_since=ledger.count(self.address, since=self.ledger_mark),
        )


@dataclass(frozen=True)
class Selection:
    """Where to run: ``mode`` is LOCAL or HOST; ``reason`` is stored on the operation."""

    mode: int
    reason: str
    host_address: str = ""
    probes: tuple[HostProbe, ...] = ()
    # HOST without an address: every healthy host is busy, the request waits in the queue
    # (``waits_for`` says why in a few words, e.g. "3 hosts busy").
    queued: bool = False
    waits_for: str = ""
    # LOCAL although host mode was asked for: no host was healthy.
    fallback: bool = False


@dataclass(frozen=True)
class HostConnection:
    """How the backend reaches its hosts: message limits, TLS, and the token it presents."""

    max_message_bytes: int = 8 << 20
    tls: ClientTLS | None = None
    token: TokenSource | None = None
    # The token for one host's address (wins over ``token``): a host on this machine is
    # found by the token file it announced.
    token_for: Callable[[str], TokenSource] | None = None

    def channel(self, address: str) -> grpc.aio.Channel:
        token = self.token_for(address) if self.token_for is not None else self.token
        return host_channel(address, self.max_message_bytes, tls=self.tls, token=token)


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


def misconfiguration_refusal(origin: str, probes: Sequence[HostProbe]) -> ModeUnavailable | None:
    """The refusal of a host request when no host is usable and at least one is out of reach
    because of a TLS setting: a local run would hide the mistake (and fail for other reasons)."""
    wrong = [p for p in probes if p.misconfigured]
    if not wrong or any(p.healthy for p in probes):
        return None
    return ModeUnavailable(
        f"{origin}: refused, not run locally instead: " + "; ".join(p.describe() for p in wrong)
    )


async def _unreachable(
    error: grpc.aio.AioRpcError, address: str, tls: ClientTLS | None, timeout_s: float
) -> tuple[str, bool]:
    """(what went wrong, whether a setting is the cause) for a failed health check."""
    if error.code() == grpc.StatusCode.UNAVAILABLE:
        cause = await asyncio.to_thread(
            explain_unavailable,
            error.details() or "",
            address,
            tls or ClientTLS(),
            BACKEND_TO_HOST,
            timeout_s=timeout_s,
        )
        if cause is not None:
            return f"cannot connect: {cause}", True
    return _rpc_problem(error, timeout_s), False


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
        ledger: HostLedger | None = None,
        registry: HostRegistry | None = None,
    ) -> None:
        self.host_addresses = list(host_addresses)
        # Hosts that registered themselves (None: the static list only).
        self.registry = registry
        self.timeout_s = timeout_s
        self.connection = connection or HostConnection(max_message_bytes)
        # What this backend placed on each host (shared with the host queue).
        self.ledger = ledger or HostLedger()
        self._warned: dict[str, str] = {}  # the TLS problem last logged per host
        # Each host's last health check (healthy or not), for the metrics.
        self.last_health: dict[str, bool] = {}

    async def probe(self, address: str) -> HostProbe:
        """Health check, then capabilities, both within ``timeout_s`` in all."""
        start = time.monotonic()
        deadline = start + self.timeout_s
        # Placements booked after the answer arrived cannot be in it (StartTraining is sent
        # only after the booking); earlier ones may or may not be.
        mark = self.ledger.mark()

        def remaining() -> float:
            return max(0.001, deadline - time.monotonic())

        def done(healthy: bool, detail: str, **kw: Any) -> HostProbe:
            elapsed = time.monotonic() - start
            self.last_health[address] = healthy
            return HostProbe(address, healthy, detail, elapsed_s=elapsed, ledger_mark=mark, **kw)

        channel = self.connection.channel(address)
        try:
            try:
                health = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=HOST_SERVICE),
                    timeout=remaining(),
                    wait_for_ready=False,
                )
            except grpc.aio.AioRpcError as exc:
                problem, wrong = await _unreachable(
                    exc, address, self.connection.tls, min(remaining() + 1.0, self.timeout_s)
                )
                if wrong and self._warned.get(address) != problem:
                    logger.warning("training host %s: %s", address, problem)
                self._warned[address] = problem if wrong else ""
                return done(False, problem, misconfigured=wrong)
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(health.status)
            if health.status != health_pb2.HealthCheckResponse.SERVING:
                return done(False, f"health check says {status}")
            try:
                caps = await host_pb2_grpc.TrainingHostStub(channel).GetCapabilities(
                    host_pb2.GetCapabilitiesRequest(), timeout=remaining(), wait_for_ready=False
                )
                mark = self.ledger.mark()  # no await since the answer
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
        return done(
            True,
            f"SERVING, {gpu}, {capacity}",
            has_gpu=has_gpu,
            free=free,
            max_sessions=caps.max_sessions,
            active_sessions=caps.active_sessions,
            accepting=caps.accepting,
        )

    def addresses(self) -> list[str]:
        """The hosts placement may use now: static ones, then available registered ones."""
        if self.registry is None:
            return list(self.host_addresses)
        return list(dict.fromkeys([*self.host_addresses, *self.registry.addresses()]))

    def waits_for_registration(self) -> bool:
        """No host is known, but one may register: host work waits instead of running here."""
        registry = self.registry
        return registry is not None and registry.waits_for_hosts() and not self.addresses()

    async def probe_all(self) -> tuple[HostProbe, ...]:
        return tuple(await asyncio.gather(*(self.probe(a) for a in self.addresses())))

    def slots(self, probes: Sequence[HostProbe]) -> list[HostSlots]:
        return [p.slots(i, self.ledger) for i, p in enumerate(probes)]

    async def select(
        self,
        requested: int,
        require_gpu: bool,
        *,
        default: bool = False,
        operation_id: str = "",
        waiting: int = 0,
    ) -> Selection:
        """Choose a mode for a request; ``default`` says ``requested`` is the default mode.

        ``waiting``: host operations already queued (a new host request queues behind them).
        A chosen host is booked in the ledger for ``operation_id`` before this returns.
        """
        name = MODE_NAMES.get(requested)
        if name is None:
            raise ValueError(f"execution mode {requested} is not AUTO, LOCAL or HOST")
        origin = f"{name} (the default mode)" if default else name
        if requested == pb.EXECUTION_MODE_LOCAL:
            return self._local(f"{origin}: runs in the backend's process", require_gpu)
        if self.waits_for_registration() and requested == pb.EXECUTION_MODE_HOST:
            return Selection(
                pb.EXECUTION_MODE_HOST,
                f"{origin}: queued, no training host has registered yet; it starts when one "
                "registers (ktrdr host serve --backend ADDRESS)",
                queued=True,
                waits_for=NO_HOST_YET,
            )
        if not self.addresses():
            if require_gpu:
                raise ModeUnavailable(
                    f"{origin} with require_gpu: no training host is configured "
                    "(set KTRDR_BACKEND_HOST_ADDRESSES or pass --host-address)"
                )
            fallback = requested == pb.EXECUTION_MODE_HOST
            return Selection(
                pb.EXECUTION_MODE_LOCAL,
                f"{origin}: {'fell back to ' if fallback else ''}local, no host configured",
                fallback=fallback,
            )
        probes = await self.probe_all()
        seen = "; ".join(p.describe() for p in probes)
        want_gpu = require_gpu or requested == pb.EXECUTION_MODE_AUTO
        choice = choose(self.slots(probes), want_gpu=want_gpu)
        if choice.host is not None and not waiting:
            if operation_id:
                self.ledger.place(operation_id, choice.host.address)
            return Selection(
                pb.EXECUTION_MODE_HOST,
                f"{origin}: {placed_reason(choice.host, choice)}",
                choice.host.address,
                probes,
            )
        if requested == pb.EXECUTION_MODE_HOST and choice.eligible:
            ahead = f", {waiting} queued ahead" if waiting else ""
            return Selection(
                pb.EXECUTION_MODE_HOST,
                f"{origin}: queued, {choice.busy_text()}{ahead}; it starts when a slot frees up",
                "",
                probes,
                queued=True,
                waits_for=choice.busy_text(detail=False),
            )
        if require_gpu:
            raise ModeUnavailable(
                f"{origin} with require_gpu: no healthy training host with a GPU and a free "
                f"session slot ({seen})"
            )
        if requested == pb.EXECUTION_MODE_HOST:
            refusal = misconfiguration_refusal(origin, probes)
            if refusal is not None:
                raise refusal
            reason = f"{origin}: fell back to local, no training host is healthy ({seen})"
            logger.warning("%s", reason)
            return Selection(pb.EXECUTION_MODE_LOCAL, reason, "", probes, fallback=True)
        if waiting and choice.host is not None:
            reason = f"{origin}: local, {waiting} host operations wait for a host slot ({seen})"
        else:
            reason = f"{origin}: local, no healthy host with a GPU and a free slot ({seen})"
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
    "NO_HOST_YET",
    "HostConnection",
    "HostProbe",
    "ModeSelector",
    "ModeUnavailable",
    "Selection",
    "host_channel",
    "misconfiguration_refusal",
]
