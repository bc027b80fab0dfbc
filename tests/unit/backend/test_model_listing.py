"""ListModels in SQL (ModelCatalog over a real SQLite Store, no server, no model files): every
filter and order walked page by page against the old in-memory sort, forged page tokens,
ListStrategies' derived status, and opening a database from before the listing tables."""

from __future__ import annotations

import base64
import json
import math
import sqlite3
import uuid
from pathlib import Path

import grpc
import pytest

from ktrdr.backend.errors import RequestError
from ktrdr.backend.models import ModelCatalog
from ktrdr.backend.models.listing import Position, Query, encode_token
from ktrdr.backend.store import ModelRecord, OperationRecord, Store, now_us
from ktrdr.service.convert import simple_event
from ktrdr.training.progress import ProgressKind
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2

STRATEGIES = ("alpha", "beta", "gamma")


def register(store: Store, strategy: str, version: int, metrics: dict[str, float]) -> str:
    """A model as the backend registers one: operation created, run, completed with it."""
    op_id = uuid.uuid4().hex
    store.insert_operation(
        OperationRecord(
            id=op_id,
            status=pb.OPERATION_STATUS_PENDING,
            strategy_name=strategy,
            strategy_yaml="",
            overrides=common_pb2.TrainingOverrides(seed=version),
            requested_mode=0,
            mode=pb.EXECUTION_MODE_LOCAL,
            mode_reason="test",
            host_address="",
            require_gpu=False,
            created_us=now_us(),
        )
    )
    store.mark_running(op_id)
    assert store.complete_with_model(
        op_id,
        simple_event(ProgressKind.COMPLETED, "done"),
        common_pb2.ResultSummary(device="cpu", duration_s=1.0),
        ModelRecord(
            strategy,
            version,
            f"{strategy}/EURUSD_1h_v{version}",
            now_us(),
            op_id,
            "ab" * 32,
            metrics,
        ),
    )
    return op_id


def accuracy(strategy: str, version: int) -> float | None:
    """Ties across strategies, some missing, one NaN (sorted with the missing)."""
    if version % 4 == 0:
        return None
    if (strategy, version) == ("beta", 3):
        return math.nan
    return round((version * 7 % 5) / 10, 1)


@pytest.fixture(scope="module")
def arranged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """27 models of 3 strategies with tags and aliases, built once (a file per test)."""
    tmp = tmp_path_factory.mktemp("listing")
    store = Store(tmp / "backend.db")
    catalog = ModelCatalog(store, tmp / "models-never-created", tmp / "work")
    for strategy in STRATEGIES:
        for version in range(1, 10):
            value = accuracy(strategy, version)
            op_id = register(
                store, strategy, version, {} if value is None else {"test_accuracy": value}
            )
            tags = ["even"] if version % 2 == 0 else []
            catalog.registry.set_operation_tags(op_id, [*tags, "all"])
    catalog.registry.set_alias("alpha", "prod", 3)
    catalog.registry.set_alias("gamma", "prod", 8)
    catalog.registry.change_tags("beta", 2, [], ["all"])
    store.close()
    return tmp / "backend.db"


@pytest.fixture
def catalog(arranged: Path, tmp_path: Path) -> ModelCatalog:
    source = sqlite3.connect(arranged)
    copy = sqlite3.connect(tmp_path / "backend.db")
    source.backup(copy)
    source.close()
    copy.close()
    store = Store(tmp_path / "backend.db")
    return ModelCatalog(store, tmp_path / "models-never-created", tmp_path / "work")


def expected(catalog: ModelCatalog, request: pb.ListModelsRequest) -> list[tuple[str, int]]:
    """The order of the former in-memory listing."""
    rows = catalog.registry.rows(request.strategy_name)
    rows = [r for r in rows if not request.alias or request.alias in r.aliases]
    rows = [r for r in rows if not request.tag or request.tag in r.tags]
    if request.order_by:
        sign = -1.0 if request.descending else 1.0

        def key(r):  # type: ignore[no-untyped-def]
            value = r.model.test_metrics.get(request.order_by)
            missing = value is None or math.isnan(value)
            return (
                int(missing),
                0.0 if missing else sign * value,
                r.model.strategy_name,
                r.model.version,
            )

        rows.sort(key=key)
    return [(r.model.strategy_name, r.model.version) for r in rows]


