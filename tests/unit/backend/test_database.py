"""Database: one owner of backend.db's connections, pragmas, migrations and its one writer.

Real SQLite files, no waiting for deadlines: the locked-database and full-queue deadlines
are in ``tests/integration/backend/test_database.py``."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from ktrdr.backend.auth.token_store import TokenStore
from ktrdr.backend.database import Database
from ktrdr.backend.store import Store
from ktrdr.backend.sweeps.store import SweepStore, TrialRecord
from ktrdr.service.convert import simple_event
from ktrdr.training.progress import ProgressKind
from ktrdr.training.v1 import backend_pb2 as pb
from tests.support.database import record, writer_held
from tests.support.timing import wait_until


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
