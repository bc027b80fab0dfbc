"""Another process holds ``backend.db``'s write lock: the backend stays responsive.

A real backend trains a local operation; a second process (python with sqlite3) takes the
database's write lock (``BEGIN IMMEDIATE``) and holds it for ``HOLD_S`` seconds. Meanwhile
health answers promptly (probed every 50 ms, p99 under 500 ms), GetOperation and
ListOperations answer from read connections, and CreateTraining either lands once the lock
is gone or is refused UNAVAILABLE "database busy, retry shortly" (never INTERNAL or
UNKNOWN). After the release everything queued lands: the operation that trained through the
lock completes, and one created during it runs to the end.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import backend_pb2_grpc, common_pb2
from tests.support.processes import channel_to, start_backend
from tests.support.timing import scaled, wait_until

pytestmark = pytest.mark.e2e

HOLD_S = 6.0  # the scenario, not a deadline: not scaled
PROBE_EVERY_S = 0.05
HEALTH_P99_S = 0.5
PROMPT_S = 1.0  # GetOperation / ListOperations while the lock is held
TIMEOUT_S = 480.0  # bounds a stuck training, not a speed check (wait_until scales it)

# Holds the write lock until told to stop; says "locked" once it has it.
LOCKER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
print("released", flush=True)
"""


def create(stub: backend_pb2_grpc.BackendStub, yaml_text: str) -> pb.Operation:
    request = pb.CreateTrainingRequest(
        strategy_yaml=yaml_text,
        execution_mode=pb.EXECUTION_MODE_LOCAL,
        overrides=common_pb2.TrainingOverrides(device="cpu", seed=3),
    )
    return stub.CreateTraining(request, timeout=scaled(30)).operation


def get(stub: backend_pb2_grpc.BackendStub, op_id: str, timeout: float = 10) -> pb.Operation:
    request = pb.GetOperationRequest(operation_id=op_id)
    return stub.GetOperation(request, timeout=timeout).operation


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


class HealthProbe(threading.Thread):
    """Checks health every ``PROBE_EVERY_S`` until stopped; keeps each call's latency."""

    def __init__(self, address: str) -> None:
        super().__init__(daemon=True)
        self.address = address
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with grpc.insecure_channel(self.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            stub.Check(health_pb2.HealthCheckRequest(), timeout=scaled(10))  # connected
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=30)
                    if reply.status != health_pb2.HealthCheckResponse.SERVING:
                        self.failures.append(f"status {reply.status}")
                except grpc.RpcError as exc:
                    self.failures.append(f"{exc.code().name}: {exc.details()}")  # type: ignore[attr-defined]
                self.latencies.append(time.monotonic() - started)
                self.stop.wait(PROBE_EVERY_S)


def test_a_locked_database_never_freezes_the_backend(
    tmp_path: Path, sample_data_dir: Path, tiny_strategy_yaml: str
) -> None:
    backend = start_backend(tmp_path / "backend", sample_data_dir, [])
    db_path = tmp_path / "backend" / "backend.db"
    locker: subprocess.Popen[str] | None = None
    try:
        with channel_to(backend.address) as channel:
            stub = backend_pb2_grpc.BackendStub(channel)
            # Trains through the lock: progress snapshots are due all the while.
            long_yaml = tiny_strategy_yaml.replace("epochs: 4", "epochs: 60")
            before = create(stub, long_yaml)
            wait_until(
                lambda: get(stub, before.operation_id).status == pb.OPERATION_STATUS_RUNNING,
                120,
                "the first training to run",
            )

            probe = HealthProbe(backend.address)
            probe.start()
            locker = subprocess.Popen(
                [sys.executable, "-c", LOCKER, str(db_path), str(HOLD_S)],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert locker.stdout is not None
            assert locker.stdout.readline().strip() == "locked"
            locked_at = time.monotonic()

            created: list[pb.Operation] = []
            refused: list[grpc.RpcError] = []

            def create_during_lock() -> None:
                try:
                    created.append(create(stub, tiny_strategy_yaml))
                except grpc.RpcError as exc:
                    refused.append(exc)

            creating = threading.Thread(target=create_during_lock, daemon=True)
            creating.start()

            reads: list[float] = []
            while time.monotonic() - locked_at < HOLD_S - 1.0:  # well inside the lock
                started = time.monotonic()
                assert get(stub, before.operation_id, timeout=30).operation_id
                listing = stub.ListOperations(pb.ListOperationsRequest(page_size=10), timeout=30)
                assert before.operation_id in [o.operation_id for o in listing.operations]
                reads.append(time.monotonic() - started)
                time.sleep(0.2)

            assert locker.wait(timeout=scaled(30)) == 0  # the lock is released
            time.sleep(0.5)  # health keeps being probed a moment after the release
            probe.stop.set()
            probe.join(timeout=scaled(60))
            creating.join(timeout=scaled(60))
            assert not creating.is_alive(), "CreateTraining never answered"

            print(
                f"health during the lock: {len(probe.latencies)} probes, "
                f"p99 {p99(probe.latencies) * 1000:.0f} ms, max {max(probe.latencies) * 1000:.0f} "
                f"ms; reads max {max(reads) * 1000:.0f} ms; CreateTraining during the lock: "
                + (f"{refused[0].code().name}: {refused[0].details()}" if refused else "created")  # type: ignore[attr-defined]
            )
            assert not probe.failures, probe.failures
            assert p99(probe.latencies) < HEALTH_P99_S, sorted(probe.latencies)[-10:]
            assert max(reads) < PROMPT_S, reads
            for exc in refused:
                code, details = exc.code(), exc.details()  # type: ignore[attr-defined]
                assert code == grpc.StatusCode.UNAVAILABLE, (code, details)
                assert "database busy, retry shortly" in details, details
                assert str(tmp_path) not in details, details

            # After the release: the training that ran through the lock completes, and one
            # created during it (or now, if it was refused) runs to the end.
            later = created[0] if created else create(stub, tiny_strategy_yaml)
            for op_id in (before.operation_id, later.operation_id):
                done = wait_until(
                    lambda op_id=op_id: (
                        (o := get(stub, op_id)).status
                        not in (pb.OPERATION_STATUS_PENDING, pb.OPERATION_STATUS_RUNNING)
                        and o
                    ),
                    TIMEOUT_S,
                    f"operation {op_id} to finish",
                )
                assert done.status == pb.OPERATION_STATUS_COMPLETED, done  # type: ignore[union-attr]
    finally:
        if locker is not None and locker.poll() is None:
            locker.kill()
            locker.wait()
        backend.stop()