def walk(catalog: ModelCatalog, request: pb.ListModelsRequest) -> list[tuple[str, int]]:
    seen: list[tuple[str, int]] = []
    for _ in range(100):
        page = catalog.list_models(request)
        assert len(page.models) <= (request.page_size or 500)
        assert sum(len(g.versions) for g in page.strategies) == len(page.models)
        seen += [(m.strategy_name, m.version) for m in page.models]
        if not page.next_page_token:
            return seen
        request.page_token = page.next_page_token
    raise AssertionError("no last page")


FILTERS = [{}, {"strategy_name": "beta"}, {"tag": "even"}, {"tag": "all"}, {"alias": "prod"}]
ORDERS = [{}, {"order_by": "test_accuracy"}, {"order_by": "test_accuracy", "descending": True}]


@pytest.mark.parametrize("size", [1, 4, 0])
@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("filters", FILTERS)
def test_pages_walk_the_same_order_as_one_sort(catalog, filters, order, size):
    request = pb.ListModelsRequest(**filters, **order, page_size=size)
    want = expected(catalog, pb.ListModelsRequest(**filters, **order))
    assert want, "the arrangement lists something"
    assert walk(catalog, request) == want


def test_unknown_metric_lists_everything_by_strategy_and_version(catalog):
    request = pb.ListModelsRequest(order_by="nope", descending=True, page_size=5)
    assert walk(catalog, request) == expected(catalog, pb.ListModelsRequest())


def test_rows_added_and_deleted_between_pages_shift_nothing(catalog):
    request = pb.ListModelsRequest(strategy_name="alpha", page_size=3)
    first = catalog.list_models(request)
    register(catalog.registry.store, "alpha", 100, {})
    catalog.delete(catalog.row("alpha", 2), force=True)
    request.page_token = first.next_page_token
    rest = walk(catalog, request)
    assert [m.version for m in first.models] == [1, 2, 3]
    assert [v for _, v in rest] == [4, 5, 6, 7, 8, 9, 100]


def test_page_shows_lineage_aliases_and_tags(catalog):
    page = catalog.list_models(pb.ListModelsRequest(alias="prod", order_by="test_accuracy"))
    by_key = {(m.strategy_name, m.version): m for m in page.models}
    alpha = by_key["alpha", 3]
    assert list(alpha.aliases) == ["prod"] and list(alpha.tags) == ["all"]
    assert alpha.lineage.seed == 3 and alpha.lineage.device == "cpu"
    assert alpha.test_metrics["test_accuracy"] == pytest.approx(0.1)
    assert list(by_key["gamma", 8].tags) == ["all", "even"]


