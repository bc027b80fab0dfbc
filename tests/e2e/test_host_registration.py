"""Hosts that register themselves: real ``ktrdr backend serve`` and ``ktrdr host serve
--backend`` processes on loopback, with short heartbeat settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

import ktrdr
from ktrdr.backend.auth.token_store import TokenStore
from ktrdr.security.tokens import generate_token
from ktrdr.service.host_protocol import PROTOCOL_VERSION
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import backend_pb2_grpc, host_pb2, hosts_pb2
from tests.support.processes import (
    ADMIN_TOKEN,
    HOST_ROLE_TOKEN,
    REPO_ROOT,
    Service,
    channel_to,
    provision_tokens,
    start_backend,
    start_host,
)
from tests.support.timing import scaled, wait_until

pytestmark = pytest.mark.e2e

# Short heartbeats: unavailable after 1.5 s without one, removed after 3 s.
INTERVAL_S, TIMEOUT_S, REMOVAL_S = 0.3, 1.5, 3.0
REGISTRY_ENV = {
    "KTRDR_BACKEND_HOST_HEARTBEAT_INTERVAL_S": str(INTERVAL_S),
    "KTRDR_BACKEND_HOST_HEARTBEAT_TIMEOUT_S": str(TIMEOUT_S),
    "KTRDR_BACKEND_HOST_REMOVAL_AFTER_S": str(REMOVAL_S),
    "KTRDR_BACKEND_HOST_QUEUE_POLL_S": "60",  # a registration, not the poll, starts the work
}
TRAINING_S = 480  # bound on a training's wall time on a loaded machine (scaled)


def backend_for_hosts(work: Path, sample_data_dir: Path, port: int | None = None) -> Service:
    """A backend with no --host-address whose default mode is host."""
    return start_backend(
        work, sample_data_dir, [], port=port, default_mode="host", env=REGISTRY_ENV
    )


def host_for(work: Path, sample_data_dir: Path, backend: Service, host_id: str = "") -> Service:
    """``ktrdr host serve --backend ADDRESS`` as the README writes it (its id from host.id
    unless ``host_id``: ``--host-id``)."""
    flags = ["--backend", backend.address, *(["--host-id", host_id] if host_id else [])]
    return start_host(work, sample_data_dir, flags=flags)


def hosts_list(backend: Service) -> list[dict]:
    """``ktrdr hosts list --json``, as an operator runs it."""
    command = [sys.executable, "-m", "ktrdr.cli.main", "hosts", "list", "--json"]
    out = subprocess.run(
        [*command, "--backend", backend.address, "--token", ADMIN_TOKEN],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=scaled(60),
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def state_of(stub: backend_pb2_grpc.BackendStub, host_id: str) -> hosts_pb2.HostInfo | None:
    listed = stub.ListHosts(hosts_pb2.ListHostsRequest(), timeout=scaled(10)).hosts
    return next((h for h in listed if h.host_id == host_id), None)


def get(stub: backend_pb2_grpc.BackendStub, op_id: str) -> pb.Operation:
    request = pb.GetOperationRequest(operation_id=op_id)
    return stub.GetOperation(request, timeout=scaled(10)).operation


def test_a_host_started_after_the_backend_trains_the_work_queued_before_it(
    tmp_path, sample_data_dir, tiny_strategy_yaml
):
    backend = backend_for_hosts(tmp_path / "backend", sample_data_dir)
    host = None
    try:
        with channel_to(backend.address) as channel:
            stub = backend_pb2_grpc.BackendStub(channel)
            request = pb.CreateTrainingRequest(strategy_yaml=tiny_strategy_yaml)
            op = stub.CreateTraining(request, timeout=scaled(10)).operation
            assert (op.status, op.mode) == (pb.OPERATION_STATUS_PENDING, pb.EXECUTION_MODE_HOST)
            assert "no training host has registered yet" in op.mode_reason, op.mode_reason
            assert hosts_list(backend) == []

            host = host_for(tmp_path / "host", sample_data_dir, backend, "gpu-test")
            done = wait_until(
                lambda: (
                    (o := get(stub, op.operation_id)).status
                    not in (pb.OPERATION_STATUS_PENDING, pb.OPERATION_STATUS_RUNNING)
                    and o
                ),
                TRAINING_S,
                "the queued operation to end",
                poll_s=0.2,
            )
            assert done.status == pb.OPERATION_STATUS_COMPLETED, done.error
            assert done.host_address == host.address
            [listed] = hosts_list(backend)
            assert (listed["host_id"], listed["address"], listed["state"]) == (
                "gpu-test",
                host.address,
                "available",
            )
            assert listed["joined"] == "registered" and listed["version"] == ktrdr.__version__
            assert listed["max_sessions"] == 1 and listed["device"] == "cpu"
            config = stub.GetTrainingConfig(pb.GetTrainingConfigRequest(), timeout=scaled(10))
            assert list(config.config.host_addresses) == [host.address]
    finally:
        if host is not None:
            host.stop()
        backend.stop()
    assert "host gpu-test (" in backend.log.read_text() and "new -> available" in (
        backend.log.read_text()
    )


def test_a_killed_host_turns_unavailable_its_operation_ends_and_it_registers_again(
    tmp_path, sample_data_dir, tiny_strategy_yaml
):
    backend = backend_for_hosts(tmp_path / "backend", sample_data_dir)
    host = host_for(tmp_path / "host", sample_data_dir, backend)
    again = None
    try:
        with channel_to(backend.address) as channel:
            stub = backend_pb2_grpc.BackendStub(channel)
            wait_until(lambda: stub.ListHosts(hosts_pb2.ListHostsRequest()).hosts, 30, "a host")
            host_id = (tmp_path / "host" / "host.id").read_text().strip()  # kept for restarts
            long = tiny_strategy_yaml.replace("epochs: 4", "epochs: 400")
            request = pb.CreateTrainingRequest(strategy_yaml=long)
            op = stub.CreateTraining(request, timeout=scaled(10)).operation
            wait_until(
                lambda: get(stub, op.operation_id).status == pb.OPERATION_STATUS_RUNNING,
                60,
                "the training to run on the host",
            )
            assert get(stub, op.operation_id).host_address == host.address

            host.stop(crash=True)  # SIGKILL: no leave, no drain
            # The stated window: the lease plus one sweep and one interval (deadline scaled).
            wait_until(
                lambda: state_of(stub, host_id).state == hosts_pb2.HOST_STATE_UNAVAILABLE,
                TIMEOUT_S + 2 * INTERVAL_S + 1.0,
                "the killed host to be marked unavailable",
            )
            failed = wait_until(
                lambda: (
                    (o := get(stub, op.operation_id)).status == pb.OPERATION_STATUS_FAILED and o
                ),
                REMOVAL_S + 5.0,
                "the operation on the removed host to fail",
            )
            assert failed.error.code == "UNAVAILABLE"
            assert "sent no heartbeat" in failed.error.message
            assert "was removed" in failed.error.message
            assert state_of(stub, host_id) is None  # removed

            again = host_for(tmp_path / "host", sample_data_dir, backend)  # new port, same id
            wait_until(
                lambda: (
                    (h := state_of(stub, host_id)) is not None
                    and h.state == hosts_pb2.HOST_STATE_AVAILABLE
                    and h.address == again.address
                ),
                30,
                "the restarted host to register again",
            )
            [listed] = hosts_list(backend)
            assert (listed["host_id"], listed["state"]) == (host_id, "available")

        # A backend restart forgets registrations: the next heartbeat is answered
        # known=false and the host registers again.
        port = int(backend.address.rsplit(":", 1)[1])
        backend.stop()
        backend = backend_for_hosts(tmp_path / "backend", sample_data_dir, port)
        with channel_to(backend.address) as channel:
            stub = backend_pb2_grpc.BackendStub(channel)
            wait_until(
                lambda: (
                    (h := state_of(stub, host_id)) is not None
                    and h.state == hosts_pb2.HOST_STATE_AVAILABLE
                ),
                30,
                "the host to register with the restarted backend",
            )
    finally:
        for service in (again, host, backend):
            if service is not None:
                service.stop()


def test_strangers_and_other_versions_cannot_register(tmp_path, sample_data_dir):
    work = tmp_path / "backend"
    work.mkdir()
    provision_tokens(work)
    trainer_token = generate_token()
    store = TokenStore(work / "backend.db")
    try:
        store.add("e2e-trainer", "trainer", trainer_token)
    finally:
        store.close()
    backend = backend_for_hosts(work, sample_data_dir)
    request = hosts_pb2.RegisterHostRequest(
        host_id="intruder",
        address="127.0.0.1:1",
        version=ktrdr.__version__,
        protocol_version=PROTOCOL_VERSION,
        capabilities=host_pb2.GetCapabilitiesResponse(max_sessions=1),
        instance_id="x",
    )

    def refusal(token: str | None, message: hosts_pb2.RegisterHostRequest) -> grpc.RpcError:
        with channel_to(backend.address, token) as channel, pytest.raises(grpc.RpcError) as info:
            backend_pb2_grpc.BackendStub(channel).RegisterHost(message, timeout=scaled(10))
        return info.value

    try:
        assert refusal(None, request).code() == grpc.StatusCode.UNAUTHENTICATED
        denied = refusal(trainer_token, request)
        assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "may not call RegisterHost" in (denied.details() or "")
        other = hosts_pb2.RegisterHostRequest()
        other.CopyFrom(request)
        other.protocol_version = PROTOCOL_VERSION + 1
        old = refusal(HOST_ROLE_TOKEN, other)
        assert old.code() == grpc.StatusCode.FAILED_PRECONDITION
        details = old.details() or ""
        assert f"protocol {PROTOCOL_VERSION + 1}, this backend {PROTOCOL_VERSION}" in details
        assert "\n" not in details
        far = hosts_pb2.RegisterHostRequest()
        far.CopyFrom(request)
        far.address = "10.1.2.3:50051"  # not loopback, not on the allow-list
        assert refusal(HOST_ROLE_TOKEN, far).code() == grpc.StatusCode.PERMISSION_DENIED
        with channel_to(backend.address) as channel:
            listed = backend_pb2_grpc.BackendStub(channel).ListHosts(
                hosts_pb2.ListHostsRequest(), timeout=scaled(10)
            )
        assert list(listed.hosts) == []
    finally:
        backend.stop()
