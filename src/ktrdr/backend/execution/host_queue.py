"""The host queue: host operations that wait, in order, for a free slot on a training host.

A ``host`` request that finds every healthy host busy joins the queue as PENDING; it never
trains in the backend because hosts are busy. One dispatcher task asks the hosts again
(``ModeSelector.probe_all``) when something may have changed: a training this backend placed
ended on its host (the ledger's release), an operation joined, or every ``poll_s`` while
anything waits (another backend's session may have ended). Each round walks the queue in
order and places every operation that fits (``placement.choose``, booking the slot in the
ledger at once), so the first in line gets the first slot it can use; one that needs a GPU
does not hold back one behind it that can use a free CPU host.

While no host is known at all and hosts may register themselves, operations wait (a host
that registers wakes the queue). An operation whose hosts are all gone (none healthy) is
decided by the request rule: with
``require_gpu`` it fails (FAILED_PRECONDITION), without it it falls back to a local run and
says so. The queue is bounded (``limit``): ``check_room`` refuses with RESOURCE_EXHAUSTED.
Queued operations live in the store as PENDING host operations without a host, so a
restarted backend queues them again in their original order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc

from ktrdr.backend.errors import RequestError
from ktrdr.backend.execution.mode_selector import (
    NO_HOST_YET,
    ModeSelector,
    ModeUnavailable,
    misconfiguration_refusal,
)
from ktrdr.backend.execution.placement import choose, placed_reason
from ktrdr.backend.live import LiveOperation
from ktrdr.service.convert import simple_event
from ktrdr.training.progress import ProgressKind
from ktrdr.training.v1 import backend_pb2 as pb

logger = logging.getLogger(__name__)

# Queue positions up to this one are published on every move (see HostQueue._renumber).
PUBLISHED_POSITIONS = 10


@dataclass(frozen=True)
class Placement:
    """Where a queued operation goes: a host, or local when no host is healthy any more."""

    mode: int
    reason: str
    host_address: str = ""

    @property
    def fallback(self) -> bool:
        return self.mode == pb.EXECUTION_MODE_LOCAL


@dataclass
class Waiting:
    """One queued operation; ``placed`` resolves to its ``Placement`` (None: it left)."""

    op: LiveOperation
    require_gpu: bool
    origin: str  # "host" or "host (the default mode)"
    placed: asyncio.Future[Placement | None]
    why: str = "waiting for a free host slot"  # e.g. "3 hosts busy"
    since: float = field(default_factory=time.monotonic)
    reason: str = ""  # shown while it waits: "3 hosts busy, 4 queued (this one 2nd)"
    position: int = 0
    refusals: int = 0  # times a host refused it as full after it was placed


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


class HostQueue:
    """FIFO of ``Waiting`` operations and the task that places them."""

    def __init__(self, selector: ModeSelector, *, limit: int, poll_s: float) -> None:
        self.selector = selector
        self.ledger = selector.ledger
        self.limit = limit
        self.poll_s = poll_s
        self._waiting: list[Waiting] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.ledger.on_release = self.wake

    def __len__(self) -> int:
        return len(self._waiting)

    def __iter__(self) -> Iterator[Waiting]:
        return iter(list(self._waiting))

    def check_room(self) -> None:
        """RESOURCE_EXHAUSTED when ``limit`` operations already wait."""
        if len(self._waiting) >= self.limit:
            raise RequestError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"every healthy training host is busy and {len(self._waiting)} host "
                f"operations already wait for a slot (limit {self.limit}, "
                "KTRDR_BACKEND_MAX_HOST_QUEUE); try again when some have started, train with "
                "--mode local, or raise the limit",
            )

    # -- joining and leaving ---------------------------------------------------------------
    def join(self, op: LiveOperation, *, origin: str, why: str = "", refusals: int = 0) -> Waiting:
        """Queue ``op``: at the end, or first when a host refused it as full after it was
        placed (``refusals`` > 0)."""
        entry = Waiting(
            op,
            op.record.require_gpu,
            origin,
            asyncio.get_running_loop().create_future(),
            refusals=refusals,
        )
        if why:
            entry.why = why
        if refusals:
            self._waiting.insert(0, entry)
        else:
            self._waiting.append(entry)
        self._renumber()
        self.wake()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._dispatch(), name="host-queue")
        return entry

    def leave(self, operation_id: str) -> bool:
        """Take an operation out of the queue (cancelled); False when it is not queued."""
        for entry in self._waiting:
            if entry.op.id == operation_id:
                self._waiting.remove(entry)
                if not entry.placed.done():
                    entry.placed.set_result(None)
                self._renumber()
                return True
        return False

    def status(self, operation_id: str) -> Waiting | None:
        for entry in self._waiting:
            if entry.op.id == operation_id:
                return entry
        return None

    def wake(self) -> None:
        self._wake.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for entry in self._waiting:
            if not entry.placed.done():
                entry.placed.cancel()

    # -- dispatching -----------------------------------------------------------------------
    async def _dispatch(self) -> None:
        while True:
            if self._waiting:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_s)
            else:
                await self._wake.wait()
            self._wake.clear()
            if not self._waiting:
                continue
            try:
                await self._round()
            except Exception:  # a round must never end the dispatcher
                logger.exception("host queue: placing waiting operations failed")

    async def _round(self) -> None:
        if self.selector.waits_for_registration():  # nothing to ask until a host registers
            for entry in self._waiting:
                entry.why = NO_HOST_YET
            self._renumber()
            return
        probes = await self.selector.probe_all()
        seen = "; ".join(p.describe() for p in probes)
        for entry in list(self._waiting):
            if entry.placed.done() or entry.op.finished:
                self._waiting.remove(entry)
                continue
            choice = choose(self.selector.slots(probes), want_gpu=entry.require_gpu)
            waited = f"after {time.monotonic() - entry.since:.1f} s in the queue"
            if choice.host is not None:
                self.ledger.place(entry.op.id, choice.host.address)
                reason = f"{entry.origin}: {placed_reason(choice.host, choice)} ({waited})"
                self._resolve(entry, Placement(pb.EXECUTION_MODE_HOST, reason, choice.host.address))
            elif not choice.eligible and entry.require_gpu:
                self._waiting.remove(entry)
                entry.placed.set_exception(
                    ModeUnavailable(
                        f"{entry.origin} with require_gpu: no healthy training host with a GPU "
                        f"is left ({waited}; {seen})"
                    )
                )
            elif not choice.eligible and (
                refusal := misconfiguration_refusal(f"{entry.origin} ({waited})", probes)
            ):
                self._waiting.remove(entry)
                entry.placed.set_exception(refusal)
            elif not choice.eligible:
                reason = (
                    f"{entry.origin}: fell back to local {waited}, no training host is healthy "
                    f"({seen})"
                )
                logger.warning("operation %s: %s", entry.op.id, reason)
                self._resolve(entry, Placement(pb.EXECUTION_MODE_LOCAL, reason))
            else:
                entry.why = choice.busy_text(detail=False)
        self._renumber()

    def _resolve(self, entry: Waiting, placement: Placement) -> None:
        self._waiting.remove(entry)
        entry.placed.set_result(placement)

    def _renumber(self) -> None:
        """Give each waiting operation its position and reason, and publish them as an event
        when the reason changed; a move further back than ``PUBLISHED_POSITIONS`` is
        published every tenth place only (each event is a database write; GetOperation
        always has the current position)."""
        total = len(self._waiting)
        for position, entry in enumerate(self._waiting, start=1):
            reason = f"{entry.why}, {total} queued (this one {_ordinal(position)})"
            moved_only = entry.reason.startswith(f"{entry.why}, ")
            entry.position = position
            if reason == entry.reason:
                continue
            entry.reason = reason
            if moved_only and position > PUBLISHED_POSITIONS and position % 10:
                continue
            entry.op.publish(simple_event(ProgressKind.ACCEPTED, f"queued: {reason}"))


__all__ = ["HostQueue", "Placement", "Waiting"]