def token(body: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode()


def test_forged_or_foreign_tokens_are_invalid_argument(catalog):
    page = catalog.list_models(pb.ListModelsRequest(order_by="test_accuracy", page_size=2))
    good = page.next_page_token
    query = Query(order_by="test_accuracy")
    fingerprint = query.fingerprint()
    forged = [
        "garbage",
        "%%%",
        base64.urlsafe_b64encode(b"models:3").decode(),  # an offset token of the old listing
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        token({"not": "a list"}),
        token(["models/2", fingerprint, 0, "alpha", "1", 0.5]),  # version not a number
        token(["models/2", fingerprint, 0, "alpha", True, 0.5]),
        token(["models/2", fingerprint, 0, "alpha", 1, "NaN"]),
        token(["models/2", fingerprint, 0, "alpha", 1, None]),
        token(["models/2", fingerprint, 2, "alpha", 1, 0.5]),
        token(["models/2", fingerprint, 1, "alpha", 1, 0.5]),
        token(["models/2", fingerprint, 0, ["alpha"], 1, 0.5]),
        token(["models/1", fingerprint, 0, "alpha", 1, 0.5]),
        token(["models/2", fingerprint, 0, "alpha", 1]),
        "A" * 5000,
    ]
    for bad in forged:
        request = pb.ListModelsRequest(order_by="test_accuracy", page_size=2, page_token=bad)
        with pytest.raises(RequestError) as caught:
            catalog.list_models(request)
        assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT, bad
    # a real token, sent with other filters or another order
    for other in [
        {"tag": "all"},
        {"descending": True},
        {"order_by": "x"},
        {"strategy_name": "beta"},
    ]:
        request = pb.ListModelsRequest(
            **{"order_by": "test_accuracy", **other}, page_size=2, page_token=good
        )
        with pytest.raises(RequestError) as caught:
            catalog.list_models(request)
        assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    # a well-formed token of a position that never existed is only a position
    made = encode_token(query, Position(0, "zzz", 99, 0.25))
    catalog.list_models(pb.ListModelsRequest(order_by="test_accuracy", page_token=made))


def test_strategies_status_from_indexed_lookups(tmp_path):
    store = Store(tmp_path / "b.db")
    register(store, "done", 1, {})
    failed = register(store, "broke", 1, {})
    for op_id, strategy, status in [
        ("f1", "broke", pb.OPERATION_STATUS_FAILED),
        ("c1", "cancelled", pb.OPERATION_STATUS_CANCELLED),
        ("r1", "running", None),
    ]:
        store.insert_operation(
            OperationRecord(
                op_id,
                pb.OPERATION_STATUS_PENDING,
                strategy,
                "",
                common_pb2.TrainingOverrides(),
                0,
                1,
                "",
                "",
                False,
                now_us(),
            )
        )
        if status is not None:
            store.finish(op_id, status, simple_event(ProgressKind.FAILED, "x"))
    got = {r.name: (r.status, r.latest_version, r.last_operation_id) for r in store.strategies()}
    assert got == {
        "broke": (pb.STRATEGY_STATUS_FAILED, 1, "f1"),
        "cancelled": (pb.STRATEGY_STATUS_UNTRAINED, 0, "c1"),
        "done": (pb.STRATEGY_STATUS_TRAINED, 1, got["done"][2]),
        "running": (pb.STRATEGY_STATUS_TRAINING, 0, "r1"),
    }
    assert failed != "f1"


OLD_SCHEMA = """
CREATE TABLE operations (id TEXT PRIMARY KEY, status INTEGER NOT NULL,
    strategy_name TEXT NOT NULL, strategy_yaml TEXT NOT NULL, overrides BLOB NOT NULL,
    requested_mode INTEGER NOT NULL, mode INTEGER NOT NULL, mode_reason TEXT NOT NULL,
    host_address TEXT NOT NULL, require_gpu INTEGER NOT NULL, created_us INTEGER NOT NULL,
    started_us INTEGER, finished_us INTEGER, last_event BLOB, error BLOB, result BLOB,
    model_version INTEGER, model_path TEXT, bundle_sha256 TEXT);
CREATE TABLE models (strategy_name TEXT NOT NULL, version INTEGER NOT NULL, path TEXT NOT NULL,
    created_us INTEGER NOT NULL, test_metrics TEXT NOT NULL, operation_id TEXT NOT NULL,
    sha256 TEXT NOT NULL, PRIMARY KEY (strategy_name, version));
CREATE TABLE model_tags (strategy_name TEXT NOT NULL, version INTEGER NOT NULL,
    tag TEXT NOT NULL, PRIMARY KEY (strategy_name, version, tag));
CREATE TABLE model_tags_seeded (strategy_name TEXT NOT NULL, version INTEGER NOT NULL,
    PRIMARY KEY (strategy_name, version));
CREATE TABLE operation_tags (operation_id TEXT NOT NULL, tag TEXT NOT NULL,
    PRIMARY KEY (operation_id, tag));
"""


def test_database_from_before_the_listing_tables(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    for version, metrics in [
        (1, '{"test_accuracy": 0.5}'),
        (2, '{"test_accuracy": NaN}'),
        (3, "{}"),
        (4, '{"test_accuracy": 0.9, "f1": 2}'),
    ]:
        db.execute(
            "INSERT INTO models VALUES (?, ?, ?, 1, ?, ?, ?)",
            ("old", version, f"old/v{version}", metrics, f"op{version}", "ab" * 32),
        )
        db.execute("INSERT INTO operation_tags VALUES (?, 'given')", (f"op{version}",))
    # v1 was seeded before, and its tag removed since; v2..v4 not seeded yet
    db.execute("INSERT INTO model_tags_seeded VALUES ('old', 1)")
    db.commit()
    db.close()

    store = Store(path)
    catalog = ModelCatalog(store, tmp_path / "models", tmp_path / "work")
    assert store.prepare_listings() == 4
    assert store.prepare_listings() == 0  # once
    request = pb.ListModelsRequest(order_by="test_accuracy", descending=True, page_size=2)
    assert [v for _, v in walk(catalog, request)] == [4, 1, 2, 3]
    page = catalog.list_models(pb.ListModelsRequest(tag="given"))
    assert [m.version for m in page.models] == [2, 3, 4]
    register(store, "old", 5, {"test_accuracy": 0.7})
    store.close()

    reopened = Store(path)  # the listing tables stay filled, nothing is backfilled again
    assert reopened.prepare_listings() == 0
    catalog = ModelCatalog(reopened, tmp_path / "models", tmp_path / "work")
    request = pb.ListModelsRequest(order_by="test_accuracy", descending=True)
    assert [m.version for m in catalog.list_models(request).models] == [4, 5, 1, 2, 3]
