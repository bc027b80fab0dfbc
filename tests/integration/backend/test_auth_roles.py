"""Every role against every Backend RPC, on a real server with real tokens.

A refused role gets PERMISSION_DENIED before anything runs; an allowed role gets whatever the
RPC itself answers to a harmless request (never UNAUTHENTICATED or PERMISSION_DENIED). No
token, or an unknown or revoked one, is UNAUTHENTICATED.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import grpc
import pytest

from ktrdr.security.channels import aio_channel
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import backend_pb2_grpc
from tests.support.backend import Backend, start_backend, stop_backend
from tests.support.timing import async_wait_until, scaled

DENIED = grpc.StatusCode.PERMISSION_DENIED
UNAUTH = grpc.StatusCode.UNAUTHENTICATED

Call = Callable[[backend_pb2_grpc.BackendStub, grpc.aio.Channel], Awaitable[object]]


async def _reflection(stub: object, channel: grpc.aio.Channel) -> object:
    from grpc_reflection.v1alpha import reflection_pb2

    call = channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=scaled(10))
    return [m async for m in call]


async def _watch(stub: backend_pb2_grpc.BackendStub, channel: object) -> object:
    call = stub.WatchOperation(pb.WatchOperationRequest(operation_id="nope"), timeout=scaled(10))
    return [m async for m in call]


async def _submit(stub: backend_pb2_grpc.BackendStub, channel: object) -> object:
    header = pb.SubmitResultsRequest(
        header=pb.SubmitResultsHeader(session_id="nope", strategy_name="x", sha256="0" * 64)
    )
    return await stub.SubmitResults(iter([header]), timeout=scaled(10))


async def _watch_sweep(stub: backend_pb2_grpc.BackendStub, channel: object) -> object:
    call = stub.WatchSweep(pb.WatchSweepRequest(sweep_id="nope"), timeout=scaled(10))
    return [m async for m in call]


CALLS: dict[str, Call] = {
    "GetOperation": lambda s, c: s.GetOperation(pb.GetOperationRequest(operation_id="nope")),
    "ListOperations": lambda s, c: s.ListOperations(pb.ListOperationsRequest()),
    "WatchOperation": _watch,
    "GetTrainingConfig": lambda s, c: s.GetTrainingConfig(pb.GetTrainingConfigRequest()),
    "ListModels": lambda s, c: s.ListModels(pb.ListModelsRequest()),
    "ListStrategies": lambda s, c: s.ListStrategies(pb.ListStrategiesRequest()),
    "CreateTraining": lambda s, c: s.CreateTraining(pb.CreateTrainingRequest()),  # no strategy
    "CancelOperation": lambda s, c: s.CancelOperation(pb.CancelOperationRequest(operation_id="x")),
    "UpdateTrainingConfig": lambda s, c: s.UpdateTrainingConfig(
        pb.UpdateTrainingConfigRequest(default_mode=99)  # type: ignore[arg-type]
    ),
    "SubmitResults": _submit,
    "ServerReflectionInfo": _reflection,
    "CreateSweep": lambda s, c: s.CreateSweep(pb.CreateSweepRequest()),  # no parameters
    "GetSweep": lambda s, c: s.GetSweep(pb.GetSweepRequest(sweep_id="nope")),
    "ListSweeps": lambda s, c: s.ListSweeps(pb.ListSweepsRequest()),
    "WatchSweep": _watch_sweep,
    "CancelSweep": lambda s, c: s.CancelSweep(pb.CancelSweepRequest(sweep_id="x")),
}

READS = {
    "GetOperation", "ListOperations", "WatchOperation", "GetTrainingConfig", "ListModels",
    "ListStrategies", "ServerReflectionInfo", "GetSweep", "ListSweeps", "WatchSweep",
}  # fmt: skip
ALLOWED = {
    "viewer": READS,
    "trainer": READS | {"CreateTraining", "CancelOperation", "CreateSweep", "CancelSweep"},
    "admin": set(CALLS),
    "host": {"SubmitResults"},
}


async def code_of(call: Awaitable[object]) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


@pytest.fixture
async def backend(tmp_path, sample_data_dir, tiny_strategy_yaml):
    (tmp_path / "strategies").mkdir()
    b = await start_backend(tmp_path, sample_data_dir)
    yield b
    await stop_backend(b)


def client(b: Backend, token: str | None) -> grpc.aio.Channel:
    return aio_channel(f"127.0.0.1:{b.app.port}", token=token)


async def test_every_role_against_every_rpc(backend: Backend) -> None:
    seen: dict[tuple[str, str], grpc.StatusCode] = {}
    for role, allowed in ALLOWED.items():
        token = await asyncio.to_thread(backend.app.tokens.create, f"t-{role}", role)
        async with client(backend, token) as channel:
            stub = backend_pb2_grpc.BackendStub(channel)
            for name, call in CALLS.items():
                code = await code_of(call(stub, channel))
                seen[role, name] = code
                if (role, name) in (("trainer", "CancelOperation"), ("trainer", "CancelSweep")):
                    continue  # allowed by the table, refused for an operation not its own
                if name in allowed:
                    assert code not in (DENIED, UNAUTH), (role, name, code)
                else:
                    assert code == DENIED, (role, name, code)
    # a trainer's cancel of an unknown operation says nothing about its existence
    assert seen["trainer", "CancelOperation"] == DENIED
    assert seen["admin", "CancelOperation"] == grpc.StatusCode.NOT_FOUND
    assert seen["trainer", "CancelSweep"] == DENIED
    assert seen["admin", "CancelSweep"] == grpc.StatusCode.NOT_FOUND


async def test_missing_unknown_and_revoked_tokens_are_unauthenticated(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # known tokens are cached for 0.1 s here (2 s in production)
    monkeypatch.setattr("ktrdr.security.interceptor.CACHE_TTL_S", 0.1)
    for token in (None, "ktrdr_not-a-real-token-at-all"):
        async with client(backend, token) as channel:
            stub = backend_pb2_grpc.BackendStub(channel)
            for name, call in CALLS.items():
                assert await code_of(call(stub, channel)) == UNAUTH, (token, name)
    token = await asyncio.to_thread(backend.app.tokens.create, "short-lived", "viewer")
    async with client(backend, token) as channel:
        stub = backend_pb2_grpc.BackendStub(channel)
        assert await code_of(stub.ListStrategies(pb.ListStrategiesRequest())) == grpc.StatusCode.OK
        await asyncio.to_thread(backend.app.tokens.revoke, "short-lived")

        async def refused() -> bool:  # the interceptor caches a known token for a while
            return await code_of(stub.ListStrategies(pb.ListStrategiesRequest())) == UNAUTH

        await async_wait_until(refused, 10, "a revoked token to be refused")


async def test_health_stays_open(backend: Backend) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    async with client(backend, None) as channel:
        answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_operations_have_owners_and_trainers_cancel_only_their_own(
    backend: Backend, tiny_strategy_yaml: str
) -> None:
    slow = tiny_strategy_yaml.replace("epochs: 4", "epochs: 400")
    alice = await asyncio.to_thread(backend.app.tokens.create, "alice", "trainer")
    bob = await asyncio.to_thread(backend.app.tokens.create, "bob", "trainer")
    async with client(backend, alice) as a, client(backend, bob) as b_:
        alice_stub, bob_stub = backend_pb2_grpc.BackendStub(a), backend_pb2_grpc.BackendStub(b_)
        created = await alice_stub.CreateTraining(
            pb.CreateTrainingRequest(strategy_yaml=slow, execution_mode=pb.EXECUTION_MODE_LOCAL)
        )
        op_id = created.operation.operation_id
        assert created.operation.owner == "alice"
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await bob_stub.CancelOperation(pb.CancelOperationRequest(operation_id=op_id))
        assert refused.value.code() == DENIED and "of yours" in (refused.value.details() or "")
        mine = await bob_stub.ListOperations(pb.ListOperationsRequest(owner="me"))
        assert list(mine.operations) == []
        theirs = await bob_stub.ListOperations(pb.ListOperationsRequest(owner="alice"))
        assert [o.operation_id for o in theirs.operations] == [op_id]
        done = await alice_stub.CancelOperation(pb.CancelOperationRequest(operation_id=op_id))
        assert done.operation.status == pb.OPERATION_STATUS_CANCELLED
        assert "alice" in done.operation.error.message


async def test_sweeps_have_owners_and_trainers_cancel_only_their_own(
    backend: Backend, tiny_strategy_yaml: str
) -> None:
    pytest.importorskip("optuna")
    slow = tiny_strategy_yaml.replace("epochs: 4", "epochs: 400")
    alice = await asyncio.to_thread(backend.app.tokens.create, "alice", "trainer")
    bob = await asyncio.to_thread(backend.app.tokens.create, "bob", "trainer")
    async with client(backend, alice) as a, client(backend, bob) as b_:
        alice_stub, bob_stub = backend_pb2_grpc.BackendStub(a), backend_pb2_grpc.BackendStub(b_)
        parameter = pb.SweepParameter(
            path="model.architecture.activation", choices=pb.Choices(values=["relu", "tanh"])
        )
        created = await alice_stub.CreateSweep(
            pb.CreateSweepRequest(strategy_yaml=slow, parameters=[parameter], n_trials=2)
        )
        sweep_id = created.sweep.sweep_id
        assert created.sweep.owner == "alice"
        stream = bob_stub.WatchSweep(pb.WatchSweepRequest(sweep_id=sweep_id))
        async for message in stream:  # a viewer's read; the first trial's operation
            if message.event.kind == pb.SWEEP_EVENT_KIND_TRIAL_STARTED:
                op_id = message.event.trial.operation_id
                break
        stream.cancel()
        op = await bob_stub.GetOperation(pb.GetOperationRequest(operation_id=op_id))
        assert op.operation.owner == "alice" and op.operation.sweep_id == sweep_id
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await bob_stub.CancelSweep(pb.CancelSweepRequest(sweep_id=sweep_id))
        assert refused.value.code() == DENIED and "of yours" in (refused.value.details() or "")
        done = await alice_stub.CancelSweep(pb.CancelSweepRequest(sweep_id=sweep_id))
        assert done.sweep.status == pb.SWEEP_STATUS_CANCELLED
        assert [t.status for t in done.sweep.trials] == [pb.TRIAL_STATUS_CANCELLED]


async def test_one_caller_cannot_take_every_sweep_slot(
    tmp_path, sample_data_dir, tiny_strategy_yaml: str
) -> None:
    pytest.importorskip("optuna")
    from tests.support.fake_training import FakeTrainer

    (tmp_path / "strategies").mkdir()
    b = await start_backend(
        tmp_path, sample_data_dir, trainer=FakeTrainer(hold_from=1), sweep_max_running_per_user=1
    )
    try:
        alice = await asyncio.to_thread(b.app.tokens.create, "alice", "trainer")
        bob = await asyncio.to_thread(b.app.tokens.create, "bob", "trainer")
        parameter = pb.SweepParameter(
            path="model.architecture.activation", choices=pb.Choices(values=["relu", "tanh"])
        )
        request = pb.CreateSweepRequest(
            strategy_yaml=tiny_strategy_yaml, parameters=[parameter], n_trials=2
        )
        async with client(b, alice) as a, client(b, bob) as b_:
            alice_stub, bob_stub = backend_pb2_grpc.BackendStub(a), backend_pb2_grpc.BackendStub(b_)
            first = (await alice_stub.CreateSweep(request)).sweep
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await alice_stub.CreateSweep(request)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "alice has 1 sweeps running (limit 1 per caller" in (
                refused.value.details() or ""
            )
            theirs = (await bob_stub.CreateSweep(request)).sweep  # another caller still may
            for stub, sweep in ((alice_stub, first), (bob_stub, theirs)):
                done = await stub.CancelSweep(pb.CancelSweepRequest(sweep_id=sweep.sweep_id))
                assert done.sweep.status == pb.SWEEP_STATUS_CANCELLED
            # a finished sweep frees its owner's share
            again = (await alice_stub.CreateSweep(request)).sweep
            await alice_stub.CancelSweep(pb.CancelSweepRequest(sweep_id=again.sweep_id))
    finally:
        await stop_backend(b)
