"""Joining a backend by itself: ``RegisterHost`` at start, ``HostHeartbeat`` while serving.

With ``KTRDR_HOST_BACKEND_ADDRESS`` (``ktrdr host serve --backend ADDR``) the host registers
with its stable id (``KTRDR_HOST_HOST_ID``, else one created once in ``host.id`` beside the
spool), the address the backend should dial (``--advertise-address``, default the listen
address with its port resolved), its version and capabilities, and the sessions it runs or
holds in its spool. It then heartbeats at the interval the backend answered; ``known=false``
(the backend restarted, or removed the host) makes it register again at once. Sessions the
backend names in ``sessions_to_stop`` are cancelled when running; a spooled model of an
operation that ended is refused by the backend when delivered (and parked in ``failed/``).

The backend's token and TLS are those of SubmitResults (``backend_token`` /
``backend_token_file``, ``backend_tls*``). A backend that cannot be reached or refuses is
logged once per change of answer, retried with the delivery backoff, and never stops the
host. At shutdown the host sends one last heartbeat with ``leaving`` so no new work comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from pathlib import Path

import grpc

import ktrdr
from ktrdr.security.channels import aio_channel
from ktrdr.service.host_protocol import HOST_ID_PATTERN, MAX_HELD_SESSIONS, PROTOCOL_VERSION
from ktrdr.training.v1 import backend_pb2_grpc, common_pb2, host_pb2, hosts_pb2
from ktrdr.transfer import grpc_options
from ktrdr_host.sessions import SessionRegistry
from ktrdr_host.settings import HostSettings

logger = logging.getLogger(__name__)

CALL_TIMEOUT_S = 5.0
HOST_ID_FILE = "host.id"


def stable_host_id(settings: HostSettings) -> str:
    """``KTRDR_HOST_HOST_ID``, else the id in ``host.id`` beside the spool (created once)."""
    if settings.host_id:
        return settings.host_id
    path = Path(settings.spool_dir).parent / HOST_ID_FILE
    with contextlib.suppress(OSError):
        text = path.read_text(encoding="utf-8").strip()
        if HOST_ID_PATTERN.match(text):
            return text
    host_id = f"host-{uuid.uuid4().hex[:12]}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(host_id + "\n", encoding="utf-8")
    logger.info("host id %s created in %s", host_id, path)
    return host_id


class BackendRegistration:
    """Registers with ``settings.backend_address`` and heartbeats until ``stop``."""

    def __init__(
        self,
        settings: HostSettings,
        sessions: SessionRegistry,
        describe: Callable[[], host_pb2.GetCapabilitiesResponse],
        address: str,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.describe = describe
        self.address = address  # what the backend dials
        self.target = settings.backend_address
        self.host_id = stable_host_id(settings)
        self.instance_id = uuid.uuid4().hex  # new at every start: tells a restart apart
        self.registered = False
        self.interval_s = 5.0
        self._failures = 0
        self._last_problem = ""
        self._task: asyncio.Task[None] | None = None
        self.channel = aio_channel(
            self.target,
            options=grpc_options(settings.max_message_bytes),
            tls=settings.backend_client_tls(),
            token=settings.backend_token_source(self.target),
        )
        self.stub = backend_pb2_grpc.BackendStub(self.channel)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="backend-registration")

    async def stop(self) -> None:
        """Stop heartbeating and tell the backend this host leaves (best effort)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.registered:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self.stub.HostHeartbeat(self._heartbeat(leaving=True), timeout=2.0)
                logger.info("told backend %s that host %s leaves", self.target, self.host_id)
        await self.channel.close()

    # -- the loop --------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            try:
                await (self._heartbeat_once() if self.registered else self._register())
                self._ok()
                wait = self.interval_s
            except grpc.aio.AioRpcError as exc:
                wait = self._failed(exc)
            except Exception:  # never stop the host over its registration
                logger.exception("registration with backend %s failed", self.target)
                wait = self._failed(None)
            await asyncio.sleep(wait)

    async def _register(self) -> None:
        answer = await self.stub.RegisterHost(
            hosts_pb2.RegisterHostRequest(
                host_id=self.host_id,
                address=self.address,
                version=ktrdr.__version__,
                protocol_version=PROTOCOL_VERSION,
                capabilities=self.describe(),
                sessions=self._held(),
                instance_id=self.instance_id,
            ),
            timeout=CALL_TIMEOUT_S,
        )
        self.registered = True
        self.interval_s = answer.heartbeat_interval_s or self.interval_s
        logger.info(
            "registered with backend %s as host %s at %s (heartbeat every %g s, lease %g s)",
            self.target,
            self.host_id,
            self.address,
            self.interval_s,
            answer.lease_s,
        )
        await self._stop_sessions(answer.sessions_to_stop)

    async def _heartbeat_once(self) -> None:
        answer = await self.stub.HostHeartbeat(self._heartbeat(), timeout=CALL_TIMEOUT_S)
        if not answer.known:
            logger.info(
                "backend %s does not know host %s: registering again", self.target, self.host_id
            )
            self.registered = False
            await self._register()
            return
        self.interval_s = answer.heartbeat_interval_s or self.interval_s
        await self._stop_sessions(answer.sessions_to_stop)

    def _heartbeat(self, *, leaving: bool = False) -> hosts_pb2.HostHeartbeatRequest:
        return hosts_pb2.HostHeartbeatRequest(
            host_id=self.host_id,
            instance_id=self.instance_id,
            active_sessions=self.sessions.active_count,
            sessions=self._held(),
            leaving=leaving,
        )

    def _held(self) -> list[hosts_pb2.HeldSession]:
        """Running sessions, and those whose model waits in the spool."""
        held = []
        for session in self.sessions.list_sessions():
            delivery = session.delivery
            spooled = delivery is not None and delivery.status == common_pb2.DELIVERY_STATUS_PENDING
            if session.active or spooled:
                held.append(
                    hosts_pb2.HeldSession(
                        session_id=session.session_id,
                        results_target=session.results_target,
                        spooled=spooled,
                    )
                )
        return held[:MAX_HELD_SESSIONS]

    async def _stop_sessions(self, stops: list[hosts_pb2.SessionToStop]) -> None:
        for stop in stops:
            try:
                session = self.sessions.get(stop.session_id)
            except Exception:  # gone meanwhile
                continue
            if session.active:
                logger.warning(
                    "session %s: stopped at the backend's word (%s)", stop.session_id, stop.reason
                )
                await session.cancel(f"the backend says: {stop.reason}", 0.0)

    # -- telling failures once -------------------------------------------------------------
    def _ok(self) -> None:
        if self._last_problem:
            logger.info("backend %s answers again", self.target)
        self._failures, self._last_problem = 0, ""

    def _failed(self, exc: grpc.aio.AioRpcError | None) -> float:
        self._failures += 1
        problem = "an unexpected error" if exc is None else f"{exc.code().name}: {exc.details()}"
        if exc is not None and exc.code() in (
            grpc.StatusCode.UNAUTHENTICATED,
            grpc.StatusCode.PERMISSION_DENIED,
        ):
            problem += (
                " (registration needs the backend's host-role token: KTRDR_HOST_BACKEND_TOKEN "
                "or KTRDR_HOST_BACKEND_TOKEN_FILE)"
            )
        if problem != self._last_problem:
            log = logger.error if self.registered or self._failures == 1 else logger.warning
            log(
                "host %s cannot %s backend %s: %s; retrying",
                self.host_id,
                "heartbeat to" if self.registered else "register with",
                self.target,
                problem,
            )
            self._last_problem = problem
        return self.settings.backoff_s(self._failures)


__all__ = ["BackendRegistration", "stable_host_id"]
