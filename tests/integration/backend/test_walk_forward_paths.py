"""Walk-forward training through a real backend worker (local mode): the folds come back in
the operation's result, the stored model's metadata and the registry's numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ktrdr.storage import ModelStorage
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2
from tests.support.backend import start_backend, stop_backend


@pytest.fixture
def strategies(tmp_path: Path, tiny_strategy_yaml: str) -> Path:
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "tiny_rsi.yaml").write_text(tiny_strategy_yaml)
    return tmp_path / "strategies"


async def test_a_local_walk_forward_training_in_a_worker(
    tmp_path: Path, sample_data_dir: Path, strategies: Path
) -> None:
    backend = await start_backend(tmp_path, sample_data_dir, real_worker=True)
    try:
        request = pb.CreateTrainingRequest(
            strategy_name="tiny_rsi",
            field_overrides=[
                common_pb2.FieldOverride(path="model.training.epochs", value="1"),
                common_pb2.FieldOverride(path="evaluation.walk_forward.folds", value="2"),
            ],
        )
        created = (await backend.stub.CreateTraining(request)).operation
        messages = []
        async for message in backend.stub.WatchOperation(
            pb.WatchOperationRequest(operation_id=created.operation_id)
        ):
            messages.append(message.event.message)
            last = message
        assert last.status == pb.OPERATION_STATUS_COMPLETED, last
        folds = {m.split(":")[0] for m in messages if m.startswith("walk-forward fold")}
        assert folds == {"walk-forward fold 1/2", "walk-forward fold 2/2"}
        got = await backend.stub.GetOperation(
            pb.GetOperationRequest(operation_id=created.operation_id)
        )
        metrics = got.operation.result.metrics
        assert metrics["wf_folds"] == 2 and "wf_fold_return_2" in metrics
        listed = await backend.stub.ListModels(pb.ListModelsRequest(strategy_name="tiny_rsi"))
        registry = listed.models[0].test_metrics
        assert "wf_mean_accuracy" in registry and "wf_fold_return_1" not in registry
    finally:
        await stop_backend(backend)
    model = ModelStorage(backend.settings.models_dir).get("tiny_rsi")
    metadata = json.loads((model.path / "metadata.json").read_text())
    assert [f["fold"] for f in metadata["metrics"]["walk_forward"]["folds"]] == [1, 2]
