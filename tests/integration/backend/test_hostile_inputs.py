"""Values a hostile or careless caller sends, refused at once with a precise INVALID_ARGUMENT.

A real backend (gRPC on loopback, SQLite): non-finite and unbounded numbers, a symbol that is
only dots, a thousand symbols, a GPU the machine lacks, a start date no data has, sweep ranges
of one value or with an end beyond the work limits, aliases and tags ending in a newline, a
forged page token. Also: one caller's share of the pending queue, and private file modes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import stat
from pathlib import Path

import grpc
import pytest

from ktrdr.backend.auth.token_store import TokenStore
from ktrdr.security.channels import aio_channel
from ktrdr.security.tokens import generate_token
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import backend_pb2_grpc, common_pb2
from tests.support.backend import Backend, start_backend, stop_backend

INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture
async def backend(tmp_path: Path, sample_data_dir: Path, tiny_strategy_yaml: str):
    (tmp_path / "data" / "strategies").mkdir(parents=True)
    (tmp_path / "data" / "strategies" / "tiny_rsi.yaml").write_text(tiny_strategy_yaml)
    b = await start_backend(
        tmp_path / "data", sample_data_dir, local_concurrency=1, max_pending_per_user=2
    )
    yield b
    await stop_backend(b)


async def refusal(call) -> tuple[grpc.StatusCode, str]:  # type: ignore[no-untyped-def]
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    raise AssertionError("accepted")


def symbols_yaml(yaml_text: str, names: list[str]) -> str:
    listed = ", ".join(names)
    return yaml_text.replace(
        "symbols: {mode: single, symbol: EURUSD}",
        f"symbols: {{mode: multi_symbol, list: [{listed}]}}",
    )


@pytest.mark.parametrize(
    ("mutate", "overrides", "expected"),
    [
        (lambda y: y + "\n", {"learning_rate": ".inf"}, "learning_rate"),
        (lambda y: y, {"label_lookahead": "1000000000"}, "label_lookahead"),
        (lambda y: y.replace("symbol: EURUSD", "symbol: '..'"), {}, "invalid symbol '..'"),
        (lambda y: symbols_yaml(y, [f"S{i}" for i in range(1000)]), {}, "at most 100"),
    ],
    ids=["learning_rate_inf", "label_lookahead_1e9", "symbol_dots", "thousand_symbols"],
)
async def test_strategy_values_are_refused(
    backend: Backend, tiny_strategy_yaml: str, mutate, overrides, expected: str
) -> None:
    fields = [
        common_pb2.FieldOverride(
            path=f"model.training.{k}" if k == "learning_rate" else f"training.labels.{k}",
            value=v,
        )
        for k, v in overrides.items()
    ]
    request = pb.CreateTrainingRequest(
        strategy_yaml=mutate(tiny_strategy_yaml),
        execution_mode=pb.EXECUTION_MODE_LOCAL,
        field_overrides=fields,
    )
    code, detail = await refusal(backend.stub.CreateTraining(request))
    assert code == INVALID, detail
    assert expected in detail, detail


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (common_pb2.TrainingOverrides(device="cuda:99"), "overrides.device"),
        (common_pb2.TrainingOverrides(start_date="9999-12-31"), "9999-12-31"),
    ],
    ids=["cuda_99", "start_9999"],
)
async def test_overrides_are_refused(
    backend: Backend, tiny_strategy_yaml: str, overrides, expected: str
) -> None:
    request = pb.CreateTrainingRequest(
        strategy_yaml=tiny_strategy_yaml,
        execution_mode=pb.EXECUTION_MODE_LOCAL,
        overrides=overrides,
    )
    code, detail = await refusal(backend.stub.CreateTraining(request))
    assert code == INVALID, detail
    assert expected in detail, detail


@pytest.mark.parametrize(
    ("parameter", "expected"),
    [
        (
            pb.SweepParameter(path="model.training.epochs", int_range=pb.IntRange(low=5, high=5)),
            "low < high",
        ),
        (
            pb.SweepParameter(
                path="model.training.learning_rate",
                float_range=pb.FloatRange(low=0.01, high=0.01),
            ),
            "low < high",
        ),
        (
            pb.SweepParameter(
                path="model.training.epochs", int_range=pb.IntRange(low=1, high=10**18)
            ),
            "epochs",
        ),
    ],
    ids=["int_one_value", "float_one_value", "epochs_1e18"],
)
async def test_sweep_spaces_are_refused(backend: Backend, parameter, expected: str) -> None:
    request = pb.CreateSweepRequest(
        strategy_name="tiny_rsi", parameters=[parameter], n_trials=2, parallelism=1
    )
    code, detail = await refusal(backend.stub.CreateSweep(request))
    assert code == INVALID, detail
    assert expected in detail, detail


async def test_forged_page_token_is_invalid_argument(backend: Backend) -> None:
    forged = base64.urlsafe_b64encode(b"99999999999999999999999:x").decode()
    code, detail = await refusal(
        backend.stub.ListOperations(pb.ListOperationsRequest(page_token=forged))
    )
    assert code == INVALID and "page_token" in detail


async def test_one_caller_cannot_fill_the_pending_queue(
    backend: Backend, tiny_strategy_yaml: str
) -> None:
    slow = tiny_strategy_yaml.replace("epochs: 4", "epochs: 400")
    request = pb.CreateTrainingRequest(strategy_yaml=slow, execution_mode=pb.EXECUTION_MODE_LOCAL)
    created = []
    store = TokenStore(backend.settings.db_path)
    other = generate_token()
    await asyncio.to_thread(store.add, "bob", "trainer", other)
    store.close()
    try:
        refused = None
        for _ in range(6):  # one runs, two may wait: the caller's share is 2
            try:
                created.append((await backend.stub.CreateTraining(request)).operation)
            except grpc.aio.AioRpcError as exc:
                refused = exc
                break
        assert refused is not None and refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "per caller" in (refused.details() or "")
        # another caller still gets in
        address = f"127.0.0.1:{backend.app.port}"
        async with aio_channel(address, token=other) as channel:
            theirs = await backend_pb2_grpc.BackendStub(channel).CreateTraining(request)
            created.append(theirs.operation)
    finally:
        for op in created:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await backend.stub.CancelOperation(
                    pb.CancelOperationRequest(operation_id=op.operation_id)
                )


async def test_data_directory_and_database_are_private(
    tmp_path: Path, sample_data_dir: Path
) -> None:
    data = tmp_path / "fresh" / "backend"
    b = await start_backend(data, sample_data_dir)
    try:
        for directory in (data, data.parent):  # created by the backend
            assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
        for db in data.glob("backend.db*"):  # the database, its WAL and shared memory
            assert stat.S_IMODE(db.stat().st_mode) == 0o600, db
    finally:
        await stop_backend(b)
