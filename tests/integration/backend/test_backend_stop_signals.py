"""``ktrdr backend serve`` stops like the host: the first signal drains within the grace
period, a second one stops at once (running calls cancelled), exit status 0 both ways."""

from __future__ import annotations

import signal

import grpc
import pytest

from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import backend_pb2_grpc
from tests.support.processes import channel_to, start_backend
from tests.support.timing import scaled, wait_until

pytestmark = pytest.mark.integration


def test_a_second_signal_stops_the_backend_without_waiting_for_running_calls(
    tmp_path, sample_data_dir, tiny_strategy_yaml
):
    # Host mode with no host: the operation waits PENDING and its watch stays open, so a
    # graceful stop would wait the whole (10-minute) grace period for it.
    backend = start_backend(
        tmp_path / "backend",
        sample_data_dir,
        [],
        default_mode="host",
        env={"KTRDR_BACKEND_GRACE_S": "600"},
    )
    try:
        with channel_to(backend.address) as channel:
            stub = backend_pb2_grpc.BackendStub(channel)
            request = pb.CreateTrainingRequest(strategy_yaml=tiny_strategy_yaml)
            op = stub.CreateTraining(request, timeout=scaled(30)).operation
            assert op.status == pb.OPERATION_STATUS_PENDING, op
            watch = stub.WatchOperation(
                pb.WatchOperationRequest(operation_id=op.operation_id), timeout=scaled(300)
            )
            next(watch)  # the stream is open and answering

            backend.process.send_signal(signal.SIGTERM)
            wait_until(
                lambda: "a second signal stops now" in backend.log.read_text(),
                scaled(30),
                "the backend to log that it drains",
            )
            assert backend.process.poll() is None, "stopped before its running call ended"

            backend.process.send_signal(signal.SIGTERM)
            assert backend.process.wait(scaled(60)) == 0
            with pytest.raises(grpc.RpcError) as ended:
                for _ in watch:
                    pass
            assert ended.value.code() in (
                grpc.StatusCode.CANCELLED,
                grpc.StatusCode.UNAVAILABLE,
            ), ended.value
    finally:
        backend.stop()
    log = backend.log.read_text()
    assert "cancelling running calls now" in log, log[-2000:]
