"""A host in Ray mode behind a backend, on a real two-node Ray cluster (loopback only).

The tests share one cluster, host and backend and run in file order: the last two take a
node, then the whole cluster, away.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ktrdr.storage import ModelBundle
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import backend_pb2_grpc, common_pb2, host_pb2
from tests.integration.ray.ray_processes import (
    SAMPLE_DATA,
    host_stub,
    session,
    start_direct,
    wait_for,
)
from tests.support.processes import Service, channel_to, start_backend
from tests.support.timing import scaled

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOST, LOCAL = pb.EXECUTION_MODE_HOST, pb.EXECUTION_MODE_LOCAL
CPU_SEED = common_pb2.TrainingOverrides(device="cpu", seed=11)
S = host_pb2


@pytest.fixture(scope="module")
def yamls(tiny_strategy_yaml: str) -> dict[str, str]:
    """The tiny strategy; "short" trains ~2 s on a warm worker, "long" until cancelled."""
    short = tiny_strategy_yaml.replace("epochs: 4", "epochs: 40").replace(
        "patience: 10", "patience: 100000"
    )
    return {
        "tiny": tiny_strategy_yaml,
        "short": short,
        "longer": short.replace("epochs: 40", "epochs: 60"),
        "long": short.replace("epochs: 40", "epochs: 10000"),
    }


def create(stub, yaml_text: str, mode: int) -> pb.Operation:  # type: ignore[no-untyped-def]
    request = pb.CreateTrainingRequest(
        strategy_yaml=yaml_text, execution_mode=mode, overrides=CPU_SEED
    )
    return stub.CreateTraining(request, timeout=scaled(10)).operation


def finished(stub, op_id: str) -> pb.Operation | None:  # type: ignore[no-untyped-def]
    op = stub.GetOperation(pb.GetOperationRequest(operation_id=op_id), timeout=scaled(5)).operation
    return op if op.status == pb.OPERATION_STATUS_COMPLETED else None


def test_capabilities_count_the_nodes_and_cpus(ray_host) -> None:  # type: ignore[no-untyped-def]
    channel, stub = host_stub(ray_host)
    with channel:
        caps = stub.GetCapabilities(S.GetCapabilitiesRequest(), timeout=scaled(5))
    cluster = caps.cluster
    assert cluster.reachable and cluster.node_count == 2 and cluster.cpus == 2
    assert [(n.address, n.cpus, n.head) for n in cluster.nodes] == [
        ("127.0.0.2", 1, True),
        ("127.0.0.3", 1, False),
    ]
    assert cluster.free_slots == 2 and cluster.max_queued == 8
    assert caps.max_sessions == 2 + 8 and caps.active_sessions == 0


def test_two_trainings_at_once_land_on_two_nodes(yamls, ray_host, ray_backend) -> None:  # type: ignore[no-untyped-def]
    with channel_to(ray_backend.address) as channel:
        stub = backend_pb2_grpc.BackendStub(channel)
        ops = [create(stub, yamls["tiny"], HOST) for _ in range(2)]
        assert all(op.mode == HOST for op in ops), [op.mode_reason for op in ops]
        done = [
            wait_for(lambda op=op: finished(stub, op.operation_id), 90, "both trainings")
            for op in ops
        ]
    assert all(d.result.delivery.model.path for d in done)
    channel, hstub = host_stub(ray_host)
    with channel:
        nodes = {session(hstub, op.operation_id).node.split(" ")[0] for op in ops}
    assert nodes == {"127.0.0.2", "127.0.0.3"}


def test_same_seed_gives_the_same_weights_as_a_local_run(yamls, ray_host, ray_backend) -> None:  # type: ignore[no-untyped-def]
    import torch

    store = ray_backend.log.parent / "models"
    with channel_to(ray_backend.address) as channel:
        stub = backend_pb2_grpc.BackendStub(channel)
        refs = []
        for mode in (HOST, LOCAL):
            op = create(stub, yamls["tiny"], mode)
            assert op.mode == mode, op.mode_reason
            done = wait_for(lambda op=op: finished(stub, op.operation_id), 60, "the training")
            refs.append(done.result.delivery.model.path)
    on_ray, local = (ModelBundle.read(store / ref) for ref in refs)
    assert on_ray.weights.keys() == local.weights.keys()
    for key, tensor in on_ray.weights.items():
        assert torch.equal(tensor, local.weights[key]), key


def test_queued_beyond_free_cpus_and_cancelled_within_2_s(yamls, ray_host, ray_backend) -> None:  # type: ignore[no-untyped-def]
    channel, stub = host_stub(ray_host)
    with channel:
        streams = {
            sid: start_direct(stub, sid, yamls["long"], ray_backend.address)
            for sid in ("q1", "q2", "q3")
        }

        def states() -> dict[str, int]:
            return {s: session(stub, s).state for s in streams}

        wait_for(
            lambda: list(states().values()).count(S.SESSION_STATE_RUNNING) == 2,
            60,
            "two sessions running",
            lambda: f"{states()}, {streams}",
        )
        queued = [s for s, state in states().items() if state == S.SESSION_STATE_QUEUED]
        assert len(queued) == 1, states()
        waiting = queued[0]
        assert session(stub, waiting).node == ""
        assert streams[waiting].responses[0].state == S.SESSION_STATE_QUEUED
        assert streams[waiting].says("queued: waiting for 1 free CPU(s)")
        caps = stub.GetCapabilities(S.GetCapabilitiesRequest(), timeout=scaled(5)).cluster
        assert (caps.running_sessions, caps.queued_sessions, caps.free_slots) == (2, 1, 0)

        first, second = (s for s in streams if s != waiting)
        wait_for(lambda: common_pb2.PROGRESS_KIND_EPOCH in streams[first].kinds(), 60, "an epoch")
        began = time.monotonic()
        answer = stub.CancelTraining(
            S.CancelTrainingRequest(session_id=first, reason="test cancel"), timeout=scaled(10)
        )
        assert answer.state == S.SESSION_STATE_CANCELLED, answer
        assert time.monotonic() - began < scaled(10)  # a bound: the run itself takes minutes
        assert "test cancel" in answer.session.error.message
        # the queued one takes the freed CPU
        wait_for(
            lambda: session(stub, waiting).state == S.SESSION_STATE_RUNNING, 60, "the queued one"
        )
        assert session(stub, waiting).node
        for sid in (second, waiting):
            answer = stub.CancelTraining(
                S.CancelTrainingRequest(session_id=sid), timeout=scaled(10)
            )
            assert answer.state == S.SESSION_STATE_CANCELLED, answer
        for stream in streams.values():
            wait_for(
                lambda stream=stream: stream.ended_with(common_pb2.PROGRESS_KIND_CANCELLED),
                10,
                "the terminal events",
            )


def test_a_killed_worker_node_retries_elsewhere(yamls, ray_host, ray_backend, ray_cluster) -> None:  # type: ignore[no-untyped-def]
    channel, stub = host_stub(ray_host)
    with channel:
        streams = {
            sid: start_direct(stub, sid, yamls["longer"], ray_backend.address)
            for sid in ("k1", "k2")
        }

        def nodes() -> dict[str, str]:
            return {s: session(stub, s).node.split(" ")[0] for s in streams}

        wait_for(
            lambda: set(nodes().values()) == {"127.0.0.2", "127.0.0.3"},
            60,
            "one session on each node",
            lambda: f"{nodes()}, {streams}",
        )
        moved = next(s for s, node in nodes().items() if node == "127.0.0.3")
        ray_cluster.nodes[1].stop()  # the worker node goes away mid-training
        stayed = next(s for s in streams if s != moved)
        stub.CancelTraining(
            S.CancelTrainingRequest(session_id=stayed), timeout=scaled(10)
        )  # frees a CPU
        wait_for(
            lambda: (
                streams[moved].ended_with(common_pb2.PROGRESS_KIND_COMPLETED)
                or streams[moved].ended_with(common_pb2.PROGRESS_KIND_FAILED)
            ),
            90,
            "the session of the lost node to end",
            lambda: f"{session(stub, moved)}",
        )
        done = session(stub, moved)
        assert done.state == S.SESSION_STATE_COMPLETED, done
        assert done.node.startswith("127.0.0.2")
        assert streams[moved].says("was lost; training again on 127.0.0.2")
        caps = stub.GetCapabilities(S.GetCapabilitiesRequest(), timeout=scaled(5)).cluster
        assert caps.node_count == 1 and caps.cpus == 1


def test_the_spooled_model_is_delivered_after_the_cluster_is_gone(  # type: ignore[no-untyped-def]
    yamls, ray_host, ray_backend, ray_cluster
) -> None:
    work = ray_backend.log.parent
    port = int(ray_backend.address.rsplit(":", 1)[1])
    with channel_to(ray_backend.address) as channel:
        op = create(backend_pb2_grpc.BackendStub(channel), yamls["short"], HOST)
    channel, stub = host_stub(ray_host)
    with channel:
        wait_for(lambda: session(stub, op.operation_id), 30, "the host to have the session")
        ray_backend.stop(crash=True)  # nobody takes the model: it stays in the host's spool
        wait_for(
            lambda: session(stub, op.operation_id).state == S.SESSION_STATE_COMPLETED,
            90,
            "the session",
        )
        assert (
            session(stub, op.operation_id).result.delivery.status
            == common_pb2.DELIVERY_STATUS_PENDING
        )
        running = start_direct(stub, "orphan", yamls["long"], f"127.0.0.1:{port}")
        wait_for(lambda: session(stub, "orphan").node, 60, "a session running")
        # The cluster crashes (kill -9 of every node). Not a graceful stop: when the head shuts
        # down slowly, Ray's driver in the host (attached to the head's raylet) ends the host
        # process (status 1, seen 2 runs in 13 under load); README "Ray" tells operators so.
        ray_cluster.stop(signal.SIGKILL)
        health = health_pb2_grpc.HealthStub(channel)
        wait_for(
            lambda: (
                health.Check(health_pb2.HealthCheckRequest(), timeout=scaled(2)).status
                == health_pb2.HealthCheckResponse.NOT_SERVING
            ),
            120,  # a bound: the probe's own timeouts stretch on a loaded machine
            "NOT_SERVING",
            detail=lambda: host_state(ray_host),
        )
        assert not stub.GetCapabilities(
            S.GetCapabilitiesRequest(), timeout=scaled(5)
        ).cluster.reachable
        with pytest.raises(grpc.RpcError) as refused:
            stub.StartTraining(
                S.StartTrainingRequest(
                    session_id="late",
                    strategy_yaml=yamls["short"],
                    results_target=f"127.0.0.1:{port}",
                ),
                timeout=scaled(10),
            ).next()
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value.details()
        # the session that ran on the vanished cluster fails, saying so (never stays RUNNING)
        wait_for(
            lambda: running.ended_with(common_pb2.PROGRESS_KIND_FAILED), 60, "the orphan to fail"
        )
        orphan = session(stub, "orphan")
        assert orphan.state == S.SESSION_STATE_FAILED and orphan.error.code == "ABORTED"
        assert "unreachable" in orphan.error.message and "127.0.0." in orphan.error.message
    backend = start_backend(Path(work), SAMPLE_DATA, [ray_host.address], port=port)
    try:
        with channel_to(backend.address) as channel:
            bstub = backend_pb2_grpc.BackendStub(channel)
            done = wait_for(lambda: finished(bstub, op.operation_id), 60, "the delivery")
        assert (work / "models" / done.result.delivery.model.path).exists()
    finally:
        backend.stop()
    # a host whose cluster is gone still stops cleanly, in bounded time
    ray_host.process.send_signal(signal.SIGTERM)
    assert ray_host.process.wait(30) == 0, ray_host.log.read_text()[-3000:]


def host_state(service: Service) -> str:
    """What a failed wait on the host knows: whether its process still runs, and its log."""
    code = service.process.poll()
    state = "running" if code is None else f"the host process has EXITED (status {code})"
    return f"{state}; its log ends:\n{service.log.read_text()[-3000:]}"
