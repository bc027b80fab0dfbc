"""One real worker process per backend path that the unit tests drive with ``FakeTrainer``:
a local training with field overrides tracked in MLflow, and a sweep. The unit tests cover
the logic; these check that the real executor's events and bundles fit it."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from ktrdr.storage import ModelStorage
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2
from tests.support.backend import start_backend, stop_backend
from tests.support.needs import needs
from tests.support.timing import scaled


@pytest.fixture
def strategies(tmp_path: Path, tiny_strategy_yaml: str) -> Path:
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "tiny_rsi.yaml").write_text(tiny_strategy_yaml)
    return tmp_path / "strategies"


def override(path: str, value: str) -> common_pb2.FieldOverride:
    return common_pb2.FieldOverride(path=path, value=value)


@needs("mlflow")
async def test_a_local_training_with_overrides_in_a_worker_is_stored_and_tracked(
    tmp_path: Path, sample_data_dir: Path, strategies: Path
) -> None:
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    backend = await start_backend(
        tmp_path, sample_data_dir, real_worker=True, mlflow_tracking_uri=uri
    )
    try:
        request = pb.CreateTrainingRequest(
            strategy_name="tiny_rsi",
            field_overrides=[
                override("model.training.epochs", "2"),
                override("model.architecture.hidden_layers", "[5]"),
            ],
        )
        created = (await backend.stub.CreateTraining(request)).operation
        kinds = []
        async for message in backend.stub.WatchOperation(
            pb.WatchOperationRequest(operation_id=created.operation_id)
        ):
            kinds.append(message.event.kind)
            last = message
        assert last.status == pb.OPERATION_STATUS_COMPLETED, last
        assert common_pb2.PROGRESS_KIND_EPOCH in kinds
        assert kinds[-1] == common_pb2.PROGRESS_KIND_COMPLETED
        tracker = backend.app.tracker
        deadline = time.monotonic() + scaled(120)
        while not (tracker.logged >= 1 and not tracker.pending()):
            assert time.monotonic() < deadline, "the MLflow run was not logged"
            await asyncio.sleep(0.05)
    finally:
        await stop_backend(backend)
    model = ModelStorage(backend.settings.models_dir).get("tiny_rsi")
    metadata = json.loads((model.path / "metadata.json").read_text())
    assert metadata["model"]["hidden_layers"] == [5] and len(metadata["history"]) <= 2
    mlflow.set_tracking_uri(uri)
    found = mlflow.search_runs(experiment_names=["ktrdr"])
    assert len(found) == 1 and found.iloc[0]["status"] == "FINISHED"
    assert found.iloc[0]["params.model.training.epochs"] == "2"


@needs("optuna")
async def test_a_sweep_trains_its_trials_in_workers(
    tmp_path: Path, sample_data_dir: Path, strategies: Path
) -> None:
    backend = await start_backend(tmp_path, sample_data_dir, real_worker=True)
    try:
        created = (
            await backend.stub.CreateSweep(
                pb.CreateSweepRequest(
                    strategy_name="tiny_rsi",
                    parameters=[
                        pb.SweepParameter(
                            path="model.training.learning_rate",
                            choices=pb.Choices(values=["0.005", "0.01"]),
                        )
                    ],
                    n_trials=2,
                    parallelism=1,
                    pruner=pb.SWEEP_PRUNER_NONE,
                    seed=1,
                    field_overrides=[override("model.training.epochs", "1")],
                )
            )
        ).sweep
        events = [
            m.event
            async for m in backend.stub.WatchSweep(pb.WatchSweepRequest(sweep_id=created.sweep_id))
        ]
        assert events[-1].kind == pb.SWEEP_EVENT_KIND_SWEEP_FINISHED
        sweep = (await backend.stub.GetSweep(pb.GetSweepRequest(sweep_id=created.sweep_id))).sweep
        assert sweep.status == pb.SWEEP_STATUS_COMPLETED, sweep
        assert [t.status for t in sweep.trials] == [pb.TRIAL_STATUS_COMPLETED] * 2
        assert len(ModelStorage(backend.settings.models_dir).list_models("tiny_rsi")) == 2
    finally:
        await stop_backend(backend)
