"""A finished model is delivered despite busy upload slots and a wrong host token (real processes).

One backend process with a single upload slot (``KTRDR_BACKEND_MAX_CONCURRENT_UPLOADS=1``) and
one host process that reads its host-role token from a file at every delivery attempt. A slow
stream holds the slot while a host training finishes: the host must keep retrying (never park
the model) and deliver once the slot is free. A wrong token, fixed in the file later, must
likewise end in a delivered model.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import backend_pb2_grpc, common_pb2, host_pb2, host_pb2_grpc
from ktrdr.transfer.refusals import RETRY_AFTER_KEY
from tests.support.processes import (
    HOST_AUTH_TOKEN,
    HOST_ROLE_TOKEN,
    Service,
    channel_to,
    start_backend,
    start_host,
)
from tests.support.timing import wait_until

pytestmark = pytest.mark.e2e
DEADLINE_S = 120.0  # a bound on a stuck run, not a speed check


@pytest.fixture(scope="module")
def services(tmp_path_factory, sample_data_dir) -> Iterator[tuple[Service, Service, Path]]:
    root = tmp_path_factory.mktemp("contention")
    token_file = root / "host-role.token"
    token_file.write_text(HOST_ROLE_TOKEN + "\n")
    token_file.chmod(0o600)
    host = start_host(
        root / "host",
        sample_data_dir,
        env={"KTRDR_HOST_BACKEND_TOKEN": "", "KTRDR_HOST_BACKEND_TOKEN_FILE": str(token_file)},
    )
    try:
        backend = start_backend(
            root / "backend",
            sample_data_dir,
            [host.address],
            default_mode="host",
            env={
                "KTRDR_BACKEND_MAX_CONCURRENT_UPLOADS": "1",
                "KTRDR_BACKEND_UPLOAD_IDLE_TIMEOUT_S": "300",
            },
        )
    except BaseException:
        host.stop()
        raise
    try:
        yield backend, host, token_file
    finally:
        backend.stop()
        host.stop()


def wait_for(check: Callable[[], object], what: str, timeout: float = DEADLINE_S) -> object:
    return wait_until(check, timeout, what, poll_s=0.1)


def create_host_training(backend: Service, yaml_text: str) -> str:
    with channel_to(backend.address) as channel:
        request = pb.CreateTrainingRequest(
            strategy_yaml=yaml_text,
            execution_mode=pb.EXECUTION_MODE_HOST,
            overrides=common_pb2.TrainingOverrides(device="cpu", seed=3),
        )
        op = backend_pb2_grpc.BackendStub(channel).CreateTraining(request, timeout=30).operation
    assert op.mode == pb.EXECUTION_MODE_HOST, op.mode_reason
    return op.operation_id


def operation(backend: Service, op_id: str) -> pb.Operation:
    with channel_to(backend.address) as channel:
        request = pb.GetOperationRequest(operation_id=op_id)
        return backend_pb2_grpc.BackendStub(channel).GetOperation(request, timeout=10).operation


def delivery(host: Service, op_id: str) -> common_pb2.Delivery | None:
    with channel_to(host.address, HOST_AUTH_TOKEN) as channel:
        try:
            session = (
                host_pb2_grpc.TrainingHostStub(channel)
                .GetSession(host_pb2.GetSessionRequest(session_id=op_id), timeout=10)
                .session
            )
        except grpc.RpcError:
            return None
    return session.result.delivery if session.HasField("result") else None


def retried(host: Service, op_id: str, code: str) -> bool:
    """True once the host has failed at least twice with ``code`` and still keeps the model."""
    d = delivery(host, op_id)
    if d is None:
        return False
    assert d.status != common_pb2.DELIVERY_STATUS_FAILED, f"the host gave up: {d.last_error}"
    return d.attempts >= 2 and d.last_error.startswith(code)


def completed(backend: Service, op_id: str) -> pb.Operation | None:
    op = operation(backend, op_id)
    waiting = (pb.OPERATION_STATUS_PENDING, pb.OPERATION_STATUS_RUNNING)
    assert op.status in (*waiting, pb.OPERATION_STATUS_COMPLETED), op
    return op if op.status == pb.OPERATION_STATUS_COMPLETED else None


class SlotHolder:
    """A SubmitResults stream with the host-role token that sends nothing: it holds one of the
    backend's upload slots until ``release``."""

    def __init__(self, address: str) -> None:
        self._release = threading.Event()
        self._channel = channel_to(address, HOST_ROLE_TOKEN)
        stub = backend_pb2_grpc.BackendStub(self._channel)
        self.call = stub.SubmitResults.future(self._nothing(), timeout=DEADLINE_S)

    def _nothing(self) -> Iterator[pb.SubmitResultsRequest]:
        self._release.wait(DEADLINE_S)
        return
        yield  # a generator that yields nothing

    def refused_as_busy(self) -> bool:
        """Whether the stream ended RESOURCE_EXHAUSTED: one of the test's own probes held the
        slot when the stream arrived (on a loaded machine a probe can be admitted first)."""
        if not self.call.done():
            return False
        error = self.call.exception()
        return error is not None and error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[union-attr]

    def check_open(self) -> None:
        """Fails the test with the holder's own answer if its stream has ended (then nothing
        holds the slot, and waiting for it is pointless)."""
        if self.call.done():
            error = self.call.exception()
            answer = f"{error.code()}: {error.details()}" if error is not None else "OK"  # type: ignore[union-attr]
            raise AssertionError(f"the slot-holding stream ended before the test: {answer}")

    def release(self) -> None:
        self._release.set()
        self.call.cancel()
        self._channel.close()


