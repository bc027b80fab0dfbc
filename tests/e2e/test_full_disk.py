"""A full disk under a real backend process: answered as such, and nothing stays RUNNING.

The backend's data directory (database and model store) is a small tmpfs mounted for the
test, filled to the last byte by a filler file. CreateTraining on the full disk answers
RESOURCE_EXHAUSTED naming "disk full" (no path). A local training whose model cannot be saved
ends FAILED with RESOURCE_EXHAUSTED "disk full" once the outcome can be written: when even
that write fails, it is retried until space returns. Skipped, with the reason, where the test
may not mount a tmpfs (needs root or CAP_SYS_ADMIN).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import backend_pb2_grpc, common_pb2
from tests.support.disk import Filler
from tests.support.processes import channel_to, start_backend
from tests.support.timing import wait_until

pytestmark = pytest.mark.e2e
DEADLINE_S = 60.0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48m,mode=0700", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or 'not permitted'}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def create(stub: backend_pb2_grpc.BackendStub, yaml_text: str) -> pb.Operation:
    request = pb.CreateTrainingRequest(
        strategy_yaml=yaml_text,
        execution_mode=pb.EXECUTION_MODE_LOCAL,
        overrides=common_pb2.TrainingOverrides(device="cpu", seed=5),
    )
    return stub.CreateTraining(request, timeout=30).operation


def get(stub: backend_pb2_grpc.BackendStub, op_id: str) -> pb.Operation:
    return stub.GetOperation(pb.GetOperationRequest(operation_id=op_id), timeout=10).operation


def wait_for(check: Callable[[], object], what: str, timeout: float = DEADLINE_S) -> object:
    return wait_until(check, timeout, what, poll_s=0.1)


def test_full_disk_is_answered_and_nothing_stays_running(
    small_disk: Path, sample_data_dir: Path, tiny_strategy_yaml: str
) -> None:
    # the data on the small disk, the log beside it (a log on the full disk would be cut)
    backend = start_backend(
        small_disk.parent / "backend", sample_data_dir, [], data_dir_override=small_disk / "data"
    )
    filler = Filler(small_disk)
    try:
        with channel_to(backend.address) as channel:
            stub = backend_pb2_grpc.BackendStub(channel)
            filler.fill()
            assert os.statvfs(small_disk).f_bavail == 0  # full to the last block
            with pytest.raises(grpc.RpcError) as refused:
                create(stub, tiny_strategy_yaml)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
            detail = refused.value.details()  # type: ignore[attr-defined]
            assert "disk full" in detail and str(small_disk) not in detail, detail

            filler.free()
            op = create(stub, tiny_strategy_yaml)
            wait_for(
                lambda: get(stub, op.operation_id).status == pb.OPERATION_STATUS_RUNNING,
                "the training to run",
            )
            filler.fill()  # the model, and perhaps the outcome, cannot be written now

            def settled_or_retrying() -> bool:
                status = get(stub, op.operation_id).status
                return status != pb.OPERATION_STATUS_RUNNING or "cannot record" in (
                    backend.log.read_text(errors="replace")
                )

            wait_for(settled_or_retrying, "the training to end")
            retried = get(stub, op.operation_id).status == pb.OPERATION_STATUS_RUNNING
            filler.free()
            done = wait_for(
                lambda: (
                    (o := get(stub, op.operation_id)).status != pb.OPERATION_STATUS_RUNNING and o
                ),
                "the outcome to be recorded",
            )
            assert done.status == pb.OPERATION_STATUS_FAILED, done
            assert done.error.code == "RESOURCE_EXHAUSTED", done.error
            assert "disk full" in done.error.message and "/" not in done.error.message
            print(f"terminal write retried after space returned: {retried}")
    finally:
        filler.free()
        backend.stop()
        with contextlib.suppress(OSError):
            print(backend.log.read_text()[-2000:])
