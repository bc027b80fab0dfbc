"""Fan-out of one run's progress events to any number of stream watchers.

The producer (an executor in a worker thread, or a host stream) publishes; each watcher reads
from its own bounded buffer. A slow watcher never slows the producer or other watchers: when
its buffer is full, droppable events (batch, heartbeat) are dropped for it alone; step, epoch
and terminal events are always kept.

``subscribe()`` returns the current snapshot (the latest event) and the live subscription in
one step on the event loop, so a watcher neither misses nor repeats an event.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Subscription(Generic[T]):
    """One watcher's view: iterate for live events; ends after the terminal event."""

    def __init__(self, fanout: EventFanout[T], limit: int) -> None:
        self._fanout = fanout
        self.items: deque[T] = deque()
        self.limit = limit
        self.wakeup = asyncio.Event()
        self.dropped = 0
        self.done = False

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[T]:
        try:
            while not self.done:
                while self.items:
                    event = self.items.popleft()
                    yield event
                    if self._fanout.is_terminal(event):
                        return
                if self._fanout.closed and not self.items:
                    return
                self.wakeup.clear()
                await self.wakeup.wait()
        finally:
            self.close()

    def close(self) -> None:
        self.done = True
        self._fanout._subscriptions.discard(self)
        self.wakeup.set()


class EventFanout(Generic[T]):
    """Publish from any thread; subscribe from the event loop that owns the fan-out."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        droppable: Callable[[T], bool],
        terminal: Callable[[T], bool],
        buffer_limit: int = 256,
    ) -> None:
        self._loop = loop
        self._droppable = droppable
        self.is_terminal = terminal
        self._limit = buffer_limit
        self._subscriptions: set[Subscription[T]] = set()
        self.last: T | None = None  # updated on the loop, in delivery order
        self.closed = False  # True once the terminal event was delivered

    def publish(self, event: T) -> None:
        """Thread-safe: hands ``event`` to every watcher, in publish order, on the loop."""
        if self._loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._deliver(event)
        else:
            self._loop.call_soon_threadsafe(self._deliver, event)

    def _deliver(self, event: T) -> None:
        if self.closed:
            return  # exactly one terminal event; nothing after it
        self.last = event
        if self.is_terminal(event):
            self.closed = True
        for sub in list(self._subscriptions):
            if len(sub.items) >= sub.limit and self._droppable(event):
                sub.dropped += 1
                continue
            sub.items.append(event)
            sub.wakeup.set()

    def subscribe(self) -> tuple[T | None, Subscription[T]]:
        """The latest event (or None) and a subscription to every later one. Loop only."""
        sub: Subscription[T] = Subscription(self, self._limit)
        if not self.closed:
            self._subscriptions.add(sub)
        else:
            sub.done = True
        return self.last, sub

    @property
    def watcher_count(self) -> int:
        return len(self._subscriptions)
