"""The host registry: training hosts that joined by themselves, beside the static list.

A host registers (``RegisterHost``) with a stable id, the address the backend dials, its
version and capabilities; heartbeats keep it. States, each change logged in one line:

    (new) --register--> available --no heartbeat for heartbeat_timeout_s--> unavailable
    unavailable --heartbeat--> available          unavailable --removal_after_s--> (removed)
    available --heartbeat(leaving)--> unavailable

Placement uses the static ``--host-address`` list plus the *available* registered hosts
(``addresses()``), so an unavailable host gets no new work, and a host that registers or
comes back wakes the host queue (``on_available``) so queued work starts at once. A host
removed, or one that registers again as a new process (another ``instance_id``), has lost
the sessions it does not list: ``on_lost`` lets the operations still placed there end with
that cause instead of waiting for an address that no longer answers.

Kept in memory only: after a backend restart each host's next heartbeat is answered
``known=false`` and the host registers again (within one heartbeat interval). Time comes
from an injected ``clock`` (monotonic seconds) and ``wall`` (epoch seconds), so the state
machine is tested without sleeping; ``watch()`` is the task that applies the timeouts.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import grpc

from ktrdr.backend.errors import RequestError
from ktrdr.security.tls import is_loopback_address
from ktrdr.service.host_protocol import HOST_ID_PATTERN, PROTOCOL_VERSION
from ktrdr.training.v1 import host_pb2

logger = logging.getLogger(__name__)

AVAILABLE = "available"
UNAVAILABLE = "unavailable"
MAX_ADDRESS_CHARS = 256
MAX_TEXT_CHARS = 128  # version, instance id, device name
_ADDRESS = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):([0-9]{1,5})$")


@dataclass
class RegisteredHost:
    """One host that registered itself, as the registry sees it now."""

    host_id: str
    address: str
    instance_id: str
    version: str
    capabilities: host_pb2.GetCapabilitiesResponse
    registered_wall: float
    last_seen: float  # registry clock of the last registration or heartbeat
    last_seen_wall: float
    state: str = AVAILABLE
    active_sessions: int = 0
    detail: str = ""
    # addresses this host had before (a restart on another port): operations may sit there
    former_addresses: set[str] = field(default_factory=set)

    def name(self) -> str:
        return f"host {self.host_id} ({self.address})"


@dataclass(frozen=True)
class Lost:
    """A host's sessions that are gone: every operation placed on ``addresses`` except
    ``kept`` (sessions the host still holds) ends with ``cause``."""

    host_id: str
    addresses: frozenset[str]
    kept: frozenset[str]
    cause: str


def check_address(address: str, allowed: Sequence[str]) -> str:
    """``address`` when it is ``host:port`` on the allow-list; INVALID_ARGUMENT or
    PERMISSION_DENIED otherwise. Empty ``allowed``: loopback addresses only. Entries are
    ``host:port``, ``host`` (any port), a network (``10.0.0.0/8``) or ``*``."""
    shown = repr(address[:MAX_ADDRESS_CHARS])
    match = _ADDRESS.match(address) if len(address) <= MAX_ADDRESS_CHARS else None
    if match is None or not 0 < int(match.group(2)) < 65536:
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"address: expected 'host:port' (port 1-65535) that this backend can dial, got "
            f"{shown}; set ktrdr host serve --advertise-address",
        )
    if _allowed(match.group(1).strip("[]").lower(), address, allowed):
        return address
    listed = ", ".join(allowed) if allowed else "loopback addresses only"
    raise RequestError(
        grpc.StatusCode.PERMISSION_DENIED,
        f"address: {shown} is not on this backend's allow-list for hosts ({listed}); the "
        "operator sets KTRDR_BACKEND_ALLOWED_HOST_ADDRESSES",
    )


def _allowed(host: str, address: str, allowed: Sequence[str]) -> bool:
    if not allowed:
        return is_loopback_address(address)
    for entry in (e.strip() for e in allowed):
        if entry in ("*", address) or entry.strip("[]").lower() == host:
            return True
        if "/" in entry:
            try:
                if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def check_versions(host_id: str, version: str, protocol: int, backend_version: str) -> None:
    """FAILED_PRECONDITION, in one line naming both, when the registration protocols differ
    or the ktrdr versions differ in major.minor (a patch release may differ)."""
    if protocol != PROTOCOL_VERSION:
        raise RequestError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"host {host_id} speaks registration protocol {protocol}, this backend "
            f"{PROTOCOL_VERSION} (host ktrdr {version or '?'}, backend ktrdr {backend_version}); "
            "run the same ktrdr release on both",
        )
    if version.split(".")[:2] != backend_version.split(".")[:2]:
        raise RequestError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"host {host_id} runs ktrdr {version or '(none given)'}, this backend ktrdr "
            f"{backend_version}: major.minor must match; run the same ktrdr release on both",
        )


def check_text(name: str, value: str, *, required: bool = True) -> str:
    if required and not value:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, f"{name}: must not be empty")
    if len(value) > MAX_TEXT_CHARS:
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{name}: at most {MAX_TEXT_CHARS} characters, got {len(value)}",
        )
    return value


def check_host_id(host_id: str) -> str:
    if not HOST_ID_PATTERN.match(host_id):
        raise RequestError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"host_id: 1-128 letters, digits and . _ : - (got {host_id[:MAX_TEXT_CHARS]!r}); "
            "set KTRDR_HOST_HOST_ID or leave it empty for the id kept beside the spool",
        )
    return host_id


class HostRegistry:
    """Static host addresses plus the hosts that registered themselves."""

    def __init__(
        self,
        static: Sequence[str] = (),
        *,
        heartbeat_interval_s: float = 5.0,
        heartbeat_timeout_s: float = 15.0,
        removal_after_s: float = 300.0,
        max_hosts: int = 64,
        allowed_addresses: Sequence[str] = (),
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.static = list(static)
        self.heartbeat_interval_s = heartbeat_interval_s
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.removal_after_s = removal_after_s
        self.max_hosts = max_hosts
        self.allowed_addresses = list(allowed_addresses)
        self.enabled = enabled
        self.clock = clock
        self.wall = wall
        self._hosts: dict[str, RegisteredHost] = {}
        # A host became available (registered or came back): the host queue looks again.
        self.on_available: list[Callable[[RegisteredHost], None]] = []
        # A host's sessions are gone (removed, or restarted as a new process).
        self.on_lost: list[Callable[[Lost], None]] = []

    # -- what placement sees ---------------------------------------------------------------
    def addresses(self) -> list[str]:
        """Static addresses in their order, then available registered hosts by registration."""
        seen = list(dict.fromkeys(self.static))
        for host in self._hosts.values():
            if host.state == AVAILABLE and host.address not in seen:
                seen.append(host.address)
        return seen

    def waits_for_hosts(self) -> bool:
        """True when hosts may still join: host work should wait, not run locally, while no
        host is known (registered but unavailable counts as known-to-come-back)."""
        return self.enabled

    def hosts(self) -> list[RegisteredHost]:
        return sorted(self._hosts.values(), key=lambda h: h.host_id)

    def get(self, host_id: str) -> RegisteredHost | None:
        return self._hosts.get(host_id)

    def host_at(self, address: str) -> RegisteredHost | None:
        for host in self._hosts.values():
            if host.address == address:
                return host
        return None

    # -- registration and heartbeats -------------------------------------------------------
    def register(
        self,
        *,
        host_id: str,
        address: str,
        instance_id: str,
        version: str,
        capabilities: host_pb2.GetCapabilitiesResponse,
        held: Sequence[str] = (),
    ) -> RegisteredHost:
        """Add or renew a host (fields already checked); RESOURCE_EXHAUSTED beyond
        ``max_hosts``. A known id with a new ``instance_id`` restarted: its sessions not in
        ``held`` are lost (``on_lost``)."""
        now, wall = self.clock(), self.wall()
        previous = self._hosts.get(host_id)
        if previous is None and len(self._hosts) >= self.max_hosts:
            raise RequestError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{len(self._hosts)} hosts are registered (limit {self.max_hosts}, "
                "KTRDR_BACKEND_MAX_REGISTERED_HOSTS); host "
                f"{host_id} is refused until one is removed or the limit is raised",
            )
        for other in list(self._hosts.values()):  # one host per address: the newest wins
            if other.host_id != host_id and other.address == address:
                del self._hosts[other.host_id]
                self._log(other, "removed", f"host {host_id} registered at its address")
        host = RegisteredHost(
            host_id,
            address,
            instance_id,
            version,
            capabilities,
            registered_wall=wall if previous is None else previous.registered_wall,
            last_seen=now,
            last_seen_wall=wall,
            active_sessions=capabilities.active_sessions,
        )
        self._hosts[host_id] = host
        if previous is None:
            self._log(host, AVAILABLE, f"registered (ktrdr {version})", before="new")
        else:
            former = previous.former_addresses | {previous.address}
            host.former_addresses = former - {address}
            restarted = previous.instance_id != instance_id
            why = "registered again" + (" after a restart" if restarted else "")
            if previous.address != address:
                why += f", now at {address} (was {previous.address})"
            self._log(host, AVAILABLE, why, before=previous.state)
            if restarted:
                self._lost(
                    Lost(
                        host_id,
                        frozenset(former | {address}),
                        frozenset(held),
                        f"host {host_id} restarted and no longer has this session",
                    )
                )
        self._notify_available(host)
        return host

    def heartbeat(
        self, host_id: str, instance_id: str, active_sessions: int, *, leaving: bool = False
    ) -> RegisteredHost | None:
        """Renew the lease; None when the host must register again (unknown id or instance)."""
        host = self._hosts.get(host_id)
        if host is None or host.instance_id != instance_id:
            return None
        host.last_seen, host.last_seen_wall = self.clock(), self.wall()
        host.active_sessions = active_sessions
        if leaving:
            if host.state != UNAVAILABLE or host.detail != "left":
                self._log(host, UNAVAILABLE, "it is stopping (left)")
                host.state, host.detail = UNAVAILABLE, "left"
        elif host.state != AVAILABLE:
            self._log(host, AVAILABLE, "heartbeat again")
            host.state, host.detail = AVAILABLE, ""
            self._notify_available(host)
        return host

    def sweep(self) -> None:
        """Apply the timeouts: unavailable after ``heartbeat_timeout_s`` without a heartbeat,
        removed after ``removal_after_s``."""
        now = self.clock()
        for host in list(self._hosts.values()):
            silent = now - host.last_seen
            if silent > self.removal_after_s:
                del self._hosts[host.host_id]
                cause = (
                    f"host {host.host_id} ({host.address}) sent no heartbeat for {silent:.1f} s "
                    f"and was removed (KTRDR_BACKEND_HOST_REMOVAL_AFTER_S="
                    f"{self.removal_after_s:g}); the training there is lost"
                )
                self._log(host, "removed", f"no heartbeat for {silent:.1f} s")
                self._lost(
                    Lost(
                        host.host_id,
                        frozenset(host.former_addresses | {host.address}),
                        frozenset(),
                        cause,
                    )
                )
            elif host.state == AVAILABLE and silent > self.heartbeat_timeout_s:
                detail = f"no heartbeat for {silent:.1f} s (lease {self.heartbeat_timeout_s:g} s)"
                self._log(host, UNAVAILABLE, detail)
                host.state, host.detail = UNAVAILABLE, detail

    def next_check_s(self) -> float:
        """How long ``watch`` may sleep before a timeout can fall due."""
        now, soonest = self.clock(), self.heartbeat_interval_s
        for host in self._hosts.values():
            limit = self.removal_after_s if host.state == UNAVAILABLE else self.heartbeat_timeout_s
            soonest = min(soonest, host.last_seen + limit - now)
        return max(0.05, soonest + 0.01)

    async def watch(self) -> None:
        """The task that applies the timeouts while the backend runs."""
        while True:
            await asyncio.sleep(self.next_check_s())
            try:
                self.sweep()
            except Exception:  # a listener's mistake must not stop the timeouts
                logger.exception("host registry: applying heartbeat timeouts failed")

    # -- internals -------------------------------------------------------------------------
    def _log(self, host: RegisteredHost, after: str, why: str, *, before: str = "") -> None:
        logger.info("%s: %s -> %s: %s", host.name(), before or host.state, after, why)

    def _notify_available(self, host: RegisteredHost) -> None:
        for listener in self.on_available:
            listener(host)

    def _lost(self, lost: Lost) -> None:
        for listener in self.on_lost:
            listener(lost)


__all__ = [
    "AVAILABLE",
    "UNAVAILABLE",
    "HostRegistry",
    "Lost",
    "RegisteredHost",
    "check_address",
    "check_host_id",
    "check_text",
    "check_versions",
]
