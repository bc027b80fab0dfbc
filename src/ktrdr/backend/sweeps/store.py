"""Sweeps and their trials in the backend's SQLite database (``backend.db``, own tables).

The Optuna study of each sweep lives in Optuna's own storage (``sweeps.db``); these tables
hold what the backend serves and resumes from: the sweep's normalised request, its status,
and one row per trial linking the Optuna trial number to its training operation. A trial row
is written before its operation is created and updated once the operation exists, so a crash
between the two leaves a RUNNING row without an operation, which a restart marks
INTERRUPTED.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field, replace
from pathlib import Path

from ktrdr.backend.database import Database
from ktrdr.backend.sweeps.selection_bias import reads_test_period
from ktrdr.backend.tables import Tables, reads, writes
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY,
    status INTEGER NOT NULL,
    strategy_name TEXT NOT NULL,
    request BLOB NOT NULL,
    owner TEXT NOT NULL,
    owner_role TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    finished_us INTEGER,
    error BLOB,
    selected_on_test INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sweeps_by_time ON sweeps (created_us DESC, id DESC);
CREATE TABLE IF NOT EXISTS sweep_trials (
    sweep_id TEXT NOT NULL REFERENCES sweeps (id),
    number INTEGER NOT NULL,
    status INTEGER NOT NULL,
    params TEXT NOT NULL,
    operation_id TEXT NOT NULL DEFAULT '',
    value REAL,
    pruned_at_epoch INTEGER NOT NULL DEFAULT 0,
    last_epoch INTEGER NOT NULL DEFAULT 0,
    metrics TEXT NOT NULL DEFAULT '{}',
    started_us INTEGER NOT NULL,
    finished_us INTEGER,
    error BLOB,
    PRIMARY KEY (sweep_id, number)
);
CREATE INDEX IF NOT EXISTS sweep_trials_by_operation ON sweep_trials (operation_id);
"""

TRIAL_FINISHED = (
    pb.TRIAL_STATUS_COMPLETED,
    pb.TRIAL_STATUS_PRUNED,
    pb.TRIAL_STATUS_FAILED,
    pb.TRIAL_STATUS_CANCELLED,
    pb.TRIAL_STATUS_INTERRUPTED,
)
# The trials that count towards n_trials.
TRIAL_COUNTED = (pb.TRIAL_STATUS_COMPLETED, pb.TRIAL_STATUS_PRUNED, pb.TRIAL_STATUS_FAILED)


@dataclass(frozen=True)
class SweepRecord:
    id: str
    status: int
    strategy_name: str
    # The normalised request: strategy_yaml holds the strategy with its fixed overrides.
    request: pb.CreateSweepRequest
    owner: str
    owner_role: str
    created_us: int
    finished_us: int | None = None
    error: common_pb2.ErrorDetail | None = None
    # Its objective is a test-period metric: the best trial's test numbers are in-sample.
    selected_on_test: bool = False

    @property
    def finished(self) -> bool:
        return self.status != pb.SWEEP_STATUS_RUNNING


@dataclass(frozen=True)
class TrialRecord:
    sweep_id: str
    number: int
    status: int
    params: dict[str, str]
    started_us: int
    operation_id: str = ""
    value: float | None = None
    pruned_at_epoch: int = 0
    last_epoch: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    finished_us: int | None = None
    error: common_pb2.ErrorDetail | None = None

    @property
    def finished(self) -> bool:
        return self.status in TRIAL_FINISHED

    def but(self, **changes: object) -> TrialRecord:
        return replace(self, **changes)  # type: ignore[arg-type]


def _error(data: bytes | None) -> common_pb2.ErrorDetail | None:
    if data is None:
        return None
    error = common_pb2.ErrorDetail()
    error.ParseFromString(data)
    return error


def _sweep(row: sqlite3.Row) -> SweepRecord:
    request = pb.CreateSweepRequest()
    request.ParseFromString(row["request"])
    return SweepRecord(
        id=row["id"],
        status=row["status"],
        strategy_name=row["strategy_name"],
        request=request,
        owner=row["owner"],
        owner_role=row["owner_role"],
        created_us=row["created_us"],
        finished_us=row["finished_us"],
        error=_error(row["error"]),
        selected_on_test=bool(row["selected_on_test"]),
    )


def _trial(row: sqlite3.Row) -> TrialRecord:
    return TrialRecord(
        sweep_id=row["sweep_id"],
        number=row["number"],
        status=row["status"],
        params=json.loads(row["params"]),
        operation_id=row["operation_id"],
        value=row["value"],
        pruned_at_epoch=row["pruned_at_epoch"],
        last_epoch=row["last_epoch"],
        metrics=json.loads(row["metrics"]),
        started_us=row["started_us"],
        finished_us=row["finished_us"],
        error=_error(row["error"]),
    )


def _migrate(db: sqlite3.Connection) -> None:
    """The tables; a database from before ``sweeps.selected_on_test`` gets the column, set
    for the sweeps that already optimised a test-period metric (accepted before the rule)."""
    present = {row[1] for row in db.execute("PRAGMA table_info(sweeps)")}
    db.executescript(_SCHEMA)
    if present and "selected_on_test" not in present:
        db.execute("BEGIN IMMEDIATE")  # the column and its values together, or neither
        try:
            db.execute("ALTER TABLE sweeps ADD COLUMN selected_on_test INTEGER NOT NULL DEFAULT 0")
            for sweep_id, data in db.execute("SELECT id, request FROM sweeps").fetchall():
                request = pb.CreateSweepRequest()
                request.ParseFromString(data)
                if reads_test_period(request.objective):
                    db.execute("UPDATE sweeps SET selected_on_test = 1 WHERE id = ?", (sweep_id,))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


