"""A worker thread that decodes and hashes a stream's chunks, fed by a bounded queue.

The event loop only parses messages and hands their bytes over (``put``: a lock and a deque
append); decoding and SHA-256 happen in one pass in the worker, which passes the decoded bytes
on to a ``FileWriter`` (a second thread) when it is given one. All three release the GIL for
large buffers. Compared with a thread hop per chunk (``run_in_executor``), this saves a
future, a wake-up of the loop and a task switch per chunk, and lets the loop receive while
the worker catches up.

Bounded: at most ``max_pending_bytes`` of encoded chunks wait in the queue (always at least one
chunk, so a chunk bigger than the budget still passes); ``put`` waits while the queue is full.
The worker's first error (corrupt data, too much output, a failed write) stops it; the next
``put`` or ``finish`` raises it, so a corrupt chunk mid-stream stops the upload at once.
``close`` always waits for the worker and the writer to stop, so the caller may then close
and remove the file.
"""

from __future__ import annotations

import asyncio
import collections
import threading

from ktrdr.transfer.codecs import Decoder
from ktrdr.transfer.writer import FileWriter

# Encoded bytes that may wait for the worker: a few 1 MiB chunks, enough to keep the worker
# busy while the loop receives, small enough that eight concurrent uploads stay under 64 MiB.
DEFAULT_MAX_PENDING_BYTES = 4 << 20


class ChunkPipeline:
    """Feeds chunks to ``decoder.feed`` in a dedicated worker thread, in order.

    Use from one event loop task: ``await put(data)`` per chunk, then ``await finish()``
    (which also runs ``decoder.finish`` and ``writer.finish``); ``await close()`` in a
    ``finally`` in every case. ``writer``, when given, is the one the decoder's sink writes
    to: the pipeline finishes it after the decoder and stops it with the worker.
    """

    def __init__(
        self,
        decoder: Decoder,
        *,
        writer: FileWriter | None = None,
        max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
    ) -> None:
        if max_pending_bytes <= 0:
            raise ValueError(f"max_pending_bytes must be positive, got {max_pending_bytes}")
        self._decoder = decoder
        self._writer = writer
        self._max_pending = max_pending_bytes
        self._loop = asyncio.get_running_loop()
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)  # the worker waits for chunks on it
        self._queue: collections.deque[bytes | memoryview] = collections.deque()
        self._pending = 0  # bytes in the queue
        self._ending = False  # no more chunks; finish the decoder once the queue is empty
        self._stopping = False  # drop what is queued and stop
        self._error: BaseException | None = None
        self._space: asyncio.Future[None] | None = None  # put() waits on it while full
        self._done: asyncio.Future[None] = self._loop.create_future()
        self.peak_pending_bytes = 0  # most bytes ever queued (for tests and diagnostics)
        self._thread = threading.Thread(target=self._work, name="submit-results", daemon=True)
        self._thread.start()

    async def put(self, data: bytes | memoryview) -> None:
        """Queue one chunk; wait while the queue is full; raise the worker's error, if any."""
        while True:
            with self._lock:
                self._raise_error()
                if self._done.done():
                    raise RuntimeError("the pipeline has stopped")
                if not self._queue or self._pending + len(data) <= self._max_pending:
                    self._queue.append(data)
                    self._pending += len(data)
                    self.peak_pending_bytes = max(self.peak_pending_bytes, self._pending)
                    self._ready.notify()
                    return
                space = self._space = self._loop.create_future()
            await space

    async def finish(self) -> None:
        """Wait until every chunk is decoded and the decoder finished; raise its error."""
        with self._lock:
            self._ending = True
            self._ready.notify()
        await asyncio.shield(self._done)
        with self._lock:
            self._raise_error()

    async def close(self) -> None:
        """Stop the worker (dropping queued chunks) and wait until it has stopped."""
        with self._lock:
            self._stopping = True
            self._queue.clear()
            self._pending = 0
            self._ready.notify()
        if self._writer is not None:  # the worker may be waiting for room in the writer
            self._writer.cancel()
        # Even when cancelled: the worker writes to the caller's file, so wait it out, then
        # let the cancellation continue.
        cancelled = False
        while not self._done.done():
            try:
                await asyncio.shield(self._done)
            except asyncio.CancelledError:
                cancelled = True
        if cancelled:
            raise asyncio.CancelledError

    @property
    def pending_bytes(self) -> int:
        """Bytes of chunks queued or being decoded now."""
        with self._lock:
            return self._pending

    @property
    def waiting_for_space(self) -> bool:
        """True while ``put`` waits for the worker to make room."""
        with self._lock:
            return self._space is not None

    @property
    def stopping(self) -> bool:
        """True once ``close`` has been called."""
        with self._lock:
            return self._stopping

    @property
    def stopped(self) -> bool:
        """True once the worker has stopped (it touches neither decoder nor file any more)."""
        return self._done.done()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    # -- worker thread ---------------------------------------------------------------------
    def _work(self) -> None:
        try:
            while True:
                with self._lock:
                    while not self._queue and not (self._ending or self._stopping):
                        self._ready.wait()
                    if self._stopping:
                        return
                    if not self._queue:  # ending, and everything fed
                        break
                    data = self._queue[0]
                self._decoder.feed(data)
                with self._lock:
                    # Popped only now: the bytes being decoded still count against the bound.
                    if self._queue:
                        self._queue.popleft()
                        self._pending -= len(data)
                    self._wake_producer()
            self._decoder.finish()
            if self._writer is not None:
                self._writer.finish()
        except BaseException as exc:  # handed to the event loop, raised there
            with self._lock:
                self._error = exc
        finally:
            if self._writer is not None:
                self._writer.stop()  # at once if finished; else drop what waits, and join
            with self._lock:
                self._wake_producer()
            self._loop.call_soon_threadsafe(_set_done, self._done)

    def _wake_producer(self) -> None:
        """With the lock held: let a waiting ``put`` try again."""
        if self._space is not None:
            self._loop.call_soon_threadsafe(_set_done, self._space)
            self._space = None


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
