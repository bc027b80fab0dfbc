"""Which training host a request goes to: the least loaded healthy host with a free slot.

A host's load is the larger of two counts, the sessions it reports running
(``GetCapabilities.active_sessions``) and the operations this backend had placed on it when
that answer arrived (the ``HostLedger``), plus what this backend placed there after it: the
report can lag a ``StartTraining`` just sent, the ledger cannot see another backend's
sessions, and an answer cannot include a placement booked after it arrived (``StartTraining``
is sent only after the booking). A healthy host that accepts sessions has
``max_sessions - load`` free slots.

Among the hosts that may take a request (healthy, and with a GPU when one is wanted), those
with a free slot are ranked by load share (``load / max_sessions``, least loaded first), then
by their place in the configured list. Pure functions and one small class, no gRPC: the mode
selector and the host queue both decide with them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HostSlots:
    """One host's capacity as this backend sees it at one moment."""

    address: str
    preference: int  # its place in the configured list, 0 first
    healthy: bool
    has_gpu: bool
    accepting: bool
    max_sessions: int
    reported: int  # sessions the host said run, in its latest answer
    placed: int  # operations this backend placed there, training not yet over
    placed_since: int = 0  # of those, placed after that answer arrived

    @property
    def load(self) -> int:
        return max(self.reported, self.placed - self.placed_since) + self.placed_since

    @property
    def free(self) -> int:
        if not (self.healthy and self.accepting):
            return 0
        return max(0, self.max_sessions - self.load)

    @property
    def share(self) -> float:
        return self.load / self.max_sessions if self.max_sessions > 0 else 1.0

    def usage(self) -> str:
        text = f"{self.address} {self.load}/{self.max_sessions} sessions"
        return text if self.accepting else text + ", not accepting"


@dataclass(frozen=True)
class Choice:
    """What ``choose`` found for one request."""

    host: HostSlots | None  # the host to use now; None when none has a free slot
    eligible: tuple[HostSlots, ...]  # healthy hosts that could take it (GPU if wanted)

    @property
    def busy(self) -> tuple[HostSlots, ...]:
        """Eligible hosts without a free slot."""
        return tuple(h for h in self.eligible if h.free == 0)

    def busy_text(self, *, detail: bool = True) -> str:
        """``"3 hosts busy (a 2/2 sessions; ...)"``, without the parenthesis unless ``detail``."""
        busy = self.busy
        text = f"{len(busy)} {'host' if len(busy) == 1 else 'hosts'} busy"
        return f"{text} ({'; '.join(h.usage() for h in busy)})" if detail else text


def rank(hosts: Sequence[HostSlots], *, want_gpu: bool) -> list[HostSlots]:
    """Hosts that may take a request now, best first: least loaded, then listed first."""
    fit = [h for h in hosts if h.free > 0 and (h.has_gpu or not want_gpu)]
    return sorted(fit, key=lambda h: (h.share, h.preference))


def choose(hosts: Sequence[HostSlots], *, want_gpu: bool) -> Choice:
    eligible = tuple(h for h in hosts if h.healthy and (h.has_gpu or not want_gpu))
    ranked = rank(eligible, want_gpu=want_gpu)
    return Choice(ranked[0] if ranked else None, eligible)


def placed_reason(host: HostSlots, choice: Choice) -> str:
    """Why ``host`` was chosen, e.g. "host 10.0.0.5:50051 is healthy and the least loaded of
    3 (1/2 sessions in use)"."""
    gpu = " and has a GPU" if host.has_gpu else ""
    usage = f"{host.load}/{host.max_sessions} sessions in use"
    others = len(choice.eligible) - 1
    if others <= 0:
        return f"host {host.address} is healthy{gpu}, {usage}"
    return f"host {host.address} is healthy{gpu} and the least loaded of {others + 1} ({usage})"


class HostLedger:
    """The operations this backend placed on each host whose training there has not ended.

    ``place`` happens in the same event-loop turn as the choice, so two requests decided at
    once never both count a slot as free. ``release`` (training ended on the host, or the
    operation finished) calls ``on_release`` so the host queue looks again at once.
    """

    def __init__(self) -> None:
        self._where: dict[str, tuple[str, int]] = {}  # operation -> (address, mark)
        self._mark = 0
        self.on_release: Callable[[], None] | None = None

    def mark(self) -> int:
        """A point in the ledger's history: ``count(since=mark)`` counts what came after."""
        return self._mark

    def place(self, operation_id: str, address: str) -> None:
        self._mark += 1
        self._where[operation_id] = (address, self._mark)

    def release(self, operation_id: str) -> bool:
        entry = self._where.pop(operation_id, None)
        if entry is None:
            return False
        logger.debug("operation %s: slot on %s released", operation_id, entry[0])
        if self.on_release is not None:
            self.on_release()
        return True

    def count(self, address: str, *, since: int | None = None) -> int:
        """Operations placed on ``address`` (only those placed after ``since``, if given)."""
        return sum(
            1
            for where, mark in self._where.values()
            if where == address and (since is None or mark > since)
        )

    def host_of(self, operation_id: str) -> str | None:
        entry = self._where.get(operation_id)
        return entry[0] if entry is not None else None


__all__ = ["Choice", "HostLedger", "HostSlots", "choose", "placed_reason", "rank"]
