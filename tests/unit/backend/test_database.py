"""Database: one owner of backend.db's connections, pragmas, migrations and its one writer.

Real SQLite files; "another process" holding the write lock is a second connection here
(the unit tier starts no processes): SQLite locks per connection, the same as across
processes. ``tests/e2e/test_database_lock.py`` does it with a real second process.
"""

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

from ktrdr.backend.auth.token_store import TokenStore
from ktrdr.backend.database import Database, DatabaseBusy
from ktrdr.backend.store import Store
from ktrdr.backend.sweeps.store import SweepStore, TrialRecord
from ktrdr.service.convert import simple_event
from ktrdr.training.progress import ProgressKind
from ktrdr.training.v1 import backend_pb2 as pb
from tests.support.timing import scaled, wait_until
from tests.unit.backend.test_store import record


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


@contextmanager
def writer_held(database: Database) -> Iterator[threading.Event]:
    """The writer thread busy with one job until the event is set."""
    started, release = threading.Event(), threading.Event()

    def hold() -> None:
        def job(db: sqlite3.Connection) -> None:
            started.set()
            release.wait(scaled(30))

        database.write(job)

    thread = threading.Thread(target=hold)
    thread.start()
    assert started.wait(scaled(10))
    try:
        yield release
    finally:
        release.set()
        thread.join()


def writer_threads() -> int:
    return sum(t.name == "backend-db-writer" and t.is_alive() for t in threading.enumerate())


def test_every_store_shares_one_writer_and_the_same_pragmas(tmp_path: Path) -> None:
    before = writer_threads()
    database = Database(tmp_path / "backend.db")
    stores = [Store(database), SweepStore(database), TokenStore(database)]
    try:
        assert writer_threads() == before + 1
        pragmas = "SELECT * FROM pragma_journal_mode, pragma_foreign_keys, pragma_synchronous"
        assert tuple(database.read(lambda db: db.execute(pragmas).fetchone())) == ("wal", 1, 2)
        assert tuple(database.write(lambda db: db.execute(pragmas).fetchone())) == ("wal", 1, 2)
        # foreign keys hold for the sweeps store too (it never turned them on by itself)
        trial = TrialRecord("no-such-sweep", 0, pb.TRIAL_STATUS_RUNNING, {}, 1)
        with pytest.raises(sqlite3.IntegrityError):
            stores[1].put_trial(trial)
        # reads cannot write: every change goes through the writer
        with pytest.raises(sqlite3.OperationalError):
            database.read(lambda db: db.execute("DELETE FROM operations"))
        assert (tmp_path / "backend.db").stat().st_mode & 0o777 == 0o600
    finally:
        for store in stores:
            store.close()  # shared: closes nothing
        database.close()
    assert writer_threads() == before


def test_migrations_run_once_per_database_and_upgrade_an_older_file(tmp_path: Path) -> None:
    path = tmp_path / "backend.db"
    old = sqlite3.connect(path)  # an operations table from the first release
    old.execute(
        "CREATE TABLE operations (id TEXT PRIMARY KEY, status INTEGER NOT NULL, strategy_name "
        "TEXT NOT NULL, strategy_yaml TEXT NOT NULL, overrides BLOB NOT NULL, requested_mode "
        "INTEGER NOT NULL, mode INTEGER NOT NULL, mode_reason TEXT NOT NULL, host_address TEXT "
        "NOT NULL, require_gpu INTEGER NOT NULL, created_us INTEGER NOT NULL, started_us "
        "INTEGER, finished_us INTEGER, last_event BLOB, error BLOB, result BLOB, model_version "
        "INTEGER, model_path TEXT, bundle_sha256 TEXT)"
    )
    old.commit()
    old.close()
    database = Database(path)
    try:
        store = Store(database)
        columns = database.read(
            lambda db: {row[1] for row in db.execute("PRAGMA table_info(operations)")}
        )
        assert {"owner", "upload_credential_sha256", "fallback"} <= columns
        store.insert_operation(record("a"))
        assert store.get_operation("a") is not None
        runs: list[int] = []
        database.migrate("counted", lambda db: runs.append(1))
        database.migrate("counted", lambda db: runs.append(1))
        Store(database)  # a second store on the same database migrates nothing again
        assert runs == [1]
    finally:
        database.close()


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


def test_progress_snapshots_are_coalesced_latest_wins(tmp_path: Path) -> None:
    database = Database(tmp_path / "backend.db")
    store = Store(database)
    try:
        store.insert_operation(record("a"))
        store.insert_operation(record("b"))
        with writer_held(database):
            for i in range(200):
                store.save_progress("a", simple_event(ProgressKind.HEARTBEAT, f"a{i}"))
                store.save_progress("b", simple_event(ProgressKind.HEARTBEAT, f"b{i}"))
            assert database.pending_writes == 2  # one per operation, however many came
        database.flush()
        assert store.get_operation("a").last_event.message == "a199"  # type: ignore[union-attr]
        assert store.get_operation("b").last_event.message == "b199"  # type: ignore[union-attr]
        # queued again once written
        store.save_progress("a", simple_event(ProgressKind.HEARTBEAT, "again"))
        wait_until(
            lambda: store.get_operation("a").last_event.message == "again",  # type: ignore[union-attr]
            5,
            "the next snapshot",
        )
    finally:
        database.close()
