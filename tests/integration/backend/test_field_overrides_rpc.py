"""CreateTraining with field_overrides: the run trains the changed strategy; bad ones are
INVALID_ARGUMENT naming the entry or the field path."""

from __future__ import annotations

import json

import grpc
import pytest

from ktrdr.config import parse_strategy
from ktrdr.storage import ModelStorage
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2


def field(path: str, value: str) -> common_pb2.FieldOverride:
    return common_pb2.FieldOverride(path=path, value=value)


async def test_the_operation_trains_the_changed_strategy(backend):
    stub = backend.stub
    created = (
        await stub.CreateTraining(
            pb.CreateTrainingRequest(
                strategy_name="tiny_rsi",
                field_overrides=[
                    field("model.training.epochs", "2"),
                    field("model.architecture.hidden_layers", "[5]"),
                ],
            )
        )
    ).operation
    async for message in stub.WatchOperation(
        pb.WatchOperationRequest(operation_id=created.operation_id)
    ):
        last = message
    assert last.status == pb.OPERATION_STATUS_COMPLETED, last
    model = ModelStorage(backend.settings.models_dir).get("tiny_rsi")
    metadata = json.loads((model.path / "metadata.json").read_text())
    assert len(metadata["history"]) <= 2
    trained = parse_strategy(metadata["strategy_yaml"])
    assert trained.model.training.epochs == 2
    assert trained.model.architecture.hidden_layers == [5]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ([field("model.training.learnig_rate", "0.1")], "did you mean `learning_rate`"),
        ([field("model..epochs", "2")], "field_overrides[0].path: malformed field path"),
        ([field("model.training.epochs", "[1, &a 2]")], "field_overrides[0].value"),
        ([field("seed", "1")] * 65, "field_overrides: at most 64 entries"),
        ([field("indicators[9].period", "3")], "indicators has 2 entries, no position 9"),
    ],
)
async def test_bad_overrides_are_invalid_argument(backend, overrides, expected):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await backend.stub.CreateTraining(
            pb.CreateTrainingRequest(strategy_name="tiny_rsi", field_overrides=overrides)
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert expected in info.value.details()
