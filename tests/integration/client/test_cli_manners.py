"""The CLI's manners against a fake backend on loopback: exit codes, notices, and global
options anywhere."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import backend_pb2_grpc
from tests.support.cli import run


class SweepBackend(backend_pb2_grpc.BackendServicer):
    """A backend that knows sweeps only: CreateSweep answers RUNNING, CancelSweep answers
    with ``cancel_status`` (or FAILED_PRECONDITION for an ended sweep)."""

    def __init__(self) -> None:
        self.cancel_status = pb.SWEEP_STATUS_CANCELLED

    def _sweep(self, status: int, parallelism: int = 1) -> pb.Sweep:
        return pb.Sweep(
            sweep_id="s1", status=status, strategy_name="rsi", n_trials=4, parallelism=parallelism
        )

    def CreateSweep(self, request: Any, context: Any) -> Any:
        return pb.CreateSweepResponse(
            sweep=self._sweep(pb.SWEEP_STATUS_RUNNING, request.parallelism)
        )

    def CancelSweep(self, request: Any, context: Any) -> Any:
        if self.cancel_status == pb.SWEEP_STATUS_COMPLETED:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "sweep s1 already ended: COMPLETED")
        return pb.CancelSweepResponse(sweep=self._sweep(self.cancel_status))

    def GetTrainingConfig(self, request: Any, context: Any) -> Any:
        return pb.GetTrainingConfigResponse(
            config=pb.TrainingConfig(local_concurrency=1, host_addresses=[])
        )


@pytest.fixture
def sweep_backend() -> Iterator[tuple[str, SweepBackend]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = SweepBackend()
    backend_pb2_grpc.add_BackendServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        server.stop(grace=None)


def test_sweep_cancel_exits_non_zero_unless_cancelled(sweep_backend, capsys) -> None:
    address, servicer = sweep_backend
    code, _, err = run(capsys, "sweep", "cancel", "s1", "--backend", address, "--token", "t")
    assert code == 0, err
    servicer.cancel_status = pb.SWEEP_STATUS_FAILED
    code, _, err = run(capsys, "sweep", "cancel", "s1", "--backend", address, "--token", "t")
    assert code == 1 and "ended failed, not cancelled" in err
    servicer.cancel_status = pb.SWEEP_STATUS_COMPLETED
    code, _, err = run(capsys, "sweep", "cancel", "s1", "--backend", address, "--token", "t")
    assert code == 1 and err.startswith("error: FAILED_PRECONDITION") and err.count("\n") == 1


def test_parallel_beyond_the_local_slots_says_why(sweep_backend, capsys) -> None:
    address, _ = sweep_backend
    argv = ["sweep", "create", "rsi", "--param", "model.training.learning_rate=float:1e-4:1e-1"]
    code, _, err = run(capsys, *argv, "--parallel", "2", "--backend", address, "--token", "t")
    assert code == 0, err
    assert "--parallel 2" in err and "KTRDR_BACKEND_LOCAL_CONCURRENCY=1" in err, err
    code, _, err = run(capsys, *argv, "--parallel", "1", "--backend", address, "--token", "t")
    assert code == 0 and "LOCAL_CONCURRENCY" not in err


def test_connection_options_may_come_before_the_command(sweep_backend, capsys) -> None:
    address, _ = sweep_backend
    code, _, err = run(capsys, "--backend", address, "--token", "t", "sweep", "cancel", "s1")
    assert code == 0, err
    code, _, err = run(capsys, f"--backend={address}", "-v", "sweep", "cancel", "s1")
    assert code == 0, err
