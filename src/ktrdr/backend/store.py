"""The backend's durable state in SQLite (WAL): operations, model registry, runtime config.

The tables live in ``Database`` (``backend.db``): every change is one transaction on its
writer thread, so a crash leaves each operation either before or after a transition, never
half-way; reads never wait for the writer. Methods are called from threads as they are and
awaited from the event loop as ``store.method.aio(...)`` (``ktrdr.backend.tables``).
Progress snapshots are coalesced (the latest per operation wins); they, errors and results
are stored as serialized protobuf messages.

Strategy status is derived from the operations and models tables in one query, so it can
never disagree with them: TRAINING while an operation is pending or running, FAILED when the
latest finished (non-cancelled) operation failed, TRAINED when a model is stored, otherwise
UNTRAINED.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ktrdr.backend.database import Database
from ktrdr.backend.records import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    ModelRecord,
    OperationRecord,
    StrategyRecord,
    blob,
    model_record,
    now_us,
    operation_record,
)
from ktrdr.backend.tables import Tables, reads, writes
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS operations (
    id TEXT PRIMARY KEY,
    status INTEGER NOT NULL,
    strategy_name TEXT NOT NULL,
    strategy_yaml TEXT NOT NULL,
    overrides BLOB NOT NULL,
    requested_mode INTEGER NOT NULL,
    mode INTEGER NOT NULL,
    mode_reason TEXT NOT NULL,
    host_address TEXT NOT NULL,
    require_gpu INTEGER NOT NULL,
    created_us INTEGER NOT NULL,
    started_us INTEGER,
    finished_us INTEGER,
    last_event BLOB,
    error BLOB,
    result BLOB,
    model_version INTEGER,
    model_path TEXT,
    bundle_sha256 TEXT
);
CREATE INDEX IF NOT EXISTS operations_by_time ON operations (created_us DESC, id DESC);
CREATE INDEX IF NOT EXISTS operations_by_strategy ON operations (strategy_name, created_us);
CREATE TABLE IF NOT EXISTS models (
    strategy_name TEXT NOT NULL,
    version INTEGER NOT NULL,
    path TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    test_metrics TEXT NOT NULL,
    operation_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (strategy_name, version)
);
CREATE TABLE IF NOT EXISTS config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- Listings: one row per (model, numeric test metric), for ListModels' order_by; indexes for
-- ListStrategies' per-strategy lookups (each a seek, not a scan of the strategy's history).
CREATE TABLE IF NOT EXISTS model_metrics (
    strategy_name TEXT NOT NULL,
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (strategy_name, version, name)
);
CREATE INDEX IF NOT EXISTS model_metrics_up
    ON model_metrics (name, value, strategy_name, version);
CREATE INDEX IF NOT EXISTS model_metrics_down
    ON model_metrics (name, value DESC, strategy_name, version);
CREATE INDEX IF NOT EXISTS model_metrics_by_strategy
    ON model_metrics (name, strategy_name, value, version);
CREATE INDEX IF NOT EXISTS operations_by_strategy_status
    ON operations (strategy_name, status, finished_us);
"""
# Columns added after the first release: added to an older database when it is opened.
_ADDED_COLUMNS = {
    "owner": "TEXT NOT NULL DEFAULT ''",
    "upload_credential_sha256": "TEXT",
    "expected_sha256": "TEXT",
    "expected_size": "INTEGER",
    "fallback": "INTEGER NOT NULL DEFAULT 0",
}
_ADDED_MODEL_COLUMNS = {
    # 1 once the operation's CreateTraining tags were copied to the model (ModelRegistry).
    "tags_seeded": "INTEGER NOT NULL DEFAULT 0",
}
# model_metrics filled from models.test_metrics (once, for a database from before the table).
LISTING_SCHEMA_KEY = "listing_schema"
LISTING_SCHEMA = "1"


def _insert_metrics(
    db: sqlite3.Connection, strategy_name: str, version: int, metrics: Mapping[str, object]
) -> None:
    """The model's numeric, non-NaN test metrics as rows of ``model_metrics``."""
    db.executemany(
        "INSERT OR REPLACE INTO model_metrics (strategy_name, version, name, value) "
        "VALUES (?, ?, ?, ?)",
        [
            (strategy_name, version, str(name), float(value))
            for name, value in metrics.items()
            if isinstance(value, int | float) and not isinstance(value, bool) and value == value
        ],
    )


