"""End to end with real processes: a backend and a training host on loopback ports."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest

from ktrdr.storage import ModelBundle
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import backend_pb2_grpc, common_pb2, host_pb2
from ktrdr.transfer import iter_submit_requests
from tests.support.processes import channel_to, free_port, start_backend
from tests.support.timing import scaled, wait_until

pytestmark = pytest.mark.e2e

LOCAL, HOST, AUTO = pb.EXECUTION_MODE_LOCAL, pb.EXECUTION_MODE_HOST, pb.EXECUTION_MODE_AUTO
CPU_SEED = common_pb2.TrainingOverrides(device="cpu", seed=11)
TIMEOUT_S = scaled(480)  # a bound on a stuck stream, not a speed check: loaded machines are slow


def create(stub, yaml_text: str, mode: int = 0, *, require_gpu: bool = False) -> pb.Operation:
    request = pb.CreateTrainingRequest(
        strategy_yaml=yaml_text, execution_mode=mode, require_gpu=require_gpu, overrides=CPU_SEED
    )
    return stub.CreateTraining(request, timeout=scaled(10)).operation


def watch(stub, op_id: str, until_kind: int | None = None) -> list[pb.WatchOperationResponse]:
    out = []
    for message in stub.WatchOperation(
        pb.WatchOperationRequest(operation_id=op_id), timeout=TIMEOUT_S
    ):
        out.append(message)
        if until_kind is not None and message.event.kind == until_kind:
            break
    return out


def get(stub, op_id: str) -> pb.Operation:
    return stub.GetOperation(
        pb.GetOperationRequest(operation_id=op_id), timeout=scaled(5)
    ).operation


def error_of(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


def train(stub, yaml_text: str, mode: int) -> pb.Operation:
    op = create(stub, yaml_text, mode)
    assert op.mode == mode, op.mode_reason
    stream = watch(stub, op.operation_id)
    assert stream[-1].status == pb.OPERATION_STATUS_COMPLETED, stream[-1]
    done = get(stub, op.operation_id)
    assert done.status == pb.OPERATION_STATUS_COMPLETED and done.last_event == stream[-1].event
    return done


def summary_without_timing(path: str) -> dict[str, float]:
    metrics = ModelBundle.read(Path(path)).metadata["metrics"]["summary"]
    return {k: v for k, v in metrics.items() if k != "train_samples_per_s"}


def test_host_and_local_runs_give_identical_models(
    backend_stub, host_stub, backend_process, tiny_strategy_yaml
):
    import torch

    store = backend_process.log.parent / "models"  # references are store-relative
    on_host = train(backend_stub, tiny_strategy_yaml, HOST)
    assert on_host.host_address and "healthy" in on_host.mode_reason
    # The backend reports COMPLETED once it has the bundle; the host marks it delivered when
    # it processes the backend's acknowledgement, a moment later: wait for that (bounded).
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        session = host_stub.GetSession(
            host_pb2.GetSessionRequest(session_id=on_host.operation_id), timeout=scaled(5)
        ).session
        delivered = session.result.delivery.status == common_pb2.DELIVERY_STATUS_DELIVERED
        if delivered or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert delivered, session
    locally = train(backend_stub, tiny_strategy_yaml, LOCAL)
    host_ref, local_ref = on_host.result.delivery.model, locally.result.delivery.model
    assert host_ref.strategy_name == local_ref.strategy_name == "tiny_rsi"
    assert local_ref.version == host_ref.version + 1
    host_bundle, local_bundle = (
        ModelBundle.read(store / host_ref.path),
        ModelBundle.read(store / local_ref.path),
    )
    assert host_bundle.weights.keys() == local_bundle.weights.keys()
    for key, tensor in host_bundle.weights.items():
        assert torch.equal(tensor, local_bundle.weights[key]), key
    assert summary_without_timing(str(store / host_ref.path)) == summary_without_timing(
        str(store / local_ref.path)
    )
    models = backend_stub.ListModels(pb.ListModelsRequest(strategy_name="tiny_rsi")).strategies
    versions = {v.version: v.operation_id for v in models[0].versions}
    assert versions[host_ref.version] == on_host.operation_id
    strategies = {
        s.name: s for s in backend_stub.ListStrategies(pb.ListStrategiesRequest()).strategies
    }
    assert strategies["tiny_rsi"].status == pb.STRATEGY_STATUS_TRAINED
    assert strategies["tiny_rsi"].latest_version == local_ref.version

    # SubmitResults without the operation's upload credential: even the delivered bundle
    # itself is refused (only the host holds the credential); an unknown operation: NOT_FOUND
    archive = (store / host_ref.path).parent / "resend.tar"
    host_bundle.to_archive(archive)
    try:
        requests = list(
            iter_submit_requests(archive, session_id=on_host.operation_id, strategy_name="tiny_rsi")
        )
        assert requests[0].header.sha256 == on_host.result.bundle_sha256
        err = error_of(lambda: backend_stub.SubmitResults(iter(requests), timeout=scaled(10)))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED, err.details()
        unknown = list(
            iter_submit_requests(archive, session_id=on_host.operation_id, strategy_name="tiny_rsi")
        )
        unknown[0].header.session_id = "no-such-operation"
        err = error_of(lambda: backend_stub.SubmitResults(iter(unknown), timeout=scaled(10)))
        assert err.code() == grpc.StatusCode.NOT_FOUND
    finally:
        archive.unlink(missing_ok=True)
    models = backend_stub.ListModels(pb.ListModelsRequest(strategy_name="tiny_rsi")).strategies
    assert len(models[0].versions) == 2


def test_corrupted_bundle_is_refused_while_waiting(backend_stub, host_stub, tiny_strategy_yaml):
    slow = tiny_strategy_yaml.replace("epochs: 4", "epochs: 400")
    op = create(backend_stub, slow, HOST)
    watch(backend_stub, op.operation_id, until_kind=common_pb2.PROGRESS_KIND_EPOCH)
    archive = Path(__file__).parent / f".corrupt-{op.operation_id}.tar"
    archive.write_bytes(b"x" * 5000)
    try:
        requests = list(
            iter_submit_requests(archive, session_id=op.operation_id, strategy_name="tiny_rsi")
        )
        requests[1].chunk.data = b"y" * len(requests[1].chunk.data)
        err = error_of(lambda: backend_stub.SubmitResults(iter(requests), timeout=scaled(10)))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED  # no upload credential
    finally:
        archive.unlink()
    # cancel on the host while training, then cancel the finished operation
    response = backend_stub.CancelOperation(
        pb.CancelOperationRequest(operation_id=op.operation_id, reason="e2e"), timeout=scaled(30)
    )
    # CancelOperation waits a few seconds for the stop; a loaded machine may need longer
    assert response.status in (pb.OPERATION_STATUS_CANCELLED, pb.OPERATION_STATUS_RUNNING)
    assert watch(backend_stub, op.operation_id)[-1].status == pb.OPERATION_STATUS_CANCELLED
    wait_until(
        lambda: (
            host_stub.GetSession(
                host_pb2.GetSessionRequest(session_id=op.operation_id), timeout=scaled(5)
            ).session.state
            == host_pb2.SESSION_STATE_CANCELLED
        ),
        60,
        "the host session to be cancelled",
    )
    err = error_of(
        lambda: backend_stub.CancelOperation(
            pb.CancelOperationRequest(operation_id=op.operation_id), timeout=scaled(5)
        )
    )
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_cancel_local_training(backend_stub, tiny_strategy_yaml):
    op = create(backend_stub, tiny_strategy_yaml.replace("epochs: 4", "epochs: 400"), LOCAL)
    watch(backend_stub, op.operation_id, until_kind=common_pb2.PROGRESS_KIND_EPOCH)
    response = backend_stub.CancelOperation(
        pb.CancelOperationRequest(operation_id=op.operation_id), timeout=scaled(30)
    )
    # CancelOperation waits a few seconds for the worker to stop; a loaded machine may need
    # longer, and the operation ends CANCELLED all the same
    assert response.status in (pb.OPERATION_STATUS_CANCELLED, pb.OPERATION_STATUS_RUNNING)
    assert watch(backend_stub, op.operation_id)[-1].status == pb.OPERATION_STATUS_CANCELLED


def test_mode_rules_with_a_cpu_host(backend_stub, host_process, tiny_strategy_yaml):
    auto = create(backend_stub, tiny_strategy_yaml, AUTO)
    assert auto.mode == LOCAL and "no GPU" in auto.mode_reason
    backend_stub.CancelOperation(pb.CancelOperationRequest(operation_id=auto.operation_id))
    for mode in (HOST, AUTO):
        err = error_of(lambda m=mode: create(backend_stub, tiny_strategy_yaml, m, require_gpu=True))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert host_process.address in err.details() and "no GPU" in err.details()


def test_default_mode_change_affects_later_requests_only(backend_stub, tiny_strategy_yaml):
    config = backend_stub.GetTrainingConfig(pb.GetTrainingConfigRequest()).config
    assert config.default_mode == LOCAL  # from TRAINING_DEFAULT_MODE=local
    before = create(backend_stub, tiny_strategy_yaml)
    changed = backend_stub.UpdateTrainingConfig(pb.UpdateTrainingConfigRequest(default_mode=HOST))
    assert (changed.previous_default_mode, changed.default_mode) == (LOCAL, HOST)
    try:
        after = create(backend_stub, tiny_strategy_yaml)
        assert after.mode == HOST and after.mode_reason.startswith("host (the default mode)")
        assert get(backend_stub, before.operation_id).mode == LOCAL
        for op in (after, before):
            watch(backend_stub, op.operation_id)
    finally:
        backend_stub.UpdateTrainingConfig(pb.UpdateTrainingConfigRequest(default_mode=LOCAL))


def test_host_down_fallback_and_require_gpu(tmp_path, sample_data_dir, tiny_strategy_yaml):
    down = f"127.0.0.1:{free_port()}"
    backend = start_backend(tmp_path, sample_data_dir, [down], default_mode="host")
    try:
        with channel_to(backend.address) as channel:
            stub = backend_pb2_grpc.BackendStub(channel)
            op = create(stub, tiny_strategy_yaml)
            assert op.mode == LOCAL and "fell back to local" in op.mode_reason
            assert "not reachable" in op.mode_reason  # refused, not waited for
            assert down in op.mode_reason
            assert watch(stub, op.operation_id)[-1].status == pb.OPERATION_STATUS_COMPLETED
            err = error_of(lambda: create(stub, tiny_strategy_yaml, HOST, require_gpu=True))
            assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert down in err.details() and "not reachable" in err.details()
    finally:
        backend.stop()


def test_backend_killed_during_host_training(
    tmp_path, sample_data_dir, host_process, tiny_strategy_yaml
):
    port = free_port()
    backend = start_backend(tmp_path, sample_data_dir, [host_process.address], port=port)
    slow = tiny_strategy_yaml.replace("epochs: 4", "epochs: 40")
    try:
        with channel_to(backend.address) as channel:
            stub = backend_pb2_grpc.BackendStub(channel)
            op = create(stub, slow, HOST)
            watch(stub, op.operation_id, until_kind=common_pb2.PROGRESS_KIND_EPOCH)
        backend.stop(crash=True)
        backend = start_backend(tmp_path, sample_data_dir, [host_process.address], port=port)
        with channel_to(backend.address) as channel:
            stub = backend_pb2_grpc.BackendStub(channel)
            stream = watch(stub, op.operation_id)
            assert stream[-1].status == pb.OPERATION_STATUS_COMPLETED, stream[-1]
            models = stub.ListModels(pb.ListModelsRequest()).strategies
            assert [(m.strategy_name, len(m.versions)) for m in models] == [("tiny_rsi", 1)]
        assert len(list((tmp_path / "models" / "tiny_rsi").glob("*_v*"))) == 1
    finally:
        backend.stop()
