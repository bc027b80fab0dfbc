"""Walk-forward folds on the Ray cluster: each fold a Ray task of its own, the same fold
numbers as folds trained one after another in a local worker, and no deadlock when every CPU
of the cluster holds a session that waits for its folds.

A training's trace continues through its Ray task (the worker's span and its step spans
under the host's session), checked here on the module's cluster.

It finds a running cluster in any order (``test_ray_host`` takes its cluster away; the
``ray_cluster`` fixture starts a new one then).
"""

from __future__ import annotations

import pytest

from ktrdr.storage import ModelBundle
from ktrdr.training.progress import STEP_NAMES
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import backend_pb2_grpc, common_pb2, host_pb2
from tests.integration.ray.ray_processes import (
    SAMPLE_DATA,
    host_stub,
    session,
    start_direct,
    start_ray_host,
    wait_for,
)
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.support.processes import Service, channel_to, start_backend
from tests.support.timing import scaled, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FOLDS = 3
WALK_FORWARD = f"""
evaluation:
  walk_forward:
    folds: {FOLDS}
    window: rolling
    embargo_bars: 2
"""


def run(stub, yaml_text: str, mode: int) -> str:  # type: ignore[no-untyped-def]
    request = pb.CreateTrainingRequest(
        strategy_yaml=yaml_text,
        execution_mode=mode,
        overrides=common_pb2.TrainingOverrides(device="cpu", seed=11),
    )
    op = stub.CreateTraining(request, timeout=scaled(10)).operation
    assert op.mode == mode, op.mode_reason
    return str(op.operation_id)


def model_path(stub, op_id: str) -> str | None:  # type: ignore[no-untyped-def]
    op = stub.GetOperation(pb.GetOperationRequest(operation_id=op_id), timeout=scaled(5)).operation
    assert op.status not in (pb.OPERATION_STATUS_FAILED, pb.OPERATION_STATUS_CANCELLED), op
    return op.result.delivery.model.path if op.status == pb.OPERATION_STATUS_COMPLETED else None


def test_folds_run_as_ray_tasks_with_the_local_numbers(  # type: ignore[no-untyped-def]
    tiny_strategy_yaml, ray_host, ray_backend
) -> None:
    """Two walk-forward sessions at once hold both CPUs of the cluster while they wait for
    their folds (which ask a CPU each): they finish only because a waiting session lends its
    CPU to its folds. A local run of the same strategy and seed gives the same fold rows."""
    import torch

    yaml_text = tiny_strategy_yaml + WALK_FORWARD
    store = ray_backend.log.parent / "models"
    with channel_to(ray_backend.address) as channel:
        stub = backend_pb2_grpc.BackendStub(channel)
        ops = [run(stub, yaml_text, pb.EXECUTION_MODE_HOST) for _ in range(2)]
        ops.append(run(stub, yaml_text, pb.EXECUTION_MODE_LOCAL))
        paths = [
            wait_for(lambda op=op: model_path(stub, op), scaled(240), "the walk-forward runs")
            for op in ops
        ]
    *on_ray, local = (ModelBundle.read(store / path) for path in paths)
    expected = local.metadata["metrics"]["walk_forward"]
    assert len(expected["folds"]) == FOLDS and "ran_on" not in expected  # folds ran in-process
    for bundle in on_ray:
        wf = bundle.metadata["metrics"]["walk_forward"]
        # bit-identical fold numbers (floats compared exactly) and stitched run
        assert wf["folds"] == expected["folds"]
        assert wf["stitched"] == expected["stitched"]
        assert wf["aggregate"] == expected["aggregate"]
        # each fold was its own Ray task, none of them the session's task
        ran_on = wf["ran_on"]
        assert [r["fold"] for r in ran_on] == list(range(1, FOLDS + 1))
        tasks = {r["task_id"] for r in ran_on}
        sessions = {r["session_task_id"] for r in ran_on}
        assert len(tasks) == FOLDS and len(sessions) == 1 and not tasks & sessions
        assert {r["node"] for r in ran_on} <= {"127.0.0.2", "127.0.0.3"}
        # the bundle's model is the single-split model, as trained locally
        for key, tensor in bundle.weights.items():
            assert torch.equal(tensor, local.weights[key]), key
    first, second = (
        {r["task_id"] for r in b.metadata["metrics"]["walk_forward"]["ran_on"]} for b in on_ray
    )
    assert not first & second