def _migrate(db: sqlite3.Connection) -> None:
    """The operations, models, config and listing tables; columns added since the first
    release are added to an older database."""
    db.executescript(_SCHEMA)
    present = {row[1] for row in db.execute("PRAGMA table_info(operations)")}
    for column, definition in _ADDED_COLUMNS.items():
        if column not in present:
            db.execute(f"ALTER TABLE operations ADD COLUMN {column} {definition}")
    present = {row[1] for row in db.execute("PRAGMA table_info(models)")}
    for column, definition in _ADDED_MODEL_COLUMNS.items():
        if column not in present:
            db.execute(f"ALTER TABLE models ADD COLUMN {column} {definition}")
    db.execute(
        "CREATE INDEX IF NOT EXISTS models_unseeded ON models (strategy_name, version) "
        "WHERE tags_seeded = 0"
    )
    listed = _config(db, LISTING_SCHEMA_KEY) == LISTING_SCHEMA
    if not listed and not db.execute("SELECT 1 FROM models").fetchone():
        _put_config(db, LISTING_SCHEMA_KEY, LISTING_SCHEMA)  # nothing to backfill


def _config(db: sqlite3.Connection, key: str) -> str | None:
    row = db.execute("SELECT value FROM config WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def _put_config(db: sqlite3.Connection, key: str, value: str) -> None:
    db.execute(
        "INSERT INTO config (key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def _progress_job(
    operation_id: str, event: common_pb2.ProgressEvent
) -> Callable[[sqlite3.Connection], None]:
    data = event.SerializeToString()

    def job(db: sqlite3.Connection) -> None:
        db.execute(
            "UPDATE operations SET last_event = ? WHERE id = ? AND status IN (?, ?)",
            (data, operation_id, *ACTIVE_STATUSES),
        )

    return job


class Store(Tables):
    """The operations and models of ``backend.db`` (a shared ``Database``, or a path)."""

    def __init__(self, database: Database | Path | str) -> None:
        super().__init__(database)
        self.database.migrate("operations", _migrate)
        self._listings_ready = self.get_config(LISTING_SCHEMA_KEY) == LISTING_SCHEMA

    def prepare_listings(self) -> int:
        """Fill the listing tables of a database from before them (once; blocking, so the
        backend calls it in a worker thread at start-up). Returns the models backfilled."""
        if self._listings_ready:
            return 0
        count = self._backfill_listings()
        self._listings_ready = True
        if count:
            logger.info("listings: %d stored model(s) indexed for ListModels", count)
        return count

    @writes
    def _backfill_listings(self, db: sqlite3.Connection) -> int:
        if _config(db, LISTING_SCHEMA_KEY) == LISTING_SCHEMA:
            return 0
        db.execute("DELETE FROM model_metrics")
        count = 0
        for row in db.execute("SELECT strategy_name, version, test_metrics FROM models").fetchall():
            _insert_metrics(db, row[0], row[1], json.loads(row[2]))
            count += 1
        _put_config(db, LISTING_SCHEMA_KEY, LISTING_SCHEMA)
        return count

    # -- operations ------------------------------------------------------------------------
    @writes
    def insert_operation(self, db: sqlite3.Connection, record: OperationRecord) -> None:
        db.execute(
            "INSERT INTO operations (id, status, strategy_name, strategy_yaml, overrides, "
            "requested_mode, mode, mode_reason, host_address, require_gpu, created_us, "
            "last_event, owner, upload_credential_sha256, fallback) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                record.id,
                record.status,
                record.strategy_name,
                record.strategy_yaml,
                blob(record.overrides),
                record.requested_mode,
                record.mode,
                record.mode_reason,
                record.host_address,
                int(record.require_gpu),
                record.created_us,
                blob(record.last_event),
                record.owner,
                record.upload_credential_sha256,
                int(record.fallback),
            ),
        )

    @writes
    def place_operation(
        self,
        db: sqlite3.Connection,
        operation_id: str,
        *,
        mode: int,
        host_address: str,
        mode_reason: str,
        upload_credential_sha256: str | None,
    ) -> bool:
        """Where a queued operation goes after all (a host, or local as a fallback)."""
        cur = db.execute(
            "UPDATE operations SET mode = ?, host_address = ?, mode_reason = ?, "
            "upload_credential_sha256 = ?, fallback = ? WHERE id = ? AND status = ?",
            (
                mode,
                host_address,
                mode_reason,
                upload_credential_sha256,
                int(mode == pb.EXECUTION_MODE_LOCAL),
                operation_id,
                pb.OPERATION_STATUS_PENDING,
            ),
        )
        return cur.rowcount == 1

    @writes
    def set_expected_bundle(
        self, db: sqlite3.Connection, operation_id: str, sha256: str, size: int
    ) -> None:
        """Record the bundle a host announced for an operation (first announcement wins)."""
        db.execute(
            "UPDATE operations SET expected_sha256 = ?, expected_size = ? "
            "WHERE id = ? AND expected_sha256 IS NULL",
            (sha256, size, operation_id),
        )

    @reads
    def count_pending(self, db: sqlite3.Connection, owner: str | None = None) -> int:
        """PENDING operations, of everyone or of one ``owner``."""
        sql = "SELECT COUNT(*) FROM operations WHERE status = ?"
        args: list[object] = [pb.OPERATION_STATUS_PENDING]
        if owner is not None:
            sql += " AND owner = ?"
            args.append(owner)
        row = db.execute(sql, args).fetchone()
        return int(row[0])

    @reads
    def get_operation(self, db: sqlite3.Connection, operation_id: str) -> OperationRecord | None:
        row = db.execute("SELECT * FROM operations WHERE id = ?", (operation_id,)).fetchone()
        return None if row is None else operation_record(row)

    @reads
    def list_operations(
        self,
        db: sqlite3.Connection,
        *,
        status: int = 0,
        strategy_name: str = "",
        owner: str = "",
        limit: int = 50,
        after: tuple[int, str] | None = None,
    ) -> list[OperationRecord]:
        """Newest first; ``after`` is the (created_us, id) of the previous page's last row."""
        where: list[str] = []
        args: list[object] = []
        if owner:
            where.append("owner = ?")
            args.append(owner)
        if status:
            where.append("status = ?")
            args.append(status)
        if strategy_name:
            where.append("strategy_name = ?")
            args.append(strategy_name)
        if after is not None:
            where.append("(created_us < ? OR (created_us = ? AND id < ?))")
            args += [after[0], after[0], after[1]]
        sql = "SELECT * FROM operations"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_us DESC, id DESC LIMIT ?"
        rows = db.execute(sql, [*args, limit]).fetchall()
        return [operation_record(row) for row in rows]

    @reads
    def active_operations(self, db: sqlite3.Connection) -> list[OperationRecord]:
        rows = db.execute(
            "SELECT * FROM operations WHERE status IN (?, ?) ORDER BY created_us",
            ACTIVE_STATUSES,
        ).fetchall()
        return [operation_record(row) for row in rows]

    @writes
    def mark_running(self, db: sqlite3.Connection, operation_id: str) -> bool:
        """PENDING -> RUNNING; False when the operation is no longer pending."""
        cur = db.execute(
            "UPDATE operations SET status = ?, started_us = ? WHERE id = ? AND status = ?",
            (pb.OPERATION_STATUS_RUNNING, now_us(), operation_id, pb.OPERATION_STATUS_PENDING),
        )
        return cur.rowcount == 1

    def save_progress(self, operation_id: str, event: common_pb2.ProgressEvent) -> None:
        """Snapshot the latest event of an active operation (finished ones keep theirs).

        Never waits (from the event loop or a thread): queued, coalesced with the operation's
        snapshot still queued (the latest wins), best effort (``Database.write_latest``)."""
        self.database.write_latest(("progress", operation_id), _progress_job(operation_id, event))

    @writes
    def finish(
        self,
        db: sqlite3.Connection,
        operation_id: str,
        status: int,
        event: common_pb2.ProgressEvent,
        *,
        error: common_pb2.ErrorDetail | None = None,
        result: common_pb2.ResultSummary | None = None,
    ) -> bool:
        """Active -> ``status`` with its terminal event; False if it had already finished."""
        cur = db.execute(
            "UPDATE operations SET status = ?, finished_us = ?, last_event = ?, error = ?, "
            "result = ? WHERE id = ? AND status IN (?, ?)",
            (
                status,
                now_us(),
                event.SerializeToString(),
                blob(error),
                blob(result),
                operation_id,
                *ACTIVE_STATUSES,
            ),
        )
        return cur.rowcount == 1

    @writes
    def complete_with_model(
        self,
        db: sqlite3.Connection,
        operation_id: str,
        event: common_pb2.ProgressEvent,
        result: common_pb2.ResultSummary,
        model: ModelRecord,
    ) -> bool:
        """Active -> COMPLETED and the model registered, in one transaction."""
        cur = db.execute(
            "UPDATE operations SET status = ?, finished_us = ?, last_event = ?, error = NULL, "
            "result = ?, model_version = ?, model_path = ?, bundle_sha256 = ? "
            "WHERE id = ? AND status IN (?, ?)",
            (
                pb.OPERATION_STATUS_COMPLETED,
                now_us(),
                event.SerializeToString(),
                result.SerializeToString(),
                model.version,
                model.path,
                model.sha256,
                operation_id,
                *ACTIVE_STATUSES,
            ),
        )
        if cur.rowcount != 1:
            return False
        db.execute(
            "INSERT INTO models (strategy_name, version, path, created_us, test_metrics, "
            "operation_id, sha256) VALUES (?,?,?,?,?,?,?)",
            (
                model.strategy_name,
                model.version,
                model.path,
                model.created_us,
                json.dumps(model.test_metrics),
                model.operation_id,
                model.sha256,
            ),
        )
        _insert_metrics(db, model.strategy_name, model.version, model.test_metrics)
        return True

    # -- models and strategies -------------------------------------------------------------
    @reads
    def models(self, db: sqlite3.Connection, strategy_name: str = "") -> list[ModelRecord]:
        """Registered models ordered by strategy, then version (oldest first)."""
        sql = "SELECT * FROM models"
        args: Sequence[str] = ()
        if strategy_name:
            sql += " WHERE strategy_name = ?"
            args = (strategy_name,)
        rows = db.execute(sql + " ORDER BY strategy_name, version", args).fetchall()
        return [model_record(row) for row in rows]

    @reads
    def strategies(self, db: sqlite3.Connection) -> list[StrategyRecord]:
        """Every strategy with an operation or a model, its derived status and latest version.

        Index seeks only: the names by skipping from one strategy to the next, then per
        strategy a handful of lookups, so the cost grows with the number of strategies, not
        with their operations and models.
        """
        completed, failed = pb.OPERATION_STATUS_COMPLETED, pb.OPERATION_STATUS_FAILED
        rows = db.execute(
            """
            WITH RECURSIVE
                op_names(name) AS (
                    SELECT MIN(strategy_name) FROM operations
                    UNION ALL
                    SELECT (SELECT MIN(strategy_name) FROM operations
                            WHERE strategy_name > op_names.name)
                    FROM op_names WHERE op_names.name IS NOT NULL
                ),
                model_names(name) AS (
                    SELECT MIN(strategy_name) FROM models
                    UNION ALL
                    SELECT (SELECT MIN(strategy_name) FROM models
                            WHERE strategy_name > model_names.name)
                    FROM model_names WHERE model_names.name IS NOT NULL
                ),
                names(name) AS (
                    SELECT name FROM op_names WHERE name IS NOT NULL
                    UNION SELECT name FROM model_names WHERE name IS NOT NULL
                )
            SELECT names.name AS name,
                (SELECT 1 FROM operations o WHERE o.strategy_name = names.name
                    AND o.status IN (?, ?) LIMIT 1) AS active,
                (SELECT MAX(o.finished_us) FROM operations o
                    WHERE o.strategy_name = names.name AND o.status = ?) AS completed_us,
                (SELECT MAX(o.finished_us) FROM operations o
                    WHERE o.strategy_name = names.name AND o.status = ?) AS failed_us,
                (SELECT MAX(version) FROM models m WHERE m.strategy_name = names.name)
                    AS latest,
                (SELECT o.id FROM operations o WHERE o.strategy_name = names.name
                    ORDER BY o.created_us DESC LIMIT 1) AS last_op
            FROM names ORDER BY names.name
            """,
            (*ACTIVE_STATUSES, completed, failed),
        ).fetchall()
        out = []
        for row in rows:
            failed_us, completed_us = row["failed_us"], row["completed_us"]
            if row["active"]:
                status = pb.STRATEGY_STATUS_TRAINING
            elif failed_us is not None and (completed_us is None or failed_us > completed_us):
                status = pb.STRATEGY_STATUS_FAILED
            elif row["latest"]:
                status = pb.STRATEGY_STATUS_TRAINED
            else:
                status = pb.STRATEGY_STATUS_UNTRAINED
            out.append(
                StrategyRecord(row["name"], status, row["latest"] or 0, row["last_op"] or "")
            )
        return out

    # -- runtime config --------------------------------------------------------------------
    @reads
    def get_config(self, db: sqlite3.Connection, key: str) -> str | None:
        return _config(db, key)

    @writes
    def set_config(self, db: sqlite3.Connection, key: str, value: str) -> str | None:
        """Set ``key``; returns the previous value."""
        previous = _config(db, key)
        _put_config(db, key, value)
        return previous


__all__ = [
    "ACTIVE_STATUSES",
    "FINISHED_STATUSES",
    "ModelRecord",
    "OperationRecord",
    "Store",
    "StrategyRecord",
    "model_record",
    "now_us",
]
