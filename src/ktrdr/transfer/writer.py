"""A file written by a thread of its own, so that writing overlaps hashing.

SHA-256 (~1.3 GB/s a core here) is slower than gRPC's raw byte stream (~1.8 GB/s), and the
page-cache copy of a write costs another ~30 ms per 100 MB: done one after the other in one
thread, they alone cap an upload at about half the raw stream. With the write in a second
thread, the decode thread only hashes and the two overlap where a core is free.

``write`` is called from one producer thread (the pipeline's worker) and blocks while
``max_pending`` pieces wait; pieces must stay unchanged until written (bytes, or views of
bytes). The writer's first error is raised by the next ``write`` or by ``finish``.
"""

from __future__ import annotations

import collections
import threading
from typing import IO

# Pieces (decoded blocks of at most 1 MiB) waiting to be written.
DEFAULT_MAX_PENDING = 4


class WriterStopped(Exception):
    """``write`` was called after ``stop``: the upload is being abandoned."""


class FileWriter:
    """Writes pieces to ``file`` in order, in a thread of its own."""

    def __init__(self, file: IO[bytes], *, max_pending: int = DEFAULT_MAX_PENDING) -> None:
        if max_pending <= 0:
            raise ValueError(f"max_pending must be positive, got {max_pending}")
        self._file = file
        self._max = max_pending
        self._cond = threading.Condition()
        self._items: collections.deque[bytes | memoryview] = collections.deque()
        self._ending = False
        self._stopping = False
        self._error: BaseException | None = None
        self.written = 0  # bytes written so far
        self._thread = threading.Thread(target=self._run, name="submit-results-writer", daemon=True)
        self._thread.start()

    def write(self, data: bytes | memoryview) -> None:
        """Queue ``data``; wait while the queue is full; raise the writer's error, if any."""
        with self._cond:
            while len(self._items) >= self._max and not self._failed_or_stopping():
                self._cond.wait()
            self._raise()
            self._items.append(data)
            self._cond.notify_all()

    def finish(self) -> None:
        """Wait until everything is written and the thread has ended; raise its error."""
        with self._cond:
            self._ending = True
            self._cond.notify_all()
        self._thread.join()
        with self._cond:
            self._raise()

    def cancel(self) -> None:
        """Drop what waits and let the thread end (without waiting for it)."""
        with self._cond:
            self._stopping = True
            self._items.clear()
            self._cond.notify_all()

    def stop(self) -> None:
        """``cancel`` and wait for the thread to end: the file is no longer written after."""
        self.cancel()
        self._thread.join()

    def _failed_or_stopping(self) -> bool:
        return self._error is not None or self._stopping

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error
        if self._stopping:
            raise WriterStopped("the upload is being abandoned")

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._items and not (self._ending or self._stopping):
                        self._cond.wait()
                    if self._stopping or not self._items:
                        return
                    data = self._items[0]
                self._write_all(data)
                with self._cond:
                    if self._items:  # still counted while being written; gone if stopped
                        self._items.popleft()
                    self._cond.notify_all()
        except BaseException as exc:  # raised in the producer thread
            with self._cond:
                self._error = exc
                self._cond.notify_all()

    def _write_all(self, data: bytes | memoryview) -> None:
        # An unbuffered file may write less than asked (a signal, a nearly full disk).
        with memoryview(data) as view:
            while view:
                n = self._file.write(view)
                if n is None or n <= 0:  # non-blocking files only: not ours
                    raise OSError(f"write returned {n!r}")
                self.written += n
                view = view[n:]
