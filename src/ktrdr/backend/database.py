"""``backend.db``: the one class that opens the backend's SQLite database.

Every store (operations, models, sweeps, tokens) lives in this file and reaches it only
through ``Database``, which owns:

- opening: the file's private modes (0600, directory 0700), WAL (a file system that refuses
  it stops the backend with one line), and on every connection ``synchronous=FULL``,
  ``foreign_keys=ON`` and a short busy timeout (``BUSY_TIMEOUT_S``);
- the tables: each store registers its schema and migrations (``migrate``), run once per
  database in the order the stores open;
- writing: ONE writer thread takes jobs from a bounded queue (``QUEUE_BOUND``); each job is
  one transaction. When another process holds the write lock, SQLite waits at most the busy
  timeout, then the writer backs off and retries until the job's deadline
  (``WRITE_DEADLINE_S``); past it the caller gets ``DatabaseBusy`` (UNAVAILABLE "database
  busy, retry shortly", with a retry hint), never a frozen event loop. A full queue is
  refused the same way. Progress snapshots are coalesced (``write_latest``): one queued
  job per key, the latest value wins;
- reading: each thread its own read-only connection, async callers through a small pool of
  reader threads. WAL readers see the last commit and never wait for a writer, not even
  another process's, so reads (and the health service, which reads nothing) stay prompt
  while the writer waits.

Sync calls (``write``, ``read``) are for threads and the CLI: ``write`` refuses to run on an
event loop's thread, where callers await ``awrite`` / ``aread`` instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from queue import Full, Queue
from typing import Any, TypeVar

import grpc

from ktrdr.backend.errors import RequestError
from ktrdr.security.file_modes import private_database
from ktrdr.service.disk import is_database_busy
from ktrdr.transfer.refusals import refusal_metadata

logger = logging.getLogger(__name__)

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], T]

BUSY_TIMEOUT_S = 0.25  # SQLite's own wait for another connection's lock, per attempt
WRITE_DEADLINE_S = 5.0  # a write's whole budget: queued, attempts and backoff
OPEN_DEADLINE_S = 30.0  # migrations at start-up
QUEUE_BOUND = 256
RETRY_FIRST_S = 0.05
RETRY_MAX_S = 0.5
RETRY_AFTER_S = 1.0  # the hint a refused caller gets
READ_THREADS = 4


class DatabaseBusy(RequestError):
    """A write that could not get the database before its deadline (another process holds
    the write lock, or too many writes wait): UNAVAILABLE, retry shortly."""

    def __init__(self, why: str, retry_after_s: float = RETRY_AFTER_S) -> None:
        super().__init__(
            grpc.StatusCode.UNAVAILABLE,
            f"database busy, retry shortly: {why}; retry in {retry_after_s:g} s or more",
        )
        self.retry_after_s = retry_after_s
        self.trailing_metadata = refusal_metadata(final=False, retry_after_s=retry_after_s)


class WalRefused(RuntimeError):
    """The file system refused SQLite's WAL mode: the backend does not start."""


def is_busy(exc: BaseException) -> bool:
    """SQLITE_BUSY / SQLITE_LOCKED (also extended codes): another connection holds a lock."""
    return isinstance(exc, DatabaseBusy) or (
        isinstance(exc, sqlite3.OperationalError) and is_database_busy(exc)
    )


def on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@dataclass
class _Write:
    job: Job[Any] | None  # None: a coalesced write, its job is in Database._latest
    future: concurrent.futures.Future[Any]
    deadline: float
    key: Hashable = None
    transaction: bool = True


