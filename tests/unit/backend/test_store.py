"""Store: WAL, transitions that happen once, paging, derived strategy status, threads."""

from __future__ import annotations

import sqlite3
import threading

from ktrdr.backend.store import ModelRecord, Store, now_us
from ktrdr.service.convert import simple_event
from ktrdr.training.progress import ProgressKind
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2
from tests.support.database import record


def model(op_id: str, version: int, strategy: str = "s") -> ModelRecord:
    return ModelRecord(strategy, version, f"/m/{strategy}/v{version}", now_us(), op_id, "ab" * 32)


def test_wal_mode_and_round_trip(tmp_path):
    store = Store(tmp_path / "b.db")
    store.insert_operation(record("a"))
    got = store.get_operation("a")
    assert got is not None and got.overrides.seed == 3 and got.last_event.message == "accepted"
    assert store.get_operation("missing") is None
    mode = sqlite3.connect(tmp_path / "b.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_transitions_happen_once(tmp_path):
    store = Store(tmp_path / "b.db")
    store.insert_operation(record("a"))
    assert store.mark_running("a") and not store.mark_running("a")
    failed = simple_event(ProgressKind.FAILED, "x")
    error = common_pb2.ErrorDetail(code="INTERNAL", message="x")
    assert store.finish("a", pb.OPERATION_STATUS_FAILED, failed, error=error)
    done = simple_event(ProgressKind.COMPLETED, "y")
    assert not store.complete_with_model("a", done, common_pb2.ResultSummary(), model("a", 1))
    assert store.models() == []
    got = store.get_operation("a")
    assert got.status == pb.OPERATION_STATUS_FAILED and got.error.message == "x"
    store.save_progress("a", simple_event(ProgressKind.HEARTBEAT, "late"))
    assert store.get_operation("a").last_event.kind == common_pb2.PROGRESS_KIND_FAILED


def test_completion_registers_the_model_and_strategy_status(tmp_path):
    store = Store(tmp_path / "b.db")
    for op_id in ("a", "b", "c"):
        store.insert_operation(record(op_id, strategy=op_id))
    done = simple_event(ProgressKind.COMPLETED, "ok")
    assert store.complete_with_model("a", done, common_pb2.ResultSummary(), model("a", 1, "a"))
    store.finish("b", pb.OPERATION_STATUS_FAILED, simple_event(ProgressKind.FAILED, "no"))
    status = {s.name: (s.status, s.latest_version) for s in store.strategies()}
    assert status == {
        "a": (pb.STRATEGY_STATUS_TRAINED, 1),
        "b": (pb.STRATEGY_STATUS_FAILED, 0),
        "c": (pb.STRATEGY_STATUS_TRAINING, 0),
    }
    got = store.get_operation("a")
    assert (got.model_version, got.bundle_sha256) == (1, "ab" * 32)


def test_list_pages_newest_first_with_filters(tmp_path):
    store = Store(tmp_path / "b.db")
    for i in range(5):
        store.insert_operation(record(f"op{i}", strategy="x" if i % 2 else "y", created=i))
    first = store.list_operations(limit=2)
    assert [r.id for r in first] == ["op4", "op3"]
    second = store.list_operations(limit=2, after=(first[-1].created_us, first[-1].id))
    assert [r.id for r in second] == ["op2", "op1"]
    assert [r.id for r in store.list_operations(strategy_name="x")] == ["op3", "op1"]
    store.mark_running("op0")
    assert [r.id for r in store.list_operations(status=pb.OPERATION_STATUS_RUNNING)] == ["op0"]


def test_config_and_threads(tmp_path):
    store = Store(tmp_path / "b.db")
    assert store.set_config("default_mode", "auto") is None
    assert store.set_config("default_mode", "host") == "auto"

    def work(n: int) -> None:
        for i in range(25):
            store.insert_operation(record(f"t{n}-{i}"))
            store.save_progress(f"t{n}-{i}", simple_event(ProgressKind.HEARTBEAT, "hb"))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.list_operations(limit=1000)) == 100
    reopened = Store(tmp_path / "b.db")
    assert reopened.get_config("default_mode") == "host"
