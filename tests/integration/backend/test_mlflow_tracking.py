"""Finished operations logged to a real MLflow tracking store (SQLite), read back with
``mlflow.search_runs``; an unreachable store neither blocks nor loses a run."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest

from ktrdr.backend.tracking.mlflow_runs import OPERATION_TAG, flatten, mlflow_key
from ktrdr.training.v1 import backend_pb2 as pb
from tests.support.backend import start_backend, stop_backend
from tests.support.needs import needs
from tests.support.timing import scaled

pytestmark = needs("mlflow")

WAIT_S = scaled(120.0)  # MLflow's first SQLite connection runs its migrations (seconds under load)


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> Path:
    """An MLflow SQLite store with its schema created once (copied for each test)."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


def store_copy(empty_store: Path, directory: Path) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy2(empty_store, directory / "mlflow.db")
    return f"sqlite:///{directory / 'mlflow.db'}"


async def train(backend, epochs: int = 3) -> str:
    request = pb.CreateTrainingRequest(strategy_name="tiny_rsi")
    request.field_overrides.add(path="model.training.epochs", value=str(epochs))
    created = (await backend.stub.CreateTraining(request)).operation
    async for message in backend.stub.WatchOperation(
        pb.WatchOperationRequest(operation_id=created.operation_id)
    ):
        last = message
    assert last.status == pb.OPERATION_STATUS_COMPLETED, last
    return str(created.operation_id)


async def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def runs(uri: str, operation_id: str):
    import mlflow

    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(
        experiment_names=["ktrdr"], filter_string=f"tags.`{OPERATION_TAG}` = '{operation_id}'"
    )


def test_flatten_keeps_scalar_lists_and_numbers_positions() -> None:
    data = {"model": {"architecture": {"hidden_layers": [64, 32]}}, "indicators": [{"p": 1}]}
    assert dict(flatten(data)) == {
        "model.architecture.hidden_layers": [64, 32],
        "indicators[0].p": 1,
    }
    assert mlflow_key("indicators[0].p") == "indicators.0.p"


@pytest.fixture
def strategies(tmp_path: Path, tiny_strategy_yaml: str) -> Path:
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "tiny_rsi.yaml").write_text(tiny_strategy_yaml)
    return tmp_path / "strategies"


async def test_a_finished_operation_becomes_a_run(
    tmp_path, sample_data_dir, empty_store, strategies
):
    import mlflow

    uri = store_copy(empty_store, tmp_path / "tracking")
    backend = await start_backend(tmp_path, sample_data_dir, mlflow_tracking_uri=uri)
    try:
        operation_id = await train(backend, epochs=3)
        tracker = backend.app.tracker
        await wait_for(lambda: tracker.logged >= 1 and not tracker.pending(), "the run")
    finally:
        await stop_backend(backend)
    found = runs(uri, operation_id)
    assert len(found) == 1
    run = found.iloc[0]
    assert run["status"] == "FINISHED"
    assert run["tags.ktrdr.status"] == "completed" and run["tags.ktrdr.mode"] == "local"
    assert run["tags.ktrdr.device"] == "cpu"
    assert run["params.model.training.epochs"] == "3"
    assert run["params.name"] == "tiny_rsi"
    assert run["params.indicators.0.name"] == "rsi"
    assert 0.0 <= run["metrics.final.test.accuracy"] <= 1.0
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    history = client.get_metric_history(run["run_id"], "val_loss")
    assert [m.step for m in history] == list(range(1, len(history) + 1)) and history
    artifacts = {a.path for a in client.list_artifacts(run["run_id"])}
    assert {"strategy.yaml", "model", "plots"} <= artifacts
    model_files = {Path(a.path).name for a in client.list_artifacts(run["run_id"], "model")}
    assert {"metadata.json", "weights.safetensors"} <= model_files
    # a SQLite store's artifacts live in the backend's data directory, not ./mlruns
    assert run["artifact_uri"].startswith((tmp_path / "mlflow-artifacts").as_uri())


async def test_an_unreachable_store_delays_nothing_and_loses_nothing(
    tmp_path, sample_data_dir, empty_store, strategies, monkeypatch
):
    # MLflow retries opening a SQLite store 15 times with growing sleeps (minutes) inside one
    # attempt; the tracker retries on its own, so two are enough to see a failed attempt.
    monkeypatch.setattr("mlflow.store.db.utils.MAX_RETRY_COUNT", 2)
    down = tmp_path / "down"
    (down / "mlflow.db").mkdir(parents=True)  # a directory where the database should be
    uri = f"sqlite:///{down / 'mlflow.db'}"
    settings = {"mlflow_tracking_uri": uri, "mlflow_retry_max_s": 0.5}
    backend = await start_backend(tmp_path, sample_data_dir, **settings)
    try:
        operation_id = await train(backend)  # completes while the store is down
        tracker = backend.app.tracker
        await wait_for(lambda: tracker.last_error != "", "a failed attempt")
        assert tracker.pending() == [operation_id]
    finally:
        await stop_backend(backend)
    # the store comes back while the backend is stopped: the restarted backend logs the run
    (down / "mlflow.db").rmdir()
    store_copy(empty_store, down)
    backend = await start_backend(tmp_path, sample_data_dir, **settings)
    try:
        tracker = backend.app.tracker
        await wait_for(lambda: not tracker.pending() and tracker.logged >= 1, "the late run")
    finally:
        await stop_backend(backend)
    assert len(runs(uri, operation_id)) == 1


def test_model_files_are_found_from_any_recorded_form_or_warned_about(tmp_path, caplog):
    """The tracker finds an operation's model through the store's one resolver (rows of
    older backends included) and says so when the files are missing, never silently."""
    import json
    import logging

    from ktrdr.backend.store import OperationRecord
    from ktrdr.backend.tracking.mlflow_runs import MlflowTracker
    from ktrdr.training.v1 import common_pb2

    models = tmp_path / "models"
    (models / "tiny_rsi" / "EURUSD_1h_v1").mkdir(parents=True)
    (models / "tiny_rsi" / "EURUSD_1h_v1" / "metadata.json").write_text(json.dumps({"seed": 7}))
    tracker = MlflowTracker.__new__(MlflowTracker)  # no thread, no store: only the lookup
    tracker.models_dir = models

    def record(path: str) -> OperationRecord:
        return OperationRecord(
            id="op-1", status=pb.OPERATION_STATUS_COMPLETED, strategy_name="tiny_rsi",
            strategy_yaml="", overrides=common_pb2.TrainingOverrides(), requested_mode=0,
            mode=0, mode_reason="", host_address="", require_gpu=False, created_us=0,
            model_path=path,
        )  # fmt: skip

    for recorded in (
        "tiny_rsi/EURUSD_1h_v1",
        ".ktrdr/backend/models/tiny_rsi/EURUSD_1h_v1",
        str(models / "tiny_rsi" / "EURUSD_1h_v1"),
    ):
        assert tracker._model_metadata(record(recorded)) == {"seed": 7}
    with caplog.at_level(logging.WARNING, logger="ktrdr.backend.tracking.mlflow_runs"):
        assert tracker._model_metadata(record("tiny_rsi/EURUSD_1h_v2")) is None
    assert "op-1" in caplog.text and "no model and no plot" in caplog.text