def busy_answer(address: str) -> grpc.RpcError | None:
    """The backend's answer to one more upload (a header for no operation)."""
    header = pb.SubmitResultsRequest(header=pb.SubmitResultsHeader(session_id="no-such-op"))
    with channel_to(address, HOST_ROLE_TOKEN) as channel:
        try:
            backend_pb2_grpc.BackendStub(channel).SubmitResults(iter([header]), timeout=10)
        except grpc.RpcError as exc:
            return exc
    return None


def test_busy_upload_slots_delay_but_never_lose_the_model(services, tiny_strategy_yaml) -> None:
    backend, host, _ = services
    holders = [SlotHolder(backend.address)]
    try:

        def slot_taken() -> grpc.RpcError | None:
            if holders[-1].refused_as_busy():  # a probe was admitted before it: hold again
                holders.append(SlotHolder(backend.address))
                return None
            holders[-1].check_open()
            answer = busy_answer(backend.address)
            return answer if answer.code() == grpc.StatusCode.RESOURCE_EXHAUSTED else None  # type: ignore[union-attr]

        busy = wait_for(slot_taken, "the slot to be held", 30)
        trailing = dict(busy.trailing_metadata() or ())  # type: ignore[attr-defined]
        assert int(trailing[RETRY_AFTER_KEY]) > 0  # the backend says when to come back
        op_id = create_host_training(backend, tiny_strategy_yaml)
        wait_for(lambda: retried(host, op_id, "RESOURCE_EXHAUSTED"), "retries at the cap")
        assert operation(backend, op_id).status == pb.OPERATION_STATUS_RUNNING
    finally:
        for holder in holders:
            holder.release()
    done = wait_for(lambda: completed(backend, op_id), "the operation to complete")
    assert done.result.delivery.status == common_pb2.DELIVERY_STATUS_DELIVERED  # type: ignore[attr-defined]
    model = done.result.delivery.model  # type: ignore[attr-defined]
    assert model.strategy_name == "tiny_rsi" and model.version >= 1


def test_a_token_fixed_later_still_delivers(services, tiny_strategy_yaml) -> None:
    backend, host, token_file = services
    token_file.write_text("not-the-host-token\n")
    try:
        op_id = create_host_training(backend, tiny_strategy_yaml)
        wait_for(lambda: retried(host, op_id, "UNAUTHENTICATED"), "retries with a bad token")
        assert operation(backend, op_id).status == pb.OPERATION_STATUS_RUNNING
    finally:
        token_file.write_text(HOST_ROLE_TOKEN + "\n")  # the operator fixes the file
    done = wait_for(lambda: completed(backend, op_id), "the operation to complete")
    assert done.result.delivery.status == common_pb2.DELIVERY_STATUS_DELIVERED  # type: ignore[attr-defined]