class SweepStore(Tables):
    """The sweep tables of ``backend.db`` (a shared ``Database``, or a path)."""

    def __init__(self, database: Database | Path | str) -> None:
        super().__init__(database)
        self.database.migrate("sweeps", _migrate)

    # -- sweeps ----------------------------------------------------------------------------
    @writes
    def insert_sweep(self, db: sqlite3.Connection, record: SweepRecord) -> None:
        db.execute(
            "INSERT INTO sweeps (id, status, strategy_name, request, owner, owner_role, "
            "created_us, selected_on_test) VALUES (?,?,?,?,?,?,?,?)",
            (
                record.id,
                record.status,
                record.strategy_name,
                record.request.SerializeToString(),
                record.owner,
                record.owner_role,
                record.created_us,
                int(record.selected_on_test),
            ),
        )

    @writes
    def finish_sweep(
        self,
        db: sqlite3.Connection,
        sweep_id: str,
        status: int,
        finished_us: int,
        error: common_pb2.ErrorDetail | None,
    ) -> None:
        db.execute(
            "UPDATE sweeps SET status = ?, finished_us = ?, error = ? WHERE id = ?",
            (
                status,
                finished_us,
                None if error is None else error.SerializeToString(),
                sweep_id,
            ),
        )

    @reads
    def get_sweep(self, db: sqlite3.Connection, sweep_id: str) -> SweepRecord | None:
        row = db.execute("SELECT * FROM sweeps WHERE id = ?", (sweep_id,)).fetchone()
        return None if row is None else _sweep(row)

    @reads
    def list_sweeps(
        self,
        db: sqlite3.Connection,
        *,
        status: int = 0,
        owner: str = "",
        limit: int = 50,
        after: tuple[int, str] | None = None,
    ) -> list[SweepRecord]:
        """Newest first; ``after`` is the (created_us, id) of the previous page's last row."""
        query, args = "SELECT * FROM sweeps WHERE 1=1", list[object]()
        if status:
            query, args = query + " AND status = ?", [*args, status]
        if owner:
            query, args = query + " AND owner = ?", [*args, owner]
        if after is not None:
            query += " AND (created_us < ? OR (created_us = ? AND id < ?))"
            args = [*args, after[0], after[0], after[1]]
        query += " ORDER BY created_us DESC, id DESC LIMIT ?"
        rows = db.execute(query, (*args, limit)).fetchall()
        return [_sweep(row) for row in rows]

    @reads
    def running_sweeps(self, db: sqlite3.Connection) -> list[SweepRecord]:
        return self.list_sweeps.fn(self, db, status=pb.SWEEP_STATUS_RUNNING, limit=1 << 30)

    @reads
    def count_running(self, db: sqlite3.Connection, owner: str | None = None) -> int:
        """Sweeps running now (of ``owner`` only, when given)."""
        query = "SELECT COUNT(*) FROM sweeps WHERE status = ?"
        args: list[object] = [pb.SWEEP_STATUS_RUNNING]
        if owner is not None:
            query, args = query + " AND owner = ?", [*args, owner]
        row = db.execute(query, args).fetchone()
        return int(row[0])

    # -- trials ----------------------------------------------------------------------------
    @writes
    def put_trial(self, db: sqlite3.Connection, trial: TrialRecord) -> None:
        """Insert or replace the trial's row."""
        db.execute(
            "INSERT OR REPLACE INTO sweep_trials (sweep_id, number, status, params, "
            "operation_id, value, pruned_at_epoch, last_epoch, metrics, started_us, "
            "finished_us, error) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                trial.sweep_id,
                trial.number,
                trial.status,
                json.dumps(trial.params),
                trial.operation_id,
                trial.value,
                trial.pruned_at_epoch,
                trial.last_epoch,
                json.dumps(trial.metrics),
                trial.started_us,
                trial.finished_us,
                None if trial.error is None else trial.error.SerializeToString(),
            ),
        )

    @reads
    def trials(self, db: sqlite3.Connection, sweep_id: str) -> list[TrialRecord]:
        rows = db.execute(
            "SELECT * FROM sweep_trials WHERE sweep_id = ? ORDER BY number", (sweep_id,)
        ).fetchall()
        return [_trial(row) for row in rows]

    @reads
    def trial_counts(self, db: sqlite3.Connection, sweep_id: str) -> dict[int, int]:
        rows = db.execute(
            "SELECT status, COUNT(*) FROM sweep_trials WHERE sweep_id = ? GROUP BY status",
            (sweep_id,),
        ).fetchall()
        return {int(status): int(count) for status, count in rows}

    @reads
    def trial_of_operation(
        self, db: sqlite3.Connection, operation_id: str
    ) -> tuple[str, int] | None:
        """(sweep_id, trial number) of the operation, or None for a plain training."""
        if not operation_id:
            return None
        row = db.execute(
            "SELECT sweep_id, number FROM sweep_trials WHERE operation_id = ?",
            (operation_id,),
        ).fetchone()
        return None if row is None else (row[0], int(row[1]))


__all__ = ["TRIAL_COUNTED", "TRIAL_FINISHED", "SweepRecord", "SweepStore", "TrialRecord"]
