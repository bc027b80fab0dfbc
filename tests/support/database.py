"""Helpers of the backend database tests of both tiers: an operation record, and the
database's writer thread held busy."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ktrdr.backend.database import Database
from ktrdr.backend.store import OperationRecord, now_us
from ktrdr.service.convert import simple_event
from ktrdr.training.progress import ProgressKind
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2
from tests.support.timing import scaled


def record(op_id: str, strategy: str = "s", created: int | None = None) -> OperationRecord:
    """A pending local operation of strategy ``strategy``."""
    return OperationRecord(
        id=op_id,
        status=pb.OPERATION_STATUS_PENDING,
        strategy_name=strategy,
        strategy_yaml="name: s",
        overrides=common_pb2.TrainingOverrides(symbols=["EURUSD"], seed=3),
        requested_mode=0,
        mode=pb.EXECUTION_MODE_LOCAL,
        mode_reason="local: test",
        host_address="",
        require_gpu=False,
        created_us=created if created is not None else now_us(),
        last_event=simple_event(ProgressKind.ACCEPTED, "accepted"),
    )


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