def test_a_cancel_cancels_the_fold_tasks(tiny_strategy_yaml, ray_host, ray_backend) -> None:  # type: ignore[no-untyped-def]
    """Cancelled once its folds are submitted, the session ends CANCELLED at once, saying
    that it cancelled the fold tasks still queued or running (each trains for seconds)."""
    yaml_text = (tiny_strategy_yaml + WALK_FORWARD).replace("epochs: 4", "epochs: 200")
    yaml_text = yaml_text.replace("patience: 10", "patience: 100000")
    channel, stub = host_stub(ray_host)
    with channel:
        stream = start_direct(stub, "wf-cancel", yaml_text, ray_backend.address)
        wait_for(lambda: stream.says("(a Ray task)"), scaled(180), "the fold tasks")
        answer = stub.CancelTraining(
            host_pb2.CancelTrainingRequest(session_id="wf-cancel", reason="enough folds"),
            timeout=scaled(10),
        )
        assert answer.state == host_pb2.SESSION_STATE_CANCELLED, answer
        wait_for(
            lambda: stream.ended_with(common_pb2.PROGRESS_KIND_CANCELLED), scaled(10), "the end"
        )
        message = session(stub, "wf-cancel").error.message
    assert "enough folds" in message
    assert f"of {FOLDS} fold task(s) still queued or running were cancelled" in message, message
    assert sum(stream.says(f"walk-forward fold {i}/{FOLDS}") for i in range(1, FOLDS + 1)) == FOLDS


def test_a_ray_task_continues_the_operations_trace(  # type: ignore[no-untyped-def]
    tmp_path, tiny_strategy_yaml, ray_cluster
) -> None:
    """A host in Ray mode and a backend with tracing on (OTLP to a receiver here): the Ray
    task's ``worker`` span (service ``ktrdr-worker``, its variables sent in the request: a
    Ray worker does not inherit the host's environment) is under the host's ``session``,
    which is under the backend's ``operation``; each step is a span under the worker."""
    receiver = OtlpReceiver().start()
    services: list[Service] = []
    try:
        host = start_ray_host(tmp_path / "host", ray_cluster, env_extra=receiver.env())
        services.append(host)
        backend = start_backend(
            tmp_path / "backend", SAMPLE_DATA, [host.address], env=receiver.env()
        )
        services.append(backend)
        with channel_to(backend.address) as channel:
            stub = backend_pb2_grpc.BackendStub(channel)
            op_id = run(stub, tiny_strategy_yaml, pb.EXECUTION_MODE_HOST)
            wait_for(lambda: model_path(stub, op_id), scaled(300), "the traced Ray training")

        def named(service: str, name: str) -> list[ReceivedSpan]:
            return [s for s in receiver.received() if s.service == service and s.name == name]

        wait_until(
            lambda: (
                named("ktrdr-backend", "/ktrdr.training.v1.Backend/SubmitResults")
                and named("ktrdr-worker", f"Step {len(STEP_NAMES)}: {STEP_NAMES[-1]}")
            ),
            scaled(60),
            "the delivery's and the Ray task's spans",
        )
    finally:
        for service in reversed(services):
            service.stop(crash=True)
        receiver.stop()

    (operation,) = [
        s for s in named("ktrdr-backend", "operation")
        if s.attributes.get("ktrdr.operation_id") == op_id
    ]  # fmt: skip
    trace = {s.span_id: s for s in receiver.received() if s.trace_id == operation.trace_id}
    spans = list(trace.values())
    (session_span,) = [s for s in spans if (s.service, s.name) == ("ktrdr-host", "session")]
    (worker,) = [s for s in spans if (s.service, s.name) == ("ktrdr-worker", "worker")]
    assert worker.parent_id == session_span.span_id, trace.get(worker.parent_id)
    ancestor = trace.get(session_span.parent_id)
    while ancestor is not None and ancestor.span_id != operation.span_id:
        ancestor = trace.get(ancestor.parent_id)
    assert ancestor is operation, "the session is not under the backend's operation"
    steps = [s for s in spans if s.service == "ktrdr-worker" and s is not worker]
    assert sorted(s.name for s in steps) == sorted(
        f"Step {n}: {name}" for n, name in enumerate(STEP_NAMES, start=1)
    )
    assert all(s.parent_id == worker.span_id and not s.error for s in steps)
