"""A database that cannot be written for a moment (disk full): a host's announced bundle is
recorded once the disk has room (chaos soak, seed 7). The cases through a real backend are in
``tests/integration/backend/test_database_faults.py``."""

from __future__ import annotations

import sqlite3
import uuid

from ktrdr.backend import live
from ktrdr.backend.store import OperationRecord, Store, now_us
from ktrdr.service.execution import new_fanout
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2


async def test_the_announced_bundle_is_recorded_once_the_disk_has_room(tmp_path, monkeypatch):
    """A host announced its finished bundle while the disk was full (chaos soak, seed 7 after
    the one-database merge: the write crashed the follow-up, the operation FAILED and the host
    parked the model it then delivered). The write is retried until it lands."""
    monkeypatch.setattr(live, "TERMINAL_RETRY_FIRST_S", 0.01)
    store = Store(tmp_path / "backend.db")
    try:
        record = OperationRecord(
            id=uuid.uuid4().hex,
            status=pb.OPERATION_STATUS_RUNNING,
            strategy_name="tiny_rsi",
            strategy_yaml="",
            overrides=common_pb2.TrainingOverrides(),
            requested_mode=0,
            mode=pb.EXECUTION_MODE_HOST,
            mode_reason="test",
            host_address="127.0.0.1:1",
            require_gpu=False,
            created_us=now_us(),
        )
        await store.insert_operation.aio(record)
        op = live.LiveOperation(record, store, live.EventSequence(new_fanout()))
        full = [sqlite3.OperationalError("database or disk is full")] * 2
        attempts: list[int] = []

        async def announce() -> None:
            attempts.append(1)
            if full:
                raise full.pop()
            await store.set_expected_bundle.aio(record.id, "ab" * 32, 10)

        assert await op.record_until_landed("the announced bundle", announce)
        assert len(attempts) == 3
        stored = await store.get_operation.aio(record.id)
        assert stored is not None and stored.expected_sha256 == "ab" * 32
        assert not op.finished  # the follow-up goes on, waiting for the model

        op.done.set()  # finished another way (a cancel): the retries stop
        assert not await op.record_until_landed("the announced bundle", announce)
    finally:
        store.close()