class Database:
    """``backend.db``'s connections, pragmas, migrations and its one writer (see module)."""

    def __init__(
        self,
        path: Path | str,
        *,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
        write_deadline_s: float = WRITE_DEADLINE_S,
        queue_bound: int = QUEUE_BOUND,
        synchronous: str = "FULL",
    ) -> None:
        """``synchronous`` other than FULL is for benchmarks that fill a database."""
        if synchronous not in ("FULL", "NORMAL", "OFF"):
            raise ValueError(f"synchronous: {synchronous!r} is not FULL, NORMAL or OFF")
        self.synchronous = synchronous
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self.write_deadline_s = write_deadline_s
        private_database(self.path)  # 0700 directory, 0600 file, before SQLite opens it
        self._writer = self._connect(read_only=False)
        mode = self._writer.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            self._writer.close()
            raise WalRefused(
                f"{self.path}: SQLite refused WAL mode (got {mode!r}); put the backend's data "
                "directory on a local file system that supports it"
            )
        self._queue: Queue[_Write | None] = Queue(maxsize=queue_bound)
        self._lock = threading.Lock()
        self._latest: dict[Hashable, tuple[Job[Any], float]] = {}
        self._migrated: set[str] = set()
        self._readers: list[sqlite3.Connection] = []
        self._local = threading.local()
        self._closed = False
        self._pool = concurrent.futures.ThreadPoolExecutor(READ_THREADS, "backend-db-read")
        self._thread = threading.Thread(target=self._write_loop, name="backend-db-writer")
        self._thread.daemon = True
        self._thread.start()

    # -- connections -----------------------------------------------------------------------
    def _connect(self, *, read_only: bool) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=self.busy_timeout_s
        )
        db.row_factory = sqlite3.Row
        db.execute(f"PRAGMA synchronous={self.synchronous}")
        db.execute("PRAGMA foreign_keys=ON")
        if read_only:
            db.execute("PRAGMA query_only=ON")  # every change goes through the writer
        return db

    def _reader(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            if self._closed:
                raise RuntimeError(f"{self.path}: the database is closed")
            db = self._connect(read_only=True)
            with self._lock:
                self._readers.append(db)
            self._local.db = db
        return db

    def close(self) -> None:
        """Stop the writer (after the jobs queued before), close every connection."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(None)
        self._thread.join()
        self._pool.shutdown(wait=True)
        with self._lock:
            readers, self._readers = self._readers, []
        for db in [*readers, self._writer]:
            db.close()

    # -- schema ----------------------------------------------------------------------------
    def migrate(self, name: str, job: Callable[[sqlite3.Connection], None]) -> None:
        """Run a store's schema and migrations (``job``, idempotent) once per database.

        ``job`` runs on the writer without a surrounding transaction (it may use
        ``executescript``); start-up only, so it may run on the event loop's thread.
        """
        with self._lock:
            if name in self._migrated:
                return
        self._wait(self._enqueue(job, OPEN_DEADLINE_S, block=True, transaction=False))
        with self._lock:
            self._migrated.add(name)

    # -- reading ---------------------------------------------------------------------------
    def read(self, job: Job[T]) -> T:
        """``job`` on this thread's read connection, in one read transaction (a snapshot)."""
        db = self._reader()
        db.execute("BEGIN")
        try:
            return job(db)
        finally:
            db.execute("COMMIT")

    async def aread(self, job: Job[T]) -> T:
        """``read`` in a reader thread: the event loop never waits for the database."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.read, job)

    @property
    def pending_writes(self) -> int:
        """Write jobs queued now (not counting the one running)."""
        return self._queue.qsize()

    def flush(self) -> None:
        """Wait (threads only) until every write queued before has run."""
        self.write(lambda db: None)

    # -- writing ---------------------------------------------------------------------------
    def write(self, job: Job[T], *, deadline_s: float | None = None) -> T:
        """Run ``job`` in one write transaction on the writer; waits (threads only) for its
        result, or ``DatabaseBusy`` once ``deadline_s`` (default ``WRITE_DEADLINE_S``) ran out."""
        if on_event_loop():
            raise RuntimeError(
                "a blocking database write on the event loop: await the store method's "
                ".aio(...) (Database.awrite) instead"
            )
        return self._wait(self._enqueue(job, self._budget(deadline_s), block=True))

    async def awrite(self, job: Job[T], *, deadline_s: float | None = None) -> T:
        """``write`` for the event loop: a full queue is refused at once (``DatabaseBusy``);
        cancelled while queued, the job does not run (one already running still lands)."""
        item = self._enqueue(job, self._budget(deadline_s), block=False)
        wrapped = asyncio.wrap_future(item.future)
        try:
            done, _ = await asyncio.wait({wrapped}, timeout=self._left(item.deadline))
        except asyncio.CancelledError:
            item.future.cancel()
            raise
        if not done:
            if item.future.cancel():
                raise self._queued_too_long()
            return await wrapped  # running: the writer ends it by its deadline
        return wrapped.result()

    def write_latest(
        self, key: Hashable, job: Job[Any], *, deadline_s: float | None = None
    ) -> None:
        """Queue ``job`` without waiting for it, replacing a queued one of the same ``key``
        (progress snapshots: the latest per operation wins). Best effort: a full queue or a
        busy database drops it, with a log line."""
        deadline = time.monotonic() + self._budget(deadline_s)
        with self._lock:
            queued = key in self._latest
            self._latest[key] = (job, deadline)
            if queued:
                return
            try:
                item = self._enqueue(None, self._budget(deadline_s), block=False, key=key)
            except DatabaseBusy as exc:
                del self._latest[key]
                logger.warning("%s dropped: %s", key, exc.message)
                return
        item.future.add_done_callback(_log_dropped(key))

    def _budget(self, deadline_s: float | None) -> float:
        return self.write_deadline_s if deadline_s is None else deadline_s

    @staticmethod
    def _left(deadline: float) -> float:
        return max(deadline - time.monotonic(), 0.0)

    def _queued_too_long(self) -> DatabaseBusy:
        return DatabaseBusy(
            f"{self._queue.qsize()} writes wait for another process's lock on {self.path.name}"
        )

    def _enqueue(
        self,
        job: Job[Any] | None,
        budget_s: float,
        *,
        block: bool,
        key: Hashable = None,
        transaction: bool = True,
    ) -> _Write:
        if self._closed:
            raise RuntimeError(f"{self.path}: the database is closed")
        deadline = time.monotonic() + budget_s
        item = _Write(job, concurrent.futures.Future(), deadline, key, transaction)
        try:
            if block:
                self._queue.put(item, timeout=max(budget_s, 0.001))
            else:
                self._queue.put_nowait(item)
        except Full:
            raise DatabaseBusy(
                f"{self._queue.maxsize} writes already wait for {self.path.name}"
            ) from None
        return item

    def _wait(self, item: _Write) -> Any:
        try:
            return item.future.result(timeout=self._left(item.deadline))
        except concurrent.futures.TimeoutError:
            if item.future.cancel():
                raise self._queued_too_long() from None
            return item.future.result()  # running: the writer ends it by its deadline

    # -- the writer thread -----------------------------------------------------------------
    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if not item.future.set_running_or_notify_cancel():
                continue  # its caller gave up while it was queued
            job, deadline = item.job, item.deadline
            if job is None:  # coalesced: the latest job of its key
                with self._lock:
                    job, deadline = self._latest.pop(item.key)
            try:
                result = self._attempts(job, deadline, transaction=item.transaction)
            except BaseException as exc:  # handed to the caller, whatever it is
                item.future.set_exception(exc)
            else:
                item.future.set_result(result)

    def _attempts(self, job: Job[T], deadline: float, *, transaction: bool) -> T:
        """``job`` until it is not refused by a lock, backing off, until ``deadline``."""
        wait = RETRY_FIRST_S
        attempts = 0
        while True:
            attempts += 1
            try:
                return self._transaction(job) if transaction else job(self._writer)
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise
                left = self._left(deadline)
                if left <= 0:
                    logger.warning(
                        "%s: write lock held elsewhere; a write gave up after %d attempts",
                        self.path,
                        attempts,
                    )
                    raise DatabaseBusy(
                        f"another process holds the write lock on {self.path.name}"
                    ) from None
                time.sleep(min(wait, left))
                wait = min(wait * 2, RETRY_MAX_S)

    def _transaction(self, job: Job[T]) -> T:
        db = self._writer
        db.execute("BEGIN IMMEDIATE")
        try:
            result = job(db)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                try:
                    db.execute("ROLLBACK")
                except sqlite3.Error:
                    logger.exception("%s: rollback failed", self.path)
            raise
        return result


def _log_dropped(key: Hashable) -> Callable[[concurrent.futures.Future[Any]], None]:
    def done(future: concurrent.futures.Future[Any]) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if isinstance(exc, DatabaseBusy):
            logger.warning("%s not written: %s", key, exc.message)
        elif exc is not None:
            logger.error("%s not written", key, exc_info=exc)

    return done


__all__ = [
    "BUSY_TIMEOUT_S",
    "WRITE_DEADLINE_S",
    "Database",
    "DatabaseBusy",
    "WalRefused",
    "is_busy",
    "on_event_loop",
]
