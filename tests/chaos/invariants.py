"""What must hold once the faults stop and the services settle.

* every operation the backend knows is terminal (COMPLETED, FAILED or CANCELLED);
* a FAILED or CANCELLED one carries an error with a code and a message (its cause);
* a COMPLETED one has a delivered model that GetModel describes with the operation's SHA-256
  and DownloadModel sends with bytes of that SHA-256, a bundle that reads back;
* every stored model belongs to a COMPLETED operation that names it (none saved behind a
  FAILED one);
* no host keeps a model waiting in its spool, and none is parked in a spool's ``failed/``
  (the soak cancels nothing and delivers valid bundles: a parked model is a trained model the
  backend refused; the message says too when its operation does not even show why);
* every training the workload created is in the backend's list.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from ktrdr.client.models import extract_bundle
from ktrdr.storage import ModelBundle
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import backend_pb2_grpc, common_pb2
from ktrdr.transfer.download import receive_download
from ktrdr_host.spool import Spool
from tests.chaos.cluster import Cluster
from tests.chaos.workload import STRATEGY_NAME, Created
from tests.support.processes import channel_to
from tests.support.timing import scaled

TERMINAL = (
    pb.OPERATION_STATUS_COMPLETED,
    pb.OPERATION_STATUS_FAILED,
    pb.OPERATION_STATUS_CANCELLED,
)
MAX_MODEL_BYTES = 256 << 20


def status_name(status: int) -> str:
    return pb.OperationStatus.Name(status).removeprefix("OPERATION_STATUS_")


def list_operations(stub: backend_pb2_grpc.BackendStub) -> list[pb.Operation]:
    out: list[pb.Operation] = []
    token = ""
    while True:
        reply = stub.ListOperations(
            pb.ListOperationsRequest(page_size=100, page_token=token), timeout=scaled(10)
        )
        out.extend(reply.operations)
        token = reply.next_page_token
        if not token:
            return out


def spool_state(cluster: Cluster) -> tuple[dict[str, int], dict[str, tuple[int, str]]]:
    """Waiting entries (session -> host) and parked ones (session -> (host, reason))."""
    waiting: dict[str, int] = {}
    parked: dict[str, tuple[int, str]] = {}
    for index in range(2):
        directory = cluster.spool_dir(index)
        if not directory.is_dir():
            continue
        spool = Spool(directory)
        for entry in spool.entries(cleanup=False):
            waiting[entry.session_id] = index
        for entry, reason, _ in spool.parked():
            parked[entry.session_id] = (index, reason)
    return waiting, parked


def settle(cluster: Cluster, timeout_s: float) -> tuple[bool, float]:
    """Wait (bounded) until every operation is terminal and no spool keeps a model waiting;
    returns whether that happened and how long it took."""
    start = time.monotonic()
    deadline = start + scaled(timeout_s)
    with channel_to(cluster.backend_address) as channel:
        stub = backend_pb2_grpc.BackendStub(channel)
        while time.monotonic() < deadline:
            try:
                ops = list_operations(stub)
            except grpc.RpcError:
                ops = None
            if ops is not None and all(op.status in TERMINAL for op in ops):
                waiting, _ = spool_state(cluster)
                if not waiting:
                    return True, time.monotonic() - start
            time.sleep(0.5)
    return False, time.monotonic() - start


@dataclass
class Findings:
    violations: list[str] = field(default_factory=list)
    by_status: Counter[str] = field(default_factory=Counter)
    by_mode: Counter[str] = field(default_factory=Counter)
    causes: Counter[str] = field(default_factory=Counter)
    models_checked: int = 0
    parked: int = 0


def check(cluster: Cluster, created: list[Created], scratch: Path) -> Findings:
    found = Findings()
    with channel_to(cluster.backend_address) as channel:
        stub = backend_pb2_grpc.BackendStub(channel)
        ops = {op.operation_id: op for op in list_operations(stub)}
        for made in created:
            if made.operation_id not in ops:
                found.violations.append(
                    f"operation {made.operation_id} (created at {made.at_s:.1f}s) is not in "
                    "the backend's list: lost"
                )
        for op in ops.values():
            _check_operation(stub, op, found, scratch)
        _check_models(stub, ops, found)
    waiting, parked = spool_state(cluster)
    found.parked = len(parked)
    for session, host in waiting.items():
        op = ops.get(session)
        found.violations.append(
            f"host{host} still keeps the model of {session} waiting in its spool "
            f"(operation: {_describe(op) if op else 'unknown to the backend'})"
        )
    for session, (host, reason) in parked.items():
        # The soak cancels nothing and its hosts deliver valid bundles: a parked model is a
        # trained model the backend refused, lost unless an operator resends it. Silent when
        # its operation does not even say why; refused either way.
        op = ops.get(session)
        silent = op is None or op.status != pb.OPERATION_STATUS_FAILED or not op.error.message
        found.violations.append(
            f"host{host} parked the trained model of {session} ({reason!r})"
            + (" and the operation does not say so" if silent else "")
            + f": {_describe(op) if op else 'unknown to the backend'}"
        )
    return found


def _describe(op: pb.Operation) -> str:
    delivery = op.result.delivery
    text = (
        f"{op.operation_id} {status_name(op.status)} mode="
        f"{'host ' + op.host_address if op.mode == pb.EXECUTION_MODE_HOST else 'local'}"
        f" last_event={op.last_event.message!r}"
    )
    if op.HasField("error"):
        text += f" error={op.error.code}: {op.error.message!r}"
    if op.HasField("result"):
        text += (
            f" delivery={common_pb2.DeliveryStatus.Name(delivery.status)}"
            f" attempts={delivery.attempts} last_error={delivery.last_error!r}"
        )
    return text


def _check_operation(
    stub: backend_pb2_grpc.BackendStub, op: pb.Operation, found: Findings, scratch: Path
) -> None:
    found.by_status[status_name(op.status)] += 1
    found.by_mode[
        f"{'host' if op.mode == pb.EXECUTION_MODE_HOST else 'local'} {status_name(op.status)}"
    ] += 1
    if op.status not in TERMINAL:
        found.violations.append(f"not terminal: {_describe(op)}")
        return
    if op.status in (pb.OPERATION_STATUS_FAILED, pb.OPERATION_STATUS_CANCELLED):
        if not op.error.code or not op.error.message.strip() or op.error.code == "UNKNOWN":
            found.violations.append(f"ended without a cause: {_describe(op)}")
        found.causes[f"{status_name(op.status)} {op.error.code}: {op.error.message[:110]}"] += 1
        return
    _check_model(stub, op, found, scratch)


def _check_model(
    stub: backend_pb2_grpc.BackendStub, op: pb.Operation, found: Findings, scratch: Path
) -> None:
    delivery = op.result.delivery
    ref = delivery.model
    sha = op.result.bundle_sha256
    if delivery.status != common_pb2.DELIVERY_STATUS_DELIVERED or not ref.version or not sha:
        found.violations.append(f"COMPLETED without a delivered model: {_describe(op)}")
        return
    selector = pb.ModelSelector(strategy_name=ref.strategy_name, version=ref.version)
    try:
        details = stub.GetModel(pb.GetModelRequest(model=selector), timeout=scaled(10)).model
    except grpc.RpcError as exc:
        found.violations.append(f"GetModel v{ref.version} of {op.operation_id}: {exc}")
        return
    if details.version.sha256 != sha or details.version.operation_id != op.operation_id:
        found.violations.append(
            f"model {ref.strategy_name} v{ref.version}: GetModel says sha256 "
            f"{details.version.sha256} of {details.version.operation_id}, the operation "
            f"{op.operation_id} recorded {sha}"
        )
        return
    part = scratch / f"{op.operation_id}.tar"
    try:
        stream = stub.DownloadModel(
            pb.DownloadModelRequest(model=selector, expected_sha256=sha), timeout=scaled(60)
        )
        receive_download(stream, part, max_raw_bytes=MAX_MODEL_BYTES, expected_sha256=sha)
        actual = hashlib.sha256(part.read_bytes()).hexdigest()
        if actual != sha:
            found.violations.append(
                f"model {ref.strategy_name} v{ref.version}: downloaded bytes hash to {actual}, "
                f"{sha} recorded"
            )
            return
        bundle_dir = scratch / op.operation_id
        extract_bundle(part, bundle_dir)
        ModelBundle.read(bundle_dir)
    except Exception as exc:
        found.violations.append(
            f"model {ref.strategy_name} v{ref.version} of {op.operation_id} unreadable: "
            f"{type(exc).__name__}: {exc}"
        )
        return
    finally:
        part.unlink(missing_ok=True)
    found.models_checked += 1


def _check_models(
    stub: backend_pb2_grpc.BackendStub, ops: dict[str, pb.Operation], found: Findings
) -> None:
    """Every stored model of the soak's strategy belongs to the COMPLETED operation naming it."""
    token = ""
    while True:
        reply = stub.ListModels(
            pb.ListModelsRequest(strategy_name=STRATEGY_NAME, page_size=100, page_token=token),
            timeout=scaled(10),
        )
        for strategy in reply.strategies:
            for version in strategy.versions:
                op = ops.get(version.operation_id)
                if (
                    op is None
                    or op.status != pb.OPERATION_STATUS_COMPLETED
                    or op.result.delivery.model.version != version.version
                ):
                    found.violations.append(
                        f"model {strategy.name} v{version.version} is stored for "
                        f"{version.operation_id}, which does not name it: "
                        f"{_describe(op) if op else 'unknown operation'}"
                    )
        token = reply.next_page_token
        if not token:
            return
