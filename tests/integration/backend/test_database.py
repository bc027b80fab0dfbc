"""Database deadlines: a locked database is retried until the write deadline, the event loop
never waits for a locked writer, the write queue is bounded (real waits of about a second).

Real SQLite files; "another process" holding the write lock is a second connection here:
SQLite locks per connection, the same as across processes.
``tests/e2e/test_database_lock.py`` does it with a real second process."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest

from ktrdr.backend.database import Database, DatabaseBusy
from ktrdr.backend.store import Store
from tests.support.database import record, writer_held
from tests.support.timing import scaled


@contextmanager
def locked(path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection holding the database's write lock."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield other
    finally:
        if other.in_transaction:
            other.execute("COMMIT")
        other.close()


def test_a_locked_database_is_retried_until_the_deadline_then_busy(tmp_path: Path) -> None:
    path = tmp_path / "backend.db"
    database = Database(path, write_deadline_s=0.8)
    store = Store(database)
    try:
        store.insert_operation(record("before"))
        with locked(path):
            started = time.monotonic()
            with pytest.raises(DatabaseBusy) as busy:
                store.insert_operation(record("refused"))
            waited = time.monotonic() - started
            # reads go on while the lock is held elsewhere
            assert store.get_operation("before") is not None
        assert 0.8 <= waited < scaled(0.8 + 2.0), waited
        assert busy.value.code == grpc.StatusCode.UNAVAILABLE
        assert busy.value.message.startswith("database busy, retry shortly")
        assert str(tmp_path) not in busy.value.message
        assert ("retry-after-ms", "1000") in busy.value.trailing_metadata
        assert store.get_operation("refused") is None  # refused means not written

        # released while the writer retries: the write lands (several attempts)
        landed: list[BaseException | None] = []
        with locked(path) as other:
            thread = threading.Thread(
                target=lambda: landed.append(_call(store.insert_operation, record("later")))
            )
            database.write_deadline_s = scaled(10.0)
            thread.start()
            thread.join(0.6)  # the writer meets the lock (busy timeout 0.25 s) and backs off
            assert thread.is_alive()
            other.execute("COMMIT")
        thread.join(scaled(10))
        assert landed == [None]
        assert store.get_operation("later") is not None
    finally:
        database.close()


def _call(fn, *args) -> BaseException | None:  # type: ignore[no-untyped-def]
    try:
        fn(*args)
    except BaseException as exc:
        return exc
    return None


async def test_the_event_loop_never_waits_for_a_locked_writer(tmp_path: Path) -> None:
    path = tmp_path / "backend.db"
    database = Database(path, write_deadline_s=1.0)
    store = await asyncio.to_thread(Store, database)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        with locked(path):
            started = time.monotonic()
            with pytest.raises(DatabaseBusy):
                await store.insert_operation.aio(record("a"))
            waited = time.monotonic() - started
            assert await store.get_operation.aio("a") is None  # a read, while locked
        # the loop kept running the whole second the write waited
        assert ticks >= waited / 0.01 / 4, (ticks, waited)
        with pytest.raises(RuntimeError, match="event loop"):
            store.insert_operation(record("b"))  # a blocking write on the loop is refused
        await store.insert_operation.aio(record("b"))
        assert (await store.get_operation.aio("b")) is not None
    finally:
        ticker.cancel()
        await asyncio.to_thread(database.close)


async def test_the_write_queue_is_bounded(tmp_path: Path) -> None:
    database = Database(tmp_path / "backend.db", queue_bound=2, write_deadline_s=0.5)
    store = await asyncio.to_thread(Store, database)
    try:
        with writer_held(database):
            queued = [
                asyncio.ensure_future(store.insert_operation.aio(record(f"q{i}"))) for i in (1, 2)
            ]
            await asyncio.sleep(0)
            assert database.pending_writes == 2
            with pytest.raises(DatabaseBusy, match="2 writes already wait"):
                await store.insert_operation.aio(record("q3"))  # refused at once
            started = time.monotonic()
            with pytest.raises(DatabaseBusy):  # a thread waits for room until its deadline
                await asyncio.to_thread(store.insert_operation, record("q4"))
            assert time.monotonic() - started >= 0.5
            # the queued ones waited past their deadline: given up, and never written
            for future in queued:
                with pytest.raises(DatabaseBusy):
                    await future
        await asyncio.to_thread(database.flush)
        for op_id in ("q1", "q2", "q3", "q4"):
            assert await store.get_operation.aio(op_id) is None
    finally:
        await asyncio.to_thread(database.close)
